//! Address blocks in the configuration (`trusted_proxies`, `deny_ips`, `allowed_ips`): written as
//! `10.0.0.0/8`, `2001:db8::/32` or a bare address (one host), held as a [`Cidr`].
//!
//! Families are the ones a person sees: an IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, what a
//! dual-stack socket reports for an IPv4 client) is the IPv4 address, whether it is the client
//! being checked or the block being written (`::ffff:10.0.0.0/104` is `10.0.0.0/8`). An IPv4
//! address is therefore never inside an IPv6 block: `::/0` is every IPv6 client, `0.0.0.0/0`
//! every IPv4 one. Parsing never panics; a bad entry is a [`Problem`] at its YAML path.

use super::Problem;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Bits in an IPv4 address.
const V4_BITS: u8 = 32;
/// Bits in an IPv6 address.
const V6_BITS: u8 = 128;
/// The prefix of the IPv4-mapped block, `::ffff:0:0/96`.
const MAPPED_PREFIX: u8 = 96;

/// One address block: the addresses whose first `prefix` bits equal `addr`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network address, host bits cleared; IPv4 when written IPv4-mapped (see the module doc).
    addr: IpAddr,
    /// Leading bits that must match: at most 32 for IPv4, 128 for IPv6.
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a `/32` or `/128` block).
    /// Surrounding whitespace is ignored. Host bits set below the prefix (`10.1.2.3/8`) are
    /// accepted and cleared, so the block is the one the prefix names (`10.0.0.0/8`): the
    /// common way to write "the network this host is on". Refused, with a message naming the
    /// text: an empty string, a prefix longer than the family allows, anything that is not an
    /// address (zone ids such as `fe80::1%eth0` included).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let text = s.trim();
        if text.is_empty() {
            return Err("empty; expected an address or block such as 10.0.0.0/8".into());
        }
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| {
            format!("`{text}` is not an IP address or block such as 10.0.0.0/8 or 2001:db8::/32")
        })?;
        let max = match addr {
            IpAddr::V4(_) => V4_BITS,
            IpAddr::V6(_) => V6_BITS,
        };
        let prefix = match prefix_text {
            None => max,
            Some(p) => parse_prefix(p).filter(|&bits| bits <= max).ok_or_else(|| {
                format!("`{text}`: the prefix must be a number of bits from 0 to {max}")
            })?,
        };
        Ok(Cidr::new(addr, prefix))
    }

    /// The block of `addr`'s first `prefix` bits (clamped to the family's width), with host
    /// bits cleared and an IPv4-mapped block turned into IPv4.
    fn new(addr: IpAddr, prefix: u8) -> Cidr {
        match addr {
            IpAddr::V4(a) => {
                let prefix = prefix.min(V4_BITS);
                let bits = u32::from(a) & mask_v4(prefix);
                Cidr {
                    addr: IpAddr::V4(Ipv4Addr::from(bits)),
                    prefix,
                }
            }
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) if prefix >= MAPPED_PREFIX => {
                    Cidr::new(IpAddr::V4(v4), prefix.saturating_sub(MAPPED_PREFIX))
                }
                _ => {
                    let prefix = prefix.min(V6_BITS);
                    let bits = u128::from(a) & mask_v6(prefix);
                    Cidr {
                        addr: IpAddr::V6(Ipv6Addr::from(bits)),
                        prefix,
                    }
                }
            },
        }
    }

    /// Whether `ip` is in the block. IPv4-mapped IPv6 addresses count as IPv4; an address of
    /// the other family is never inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask_v4(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask_v6(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }

    /// The number of leading bits that must match.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl fmt::Display for Cidr {
    /// Always `addr/prefix`, in the normalised form: `10.0.0.0/8`, `10.0.0.1/32`, `2001:db8::/32`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A prefix length: decimal digits only (no sign, no spaces), at most 3 of them.
