//! RTSP/1.0 (RFC 2326) messages as the peer needs them: requests cut from
//! the bytes a client sent, responses as bytes. No I/O here.

/// The most bytes a request (headers and body) may take; more is garbage.
pub const MAX_REQUEST: usize = 16 * 1024;

/// What the front of a client's bytes holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// Not a whole message yet.
    Incomplete,
    /// Bytes to skip: an interleaved frame (the client's RTCP receiver
    /// reports) or line breaks between requests.
    Skip(usize),
    /// A request and the bytes it took.
    Request(Request, usize),
    /// Not an RTSP request (answer 400), and the bytes to drop.
    Bad(usize),
}

#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub uri: String,
    pub version: String,
    headers: Vec<(String, String)>,
}

impl Request {
    /// A header's value (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the message at the front of `buf`.
pub fn parse(buf: &[u8]) -> Input {
    match buf.first() {
        None => return Input::Incomplete,
        Some(b'$') => {
            let Some(len) = buf.get(2..4) else {
                return Input::Incomplete;
            };
            let total = 4 + u16::from_be_bytes([len[0], len[1]]) as usize;
            return if buf.len() >= total {
                Input::Skip(total)
            } else {
                Input::Incomplete
            };
        }
        Some(b'\r' | b'\n') => {
            return Input::Skip(
                buf.iter()
                    .take_while(|b| matches!(b, b'\r' | b'\n'))
                    .count(),
            );
        }
        Some(_) => {}
    }
    let Some((head_len, sep)) = find_head_end(buf) else {
        return if buf.len() > MAX_REQUEST {
            Input::Bad(buf.len())
        } else {
            Input::Incomplete
        };
    };
    let head = String::from_utf8_lossy(&buf[..head_len]);
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or("");
    let mut headers = Vec::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let body = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
        .map(|(_, v)| v.parse::<usize>());
    let body = match body {
        None => 0,
        Some(Ok(n)) if n <= MAX_REQUEST => n,
        Some(_) => return Input::Bad(head_len + sep),
    };
    let total = head_len + sep + body;
    if buf.len() < total {
        return if total > MAX_REQUEST {
            Input::Bad(buf.len())
        } else {
            Input::Incomplete
        };
    }
    let parts: Vec<&str> = request_line.split(' ').collect();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    };
    match parts[..] {
        [method, uri, version]
            if token(method) && !uri.is_empty() && version.starts_with("RTSP/") =>
        {
            Input::Request(
                Request {
                    method: method.to_owned(),
                    uri: uri.to_owned(),
                    version: version.to_owned(),
                    headers,
                },
                total,
            )
        }
        _ => Input::Bad(total),
    }
}

/// Where the headers end: (their length, the blank line's length).
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let limit = buf.len().min(MAX_REQUEST + 4);
    (0..limit).find_map(|i| {
        if buf[i..].starts_with(b"\r\n\r\n") {
            Some((i, 4))
        } else if buf[i..].starts_with(b"\n\n") {
            Some((i, 2))
        } else {
            None
        }
    })
}

