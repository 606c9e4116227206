//! HTTP digest authentication (RFC 2617 with MD5, the only algorithm GB/T
//! 28181 devices use) for REGISTER: the challenge, the device's answer and
//! its check; and the client side, for our own REGISTER to a superior
//! platform: reading its challenge and answering it ([`Challenge`]). Nonces are stateless: a timestamp signed with a per-process
//! key, so a flood of REGISTERs costs no memory.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

use super::headers::split_outside_quotes;

/// How long a nonce stays valid after it was issued.
pub const NONCE_LIFETIME_SECS: i64 = 300;

/// The parameters of an `Authorization: Digest ...` header.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

impl std::fmt::Debug for Credentials {
    // The response hash is derived from the password: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// The `name=value` fields of a `Digest ...` header value (names in lower
/// case, quotes removed, `\"` unescaped); `None` for another scheme.
fn digest_fields(value: &str) -> Option<std::collections::HashMap<String, String>> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(|c: char| c.is_ascii_whitespace())?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let mut fields = std::collections::HashMap::new();
    for part in split_outside_quotes(rest, ',') {
        let Some((name, v)) = part.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        fields.insert(name.trim().to_ascii_lowercase(), v.replace("\\\"", "\""));
    }
    Some(fields)
}

impl Credentials {
    /// Parses the header value; `None` when it is not a complete digest answer.
    pub fn parse(value: &str) -> Option<Credentials> {
        let mut fields = digest_fields(value)?;
        let mut take = |name: &str| fields.remove(name);
        Some(Credentials {
            username: take("username")?,
            realm: take("realm")?,
            nonce: take("nonce")?,
            uri: take("uri")?,
            response: take("response")?,
            algorithm: take("algorithm"),
            qop: take("qop"),
            nc: take("nc"),
            cnonce: take("cnonce"),
        })
    }

    /// The response a device that knows `password` would have sent.
    pub fn expected_response(&self, method: &str, password: &str) -> String {
        let ha1 = md5_hex(&format!("{}:{}:{}", self.username, self.realm, password));
        let ha2 = md5_hex(&format!("{method}:{}", self.uri));
        match (&self.qop, &self.nc, &self.cnonce) {
            (Some(qop), Some(nc), Some(cnonce)) => {
                md5_hex(&format!("{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}", self.nonce))
            }
            _ => md5_hex(&format!("{ha1}:{}:{ha2}", self.nonce)),
        }
    }

    /// Whether the answer proves knowledge of `password` (MD5 only).
    pub fn verify(&self, method: &str, password: &str) -> bool {
        if self
            .algorithm
            .as_deref()
            .is_some_and(|a| !a.eq_ignore_ascii_case("MD5"))
        {
            return false;
        }
        let expected = self.expected_response(method, password);
        constant_time_eq(
            expected.as_bytes(),
            self.response.to_ascii_lowercase().as_bytes(),
        )
    }
}

/// A `WWW-Authenticate: Digest ...` challenge from a superior platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// `auth` when the challenge offers it (we never use `auth-int`).
    pub qop_auth: bool,
    pub stale: bool,
}

