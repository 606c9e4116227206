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

/// What an acknowledgement link's signature covers: the alert, the officer
/// it was sent to and when it stops working (Unix seconds).
fn ack_message(alert_id: i64, officer: &str, expires: i64) -> String {
    format!("ack:{alert_id}:{officer}:{expires}")
}

/// The signature of an acknowledgement link for `alert_id` by `officer`,
/// valid until `expires` (Unix seconds).
pub fn ack_signature(key: &str, alert_id: i64, officer: &str, expires: i64) -> String {
    let msg = ack_message(alert_id, officer, expires);
    hex::encode(&hmac_sha256(key.as_bytes(), msg.as_bytes())[..16])
}

/// Checks an acknowledgement link's signature in constant time (not its
/// expiry: the caller compares `expires` with its clock).
pub fn verify_ack(key: &str, alert_id: i64, officer: &str, expires: i64, sig: &str) -> bool {
    let Ok(given) = hex::decode(sig) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC accepts any key length");
    mac.update(ack_message(alert_id, officer, expires).as_bytes());
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
    fn ack_links_verify_only_with_the_right_key_alert_officer_and_expiry() {
        let key = "k".repeat(16);
        let sig = ack_signature(&key, 7, "li", 1_700_000_000);
        assert!(verify_ack(&key, 7, "li", 1_700_000_000, &sig));
        assert!(!verify_ack(&"x".repeat(16), 7, "li", 1_700_000_000, &sig));
        assert!(!verify_ack(&key, 8, "li", 1_700_000_000, &sig));
        assert!(!verify_ack(&key, 7, "wang", 1_700_000_000, &sig));
        // A link whose expiry was moved is not the signed one.
        assert!(!verify_ack(&key, 7, "li", 1_800_000_000, &sig));
        assert!(!verify_ack(&key, 7, "li", 1_700_000_000, "zz"));
        assert!(!verify_ack(&key, 7, "li", 1_700_000_000, &sig[..8]));
    }
}