/// The path of a request URI without the leading `/`, a query or a trailing
/// `/`: `rtsp://host:port/cam1/` -> `cam1`. `*` and a URI without a path
/// give ""; None when it is not an RTSP URI.
pub fn uri_path(uri: &str) -> Option<&str> {
    let path = if uri == "*" {
        ""
    } else if let Some(rest) = strip_prefix_ignore_case(uri, "rtsp://")
        .or_else(|| strip_prefix_ignore_case(uri, "rtspu://"))
        .or_else(|| strip_prefix_ignore_case(uri, "rtsps://"))
    {
        if rest.is_empty() || rest.starts_with('/') {
            return None;
        }
        rest.find('/').map_or("", |at| &rest[at..])
    } else if uri.starts_with('/') {
        uri
    } else {
        return None;
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    Some(path.trim_matches('/'))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The interleaved channel pair of the first `RTP/AVP/TCP` transport a
/// `Transport` header offers (its first channel; 0 when it names none).
/// None: TCP is not offered (UDP, multicast), or its channels are unusable.
pub fn tcp_channel(transport: &str) -> Option<u8> {
    for spec in transport.split(',') {
        let mut params = spec.split(';').map(str::trim);
        if !params
            .next()
            .is_some_and(|p| p.eq_ignore_ascii_case("RTP/AVP/TCP"))
        {
            continue;
        }
        let channels = params.find_map(|p| p.strip_prefix("interleaved="));
        let Some(channels) = channels else {
            return Some(0);
        };
        let first = channels.split('-').next().unwrap_or("");
        return first.trim().parse::<u8>().ok().filter(|&c| c < 255);
    }
    None
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        461 => "Unsupported Transport",
        501 => "Not Implemented",
        505 => "RTSP Version not supported",
        _ => "Error",
    }
}

/// Appends a response to `out`: the status line, `CSeq` (when the request
/// had one), `headers`, and `body` with its length.
pub fn respond(
    out: &mut Vec<u8>,
    status: u16,
    cseq: Option<&str>,
    headers: &[(&str, &str)],
    body: &str,
) {
    use std::fmt::Write as _;
    let mut text = format!("RTSP/1.0 {status} {}\r\n", reason(status));
    if let Some(cseq) = cseq {
        let _ = write!(text, "CSeq: {cseq}\r\n");
    }
    text.push_str(concat!(
        "Server: xueliang-rtsp-peer/",
        env!("CARGO_PKG_VERSION"),
        "\r\n"
    ));
    for (name, value) in headers {
        let _ = write!(text, "{name}: {value}\r\n");
    }
    if !body.is_empty() {
        let _ = write!(text, "Content-Length: {}\r\n", body.len());
    }
    text.push_str("\r\n");
    text.push_str(body);
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_cut_from_the_stream() {
        let text = b"OPTIONS rtsp://h/cam RTSP/1.0\r\nCSeq: 2\r\n\r\nDESC";
        let Input::Request(r, n) = parse(text) else {
            panic!("{:?}", parse(text))
        };
        assert_eq!(n, text.len() - 4);
        assert_eq!(
            (r.method.as_str(), r.uri.as_str()),
            ("OPTIONS", "rtsp://h/cam")
        );
        assert_eq!(r.header("cseq"), Some("2"));
        assert_eq!(parse(b"DESC"), Input::Incomplete);
        // A body is part of the request.
        let with_body = b"SET_PARAMETER * RTSP/1.0\r\nContent-Length: 3\r\n\r\nab";
        assert_eq!(parse(with_body), Input::Incomplete);
        let with_body = b"SET_PARAMETER * RTSP/1.0\r\nContent-Length: 3\r\n\r\nabcX";
        assert!(matches!(parse(with_body), Input::Request(_, n) if n == with_body.len() - 1));
        // The client's RTCP, and line breaks, are skipped.
        assert_eq!(parse(&[b'$', 1, 0, 2, 9, 9, b'O']), Input::Skip(6));
        assert_eq!(parse(&[b'$', 1, 0, 2, 9]), Input::Incomplete);
        assert_eq!(parse(b"\r\n\r\nOPTIONS"), Input::Skip(4));
    }

    #[test]
    fn garbage_is_bad() {
        assert_eq!(parse(b"GARBAGE\r\n\r\n"), Input::Bad(11));
        assert_eq!(parse(b"get / HTTP/1.1\r\n\r\n"), Input::Bad(18));
        assert_eq!(parse(b"\x16\x03\x01 x y\n\n"), Input::Bad(9));
        let endless = vec![b'A'; MAX_REQUEST + 1];
        assert_eq!(parse(&endless), Input::Bad(MAX_REQUEST + 1));
        let huge = b"PLAY * RTSP/1.0\r\nContent-Length: 99999999999999999999\r\n\r\n";
        assert!(matches!(parse(huge), Input::Bad(_)));
    }

    #[test]
    fn paths_and_transports() {
        assert_eq!(uri_path("rtsp://127.0.0.1:8554/cam001"), Some("cam001"));
        assert_eq!(uri_path("RTSP://h/a/b/?x=1"), Some("a/b"));
        assert_eq!(uri_path("rtsp://127.0.0.1:8554"), Some(""));
        assert_eq!(uri_path("rtsp://h/"), Some(""));
        assert_eq!(uri_path("*"), Some(""));
        assert_eq!(uri_path("/cam"), Some("cam"));
        assert_eq!(uri_path("http://h/cam"), None);
        assert_eq!(uri_path("rtsp:///cam"), None);
        assert_eq!(uri_path("cam"), None);
        assert_eq!(tcp_channel("RTP/AVP/TCP;unicast;interleaved=0-1"), Some(0));
        assert_eq!(tcp_channel("RTP/AVP/TCP;interleaved=4-5"), Some(4));
        assert_eq!(
            tcp_channel(
                "RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/TCP;unicast;interleaved=2-3"
            ),
            Some(2)
        );
        assert_eq!(tcp_channel("RTP/AVP;unicast;client_port=5000-5001"), None);
        assert_eq!(
            tcp_channel("RTP/AVP/UDP;unicast;client_port=5000-5001"),
            None
        );
        assert_eq!(tcp_channel("RTP/AVP/TCP;interleaved=x-y"), None);
        assert_eq!(tcp_channel("RTP/AVP/TCP;unicast"), Some(0));
    }

    #[test]
    fn responses_carry_cseq_and_length() {
        let mut out = Vec::new();
        respond(&mut out, 404, Some("7"), &[("Session", "abc")], "");
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("RTSP/1.0 404 Not Found\r\nCSeq: 7\r\n"));
        assert!(text.ends_with("Session: abc\r\n\r\n"));
        let mut out = Vec::new();
        respond(&mut out, 200, None, &[], "v=0\r\n");
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("Content-Length: 5\r\n\r\nv=0\r\n"));
    }
}
