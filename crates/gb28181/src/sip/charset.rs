//! The character sets of MANSCDP bodies. Devices write GB2312, GBK or
//! GB18030 (most of them) or UTF-8, and say which in the XML declaration,
//! not in Content-Type. We decode by the declaration, remember the charset a
//! device used, and write our queries to it in the same one.

use encoding_rs::{Encoding, GB18030, GBK, UTF_8};

/// A body charset, with the label the device used (to write it back as is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charset {
    label: String,
    encoding: &'static Encoding,
}

impl Charset {
    /// GB/T 28181's own examples declare GB2312: the default for a device
    /// we have not heard a body from.
    pub fn gb2312() -> Charset {
        Charset {
            label: "GB2312".to_owned(),
            encoding: GBK,
        }
    }

    pub fn utf8() -> Charset {
        Charset {
            label: "UTF-8".to_owned(),
            encoding: UTF_8,
        }
    }

    /// The charset for a declared label; GB2312 is read as GBK (its
    /// superset, as every device that says GB2312 means).
    pub fn from_label(label: &str) -> Option<Charset> {
        let encoding = Encoding::for_label(label.trim().as_bytes())?;
        let encoding = if encoding == GBK || encoding == GB18030 || encoding == UTF_8 {
            encoding
        } else {
            return None;
        };
        Some(Charset {
            label: label.trim().to_owned(),
            encoding,
        })
    }

    /// The label to write in our XML declarations.
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn encode(&self, text: &str) -> Vec<u8> {
        // GBK and GB18030 encoders replace what they cannot map with a
        // numeric character reference: names stay readable, never fail.
        self.encoding.encode(text).0.into_owned()
    }
}

/// The `encoding` of an XML declaration at the start of `body`, if any.
pub fn declared_encoding(body: &[u8]) -> Option<&str> {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = body.get(start..)?.strip_prefix(b"<?xml")?;
    let end = rest.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&rest[..end]).ok()?;
    let after = &decl[decl.find("encoding")? + "encoding".len()..];
    let after = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &after[1..];
    Some(&value[..value.find(quote)?])
}

/// Decodes a body: by its declaration when it names a charset we know; else
/// UTF-8 when the bytes are valid UTF-8, else GB18030 (a superset of GBK,
/// what an undeclared Chinese body most likely is). Returns the text and the
/// charset to answer in. Invalid bytes become U+FFFD, never an error.
pub fn decode(body: &[u8]) -> (String, Charset) {
    let charset = match declared_encoding(body).and_then(Charset::from_label) {
        Some(declared) => declared,
        None if std::str::from_utf8(body).is_ok() => Charset::utf8(),
        None => Charset {
            label: "GB18030".to_owned(),
            encoding: GB18030,
        },
    };
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let (text, _) = charset.encoding.decode_without_bom_handling(body);
    (text.into_owned(), charset)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "东门口 球机 𠀀";

    #[test]
    fn gb2312_declared_body_round_trips_chinese() {
        let gb = Charset::from_label("GB2312").unwrap();
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Name>{}</Name>",
            "东门口"
        );
        let bytes = gb.encode(&xml);
        assert_ne!(bytes, xml.as_bytes(), "GBK bytes differ from UTF-8");
        let (text, charset) = decode(&bytes);
        assert_eq!(text, xml);
        assert_eq!(charset.label(), "GB2312");
    }

    #[test]
    fn gb18030_and_utf8_and_undeclared() {
        let gb18030 = Charset::from_label("gb18030").unwrap();
        let xml = format!("<?xml version='1.0' encoding='gb18030'?><a>{NAME}</a>");
        assert_eq!(decode(&gb18030.encode(&xml)).0, xml);
        let utf8 = format!("\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>{NAME}</a>");
        let (text, cs) = decode(utf8.as_bytes());
        assert!(text.ends_with(&format!("<a>{NAME}</a>")));
        assert_eq!(cs, Charset::utf8());
        let undeclared = Charset::gb2312().encode("<a>东门口</a>");
        assert_eq!(decode(&undeclared).0, "<a>东门口</a>");
        assert_eq!(decode(b"<a>plain</a>").1, Charset::utf8());
    }

    #[test]
    fn unknown_or_broken_declarations_fall_back() {
        assert!(Charset::from_label("EBCDIC-US").is_none());
        assert!(Charset::from_label("shift_jis").is_none());
        assert_eq!(declared_encoding(b"<?xml version=\"1.0\"?>"), None);
        assert_eq!(declared_encoding(b"<?xml encoding=\"GBK"), None);
        assert_eq!(declared_encoding(b"<?xml encoding=GBK?>"), None);
        assert_eq!(
            declared_encoding(b"  <?xml encoding = \"GBK\" ?>"),
            Some("GBK")
        );
        let (text, _) = decode(b"<?xml version=\"1.0\" encoding=\"GB2312\"?><a>\xff\xff</a>");
        assert!(text.contains('\u{fffd}'));
        let _ = decode(&[0x81]);
        let _ = decode(b"<?xml");
    }
}
