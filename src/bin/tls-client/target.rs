//! `--connect HOST:PORT`: the host (a name, an IPv4 address or a bracketed IPv6
//! address) and the port, by the rules the package and the relay follow too
//! (`tests/target-vectors.json`, which all three run).

use std::net::Ipv6Addr;

/// A parsed `--connect` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host, without IPv6 brackets: the default server name.
    pub host: String,
    /// The TCP port, never 0.
    pub port: u16,
}

impl Target {
    /// Parses `HOST:PORT` or `[IPV6]:PORT`.
    pub fn parse(text: &str) -> Result<Target, String> {
        let bad = |why: &str| format!("--connect wants HOST:PORT ({why}), not '{text}'");
        let (host, port) = match text.strip_prefix('[') {
            Some(rest) => {
                let (inside, after) = rest.split_once(']').ok_or_else(|| bad("missing ']'"))?;
                inside
                    .parse::<Ipv6Addr>()
                    .map_err(|_| bad("not an IPv6 address in the brackets"))?;
                (
                    inside,
                    after.strip_prefix(':').ok_or_else(|| bad("no port"))?,
                )
            }
            None => {
                let (host, port) = text.rsplit_once(':').ok_or_else(|| bad("no port"))?;
                if host.contains(':') {
                    return Err(bad("IPv6 addresses go in brackets"));
                }
                let allowed = |c: char| c.is_ascii_alphanumeric() || "-._".contains(c);
                if host.is_empty() || !host.chars().all(allowed) {
                    return Err(bad("not a host name or address"));
                }
                (host, port)
            }
        };
        // `u16::from_str` accepts a leading '+', which has no place in a port.
        let port = Some(port)
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("the port is 1 to 65535"))?;
        Ok(Target {
            host: host.to_owned(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_vectors() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/target-vectors.json");
        let text = std::fs::read_to_string(path).expect("read tests/target-vectors.json");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        for case in doc["valid"].as_array().expect("valid") {
            let input = case["input"].as_str().expect("input");
            let target = Target::parse(input).expect(input);
            assert_eq!(Some(target.host.as_str()), case["host"].as_str(), "{input}");
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
}
