//! Alerts with the real binary: `kill -9` between storing an event and
//! delivering its alert ends, after a restart, with the alert delivered once;
//! the deliveries API shows every attempt; acknowledgement by signed link.

use anyhow::{Context, Result};
use std::time::Duration;
use xueliang_e2e::{config_header, free_port, wait_for, HttpReceiver, Xueliang};

fn config(dir: &std::path::Path, port: u16, hook_port: u16, camera_port: u16) -> String {
    format!(
        r#"{header}
[health]
offline_grace_s = 1
sample_interval_s = 1

{organisation}
[alerts]
ack_key = "e2e-ack-key-0123456789"
retry_initial_s = 0.5
retry_max_s = 1

[[alerts.routes]]
kinds = ["camera_offline"]

[[alerts.channels]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:{hook_port}/hook"
secret = "e2e-webhook-secret"

[[cameras]]
id = "gate"
name = "村口"
url = "rtsp://127.0.0.1:{camera_port}/nothing"
village = "东村"
grid = "东村一网格"
"#,
        header = config_header(dir, port, 0.5),
        organisation = xueliang_e2e::ONE_OFFICER
    )
}

#[test]
fn kill_9_between_storing_and_delivering_delivers_once_after_restart() -> Result<()> {
    // Checks answers and stored state, no timing: runs beside such tests.
    let _turn = xueliang_e2e::share_the_machine();
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let hook_port = free_port(); // nobody listens yet: the receiver is down
    let text = config(dir.path(), port, hook_port, free_port());
    let x = Xueliang::start(dir, port, &text, &[])?;

    // The camera is unreachable: a camera_offline event, stored with its outbox row.
    let event = wait_for(Duration::from_secs(30), || {
        Ok(x.all_events("&kind=camera_offline")?.pop())
    })?;
    let id = event["id"].as_i64().context("event id")?;
    // The dispatcher tried and failed (retriable): the attempts are recorded.
    let d = wait_for(Duration::from_secs(20), || {
        let v = x.get(&format!("/api/v1/events/{id}/deliveries"))?;
        let d = v["alert"]["deliveries"][0].clone();
        Ok((d["attempts"].as_i64().unwrap_or(0) >= 1).then_some(d))
    })?;
    assert_eq!(d["status"], "pending", "{d}");
    assert_eq!(d["attempt_log"][0]["outcome"], "retriable", "{d}");
    let key = d["idempotency_key"].as_str().context("key")?.to_owned();

    let dir = x.kill9();
    let receiver = HttpReceiver::start(hook_port, "{}")?;
    let x = Xueliang::restart(dir, port, &text)?;
    let delivered = wait_for(Duration::from_secs(30), || {
        let v = x.get(&format!("/api/v1/events/{id}/deliveries"))?;
        let d = v["alert"]["deliveries"][0].clone();
        Ok((d["status"] == "delivered").then_some(d))
    })?;
    // Give a duplicate every chance to show up.
    std::thread::sleep(Duration::from_secs(3));
    let for_event: Vec<_> = receiver
        .got()
        .into_iter()
        .filter(|r| r.json()["event_id"] == id)
        .collect();
    assert_eq!(for_event.len(), 1, "{for_event:?}");
    assert_eq!(for_event[0].header("idempotency-key"), Some(key.as_str()));
    assert!(for_event[0]
        .header("x-xueliang-signature")
        .is_some_and(|s| s.starts_with("sha256=")));
    assert!(
        delivered["attempts"].as_i64().unwrap_or(0) >= 2,
        "{delivered}"
    );
    assert!(x.log().contains("alert dispatcher running"));
    // Secrets never appear in the API or the log.
    let body = x
        .get(&format!("/api/v1/events/{id}/deliveries"))?
        .to_string();
    assert!(!body.contains("e2e-webhook-secret") && !body.contains("e2e-ack-key"));
    assert!(!x.log().contains("e2e-webhook-secret") && !x.log().contains("e2e-ack-key"));

    // Acknowledge with the signed link in the message.
    let ack_url = for_event[0].json()["ack_url"]
        .as_str()
        .context("ack_url")?
        .to_owned();
    // Opening it shows the alert and a confirm button; it changes nothing.
    let (status, _, page) = xueliang_e2e::http_get(&ack_url)?;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("确认收到"));
    let alert = &x.get(&format!("/api/v1/events/{id}/deliveries"))?["alert"];
    assert_eq!(alert["status"], "open", "{alert}");
    // The button posts to the same signed URL, without a token.
    let (status, _, _) = xueliang_e2e::http_request("POST", &ack_url, None, None)?;
    assert_eq!(status, 200);
    let alert = &x.get(&format!("/api/v1/events/{id}/deliveries"))?["alert"];
    assert_eq!(alert["status"], "acknowledged", "{alert}");
    assert_eq!(alert["acked_by"], "li");
    // A tampered link is refused.
    let tampered = ack_url.replace("officer=li", "officer=wang");
    assert_eq!(xueliang_e2e::http_get(&tampered)?.0, 403);
    assert_eq!(
        xueliang_e2e::http_request("POST", &tampered, None, None)?.0,
        403
    );
    // The organisation is readable.
    let org = x.get("/api/v1/organisation")?;
    assert_eq!(org["officers"][0]["id"], "li");
    Ok(())
}
