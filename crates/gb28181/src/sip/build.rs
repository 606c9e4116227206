//! Building the messages the platform sends: responses to devices' requests
//! (RFC 3261 8.2.6, with `received`/`rport` so they go back through NAT)
//! and requests of our own (MESSAGE, INVITE, ACK, BYE).

use super::headers::{self, NameAddr, SipUri};
use super::message::{Message, Method};
use super::transport::SipTransport;
use std::net::SocketAddr;

pub const USER_AGENT: &str = concat!("Xueliang/", env!("CARGO_PKG_VERSION"));

fn random_token(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// A Via branch with RFC 3261's magic cookie.
pub fn branch() -> String {
    format!("z9hG4bK{}", random_token(16))
}

pub fn tag() -> String {
    random_token(10)
}

pub fn call_id() -> String {
    random_token(24)
}

/// A response to a request that came from `source`. `to_tag` is added to
/// the To header when the request's To has none (all but 100 Trying).
pub fn response(
    request: &Message,
    source: SocketAddr,
    code: u16,
    reason: &str,
    to_tag: &str,
) -> Message {
    let mut response = Message::response(code, reason);
    for (i, via) in headers::vias(request).into_iter().enumerate() {
        match headers::Via::parse(via) {
            Some(mut top) if i == 0 => {
                top.stamp_source(source);
                response.headers.push("Via", top.to_string());
            }
            _ => response.headers.push("Via", via),
        }
    }
    if let Some(from) = request.header("From") {
        response.headers.push("From", from);
    }
    if let Some(to) = request.header("To") {
        let tagged = match NameAddr::parse(to) {
            Some(addr) if addr.tag().is_none() && code > 100 => format!("{to};tag={to_tag}"),
            _ => to.to_owned(),
        };
        response.headers.push("To", tagged);
    }
    for name in ["Call-ID", "CSeq"] {
        if let Some(value) = request.header(name) {
            response.headers.push(name, value);
        }
    }
    response.headers.push("User-Agent", USER_AGENT);
    response
}

/// Who the platform is on the wire.
#[derive(Clone, Debug)]
pub struct Local {
    pub server_id: String,
    pub domain: String,
    /// The address devices reach us at (put in Via and Contact).
    pub addr: SocketAddr,
}

impl Local {
    pub fn identity(&self, tag: &str) -> NameAddr {
        NameAddr::new(SipUri::new(&self.server_id, &self.domain, None)).with_tag(tag)
    }

    pub fn contact(&self) -> NameAddr {
        NameAddr::new(SipUri::at(&self.server_id, self.addr))
    }
}

/// Where one of our requests goes and who it is in.
pub struct Outgoing<'a> {
    pub method: Method,
    pub uri: &'a SipUri,
    pub from_tag: &'a str,
    pub to: &'a NameAddr,
    pub call_id: &'a str,
    pub cseq: u32,
    pub transport: SipTransport,
}

/// A request of ours with a fresh branch.
pub fn request(local: &Local, out: &Outgoing<'_>) -> Message {
    let mut m = Message::request(out.method.clone(), out.uri.to_string());
    m.headers.push(
        "Via",
        format!(
            "SIP/2.0/{} {}:{};rport;branch={}",
            out.transport.as_str(),
            headers::host_text(local.addr),
            local.addr.port(),
            branch()
        ),
    );
    m.headers
        .push("From", local.identity(out.from_tag).to_string());
    m.headers.push("To", out.to.to_string());
    m.headers.push("Call-ID", out.call_id);
    m.headers
        .push("CSeq", format!("{} {}", out.cseq, out.method));
    m.headers.push("Max-Forwards", "70");
    m.headers.push("User-Agent", USER_AGENT);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse::parse_datagram;

    #[test]
    fn responses_go_back_through_nat_and_get_a_to_tag() {
        let req = parse_datagram(
            b"REGISTER sip:s@d SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bKx\r\n\
              Via: SIP/2.0/UDP 10.1.1.1;branch=z9hG4bKy\r\nFrom: <sip:a@d>;tag=1\r\nTo: <sip:a@d>\r\n\
              Call-ID: c\r\nCSeq: 2 REGISTER\r\n\r\n",
            65535,
        )
        .unwrap();
        let r = response(&req, "203.0.113.5:41000".parse().unwrap(), 200, "OK", "tt");
        let vias: Vec<_> = r.headers.get_all("Via").collect();
        assert_eq!(
            vias,
            [
                "SIP/2.0/UDP 192.168.1.64:5060;rport=41000;branch=z9hG4bKx;received=203.0.113.5",
                "SIP/2.0/UDP 10.1.1.1;branch=z9hG4bKy"
            ]
        );
        assert_eq!(r.header("To"), Some("<sip:a@d>;tag=tt"));
        assert_eq!(r.header("CSeq"), Some("2 REGISTER"));
        let trying = response(
            &req,
            "203.0.113.5:41000".parse().unwrap(),
            100,
            "Trying",
            "tt",
        );
        assert_eq!(trying.header("To"), Some("<sip:a@d>"));
    }

    #[test]
    fn requests_carry_a_fresh_branch_and_our_identity() {
        let local = Local {
            server_id: "34020000002000000001".into(),
            domain: "3402000000".into(),
            addr: "10.0.0.2:5060".parse().unwrap(),
        };
        let uri = SipUri::at("34020000001320000001", "10.0.0.9:5062".parse().unwrap());
        let to = NameAddr::new(SipUri::new("34020000001320000001", "3402000000", None));
        let out = Outgoing {
            method: Method::Message,
            uri: &uri,
            from_tag: "ft",
            to: &to,
            call_id: "cid",
            cseq: 7,
            transport: SipTransport::Udp,
        };
        let a = request(&local, &out);
        let b = request(&local, &out);
        assert_eq!(
            a.request_uri(),
            Some("sip:34020000001320000001@10.0.0.9:5062")
        );
        assert_eq!(
            a.header("From"),
            Some("<sip:34020000002000000001@3402000000>;tag=ft")
        );
        assert_eq!(a.header("CSeq"), Some("7 MESSAGE"));
        assert_ne!(
            headers::top_via(&a).unwrap().branch(),
            headers::top_via(&b).unwrap().branch()
        );
        assert!(headers::top_via(&a)
            .unwrap()
            .branch()
            .unwrap()
            .starts_with("z9hG4bK"));
    }
}