impl Challenge {
    /// Parses the header value; `None` unless it is a Digest challenge we
    /// can answer (MD5, or no algorithm named).
    pub fn parse(value: &str) -> Option<Challenge> {
        let mut fields = digest_fields(value)?;
        if fields
            .get("algorithm")
            .is_some_and(|a| !a.eq_ignore_ascii_case("MD5"))
        {
            return None;
        }
        Some(Challenge {
            realm: fields.remove("realm")?,
            nonce: fields.remove("nonce")?,
            opaque: fields.remove("opaque"),
            qop_auth: fields
                .get("qop")
                .is_some_and(|q| q.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth"))),
            stale: fields
                .get("stale")
                .is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The `Authorization` value answering this challenge: the `nc`-th use
    /// of its nonce (from 1) by `username` for `method` on `uri`.
    pub fn answer(
        &self,
        method: &str,
        uri: &str,
        username: &str,
        password: &str,
        nc: u32,
    ) -> String {
        let (qop, nc, cnonce) = if self.qop_auth {
            let cnonce = hex::encode(rand::random::<[u8; 8]>());
            (
                Some("auth".to_owned()),
                Some(format!("{nc:08x}")),
                Some(cnonce),
            )
        } else {
            (None, None, None)
        };
        let mut c = Credentials {
            username: username.to_owned(),
            realm: self.realm.clone(),
            nonce: self.nonce.clone(),
            uri: uri.to_owned(),
            response: String::new(),
            algorithm: Some("MD5".to_owned()),
            qop,
            nc,
            cnonce,
        };
        c.response = c.expected_response(method, password);
        let mut header = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm=MD5",
            c.username, c.realm, c.nonce, c.uri, c.response
        );
        if let (Some(qop), Some(nc), Some(cnonce)) = (&c.qop, &c.nc, &c.cnonce) {
            header.push_str(&format!(", qop={qop}, nc={nc}, cnonce=\"{cnonce}\""));
        }
        if let Some(opaque) = &self.opaque {
            header.push_str(&format!(", opaque=\"{opaque}\""));
        }
        header
    }
}

fn md5_hex(text: &str) -> String {
    hex::encode(Md5::digest(text.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `WWW-Authenticate` value of a 401.
pub fn challenge(realm: &str, nonce: &str, stale: bool) -> String {
    let stale = if stale { ", stale=true" } else { "" };
    format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm=MD5{stale}")
}

/// What a nonce a device sent back is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceCheck {
    Valid,
    /// Ours but too old: challenge again with `stale=true`, not a failure.
    Stale,
    /// Not one we issued.
    Forged,
}

/// Issues and checks stateless nonces: `<unix seconds hex><signature>`.
pub struct NonceSigner {
    key: [u8; 32],
}

type HmacSha256 = Hmac<Sha256>;

impl NonceSigner {
    pub fn new() -> NonceSigner {
        NonceSigner {
            key: rand::random(),
        }
    }

    fn signature(&self, stamp: &str) -> String {
        // An HMAC accepts keys of any length; the error branch cannot happen.
        let Ok(mut mac) = HmacSha256::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(stamp.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..12])
    }

    /// A fresh nonce; two issued in the same second differ by a random salt.
    pub fn issue(&self, now: DateTime<Utc>) -> String {
        let salt: u32 = rand::random();
        let stamp = format!("{:010x}{salt:08x}", now.timestamp().max(0));
        let signature = self.signature(&stamp);
        format!("{stamp}{signature}")
    }

    pub fn check(&self, nonce: &str, now: DateTime<Utc>) -> NonceCheck {
        if nonce.len() != 42 || !nonce.is_ascii() {
            return NonceCheck::Forged;
        }
        let (stamp, signature) = nonce.split_at(18);
        if !constant_time_eq(self.signature(stamp).as_bytes(), signature.as_bytes()) {
            return NonceCheck::Forged;
        }
        let Ok(issued) = i64::from_str_radix(&stamp[..10], 16) else {
            return NonceCheck::Forged;
        };
        let age = now.timestamp() - issued;
        if (0..=NONCE_LIFETIME_SECS).contains(&age) {
            NonceCheck::Valid
        } else {
            NonceCheck::Stale
        }
    }
}

impl Default for NonceSigner {
    fn default() -> Self {
        NonceSigner::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn rfc2617_example_without_qop_and_with_qop() {
        // RFC 2617 section 3.5, computed with `qop=auth`.
        let c = Credentials::parse(
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             qop=auth, nc=00000001, cnonce=\"0a4f113b\", \
             response=\"6629fae49393a05397450978507c4ef1\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert!(c.verify("GET", "Circle Of Life"));
        assert!(!c.verify("GET", "circle of life"));
        let mut plain = c.clone();
        plain.qop = None;
        plain.response = plain.expected_response("REGISTER", "12345678");
        assert!(plain.verify("REGISTER", "12345678"));
        plain.algorithm = Some("SHA-256".into());
        assert!(!plain.verify("REGISTER", "12345678"));
    }

    #[test]
    fn our_answers_to_a_challenge_verify() {
        for offer in [
            "",
            ", qop=\"auth,auth-int\"",
            ", qop=\"auth\", opaque=\"xyz\"",
        ] {
            let ch = Challenge::parse(&format!(
                "Digest realm=\"1101000000\", nonce=\"abc\", algorithm=MD5{offer}"
            ))
            .unwrap();
            assert_eq!(ch.qop_auth, !offer.is_empty());
            let answer = ch.answer(
                "REGISTER",
                "sip:11010000002000000001@1101000000",
                "34020000002000000001",
                "pw",
                2,
            );
            let c = Credentials::parse(&answer).unwrap();
            assert_eq!(c.username, "34020000002000000001");
            assert!(c.verify("REGISTER", "pw"), "{answer}");
            assert!(!c.verify("REGISTER", "other"));
            if ch.qop_auth {
                assert_eq!(c.nc.as_deref(), Some("00000002"));
            }
            assert_eq!(answer.contains("opaque=\"xyz\""), offer.contains("opaque"));
        }
        assert!(Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256").is_none());
        assert!(Challenge::parse("Basic realm=\"r\"").is_none());
        assert!(Challenge::parse("Digest realm=\"r\"").is_none());
        assert!(
            Challenge::parse("Digest realm=r, nonce=n, stale=TRUE")
                .unwrap()
                .stale
        );
    }

    #[test]
    fn incomplete_or_foreign_headers_are_rejected() {
        for v in [
            "",
            "Basic dXNlcjpwYXNz",
            "Digest",
            "Digest username=\"a\", realm=\"b\"",
            "Digest ,,,,=,=\"",
        ] {
            assert!(Credentials::parse(v).is_none(), "{v}");
        }
    }

    #[test]
    fn debug_hides_the_response() {
        let c = Credentials::parse(
            "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"deadbeef\"",
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("deadbeef"));
    }

    #[test]
    fn nonces_are_checked_for_origin_and_age() {
        let signer = NonceSigner::new();
        let t0 = Utc.with_ymd_and_hms(2026, 12, 4, 19, 0, 0).unwrap();
        let n = signer.issue(t0);
        assert_ne!(n, signer.issue(t0));
        assert_eq!(signer.check(&n, t0), NonceCheck::Valid);
        let later = t0 + chrono::Duration::seconds(NONCE_LIFETIME_SECS + 1);
        assert_eq!(signer.check(&n, later), NonceCheck::Stale);
        assert_eq!(NonceSigner::new().check(&n, t0), NonceCheck::Forged);
        let mut tampered = n.clone().into_bytes();
        tampered[3] ^= 1;
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(signer.check(&tampered, t0), NonceCheck::Forged);
        for bad in ["", "short", "é".repeat(21).as_str()] {
            assert_eq!(signer.check(bad, t0), NonceCheck::Forged);
        }
        assert!(challenge("3402000000", &n, true).ends_with("stale=true"));
    }
}
