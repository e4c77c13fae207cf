//! The HAProxy PROXY protocol, versions 1 and 2: the header a load balancer sends before the
//! client's bytes to name the client's address.
//!
//! [`parse`] is pure: given the bytes received so far it says they are a complete header (its
//! length and the source address it names), that more bytes are needed, or why they can never
//! be a header. It says [`Parsed::Incomplete`] only while the bytes could still become a valid
//! header, so a caller reading a few bytes at a time stops at the first byte that rules one
//! out. Bounds: a v1 line is at most 107 bytes with its CRLF; a v2 header at most 4096 bytes.
//! v2 TLVs are skipped. `LOCAL` (v2), `UNKNOWN` (v1) and families other than TCP over IPv4 or
//! IPv6 name no source: the caller keeps the connection's peer. Addresses come as sent: an
//! IPv4-mapped TCP6 source stays IPv6 until the caller canonicalises it.
//!
//! [`read_header`] reads one header from a stream under a deadline and hands back the bytes it
//! read past the header. Failure modes: not a header or malformed, the peer closing first, the
//! deadline; each is an error naming the reason, and the caller closes the connection. Whether
//! a peer may send a header at all (`trusted_proxies`) is the caller's decision, made first.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Longest v1 line, CRLF included (the specification's own bound).
const V1_MAX: usize = 107;
/// Longest v2 header accepted, TLVs included.
const V2_MAX: usize = 4096;
const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version/command, family/protocol, and the 2-byte length.
const V2_FIXED: usize = 16;
/// The shortest text of a v1 field: an IPv4 address, an IPv6 address, a port.
const MIN_V4: usize = "0.0.0.0".len();
const MIN_V6: usize = "::".len();
const MIN_PORT: usize = 1;

const NOT_PROXY: &str = "not a PROXY protocol header";

/// What the bytes received so far are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// Need more bytes (the prefix so far is valid).
    Incomplete,
    /// A complete header of `len` bytes; `source` is the client address it names, None for
    /// LOCAL / UNKNOWN / an unsupported family (keep the connection's peer).
    Header {
        len: usize,
        source: Option<SocketAddr>,
    },
}

/// Parses the start of a connection as a PROXY header, v1 or v2. `Err` carries the reason the
/// bytes are not, and can never become, a header. Bytes after the header are not looked at.
pub fn parse(buf: &[u8]) -> Result<Parsed, &'static str> {
    match buf.first() {
        None => Ok(Parsed::Incomplete),
        Some(b'\r') => parse_v2(buf),
        Some(b'P') => parse_v1(buf),
        Some(_) => Err(NOT_PROXY),
    }
}

/// Reads one PROXY header from `stream` within `deadline`. Returns the source it names (None:
/// keep the peer) and the bytes read past the header, which belong to what follows (a TLS
/// ClientHello, an HTTP request) and must be put back. Reads are small and bounded by what the
/// header can still need (v2 headers are read exactly; a v1 line may over-read, up to 107
/// bytes in all).
pub async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    deadline: Duration,
) -> Result<(Option<SocketAddr>, Vec<u8>), String> {
    let read = async {
        let mut buf = Vec::with_capacity(V1_MAX);
        loop {
            if let Parsed::Header { len, source } = parse(&buf).map_err(String::from)? {
                let rest = buf.split_off(len);
                return Ok((source, rest));
            }
            let start = buf.len();
            buf.resize(start + next_read_size(&buf), 0);
            let got = match buf.get_mut(start..) {
                Some(space) => stream.read(space).await,
                None => Ok(0),
            };
            let got = got.map_err(|e| format!("reading the PROXY header: {e}"))?;
            buf.truncate(start + got);
            if got == 0 {
                return Err("the connection closed before the PROXY header ended".to_string());
            }
        }
    };
    tokio::time::timeout(deadline, read)
        .await
        .map_err(|_| format!("no complete PROXY header within {deadline:?}"))?
}

/// How many bytes to ask for next: enough for v2's fixed part first, then exactly the rest of
/// a v2 header, or at most what a v1 line can still hold. Always at least 1.
fn next_read_size(buf: &[u8]) -> usize {
    let want = if buf.len() < V2_FIXED {
        V2_FIXED - buf.len()
    } else if buf.starts_with(V2_SIGNATURE) {
        v2_len(buf).unwrap_or(V2_FIXED).saturating_sub(buf.len())
    } else {
        V1_MAX.saturating_sub(buf.len())
    };
    want.max(1)
}

