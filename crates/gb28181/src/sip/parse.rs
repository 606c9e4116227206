//! Parsing SIP messages from datagrams and from a TCP byte stream. Lenient
//! where devices are sloppy (bare LF line ends, header bytes that are not
//! UTF-8, a missing Content-Length over UDP), strict where a wrong guess
//! would mislead (start line, Content-Length, sizes). Never panics.

use super::message::{Headers, Message, Method, StartLine};

/// At most this many header lines in one message.
const MAX_HEADERS: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("message of {len} bytes is over the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("no blank line after the headers")]
    NoHeaderEnd,
    #[error("bad start line")]
    BadStartLine,
    #[error("bad header line")]
    BadHeader,
    #[error("more than {MAX_HEADERS} headers")]
    TooManyHeaders,
    #[error("bad Content-Length")]
    BadContentLength,
    #[error("body of {got} bytes is shorter than its Content-Length {declared}")]
    Truncated { declared: usize, got: usize },
}

impl ParseError {
    /// The counter this error is counted under.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ParseError::TooLarge { .. } => ErrorKind::Oversized,
            ParseError::Truncated { .. } => ErrorKind::Truncated,
            _ => ErrorKind::Malformed,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Malformed,
    Oversized,
    Truncated,
}

/// Where the header block ends: the index of the first body byte.
fn header_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' {
            if buf[i + 1] == b'\n' {
                return Some(i + 2);
            }
            if buf[i + 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

/// Leading CRLFs: keepalives (RFC 5626) or padding, never a message.
fn leading_blank(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count()
}

/// A datagram: one whole message, body bounded by Content-Length when given.
pub fn parse_datagram(buf: &[u8], max: usize) -> Result<Message, ParseError> {
    if buf.len() > max {
        return Err(ParseError::TooLarge {
            len: buf.len(),
            max,
        });
    }
    let buf = &buf[leading_blank(buf)..];
    if buf.is_empty() {
        return Err(ParseError::Empty);
    }
    let body_start = header_end(buf).ok_or(ParseError::NoHeaderEnd)?;
    let (start, headers) = parse_head(&buf[..body_start])?;
    let rest = &buf[body_start..];
    let body = match content_length(&headers)? {
        Some(declared) if declared > rest.len() => {
            return Err(ParseError::Truncated {
                declared,
                got: rest.len(),
            })
        }
        Some(declared) => &rest[..declared],
        None => rest,
    };
    Ok(Message {
        start,
        headers,
        body: body.to_vec(),
    })
}

/// What the front of a TCP receive buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Not a whole message yet: read more.
    Incomplete,
    /// This many bytes of keepalive CRLFs to drop.
    Blank(usize),
    /// A whole message of this many bytes.
    Message(usize),
}

/// Finds the first message in a stream buffer (RFC 3261 section 18.3: the
/// Content-Length frames it, absent means no body).
pub fn frame(buf: &[u8], max: usize) -> Result<Frame, ParseError> {
    let blank = leading_blank(buf);
    if blank > 0 {
        return Ok(Frame::Blank(blank));
    }
    let Some(body_start) = header_end(buf) else {
        if buf.len() > max {
            return Err(ParseError::TooLarge {
                len: buf.len(),
                max,
            });
        }
        return Ok(Frame::Incomplete);
    };
    let (_, headers) = parse_head(&buf[..body_start])?;
    let total = body_start + content_length(&headers)?.unwrap_or(0);
    if total > max {
        return Err(ParseError::TooLarge { len: total, max });
    }
    Ok(if buf.len() >= total {
        Frame::Message(total)
    } else {
        Frame::Incomplete
    })
}

fn content_length(headers: &Headers) -> Result<Option<usize>, ParseError> {
    headers
        .get("Content-Length")
        .map(|v| v.trim().parse().map_err(|_| ParseError::BadContentLength))
        .transpose()
}

