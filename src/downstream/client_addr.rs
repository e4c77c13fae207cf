//! Who the client is, behind load balancers: the connection's peer, or, when the peer is a
//! trusted proxy (`server.trusted_proxies`), the address its `X-Forwarded-For` chain names.
//!
//! Input: the peer address (from the socket or a PROXY header) and the request's
//! `X-Forwarded-For` lines. Decision: walk the chain from the right, past trusted hops, to the
//! first one that is not trusted. Anything left of that hop was written by the client and may be
//! forged, so it is never read. Unparsable entries stop the walk; the answer is always an address
//! someone we trust vouched for, or the peer itself. Addresses are canonical (an IPv4-mapped
//! IPv6 address is IPv4). Also the value to forward upstream ([`forwarded_for`]). Pure: no I/O,
//! no metrics.

use crate::config::cidr::CidrSet;
use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Entries of the chain looked at, rightmost first; more is not a real path but an attempt to
/// make the walk expensive.
const MAX_HOPS: usize = 64;
/// Longest entry parsed: `[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535` is 53 bytes.
const MAX_ENTRY: usize = 64;

/// The client: `peer` itself unless `peer` is a trusted proxy, then the rightmost address in the
/// X-Forwarded-For chain (all header lines, comma-separated, in order) that is not itself
/// trusted; when every hop is trusted, the leftmost; an unparsable entry stops the walk and the
/// hop to its right is the client (never a spoofable value). At most 64 entries are looked at.
/// Empty entries (`, 1.2.3.4`, an empty header) are skipped but counted.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&[u8]], trusted: &CidrSet) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.contains(client) {
        return client;
    }
    for entry in entries_from_right(forwarded_for).take(MAX_HOPS) {
        if entry.is_empty() {
            continue;
        }
        let Some(hop) = parse_entry(entry) else {
            break;
        };
        client = hop;
        if !trusted.contains(hop) {
            break;
        }
    }
    client
}