/// The total length a v2 header declares, once its fixed part has arrived.
fn v2_len(buf: &[u8]) -> Option<usize> {
    let [hi, lo] = array::<2>(buf, 14)?;
    Some(V2_FIXED + usize::from(u16::from_be_bytes([hi, lo])))
}

/// `N` bytes of `buf` from `at`, if there are that many.
fn array<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, &'static str> {
    let seen = buf.len().min(V2_SIGNATURE.len());
    if buf.get(..seen) != V2_SIGNATURE.get(..seen) {
        return Err(NOT_PROXY);
    }
    let version_command = buf.get(12).copied();
    if let Some(vc) = version_command {
        if vc >> 4 != 2 {
            return Err("PROXY v2: unsupported version");
        }
        if vc & 0x0f > 1 {
            return Err("PROXY v2: unknown command");
        }
    }
    let family = buf.get(13).copied();
    if let Some(fp) = family {
        // The specification: other families and protocols "must be rejected as invalid".
        if fp >> 4 > 3 || fp & 0x0f > 2 {
            return Err("PROXY v2: unknown address family or protocol");
        }
    }
    let (Some(vc), Some(fp), Some(len)) = (version_command, family, v2_len(buf)) else {
        return Ok(Parsed::Incomplete);
    };
    if len > V2_MAX {
        return Err("PROXY v2: header longer than 4096 bytes");
    }
    // LOCAL (a health check from the balancer itself): the address block is ignored.
    let local = vc & 0x0f == 0;
    let needed = match fp {
        0x11 if !local => 12,
        0x21 if !local => 36,
        _ => 0,
    };
    if len - V2_FIXED < needed {
        return Err("PROXY v2: address block shorter than its family needs");
    }
    let Some(header) = buf.get(..len) else {
        return Ok(Parsed::Incomplete);
    };
    let source = match fp {
        _ if local => None,
        0x11 => array::<4>(header, V2_FIXED)
            .zip(array::<2>(header, V2_FIXED + 8))
            .map(|(ip, port)| SocketAddr::new(Ipv4Addr::from(ip).into(), u16::from_be_bytes(port))),
        0x21 => array::<16>(header, V2_FIXED)
            .zip(array::<2>(header, V2_FIXED + 32))
            .map(|(ip, port)| SocketAddr::new(Ipv6Addr::from(ip).into(), u16::from_be_bytes(port))),
        _ => None,
    };
    Ok(Parsed::Header { len, source })
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, &'static str> {
    let seen = buf.len().min(V1_PREFIX.len());
    if buf.get(..seen) != V1_PREFIX.get(..seen) {
        return Err(NOT_PROXY);
    }
    let window = buf.get(..V1_MAX).unwrap_or(buf);
    if let Some(nl) = window.iter().position(|&b| b == b'\n') {
        let Some(line) = window.get(..nl).and_then(|l| l.strip_suffix(b"\r")) else {
            return Err("PROXY v1: line not ended by CRLF");
        };
        let source = v1_line(line, true)?;
        return Ok(Parsed::Header {
            len: nl + 1,
            source,
        });
    }
    if buf.len() >= V1_MAX {
        return Err("PROXY v1: no CRLF within 107 bytes");
    }
    match buf.strip_suffix(b"\r") {
        // Only the LF is missing: everything before the CR must be a whole line.
        Some(line) => v1_line(line, true).map(|_| Parsed::Incomplete),
        None => v1_line(buf, false).map(|_| Parsed::Incomplete),
    }
}