fn parse_prefix(p: &str) -> Option<u8> {
    if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

/// The first `prefix` bits set (`checked_shl` is `None` for a shift of 32: the empty mask).
fn mask_v4(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(u32::from(V4_BITS.saturating_sub(prefix)))
        .unwrap_or(0)
}

/// The first `prefix` bits set.
fn mask_v6(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(u32::from(V6_BITS.saturating_sub(prefix)))
        .unwrap_or(0)
}

/// A list of blocks; an address is in the set when it is in any of them. The empty set
/// contains nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidrSet(Vec<Cidr>);

impl CidrSet {
    /// Whether `ip` is in any block (IPv4-mapped addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|c| c.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The blocks, in the order written.
    pub fn iter(&self) -> impl Iterator<Item = &Cidr> {
        self.0.iter()
    }
}

impl FromIterator<Cidr> for CidrSet {
    fn from_iter<I: IntoIterator<Item = Cidr>>(iter: I) -> Self {
        CidrSet(iter.into_iter().collect())
    }
}

/// Parses a YAML list of blocks at `path`. Each bad entry adds a problem at `{path}[{i}]` and is
/// left out; the good ones are returned either way (the caller refuses the whole configuration
/// when `problems` is not empty).
pub fn parse_list(items: &[String], path: &str, problems: &mut Vec<Problem>) -> CidrSet {
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            Cidr::parse(item)
                .map_err(|e| problems.push(Problem::new(format!("{path}[{i}]"), e)))
                .ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cidr(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    #[test]
    fn parses_blocks_and_bare_addresses_of_both_families() {
        assert_eq!(cidr("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(cidr("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(cidr("192.0.2.7").to_string(), "192.0.2.7/32");
        assert_eq!(cidr("2001:db8::1").to_string(), "2001:db8::1/128");
        assert_eq!(cidr("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(cidr("::/0").to_string(), "::/0");
        assert_eq!(cidr(" 10.0.0.0/8 ").to_string(), "10.0.0.0/8");
        assert_eq!(cidr("10.0.0.0/008").prefix(), 8);
    }

    #[test]
    fn host_bits_below_the_prefix_are_cleared() {
        assert_eq!(cidr("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(cidr("192.168.1.77/26").to_string(), "192.168.1.64/26");
        assert_eq!(cidr("2001:db8:abcd::1/32").to_string(), "2001:db8::/32");
        assert_eq!(cidr("255.255.255.255/0").to_string(), "0.0.0.0/0");
        assert_eq!(cidr("10.1.2.3/8"), cidr("10.0.0.0/8"));
    }

    #[test]
    fn refuses_empty_garbage_and_overlong_prefixes_naming_the_text() {
        let err = |s: &str| Cidr::parse(s).unwrap_err();
        assert!(err("").contains("empty"));
        assert!(err("   ").contains("empty"));
        assert!(err("10.0.0.0/33").contains("`10.0.0.0/33`"));
        assert!(err("10.0.0.0/33").contains("0 to 32"));
        assert!(err("2001:db8::/129").contains("0 to 128"));
        assert!(err("example.com").contains("`example.com`"));
        for bad in [
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "10.0.0.0/8/8",
            "10.0.0.0/1000",
            "10.0.0.0/256",
            "10.0.0/8",
            "10.0.0.256",
            "/8",
            "fe80::1%eth0",
            "[2001:db8::1]",
            "1.2.3.4:80",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn contains_addresses_inside_the_block_only() {
        let net = cidr("10.0.0.0/8");
        assert!(net.contains(ip("10.0.0.0")));
        assert!(net.contains(ip("10.255.255.255")));
        assert!(!net.contains(ip("11.0.0.0")));
        assert!(!net.contains(ip("9.255.255.255")));
        let net = cidr("2001:db8::/32");
        assert!(net.contains(ip("2001:db8:ffff::1")));
        assert!(!net.contains(ip("2001:db9::1")));
        let host = cidr("192.0.2.7");
        assert!(host.contains(ip("192.0.2.7")));
        assert!(!host.contains(ip("192.0.2.8")));
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(cidr("::/0").contains(ip("2001:db8::1")));
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4_in_both_directions() {
        assert!(cidr("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
        assert!(!cidr("10.0.0.0/8").contains(ip("::ffff:11.1.2.3")));
        let mapped = cidr("::ffff:10.0.0.0/104");
        assert_eq!(mapped.to_string(), "10.0.0.0/8");
        assert!(mapped.contains(ip("10.1.2.3")));
        assert!(mapped.contains(ip("::ffff:10.1.2.3")));
        assert_eq!(cidr("::ffff:192.0.2.7").to_string(), "192.0.2.7/32");
        assert_eq!(cidr("::ffff:0:0/96").to_string(), "0.0.0.0/0");
    }

    #[test]
    fn a_family_never_matches_the_other() {
        assert!(!cidr("::/0").contains(ip("10.1.2.3")));
        assert!(!cidr("::/0").contains(ip("::ffff:10.1.2.3")));
        assert!(!cidr("0.0.0.0/0").contains(ip("2001:db8::1")));
        // `::a01:203` is an IPv4-compatible address, not a mapped one: it stays IPv6.
        assert!(!cidr("10.0.0.0/8").contains(ip("::10.1.2.3")));
    }

    #[test]
    fn a_set_contains_what_any_block_contains() {
        let set: CidrSet = [cidr("10.0.0.0/8"), cidr("2001:db8::/32")]
            .into_iter()
            .collect();
        assert!(set.contains(ip("10.9.9.9")));
        assert!(set.contains(ip("::ffff:10.9.9.9")));
        assert!(set.contains(ip("2001:db8::5")));
        assert!(!set.contains(ip("192.0.2.1")));
        assert!(!set.is_empty());
        assert_eq!(set.iter().count(), 2);
        let empty = CidrSet::default();
        assert!(empty.is_empty());
        assert!(!empty.contains(ip("10.0.0.1")));
    }

    #[test]
    fn parse_list_reports_each_bad_entry_at_its_index_and_keeps_the_good() {
        let items: Vec<String> = ["10.0.0.0/8", "nonsense", "2001:db8::/32", "10.0.0.0/40"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut problems = Vec::new();
        let set = parse_list(&items, "server.trusted_proxies", &mut problems);
        assert_eq!(set.iter().count(), 2);
        assert!(set.contains(ip("10.1.1.1")));
        assert!(set.contains(ip("2001:db8::1")));
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["server.trusted_proxies[1]", "server.trusted_proxies[3]"]
        );
        assert!(problems[0].message.contains("`nonsense`"));
    }

    #[test]
    fn parse_list_of_nothing_is_an_empty_set_without_problems() {
        let mut problems = Vec::new();
        assert!(parse_list(&[], "deny_ips", &mut problems).is_empty());
        assert!(problems.is_empty());
    }

    #[test]
    fn masks_cover_the_edges() {
        assert_eq!(mask_v4(0), 0);
        assert_eq!(mask_v4(32), u32::MAX);
        assert_eq!(mask_v4(1), 0x8000_0000);
        assert_eq!(mask_v6(0), 0);
        assert_eq!(mask_v6(128), u128::MAX);
        assert_eq!(mask_v6(127), u128::MAX - 1);
    }
}