/// The `X-Forwarded-For` value to send upstream: a trusted peer's chain (entries trimmed, empty
/// ones dropped, otherwise as received) followed by the peer; for an untrusted peer, the peer
/// alone, since whatever it sent may be forged. An entry with bytes that are not printable
/// ASCII becomes `unknown`, so the value is always a valid header value.
pub fn forwarded_for(existing: &[&[u8]], peer: IpAddr, trusted_peer: bool) -> String {
    let chain = existing
        .iter()
        .flat_map(|line| line.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|entry| trusted_peer && !entry.is_empty())
        .map(printable);
    let peer = peer.to_canonical().to_string();
    chain
        .chain(std::iter::once(Cow::Owned(peer)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The chain's entries, trimmed, rightmost first: the last line's last entry, and so on.
fn entries_from_right<'a>(lines: &'a [&'a [u8]]) -> impl Iterator<Item = &'a [u8]> + 'a {
    lines
        .iter()
        .rev()
        .flat_map(|line| line.rsplit(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
}

/// One hop: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:443`,
/// canonical. Anything else (a name, `unknown`, a zone id, a bad port) is `None`.
fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    if entry.len() > MAX_ENTRY {
        return None;
    }
    let text = std::str::from_utf8(entry).ok()?;
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        let ip: Ipv6Addr = inside.parse().ok().filter(|_| port_ok)?;
        return Some(IpAddr::V6(ip).to_canonical());
    }
    // Only IPv4 is written with a bare port: in IPv6 the colon is ambiguous.
    let (host, port) = text.split_once(':')?;
    let ip: Ipv4Addr = host.parse().ok().filter(|_| is_port(port))?;
    Some(IpAddr::V4(ip))
}

/// 1 to 5 decimal digits, at most 65535.
fn is_port(s: &str) -> bool {
    super::proxy_protocol::port(s.as_bytes()).is_some()
}

/// The entry as text if it is printable ASCII (spaces allowed inside), else `unknown`.
fn printable(entry: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(entry) {
        Ok(s) if entry.iter().all(|&b| b == b' ' || b.is_ascii_graphic()) => Cow::Borrowed(s),
        _ => Cow::Borrowed("unknown"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cidr::Cidr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn set(blocks: &[&str]) -> CidrSet {
        blocks.iter().map(|b| Cidr::parse(b).unwrap()).collect()
    }

    /// The balancers: 10.0.0.0/8 and 2001:db8:ffff::/48.
    fn trusted() -> CidrSet {
        set(&["10.0.0.0/8", "2001:db8:ffff::/48"])
    }

    fn client(peer: &str, lines: &[&str]) -> IpAddr {
        let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        client_ip(ip(peer), &lines, &trusted())
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(client("198.51.100.7", &["10.0.0.9"]), ip("198.51.100.7"));
        assert_eq!(
            client("198.51.100.7", &["1.1.1.1, 10.0.0.2"]),
            ip("198.51.100.7")
        );
        assert_eq!(client("198.51.100.7", &[]), ip("198.51.100.7"));
    }

    #[test]
    fn behind_trusted_proxies_the_client_is_the_first_untrusted_hop() {
        assert_eq!(
            client("10.0.0.1", &["203.0.113.5, 10.0.0.2"]),
            ip("203.0.113.5")
        );
        assert_eq!(client("10.0.0.1", &["203.0.113.5"]), ip("203.0.113.5"));
    }

    #[test]
    fn a_forged_leftmost_entry_is_never_read() {
        // 203.0.113.5 connected to our balancer and claimed to be forwarding for 198.51.100.1.
        assert_eq!(
            client("10.0.0.1", &["198.51.100.1, 203.0.113.5, 10.0.0.2"]),
            ip("203.0.113.5")
        );
        // An untrusted hop in the middle of trusted ones is still where the walk stops.
        assert_eq!(
            client(
                "10.0.0.1",
                &["198.51.100.1, 203.0.113.5, 10.9.9.9, 10.0.0.2"]
            ),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn when_every_hop_is_trusted_the_leftmost_is_the_client() {
        assert_eq!(client("10.0.0.1", &["10.0.0.3, 10.0.0.2"]), ip("10.0.0.3"));
        assert_eq!(client("10.0.0.1", &[]), ip("10.0.0.1"));
    }

    #[test]
    fn an_unparsable_entry_stops_the_walk_at_the_hop_right_of_it() {
        assert_eq!(
            client("10.0.0.1", &["198.51.100.1, garbage, 10.0.0.2"]),
            ip("10.0.0.2")
        );
        assert_eq!(client("10.0.0.1", &["unknown"]), ip("10.0.0.1"));
        assert_eq!(
            client("10.0.0.1", &["203.0.113.5, 1.2.3.4:99999"]),
            ip("10.0.0.1")
        );
        let binary: &[&[u8]] = &[b"203.0.113.5, \xff\xfe"];
        assert_eq!(
            client_ip(ip("10.0.0.1"), binary, &trusted()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn several_header_lines_are_one_chain_in_order() {
        assert_eq!(
            client("10.0.0.1", &["198.51.100.1, 203.0.113.5", "10.0.0.2"]),
            ip("203.0.113.5")
        );
        assert_eq!(
            client("10.0.0.1", &["203.0.113.5", "10.0.0.3, 10.0.0.2"]),
            ip("203.0.113.5")
        );
        assert_eq!(
            client("10.0.0.1", &["10.0.0.3", "203.0.113.5"]),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn empty_headers_and_entries_are_skipped() {
        assert_eq!(client("10.0.0.1", &[""]), ip("10.0.0.1"));
        assert_eq!(client("10.0.0.1", &["  ,  ", ""]), ip("10.0.0.1"));
        assert_eq!(client("10.0.0.1", &[", 203.0.113.5"]), ip("203.0.113.5"));
        assert_eq!(client("10.0.0.1", &["203.0.113.5,,"]), ip("203.0.113.5"));
    }

    #[test]
    fn at_most_64_entries_are_looked_at() {
        let chain = |trusted_hops: usize| {
            let mut hops = vec!["203.0.113.5".to_string()];
            hops.extend((0..trusted_hops).map(|i| format!("10.0.{}.{}", i / 256, i % 256)));
            hops.join(", ")
        };
        assert_eq!(client("10.0.0.1", &[&chain(63)]), ip("203.0.113.5"));
        // The 64th entry from the right is trusted and the last looked at: it is the client.
        assert_eq!(client("10.0.0.1", &[&chain(64)]), ip("10.0.0.0"));
        // 4936 = 5000 - 64: the trusted hop 10.0.19.72.
        assert_eq!(client("10.0.0.1", &[&chain(5000)]), ip("10.0.19.72"));
    }

    #[test]
    fn entries_may_carry_ports_brackets_and_spaces() {
        assert_eq!(
            client("10.0.0.1", &[" 203.0.113.5:5678 "]),
            ip("203.0.113.5")
        );
        assert_eq!(
            client("10.0.0.1", &["[2001:db8::1]:443"]),
            ip("2001:db8::1")
        );
        assert_eq!(client("10.0.0.1", &["[2001:db8::1]"]), ip("2001:db8::1"));
        assert_eq!(client("10.0.0.1", &["2001:db8::1"]), ip("2001:db8::1"));
        assert_eq!(
            client("10.0.0.1", &["\t203.0.113.5\t,\t10.0.0.2"]),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn addresses_come_back_canonical() {
        assert_eq!(
            client("10.0.0.1", &["::ffff:203.0.113.5"]),
            ip("203.0.113.5")
        );
        assert_eq!(
            client("10.0.0.1", &["[::ffff:203.0.113.5]:80"]),
            ip("203.0.113.5")
        );
        // A dual-stack socket reports the IPv4 balancer as IPv4-mapped; it is still trusted.
        assert_eq!(
            client("::ffff:10.0.0.1", &["203.0.113.5"]),
            ip("203.0.113.5")
        );
        assert_eq!(client("::ffff:198.51.100.7", &[]), ip("198.51.100.7"));
    }

    #[test]
    fn ipv6_proxies_are_trusted_by_their_block() {
        assert_eq!(
            client("2001:db8:ffff::1", &["2001:db8:1::5, 2001:db8:ffff::2"]),
            ip("2001:db8:1::5")
        );
        assert_eq!(
            client("2001:db8:1::9", &["203.0.113.5"]),
            ip("2001:db8:1::9")
        );
    }

    #[test]
    fn entry_forms_that_are_not_addresses_are_refused() {
        for bad in [
            &b"unknown"[..],
            b"example.com",
            b"1.2.3.4:",
            b"1.2.3.4:65536",
            b"1.2.3.4:+80",
            b"1.2.3.4:80:80",
            b"[2001:db8::1",
            b"2001:db8::1]:443",
            b"[2001:db8::1]443",
            b"[2001:db8::1]:",
            b"[1.2.3.4]",
            b"fe80::1%eth0",
            b"\"1.2.3.4\"",
            b"1.2.3.4 5.6.7.8",
            b"\xff",
        ] {
            assert_eq!(parse_entry(bad), None, "{bad:?}");
        }
        let long = format!("{}1", "0:".repeat(40));
        assert_eq!(parse_entry(long.as_bytes()), None);
    }

    fn forwarded(existing: &[&str], peer: &str, trusted_peer: bool) -> String {
        let lines: Vec<&[u8]> = existing.iter().map(|l| l.as_bytes()).collect();
        forwarded_for(&lines, ip(peer), trusted_peer)
    }

    #[test]
    fn a_trusted_peer_s_chain_is_kept_and_the_peer_appended() {
        assert_eq!(
            forwarded(&["203.0.113.5, 10.0.0.2"], "10.0.0.1", true),
            "203.0.113.5, 10.0.0.2, 10.0.0.1"
        );
        assert_eq!(
            forwarded(&["203.0.113.5", " , 10.0.0.2 ", ""], "10.0.0.1", true),
            "203.0.113.5, 10.0.0.2, 10.0.0.1"
        );
        assert_eq!(forwarded(&[], "10.0.0.1", true), "10.0.0.1");
        assert_eq!(
            forwarded(&["[2001:db8::1]:443"], "10.0.0.1", true),
            "[2001:db8::1]:443, 10.0.0.1"
        );
    }

    #[test]
    fn an_untrusted_peer_s_chain_is_replaced_by_the_peer() {
        assert_eq!(
            forwarded(&["6.6.6.6, 10.0.0.2"], "198.51.100.7", false),
            "198.51.100.7"
        );
        assert_eq!(forwarded(&[], "198.51.100.7", false), "198.51.100.7");
    }

    #[test]
    fn the_forwarded_value_is_canonical_and_printable() {
        assert_eq!(forwarded(&[], "::ffff:198.51.100.7", false), "198.51.100.7");
        assert_eq!(forwarded(&[], "2001:db8::1", false), "2001:db8::1");
        let odd: &[&[u8]] = &[b"203.0.113.5, caf\xc3\xa9, a\x01b"];
        assert_eq!(
            forwarded_for(odd, ip("10.0.0.1"), true),
            "203.0.113.5, unknown, unknown, 10.0.0.1"
        );
    }

    #[test]
    fn what_we_forward_names_the_same_client_to_the_next_hop() {
        // The backend trusts us (10.0.0.1) and our balancers; it reads the chain we send.
        let sent = forwarded(&["198.51.100.1, 203.0.113.5"], "10.0.0.2", true);
        assert_eq!(client("10.0.0.1", &[&sent]), ip("203.0.113.5"));
        let sent = forwarded(&["198.51.100.1"], "203.0.113.5", false);
        assert_eq!(client("10.0.0.1", &[&sent]), ip("203.0.113.5"));
    }
}