/// Checks a v1 line without its CRLF and returns the source it names. When `complete` is false
/// the line is what has arrived so far: its last field may still grow, missing fields may
/// still come, and the result is `Ok` only if some ending makes it a valid line of at most
/// 107 bytes.
fn v1_line(line: &[u8], complete: bool) -> Result<Option<SocketAddr>, &'static str> {
    let Some(rest) = line.strip_prefix(V1_PREFIX) else {
        // Only a partial prefix of `PROXY ` gets here (parse_v1 checked it).
        return if complete { Err(NOT_PROXY) } else { Ok(None) };
    };
    if !complete && line.len() + 2 > V1_MAX {
        return Err("PROXY v1: the line cannot end within 107 bytes");
    }
    let tokens: Vec<&[u8]> = rest.split(|&b| b == b' ').collect();
    let Some((&proto, fields)) = tokens.split_first() else {
        return Err(NOT_PROXY);
    };
    if !complete && fields.is_empty() {
        let known = [&b"TCP4"[..], b"TCP6", b"UNKNOWN"];
        return if known.iter().any(|k| k.starts_with(proto)) {
            Ok(None)
        } else {
            Err("PROXY v1: unknown protocol")
        };
    }
    let v6 = match proto {
        // The rest of an UNKNOWN line is ignored, but it is still one line.
        b"UNKNOWN" if !rest.iter().any(|&b| b == b'\r' || b == b'\n') => return Ok(None),
        b"UNKNOWN" => return Err("PROXY v1: stray CR or LF"),
        b"TCP4" => false,
        b"TCP6" => true,
        _ => return Err("PROXY v1: unknown protocol"),
    };
    if fields.len() > 4 || (complete && fields.len() < 4) {
        return Err("PROXY v1: a TCP line has exactly four fields");
    }
    let min_addr = if v6 { MIN_V6 } else { MIN_V4 };
    let mut source = (None, None);
    // Bytes still needed at least: the CRLF, then whatever the fields need.
    let mut needed = 2;
    for (i, &field) in fields.iter().enumerate() {
        let growing = !complete && i + 1 == fields.len();
        let is_addr = i < 2;
        if growing {
            needed += if is_addr {
                addr_completion(field, v6).ok_or("PROXY v1: bad address")?
            } else {
                port_completion(field).ok_or("PROXY v1: bad port")?
            };
        } else if is_addr {
            let ip = v1_addr(field, v6)?;
            if i == 0 {
                source.0 = Some(ip);
            }
        } else {
            let port = port(field).ok_or("PROXY v1: bad port")?;
            if i == 2 {
                source.1 = Some(port);
            }
        }
    }
    for i in fields.len()..4 {
        needed += 1 + if i < 2 { min_addr } else { MIN_PORT };
    }
    if !complete && line.len() + needed > V1_MAX {
        return Err("PROXY v1: the line cannot end within 107 bytes");
    }
    Ok(source
        .0
        .zip(source.1)
        .map(|(ip, port)| SocketAddr::new(ip, port)))
}

/// A complete address field of the line's family.
fn v1_addr(field: &[u8], v6: bool) -> Result<IpAddr, &'static str> {
    let ip: IpAddr = std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or("PROXY v1: bad address")?;
    if ip.is_ipv6() == v6 {
        Ok(ip)
    } else {
        Err("PROXY v1: address of the wrong family for TCP4/TCP6")
    }
}

