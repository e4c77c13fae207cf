//! W3C Trace Context (`traceparent`): reading the client's and writing the one a backend gets.
//!
//! `version-traceid-parentid-flags`, lower-case hex. A header that breaks the rules (wrong length
//! or separators, upper-case or non-hex digits, an all-zero trace or parent id, version `ff`,
//! a version-00 header with anything after its flags) is ignored: the request starts a new
//! trace, it is never refused. A later version is read by its first four fields, as the
//! specification asks, when what follows them starts with `-`.

use opentelemetry::trace::{SpanId, TraceFlags, TraceId};

/// The client's span, as its `traceparent` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// The client recorded its span (flag `01`): the request's spans are recorded too.
    pub sampled: bool,
}

/// Length of a version-00 `traceparent`: 2 + 1 + 32 + 1 + 16 + 1 + 2.
const LEN: usize = 55;

/// The client's parent span, or `None` for a header that is absent or breaks the rules.
pub fn parse_traceparent(value: &[u8]) -> Option<Parent> {
    if value.len() < LEN {
        return None;
    }
    let version = hex_u8(&value[0..2])?;
    match version {
        0xff => return None,
        0x00 if value.len() != LEN => return None,
        _ if value.len() > LEN && value[LEN] != b'-' => return None,
        _ => {}
    }
    if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let trace_id = u128::from_str_radix(lower_hex(&value[3..35])?, 16).ok()?;
    let span_id = u64::from_str_radix(lower_hex(&value[36..52])?, 16).ok()?;
    let flags = hex_u8(&value[53..55])?;
    if trace_id == 0 || span_id == 0 {
        return None;
    }
    Some(Parent {
        trace_id: TraceId::from(trace_id),
        span_id: SpanId::from(span_id),
        sampled: flags & TraceFlags::SAMPLED.to_u8() != 0,
    })
}

/// The version-00 `traceparent` naming `span_id` of `trace_id` as the parent.
pub fn traceparent(trace_id: TraceId, span_id: SpanId, sampled: bool) -> String {
    let flags = TraceFlags::default().with_sampled(sampled);
    format!("00-{trace_id:032x}-{span_id:016x}-{flags:02x}")
}

/// `digits` as text when they are all lower-case hex digits (the header allows no other).
fn lower_hex(digits: &[u8]) -> Option<&str> {
    digits
        .iter()
        .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        .then(|| std::str::from_utf8(digits).ok())
        .flatten()
}

fn hex_u8(digits: &[u8]) -> Option<u8> {
    u8::from_str_radix(lower_hex(digits)?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::{parse_traceparent, traceparent, Parent};
    use opentelemetry::trace::{SpanId, TraceId};

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn parse(s: &str) -> Option<Parent> {
        parse_traceparent(s.as_bytes())
    }

    #[test]
    fn a_valid_header_names_the_clients_trace_span_and_sampling() {
        let p = parse(VALID).unwrap();
        assert_eq!(
            p.trace_id,
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        assert_eq!(p.span_id, SpanId::from_hex("00f067aa0ba902b7").unwrap());
        assert!(p.sampled);
        let unsampled = parse(&VALID.replace("-01", "-00")).unwrap();
        assert!(!unsampled.sampled);
        // Other flag bits are not ours to read; the sampled bit still is.
        assert!(parse(&VALID.replace("-01", "-03")).unwrap().sampled);
    }

    #[test]
    fn malformed_headers_are_ignored() {
        for bad in [
            "",
            "garbage",
            &VALID[..54],
            &format!("{VALID}-extra"),
            &VALID.replace("4bf9", "4BF9"),
            &VALID.replace("4bf9", "4bg9"),
            &VALID.replacen('-', "_", 1),
            &VALID.replace("-00f0", "+00f0"),
            &VALID.replace("-01", "-0x"),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn all_zero_ids_are_invalid() {
        assert_eq!(
            parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(
            parse("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            None
        );
    }

    #[test]
    fn a_later_version_is_read_by_its_first_fields_and_version_ff_is_refused() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(parse(later), parse(VALID));
        assert_eq!(parse(&format!("{later}-what-comes-next")), parse(VALID));
        assert_eq!(parse(&format!("{later}x")), None);
        assert_eq!(parse(&VALID.replacen("00", "ff", 1)), None);
    }

    #[test]
    fn the_header_written_reads_back_the_same() {
        let trace = TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
        let span = SpanId::from(0x00f0_67aa_0ba9_02b7);
        assert_eq!(traceparent(trace, span, true), VALID);
        let unsampled = traceparent(trace, span, false);
        assert!(unsampled.ends_with("-00"), "{unsampled}");
        let back = parse(&unsampled).unwrap();
        assert_eq!((back.trace_id, back.span_id), (trace, span));
        // Leading zeros are kept.
        let small = traceparent(TraceId::from(1), SpanId::from(2), true);
        assert_eq!(
            small,
            "00-00000000000000000000000000000001-0000000000000002-01"
        );
    }
}
