//! Signatures: the webhook's HMAC header, DingTalk's signed URL, and the
//! acknowledgement links.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The webhook signature header value: `sha256=<hex of HMAC(secret, "<timestamp>.<body>")>`.
pub fn webhook_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut msg = format!("{timestamp}.").into_bytes();
    msg.extend_from_slice(body);
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &msg))
    )
}

/// DingTalk's robot signature: base64(HMAC-SHA256(secret, "<timestamp_ms>\n<secret>")),
/// to be URL-encoded into the `sign` query parameter.
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    let msg = format!("{timestamp_ms}\n{secret}");
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(secret.as_bytes(), msg.as_bytes()))
}

/// The signature of an acknowledgement link for `alert_id` by `officer`.
pub fn ack_signature(key: &str, alert_id: i64, officer: &str) -> String {
    let msg = format!("ack:{alert_id}:{officer}");
    hex::encode(&hmac_sha256(key.as_bytes(), msg.as_bytes())[..16])
}

/// Checks an acknowledgement link's signature in constant time.
pub fn verify_ack(key: &str, alert_id: i64, officer: &str, sig: &str) -> bool {
    let Ok(given) = hex::decode(sig) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC accepts any key length");
    mac.update(format!("ack:{alert_id}:{officer}").as_bytes());
    mac.verify_truncated_left(&given).is_ok() && given.len() == 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn ack_links_verify_only_with_the_right_key_alert_and_officer() {
        let sig = ack_signature("k".repeat(16).as_str(), 7, "li");
        assert!(verify_ack(&"k".repeat(16), 7, "li", &sig));
        assert!(!verify_ack(&"x".repeat(16), 7, "li", &sig));
        assert!(!verify_ack(&"k".repeat(16), 8, "li", &sig));
        assert!(!verify_ack(&"k".repeat(16), 7, "wang", &sig));
        assert!(!verify_ack(&"k".repeat(16), 7, "li", "zz"));
        assert!(!verify_ack(&"k".repeat(16), 7, "li", &sig[..8]));
    }
}
