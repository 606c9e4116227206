//! Typed values of the few headers GB/T 28181 signalling reads: Via, From/To/
//! Contact (name-addr with a SIP URI), CSeq, Expires. Each parser returns
//! `None` on a value it cannot read; nothing here panics.

use super::message::{Message, Method};
use std::fmt;
use std::net::SocketAddr;

/// `;name=value` parameters in their order; a parameter without `=` has no value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, Option<String>)>);

impl Params {
    /// Parses `;a=1;b;c="x;y"` (the leading `;` optional).
    pub fn parse(text: &str) -> Params {
        Params(
            split_outside_quotes(text, ';')
                .into_iter()
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((n, v)) => (n.trim().to_owned(), Some(v.trim().to_owned())),
                    None => (p.to_owned(), None),
                })
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The value of a parameter that has one.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).flatten()
    }

    pub fn set(&mut self, name: &str, value: Option<String>) {
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_owned(), value)),
        }
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.0 {
            match value {
                Some(v) => write!(f, ";{name}={v}")?,
                None => write!(f, ";{name}")?,
            }
        }
        Ok(())
    }
}

/// Splits on `sep` where it is not inside double quotes or angle brackets.
pub fn split_outside_quotes(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quoted, mut angle, mut start) = (false, false, 0);
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            c if c == sep && !quoted && !angle => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// `host[:port]`, with IPv6 in brackets.
fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse().ok()?)),
        None => (text, None),
    };
    if host.is_empty() || host.contains([' ', '@', '<', '>']) {
        return None;
    }
    Some((host.to_owned(), port))
}

/// A `sip:` URI: `sip:user@host:port;params`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipUri {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl SipUri {
    pub fn parse(text: &str) -> Option<SipUri> {
        let text = text.trim();
        let rest = text
            .strip_prefix("sip:")
            .or_else(|| text.strip_prefix("SIP:"))?;
        let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
        let (address, params) = rest.split_once(';').unwrap_or((rest, ""));
        let (user, hostport) = match address.rsplit_once('@') {
            Some((user, hp)) => (Some(user.split(':').next().unwrap_or(user)), hp),
            None => (None, address),
        };
        let (host, port) = split_host_port(hostport)?;
        Some(SipUri {
            user: user.filter(|u| !u.is_empty()).map(str::to_owned),
            host,
            port,
            params: Params::parse(params),
        })
    }

    pub fn new(user: &str, host: &str, port: Option<u16>) -> SipUri {
        SipUri {
            user: Some(user.to_owned()),
            host: host.to_owned(),
            port,
            params: Params::default(),
        }
    }

    /// `sip:user@ip:port` for a socket address.
    pub fn at(user: &str, addr: SocketAddr) -> SipUri {
        SipUri::new(user, &host_text(addr), Some(addr.port()))
    }
}

/// An IP address as a SIP host (IPv6 in brackets).
pub fn host_text(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sip:")?;
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// From, To and Contact: `"name" <sip:...>;tag=...` or a bare URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr {
    pub display: Option<String>,
    pub uri: SipUri,
    pub params: Params,
}

impl NameAddr {
    pub fn parse(text: &str) -> Option<NameAddr> {
        let text = text.trim();
        if let Some(open) = text.find('<') {
            let close = open + text[open..].find('>')?;
            let display = text[..open].trim().trim_matches('"').trim();
            return Some(NameAddr {
                display: (!display.is_empty()).then(|| display.to_owned()),
                uri: SipUri::parse(&text[open + 1..close])?,
                params: Params::parse(&text[close + 1..]),
            });
        }
        // Without brackets, parameters belong to the header, not the URI.
        let (uri, params) = text.split_once(';').unwrap_or((text, ""));
        Some(NameAddr {
            display: None,
            uri: SipUri::parse(uri)?,
            params: Params::parse(params),
        })
    }