/// A complete port field: 1 to 5 decimal digits, at most 65535 (PROXY v1's, and a port in an
/// `X-Forwarded-For` entry).
pub(super) fn port(field: &[u8]) -> Option<u16> {
    if field.is_empty() || field.len() > 5 || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// The fewest bytes that make `partial` a port, if any do.
fn port_completion(partial: &[u8]) -> Option<usize> {
    if partial.is_empty() {
        Some(MIN_PORT)
    } else {
        port(partial).map(|_| 0)
    }
}

/// The fewest bytes (among the endings tried) that make `partial` an address of the family,
/// if any do. Rather than a second grammar, endings are appended and the standard parser
/// judges: finish the current group (`""`, `"0"`, for IPv6 also `":"`, `"::"`), then add
/// groups (`.0` for IPv4, `:0` for IPv6, or an embedded IPv4 tail). One of these completes
/// every prefix that can be completed.
fn addr_completion(partial: &[u8], v6: bool) -> Option<usize> {
    let partial = std::str::from_utf8(partial).ok()?;
    let v4_tails = ["", "0"]
        .into_iter()
        .flat_map(|first| (0..4).map(move |k| format!("{first}{}", ".0".repeat(k))));
    let fits = |ending: &String| {
        let text = format!("{partial}{ending}");
        if v6 {
            text.parse::<Ipv6Addr>().is_ok()
        } else {
            text.parse::<Ipv4Addr>().is_ok()
        }
    };
    if !v6 {
        return v4_tails.filter(fits).map(|e| e.len()).min();
    }
    let v6_endings = ["", "0", ":", "::"]
        .into_iter()
        .flat_map(|first| (0..8).map(move |k| format!("{first}{}", ":0".repeat(k))));
    v6_endings
        .chain(v4_tails)
        .filter(fits)
        .map(|e| e.len())
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn header(len: usize, source: Option<&str>) -> Result<Parsed, &'static str> {
        Ok(Parsed::Header {
            len,
            source: source.map(sa),
        })
    }

    /// A v2 header: version/command, family/protocol, the address block and TLV bytes.
    fn v2(vc: u8, fp: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend([vc, fp]);
        h.extend((body.len() as u16).to_be_bytes());
        h.extend(body);
        h
    }

    fn v2_tcp4() -> Vec<u8> {
        v2(
            0x21,
            0x11,
            &[192, 0, 2, 7, 10, 0, 0, 1, 0x1f, 0x90, 0x01, 0xbb],
        )
    }

    fn v2_tcp6() -> Vec<u8> {
        let mut body = Ipv6Addr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1])
            .octets()
            .to_vec();
        body.extend(Ipv6Addr::LOCALHOST.octets());
        body.extend([0x30, 0x39, 0x00, 0x50]);
        v2(0x21, 0x21, &body)
    }

    fn valid_headers() -> Vec<Vec<u8>> {
        let mut tlvs = v2_tcp4();
        // Two TLVs (ALPN "h2", authority "example.com") counted in the length.
        let extra = [
            &[0x01, 0, 2, b'h', b'2'][..],
            &[0x02, 0, 11],
            b"example.com",
        ]
        .concat();
        let len = 12 + extra.len() as u16;
        tlvs[14..16].copy_from_slice(&len.to_be_bytes());
        tlvs.extend(extra);
        vec![
            b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\n".to_vec(),
            b"PROXY TCP6 2001:db8::1 ::1 65535 0\r\n".to_vec(),
            b"PROXY UNKNOWN\r\n".to_vec(),
            b"PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n".to_vec(),
            longest_tcp6().into_bytes(),
            b"PROXY TCP6 ::ffff:192.0.2.7 ::ffff:10.0.0.1 1 2\r\n".to_vec(),
            v2_tcp4(),
            v2_tcp6(),
            tlvs,
            v2(0x20, 0x00, b""),
            v2(0x20, 0x11, b"ignored"),
            v2(0x21, 0x12, &[1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]),
            v2(0x21, 0x00, b""),
        ]
    }

    /// The longest TCP6 line the specification allows for: 104 bytes.
    fn longest_tcp6() -> String {
        let a = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        format!("PROXY TCP6 {a} {a} 65535 65535\r\n")
    }

    #[test]
    fn v1_lines_name_their_source() {
        let line = b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\nGET /";
        assert_eq!(parse(line), header(41, Some("192.0.2.7:56324")));
        let line = b"PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
        assert_eq!(parse(line), header(line.len(), Some("[2001:db8::1]:65535")));
        assert_eq!(longest_tcp6().len(), 104);
        let longest = parse(longest_tcp6().as_bytes());
        assert!(matches!(longest, Ok(Parsed::Header { len: 104, .. })));
    }

    #[test]
    fn v1_unknown_keeps_the_peer_whatever_follows_it() {
        assert_eq!(parse(b"PROXY UNKNOWN\r\n"), header(15, None));
        let line = b"PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n";
        assert_eq!(parse(line), header(line.len(), None));
        let stray = Err("PROXY v1: stray CR or LF");
        assert_eq!(parse(b"PROXY UNKNOWN \rX\r\n"), stray);
        assert_eq!(parse(b"PROXY UNKNOWN \rX"), stray);
        assert_eq!(
            parse(b"PROXY UNKNOWN\rX\r\n"),
            Err("PROXY v1: unknown protocol")
        );
        assert!(parse(b"PROXY UNKNOWNX\r\n").is_err());
    }

    #[test]
    fn v1_lines_are_at_most_107_bytes() {
        let fill = |n: usize| {
            let mut line = b"PROXY UNKNOWN ".to_vec();
            line.resize(n - 2, b'x');
            line.extend(b"\r\n");
            line
        };
        assert_eq!(parse(&fill(107)), header(107, None));
        assert_eq!(parse(&fill(108)), Err("PROXY v1: no CRLF within 107 bytes"));
        // Refused as soon as the CRLF can no longer fit, not when it arrives.
        assert!(parse(&fill(108)[..106]).is_err());
        assert_eq!(parse(&fill(108)[..105]), Ok(Parsed::Incomplete));
    }

    #[test]
    fn v1_refuses_bad_ports_and_addresses_of_the_wrong_family() {
        for line in [
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 1\r\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 1\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 000001 1\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8  1\r\n",
        ] {
            assert_eq!(parse(line), Err("PROXY v1: bad port"), "{line:?}");
        }
        let wrong = Err("PROXY v1: address of the wrong family for TCP4/TCP6");
        assert_eq!(parse(b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n"), wrong);
        assert_eq!(parse(b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n"), wrong);
        assert_eq!(parse(b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n"), wrong);
    }

    #[test]
    fn v1_refuses_malformed_lines() {
        for line in [
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n",
            b"PROXY\r\n",
            b"PROXY \r\n",
            b"GET / HTTP/1.1\r\n",
        ] {
            assert!(parse(line).is_err(), "{line:?} was accepted");
        }
    }

    #[test]
    fn v1_stops_at_the_first_byte_that_rules_a_header_out() {
        for partial in [
            &b"G"[..],
            b"PROXI",
            b"PROXY X",
            b"PROXY TCP4x",
            b"PROXY TCP4 1.2.3.4x",
            b"PROXY TCP4 1.2.3.456",
            b"PROXY TCP4 1.2.3.4.",
            b"PROXY TCP4 :",
            b"PROXY TCP6 1:2:3:4:5:6:7:8:",
            b"PROXY TCP6 12345",
            b"PROXY TCP6 ::1 ::2 1 2 ",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r",
        ] {
            assert!(parse(partial).is_err(), "{partial:?} is still Incomplete");
        }
        for partial in [
            &b""[..],
            b"P",
            b"PROXY",
            b"PROXY ",
            b"PROXY UNK",
            b"PROXY TCP4 1.2.3.",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 6553",
            b"PROXY TCP6 2001:db8:",
            b"PROXY TCP6 ::ffff:1.2.",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r",
        ] {
            assert_eq!(parse(partial), Ok(Parsed::Incomplete), "{partial:?}");
        }
    }

    #[test]
    fn v2_headers_name_their_source_and_skip_tlvs() {
        assert_eq!(parse(&v2_tcp4()), header(28, Some("192.0.2.7:8080")));
        assert_eq!(parse(&v2_tcp6()), header(52, Some("[2001:db8::1]:12345")));
        let tlvs = &valid_headers()[8];
        assert_eq!(parse(tlvs), header(tlvs.len(), Some("192.0.2.7:8080")));
        let mut with_request = v2_tcp4();
        with_request.extend(b"GET / HTTP/1.1\r\n");
        assert_eq!(parse(&with_request), header(28, Some("192.0.2.7:8080")));
    }

    #[test]
    fn v2_local_and_other_families_keep_the_peer() {
        assert_eq!(parse(&v2(0x20, 0x00, b"")), header(16, None));
        assert_eq!(parse(&v2(0x20, 0x11, b"ignored")), header(23, None));
        let udp = v2(0x21, 0x12, &[1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]);
        assert_eq!(parse(&udp), header(28, None));
        assert_eq!(parse(&v2(0x21, 0x31, &[0; 216])), header(232, None));
        assert_eq!(parse(&v2(0x21, 0x00, b"")), header(16, None));
    }

    #[test]
    fn v2_refuses_wrong_versions_commands_families_and_lengths() {
        let err = |vc, fp, body: &[u8]| parse(&v2(vc, fp, body)).unwrap_err();
        assert_eq!(err(0x11, 0x11, &[0; 12]), "PROXY v2: unsupported version");
        assert_eq!(err(0x31, 0x11, &[0; 12]), "PROXY v2: unsupported version");
        assert_eq!(err(0x22, 0x11, &[0; 12]), "PROXY v2: unknown command");
        let family = "PROXY v2: unknown address family or protocol";
        assert_eq!(err(0x21, 0x41, &[0; 12]), family);
        assert_eq!(err(0x21, 0x13, &[0; 12]), family);
        let short = "PROXY v2: address block shorter than its family needs";
        assert_eq!(err(0x21, 0x11, &[0; 11]), short);
        assert_eq!(err(0x21, 0x21, &[0; 35]), short);
        // The length is refused from the fixed part alone, before the body arrives.
        let mut long = v2(0x21, 0x11, &[]);
        long[14..16].copy_from_slice(&(4096u16 - 15).to_be_bytes());
        assert_eq!(parse(&long), Err("PROXY v2: header longer than 4096 bytes"));
        let mut longest = v2(0x21, 0x11, &[0; 4080]);
        assert_eq!(parse(&longest), header(4096, Some("0.0.0.0:0")));
        longest.truncate(4095);
        assert_eq!(parse(&longest), Ok(Parsed::Incomplete));
        let mut bad_signature = v2_tcp4();
        bad_signature[11] = b'X';
        assert_eq!(parse(&bad_signature), Err(NOT_PROXY));
        assert_eq!(parse(&bad_signature[..11]), Ok(Parsed::Incomplete));
    }

    #[test]
    fn every_prefix_of_a_valid_header_is_incomplete() {
        for h in valid_headers() {
            assert!(matches!(parse(&h), Ok(Parsed::Header { len, .. }) if len == h.len()));
            for end in 0..h.len() {
                assert_eq!(parse(&h[..end]), Ok(Parsed::Incomplete), "{:?}", &h[..end]);
            }
        }
    }

    /// Xorshift64: deterministic, no crate.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// Growing a buffer never turns a refusal into a header, and a header, once complete, is
    /// the same header whatever follows. Nothing panics.
    fn check_decisions_are_stable(bytes: &[u8]) {
        let mut decided = None;
        for end in 0..=bytes.len() {
            let now = parse(&bytes[..end]);
            if let Some(before) = decided {
                match before {
                    // The reason given may change (another check fails first); the refusal may not.
                    Err(_) => assert!(now.is_err(), "{:?}", &bytes[..end]),
                    Ok(_) => assert_eq!(now, before, "{:?}", &bytes[..end]),
                }
            } else if now != Ok(Parsed::Incomplete) {
                if let Ok(Parsed::Header { len, .. }) = now {
                    assert_eq!(len, end, "{:?}", &bytes[..end]);
                }
                decided = Some(now);
            }
        }
    }

    #[test]
    fn random_bytes_never_panic_and_decisions_are_stable() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let alphabet = b"0123456789abcdefABCDEF.:[] \r\n\0PROXYTCP46UNKNOWQIT\x21\x11";
        let valid = valid_headers();
        for round in 0..4000 {
            let mut bytes = if round % 2 == 0 {
                // Pure noise, sometimes behind a valid start so it gets past the first byte.
                let mut b = match rng.below(3) {
                    0 => Vec::new(),
                    1 => b"PROXY ".to_vec(),
                    _ => V2_SIGNATURE.to_vec(),
                };
                for _ in 0..rng.below(200) {
                    b.push(rng.next_u64() as u8);
                }
                b
            } else {
                valid[rng.below(valid.len())].clone()
            };
            // A few mutations: a byte replaced, inserted or removed.
            for _ in 0..rng.below(4) {
                if bytes.is_empty() {
                    break;
                }
                let at = rng.below(bytes.len());
                let byte = match rng.below(2) {
                    0 => alphabet[rng.below(alphabet.len())],
                    _ => rng.next_u64() as u8,
                };
                match rng.below(3) {
                    0 => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ => {
                        bytes.remove(at);
                    }
                }
            }
            check_decisions_are_stable(&bytes);
        }
    }

    #[test]
    fn address_completion_finds_the_shortest_ending() {
        assert_eq!(addr_completion(b"", false), Some(7));
        assert_eq!(addr_completion(b"1.2.", false), Some(3));
        assert_eq!(addr_completion(b"1.2.3.4", false), Some(0));
        assert_eq!(addr_completion(b"256", false), None);
        assert_eq!(addr_completion(b"", true), Some(2));
        assert_eq!(addr_completion(b"2001:", true), Some(1));
        assert_eq!(addr_completion(b"::ffff:1.2.", true), Some(3));
        assert_eq!(addr_completion(b"1:2:3:4:5:6:7:8", true), Some(0));
        assert_eq!(addr_completion(b"1:2:3:4:5:6:7:8:", true), None);
        assert_eq!(addr_completion(b"fe80::1%", true), None);
    }

    #[tokio::test]
    async fn reads_a_header_split_over_several_writes() {
        let (mut client, mut server) = tokio::io::duplex(256);
        let writer = tokio::spawn(async move {
            for chunk in [
                &b"PRO"[..],
                b"XY TCP4 192.0.2",
                b".7 10.0.0.1 5",
                b"6324 443\r",
                b"\n",
            ] {
                client.write_all(chunk).await.unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            client
        });
        let got = read_header(&mut server, Duration::from_secs(10)).await;
        assert_eq!(got, Ok((Some(sa("192.0.2.7:56324")), Vec::new())));
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn reads_a_v2_header_byte_by_byte() {
        let header = valid_headers()[8].clone();
        let (mut client, mut server) = tokio::io::duplex(256);
        let writer = tokio::spawn(async move {
            for byte in header {
                client.write_all(&[byte]).await.unwrap();
                tokio::task::yield_now().await;
            }
            client
        });
        let got = read_header(&mut server, Duration::from_secs(10)).await;
        assert_eq!(got, Ok((Some(sa("192.0.2.7:8080")), Vec::new())));
        drop(writer.await.unwrap());
    }

    /// What `read_header` hands back plus what is left in the stream.
    async fn after_header(sent: &[u8]) -> (Option<SocketAddr>, Vec<u8>) {
        let (mut client, mut server) = tokio::io::duplex(8192);
        client.write_all(sent).await.unwrap();
        drop(client);
        let (source, mut rest) = read_header(&mut server, Duration::from_secs(10))
            .await
            .unwrap();
        server.read_to_end(&mut rest).await.unwrap();
        (source, rest)
    }

    #[tokio::test]
    async fn bytes_after_the_header_come_back_in_order() {
        let request = b"GET /v1/models HTTP/1.1\r\nHost: a\r\n\r\n";
        let v1 = [&b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\n"[..], request].concat();
        let (source, rest) = after_header(&v1).await;
        assert_eq!(source, Some(sa("192.0.2.7:56324")));
        assert_eq!(rest, request);
        let v2 = [&v2_tcp6()[..], request].concat();
        let (source, rest) = after_header(&v2).await;
        assert_eq!(source, Some(sa("[2001:db8::1]:12345")));
        assert_eq!(rest, request);
        let (source, rest) = after_header(b"PROXY UNKNOWN\r\nX").await;
        assert_eq!((source, rest), (None, b"X".to_vec()));
    }

    #[tokio::test]
    async fn a_v2_header_is_read_without_reading_past_it() {
        let (mut client, mut server) = tokio::io::duplex(256);
        client
            .write_all(&[&v2_tcp4()[..], b"after"].concat())
            .await
            .unwrap();
        let got = read_header(&mut server, Duration::from_secs(10)).await;
        assert_eq!(got, Ok((Some(sa("192.0.2.7:8080")), Vec::new())));
        let mut after = [0; 5];
        server.read_exact(&mut after).await.unwrap();
        assert_eq!(&after, b"after");
    }

    #[tokio::test]
    async fn a_slow_sender_fails_at_the_deadline() {
        let (mut client, mut server) = tokio::io::duplex(256);
        client.write_all(b"PROXY TCP4 192.0.2.7 ").await.unwrap();
        let got = read_header(&mut server, Duration::from_millis(50)).await;
        assert!(got.unwrap_err().contains("within"));
        drop(client);
    }

    #[tokio::test]
    async fn a_peer_closing_mid_header_fails() {
        let (mut client, mut server) = tokio::io::duplex(256);
        client.write_all(b"PROXY TCP4 192.0.2.7 ").await.unwrap();
        drop(client);
        let got = read_header(&mut server, Duration::from_secs(10)).await;
        assert!(got.unwrap_err().contains("closed"));
        let (client, mut server) = tokio::io::duplex(256);
        drop(client);
        let got = read_header(&mut server, Duration::from_secs(10)).await;
        assert!(got.unwrap_err().contains("closed"));
    }

    #[tokio::test]
    async fn garbage_fails_without_waiting_for_more() {
        let (mut client, mut server) = tokio::io::duplex(256);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let got = read_header(&mut server, Duration::from_secs(10)).await;
        assert_eq!(got, Err(NOT_PROXY.to_string()));
        let (mut client, mut server) = tokio::io::duplex(256);
        client.write_all(b"PROXY TCP4 1.2.3.4x").await.unwrap();
        let got = read_header(&mut server, Duration::from_secs(10)).await;
        assert_eq!(got, Err("PROXY v1: bad address".to_string()));
        drop(client);
    }
}
