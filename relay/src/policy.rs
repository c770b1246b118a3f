//! What the relay may connect to: target parsing, allowlist patterns and the
//! private-address rule.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A host named by a client or by the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// A DNS name, lowercased and without a trailing dot.
    Name(String),
    /// An IP literal.
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

/// A `host:port` the relay is asked to connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Host name or address.
    pub host: Host,
    /// TCP port, never 0.
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl Target {
    /// Parses `HOST:PORT`, `IPV4:PORT` or `[IPV6]:PORT`.
    pub fn parse(s: &str) -> Result<Target, String> {
        let (host, port) = split_host_port(s)?;
        let host = match host {
            RawHost::Bracketed(ip) => Host::Ip(IpAddr::V6(ip)),
            RawHost::Plain(h) => parse_plain_host(h)?,
        };
        let port = parse_port(port)?;
        Ok(Target { host, port })
    }

    /// Builds a target from a Wisp CONNECT's host and port. Wisp sends IPv6
    /// addresses bare or in brackets, so both are accepted.
    pub fn from_host_and_port(host: &str, port: u16) -> Result<Target, String> {
        if port == 0 {
            return Err("bad port: 0".into());
        }
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let host = match bare.parse::<Ipv6Addr>() {
            Ok(ip) => Host::Ip(IpAddr::V6(ip)),
            Err(_) => parse_plain_host(host)?,
        };
        Ok(Target { host, port })
    }
}

/// One `--allow` pattern: `host:port` where host may be `*` or `*.suffix`
/// and port may be `*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    host: HostPattern,
    /// `None` means any port.
    port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(Host),
    /// Stored with its leading dot, e.g. `.example.com`.
    Suffix(String),
}

impl Pattern {
    /// Parses a pattern such as `mail.example.com:993`, `*.example.com:443`,
    /// `127.0.0.1:*` or `[::1]:8443`.
    pub fn parse(s: &str) -> Result<Pattern, String> {
        let (host, port) = split_host_port(s)?;
        let host = match host {
            RawHost::Bracketed(ip) => HostPattern::Exact(Host::Ip(IpAddr::V6(ip))),
            RawHost::Plain("*") => HostPattern::Any,
            RawHost::Plain(h) => match h.strip_prefix("*.") {
                Some(rest) => match parse_plain_host(rest)? {
                    Host::Name(name) => HostPattern::Suffix(format!(".{name}")),
                    Host::Ip(_) => return Err(format!("wildcard on an IP address: {s}")),
                },
                None => HostPattern::Exact(parse_plain_host(h)?),
            },
        };
        let port = match port {
            "*" => None,
            p => Some(parse_port(p)?),
        };
        Ok(Pattern { host, port })
    }

    /// Whether `target` is covered by this pattern. IP literals only match IP
    /// patterns (or `*`), so `*.example.com` never admits an address.
    pub fn matches(&self, target: &Target) -> bool {
        if self.port.is_some_and(|p| p != target.port) {
            return false;
        }
        match (&self.host, &target.host) {
            (HostPattern::Any, _) => true,
            (HostPattern::Exact(h), t) => h == t,
            (HostPattern::Suffix(suffix), Host::Name(name)) => {
                name.len() > suffix.len() && name.ends_with(suffix.as_str())
            }
            (HostPattern::Suffix(_), Host::Ip(_)) => false,
        }
    }
}

enum RawHost<'a> {
    Bracketed(Ipv6Addr),
    Plain(&'a str),
}

fn split_host_port(s: &str) -> Result<(RawHost<'_>, &str), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("missing ']' in {s}"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| format!("missing :PORT in {s}"))?;
        let ip = inside
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("bad IPv6 address in {s}"))?;
        return Ok((RawHost::Bracketed(ip), port));
    }
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("missing :PORT in {s}"))?;
    if host.contains(':') {
        return Err(format!("IPv6 addresses need brackets: {s}"));
    }
    Ok((RawHost::Plain(host), port))
}

fn parse_port(p: &str) -> Result<u16, String> {
    // `u16::from_str` accepts a leading '+', which has no place in a port.
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad port: {p}"));
    }
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("bad port: {p}")),
        Ok(port) => Ok(port),
    }
}

fn parse_plain_host(h: &str) -> Result<Host, String> {
    if let Ok(ip) = h.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    let name = h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(Host::Name(name))
    } else {
        Err(format!("bad host name: {h}"))
    }
}