    pub fn new(uri: SipUri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            params: Params::default(),
        }
    }

    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }

    pub fn with_tag(mut self, tag: &str) -> NameAddr {
        self.params.set("tag", Some(tag.to_owned()));
        self
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// One Via entry: `SIP/2.0/UDP host:port;branch=...;rport`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    pub fn parse(text: &str) -> Option<Via> {
        let text = text.trim();
        let (protocol, rest) = text.split_once(|c: char| c.is_ascii_whitespace())?;
        let mut proto = protocol.split('/');
        let (Some(name), Some(version), Some(transport), None) =
            (proto.next(), proto.next(), proto.next(), proto.next())
        else {
            return None;
        };
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return None;
        }
        let (sent_by, params) = rest.split_once(';').unwrap_or((rest, ""));
        let (host, port) = split_host_port(sent_by)?;
        Some(Via {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params: Params::parse(params),
        })
    }

    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// Records where the request really came from (RFC 3261 18.2.1 and
    /// RFC 3581): `received` always, `rport` filled in when the device asked.
    pub fn stamp_source(&mut self, source: SocketAddr) {
        self.params.set("received", Some(source.ip().to_string()));
        if self.params.get("rport").is_some() {
            self.params.set("rport", Some(source.port().to_string()));
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// Every Via of a message, top first (several per line or several lines).
pub fn vias(message: &Message) -> Vec<&str> {
    message
        .headers
        .get_all("Via")
        .flat_map(|line| split_outside_quotes(line, ','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

pub fn top_via(message: &Message) -> Option<Via> {
    vias(message).first().and_then(|v| Via::parse(v))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(text: &str) -> Option<CSeq> {
        let mut parts = text.split_whitespace();
        let (Some(seq), Some(method), None) = (parts.next(), parts.next(), parts.next()) else {
            return None;
        };
        Some(CSeq {
            seq: seq.parse().ok()?,
            method: Method::from_token(method),
        })
    }

    pub fn of(message: &Message) -> Option<CSeq> {
        CSeq::parse(message.header("CSeq")?)
    }
}

pub fn from(message: &Message) -> Option<NameAddr> {
    NameAddr::parse(message.header("From")?)
}

pub fn to(message: &Message) -> Option<NameAddr> {
    NameAddr::parse(message.header("To")?)
}

/// Seconds a REGISTER asks for: the Contact's `expires` parameter, else the
/// Expires header.
pub fn requested_expires(message: &Message) -> Option<u32> {
    let from_contact = message
        .header("Contact")
        .and_then(NameAddr::parse)
        .and_then(|c| c.params.value("expires").and_then(|v| v.parse().ok()));
    from_contact.or_else(|| message.header("Expires")?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_rport_and_branch() {
        let mut via = Via::parse("SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK77").unwrap();
        assert_eq!(via.transport, "UDP");
        assert_eq!(via.host, "192.168.1.64");
        assert_eq!(via.port, Some(5060));
        assert_eq!(via.branch(), Some("z9hG4bK77"));
        via.stamp_source("10.0.0.9:40000".parse().unwrap());
        assert_eq!(
            via.to_string(),
            "SIP/2.0/UDP 192.168.1.64:5060;rport=40000;branch=z9hG4bK77;received=10.0.0.9"
        );
        let mut plain = Via::parse("SIP/2.0/TCP [::1]:5060;branch=x").unwrap();
        plain.stamp_source("[::1]:7".parse().unwrap());
        assert_eq!(plain.params.get("rport"), None);
        assert_eq!(plain.host, "::1");
    }

    #[test]
    fn name_addrs_in_their_forms() {
        let a = NameAddr::parse("\"Cam\" <sip:34020000001320000001@3402000000>;tag=abc").unwrap();
        assert_eq!(a.display.as_deref(), Some("Cam"));
        assert_eq!(a.uri.user.as_deref(), Some("34020000001320000001"));
        assert_eq!(a.uri.host, "3402000000");
        assert_eq!(a.tag(), Some("abc"));
        let b = NameAddr::parse("sip:1@10.0.0.1:5062;tag=z").unwrap();
        assert_eq!(b.uri.port, Some(5062));
        assert_eq!(b.tag(), Some("z"));
        let c = NameAddr::parse("<sip:1@10.0.0.1;transport=udp>;expires=60").unwrap();
        assert_eq!(c.uri.params.value("transport"), Some("udp"));
        assert_eq!(c.params.value("expires"), Some("60"));
        assert_eq!(c.to_string(), "<sip:1@10.0.0.1;transport=udp>;expires=60");
    }

    #[test]
    fn bad_values_are_none() {
        for v in [
            "",
            "SIP/2.0",
            "SIP/2.0/UDP",
            "HTTP/1.1/TCP a",
            "SIP/2.0/UDP a:b",
            "SIP/2.0/UDP [::1",
        ] {
            assert_eq!(Via::parse(v), None, "{v}");
        }
        for v in [
            "",
            "<sip:a@b",
            "tel:123",
            "<>",
            "sip:",
            "sip:a@:5",
            "sip:a@b:99999",
        ] {
            assert_eq!(NameAddr::parse(v), None, "{v}");
        }
        for v in ["", "1", "x REGISTER", "1 REGISTER extra", "-1 BYE"] {
            assert_eq!(CSeq::parse(v), None, "{v}");
        }
    }

    #[test]
    fn quoted_separators_do_not_split() {
        assert_eq!(split_outside_quotes("a=\"x,y\",b", ','), ["a=\"x,y\"", "b"]);
        assert_eq!(split_outside_quotes("<sip:a;b>;c", ';'), ["<sip:a;b>", "c"]);
        assert_eq!(
            split_outside_quotes("a=\"\\\"\",b", ','),
            ["a=\"\\\"\"", "b"]
        );
    }
}