fn parse_head(head: &[u8]) -> Result<(StartLine, Headers), ParseError> {
    // Header bytes that are not UTF-8 (a GBK Subject or User-Agent) become
    // U+FFFD: the headers the platform reads are ASCII.
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = parse_start_line(lines.next().ok_or(ParseError::BadStartLine)?)?;
    let mut headers = Headers::default();
    let mut current: Option<(String, String)> = None;
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            // A folded continuation of the previous header (obsolete, still seen).
            let (_, value) = current.as_mut().ok_or(ParseError::BadHeader)?;
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        if let Some((name, value)) = current.take() {
            headers.push(&name, value);
        }
        let (name, value) = line.split_once(':').ok_or(ParseError::BadHeader)?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(ParseError::BadHeader);
        }
        if headers.len() >= MAX_HEADERS {
            return Err(ParseError::TooManyHeaders);
        }
        current = Some((name.to_owned(), value.trim().to_owned()));
    }
    if let Some((name, value)) = current {
        headers.push(&name, value);
    }
    Ok((start, headers))
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    if let Some(rest) = line.strip_prefix("SIP/2.0 ") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let code: u16 = code.parse().map_err(|_| ParseError::BadStartLine)?;
        if !(100..=699).contains(&code) {
            return Err(ParseError::BadStartLine);
        }
        return Ok(StartLine::Response {
            code,
            reason: reason.trim().to_owned(),
        });
    }
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::BadStartLine);
    };
    if version != "SIP/2.0" || !method.bytes().all(is_token_byte) || !uri.contains(':') {
        return Err(ParseError::BadStartLine);
    }
    Ok(StartLine::Request {
        method: Method::from_token(method),
        uri: uri.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTER: &[u8] = b"REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1\r\n\
From: <sip:34020000001320000001@3402000000>;tag=1\r\n\
To: <sip:34020000001320000001@3402000000>\r\n\
Call-ID: 1@192.168.1.64\r\n\
CSeq: 1 REGISTER\r\n\
Expires: 3600\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn parses_a_register() {
        let m = parse_datagram(REGISTER, 65535).unwrap();
        assert_eq!(m.method(), Some(&Method::Register));
        assert_eq!(m.call_id(), Some("1@192.168.1.64"));
        assert_eq!(m.header("expires"), Some("3600"));
        assert!(m.body.is_empty());
    }

    #[test]
    fn body_is_bounded_by_content_length_and_may_be_gbk() {
        let mut buf = b"MESSAGE sip:a@b SIP/2.0\nContent-Length: 4\n\n".to_vec();
        buf.extend_from_slice(&[0xd6, 0xd0, 0xce, 0xc4, b'x', b'y']);
        let m = parse_datagram(&buf, 65535).unwrap();
        assert_eq!(m.body, [0xd6, 0xd0, 0xce, 0xc4]);
    }

    #[test]
    fn header_bytes_that_are_not_utf8_do_not_fail_the_message() {
        let mut buf = b"MESSAGE sip:a@b SIP/2.0\r\nUser-Agent: ".to_vec();
        buf.extend_from_slice(&[0xba, 0xa3, 0xbf, 0xb5]);
        buf.extend_from_slice(b"\r\nCall-ID: 7\r\n\r\n");
        let m = parse_datagram(&buf, 65535).unwrap();
        assert_eq!(m.call_id(), Some("7"));
    }

    #[test]
    fn folded_headers_are_joined() {
        let m = parse_datagram(
            b"OPTIONS sip:a@b SIP/2.0\r\nSubject: one\r\n two\r\n\r\n",
            100,
        )
        .unwrap();
        assert_eq!(m.header("s"), Some("one two"));
    }

    #[test]
    fn responses_parse() {
        let m = parse_datagram(b"SIP/2.0 486 Busy Here\r\nCSeq: 2 INVITE\r\n\r\n", 100).unwrap();
        assert_eq!(m.status(), Some(486));
        assert_eq!(m.reason(), Some("Busy Here"));
    }

    #[test]
    fn malformed_input_is_an_error_never_a_panic() {
        let cases: &[&[u8]] = &[
            b"",
            b"\r\n\r\n",
            b"garbage",
            b"GET / HTTP/1.1\r\n\r\n",
            b"SIP/2.0 abc OK\r\n\r\n",
            b"SIP/2.0 999 OK\r\n\r\n",
            b"REGISTER sip:a SIP/2.0\r\nno colon here\r\n\r\n",
            b"REGISTER sip:a SIP/2.0\r\n continuation first\r\n\r\n",
            b"REGISTER sip:a SIP/2.0\r\nContent-Length: -1\r\n\r\n",
            b"REGISTER sip:a SIP/2.0\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"REGISTER sip:a SIP/2.0\r\nContent-Length: 10\r\n\r\nshort",
            b"REGISTER sip:a SIP/2.0\r\nCall-ID: 1",
            b"REG ISTER sip:a SIP/2.0\r\n\r\n",
            b"\xff\xfe\x00\x01\r\n\r\n",
        ];
        for case in cases {
            assert!(
                parse_datagram(case, 65535).is_err(),
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
        let truncated = parse_datagram(cases[10], 65535).unwrap_err();
        assert_eq!(truncated.kind(), ErrorKind::Truncated);
        let big = parse_datagram(&[b'a'; 200], 100).unwrap_err();
        assert_eq!(big.kind(), ErrorKind::Oversized);
        let many: String = (0..200).map(|i| format!("X-{i}: 1\r\n")).collect();
        let many = format!("OPTIONS sip:a@b SIP/2.0\r\n{many}\r\n");
        assert_eq!(
            parse_datagram(many.as_bytes(), 65535),
            Err(ParseError::TooManyHeaders)
        );
    }

    #[test]
    fn every_prefix_of_a_message_is_handled() {
        for end in 0..REGISTER.len() {
            let _ = parse_datagram(&REGISTER[..end], 65535);
            let _ = frame(&REGISTER[..end], 65535);
        }
    }

    #[test]
    fn stream_framing_splits_back_to_back_messages() {
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(REGISTER);
        stream.extend_from_slice(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nabcREG");
        assert_eq!(frame(&stream, 65535), Ok(Frame::Blank(4)));
        let rest = &stream[4..];
        assert_eq!(frame(rest, 65535), Ok(Frame::Message(REGISTER.len())));
        let rest = &rest[REGISTER.len()..];
        let Ok(Frame::Message(n)) = frame(rest, 65535) else {
            panic!("no message")
        };
        assert_eq!(parse_datagram(&rest[..n], 65535).unwrap().body, b"abc");
        assert_eq!(frame(&rest[n..], 65535), Ok(Frame::Incomplete));
        assert!(frame(&[b'x'; 300], 200).is_err());
        let huge = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n";
        assert!(matches!(
            frame(huge, 1000),
            Err(ParseError::TooLarge { .. })
        ));
    }
}