/// Whether `ip` is in a private, loopback, link-local, shared, unspecified,
/// multicast or reserved range: addresses an open relay must not reach by
/// default because they lead into the operator's own network.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => is_private_v6(v6),
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network"
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b & 0xfe) == 18) // 198.18/15, benchmarking
        || a == 10
        || a == 127
        || (a == 100 && (b & 0xc0) == 64) // 100.64/10, carrier-grade NAT
        || (a == 169 && b == 254)
        || (a == 172 && (b & 0xf0) == 16)
        || (a == 192 && b == 168)
        || a >= 224 // multicast, reserved and broadcast
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_private_v4(v4);
    }
    let s = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    // ::/96 holds ::, ::1 and the deprecated IPv4-compatible addresses.
    s[..6] == [0; 6]
        || s[..6] == [0, 0, 0, 0, 0xffff, 0] // ::ffff:0:0/96, SIIT IPv4-translated
        || s[..4] == [0x100, 0, 0, 0] // 100::/64, discard-only
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // old site-local
        || (s[0] & 0xff00) == 0xff00 // multicast
        // NAT64 and 6to4 would carry the connection on to an embedded IPv4 address.
        || (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && is_private_v4(embedded_v4(s[6], s[7])))
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64
        || (s[0] == 0x2002 && is_private_v4(embedded_v4(s[1], s[2])))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors shared with the package and tls-client (`tests/target-vectors.json`).
    #[test]
    fn the_shared_target_vectors() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/target-vectors.json");
        let text = std::fs::read_to_string(path).expect("read tests/target-vectors.json");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        for case in doc["valid"].as_array().expect("valid") {
            let input = case["input"].as_str().expect("input");
            let target = Target::parse(input).expect(input);
            assert_eq!(Some(target.to_string().as_str()), case["target"].as_str());
            assert_eq!(
                Some(u64::from(target.port)),
                case["port"].as_u64(),
                "{input}"
            );
        }
        for case in doc["invalid"].as_array().expect("invalid") {
            let input = case.as_str().expect("input");
            assert!(Target::parse(input).is_err(), "accepted '{input}'");
        }
    }

    fn t(s: &str) -> Target {
        Target::parse(s).expect("valid target")
    }

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).expect("valid pattern")
    }

    #[test]
    fn parses_targets() {
        assert_eq!(
            t("Mail.Example.COM.:993"),
            Target {
                host: Host::Name("mail.example.com".into()),
                port: 993
            }
        );
        assert_eq!(
            t("127.0.0.1:80").host,
            Host::Ip("127.0.0.1".parse().expect("address"))
        );
        assert_eq!(
            t("[::1]:443").host,
            Host::Ip("::1".parse().expect("address"))
        );
        assert_eq!(t("[::1]:443").to_string(), "[::1]:443");
        for bad in [
            "",
            "example.com",
            "example.com:",
            "example.com:0",
            "example.com:65536",
            "example.com:+80",
            ":80",
            "::1:443",
            "[::1]443",
            "[::1",
            "[1.2.3.4]:80",
            "a..b:80",
            "a b:80",
            "a/b:80",
            "*.example.com:443",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn targets_from_host_and_port() {
        let ok = |h: &str, p: u16| Target::from_host_and_port(h, p).map(|t| t.to_string());
        assert_eq!(ok("Example.COM", 443).as_deref(), Ok("example.com:443"));
        assert_eq!(ok("127.0.0.1", 80).as_deref(), Ok("127.0.0.1:80"));
        assert_eq!(ok("::1", 443).as_deref(), Ok("[::1]:443"));
        assert_eq!(ok("[::1]", 443).as_deref(), Ok("[::1]:443"));
        for (h, p) in [
            ("example.com", 0),
            ("", 1),
            ("a b", 1),
            ("[1.2.3.4]", 1),
            ("a:b", 1),
        ] {
            assert!(ok(h, p).is_err(), "{h:?}:{p} should be rejected");
        }
    }

    #[test]
    fn exact_patterns() {
        let pat = p("mail.example.com:993");
        assert!(pat.matches(&t("mail.example.com:993")));
        assert!(pat.matches(&t("MAIL.example.com.:993")));
        assert!(!pat.matches(&t("mail.example.com:994")));
        assert!(!pat.matches(&t("imap.mail.example.com:993")));
        assert!(!pat.matches(&t("example.com:993")));
    }

    #[test]
    fn wildcard_host_patterns() {
        let pat = p("*.example.com:443");
        assert!(pat.matches(&t("a.example.com:443")));
        assert!(pat.matches(&t("a.b.example.com:443")));
        assert!(!pat.matches(&t("example.com:443")));
        assert!(!pat.matches(&t("badexample.com:443")));
        assert!(!pat.matches(&t("a.example.com:80")));
        assert!(!pat.matches(&t("a.example.com.evil:443")));

        let any = p("*:443");
        assert!(any.matches(&t("anything.test:443")));
        assert!(any.matches(&t("10.0.0.1:443")));
        assert!(!any.matches(&t("anything.test:80")));
    }

    #[test]
    fn wildcard_port_and_ip_patterns() {
        let pat = p("127.0.0.1:*");
        assert!(pat.matches(&t("127.0.0.1:1")));
        assert!(pat.matches(&t("127.0.0.1:65535")));
        assert!(!pat.matches(&t("127.0.0.2:80")));
        // A name is not an address, even if it would resolve to one.
        assert!(!pat.matches(&t("localhost:80")));

        let v6 = p("[::1]:8443");
        assert!(v6.matches(&t("[0:0::1]:8443")));
        assert!(!v6.matches(&t("[::1]:443")));
        assert!(!v6.matches(&t("127.0.0.1:8443")));

        assert!(!p("*.example.com:*").matches(&t("1.2.3.4:80")));
    }

    #[test]
    fn rejects_bad_patterns() {
        for bad in [
            "example.com",
            "*.1.2.3.4:80",
            "*.:80",
            "**.example.com:80",
            "example.com:x",
            "ex*ample.com:80",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn private_ranges() {
        let private = [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:192.168.0.1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "64:ff9b::10.0.0.1",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "192.0.0.1",
            "192.0.0.255",
            "198.18.0.1",
            "198.19.255.255",
            "::ffff:0:8.8.8.8",
            "100::1",
            "100::ffff:ffff:ffff:ffff",
        ];
        for ip in private {
            assert!(
                is_private(ip.parse().expect("address")),
                "{ip} should be private"
            );
        }
        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.0.1",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.1.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:808:808::",
            "192.0.1.1",
            "198.17.255.255",
            "198.20.0.0",
            "100:0:0:1::1",
        ];
        for ip in public {
            assert!(
                !is_private(ip.parse().expect("address")),
                "{ip} should be public"
            );
        }
    }
}
