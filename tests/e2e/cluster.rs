//! Three real `xueliang serve` nodes on the real PostgreSQL and the real
//! RTSP server (#17): the cameras spread, a node started later takes its
//! share, `kill -9` of a node puts its cameras on the others within the
//! lease time, a node cut off from the database (its connection
//! black-holed) stops its cameras before its leases expire. Every node's
//! log says when it started and stopped each camera; the test checks from
//! those that no two nodes ever ran one camera at the same moment, and from
//! the shared database that no event was lost or written twice and that
//! each alert was delivered once.

use anyhow::{Context, Result};
use chrono::DateTime;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};
use xueliang_e2e::live::watch;
use xueliang_e2e::proxy::TcpProxy;
use xueliang_e2e::{
    browser, config_header, fixture, free_port, wait_for, HttpReceiver, RtspServer, Xueliang,
    ADMIN, ADMIN_PASSWORD,
};
use xueliang_store::testing::TestDatabase;
use xueliang_store::PgStore;

const LEASE_S: f64 = 3.0;
const COOLDOWN_S: f64 = 5.0;
const WALKERS: [&str; 4] = ["walk1", "walk2", "walk3", "walk4"];
const DEAD: [&str; 2] = ["dead1", "dead2"];

fn node_config(
    dir: &std::path::Path,
    port: u16,
    node: &str,
    database: &str,
    rtsp: &RtspServer,
    hook_port: u16,
) -> String {
    let header = config_header(dir, port, 0.5).replacen(
        "[storage]\n",
        &format!("[storage]\nurl = \"{database}\"\n"),
        1,
    );
    let mut text = format!(
        r#"{header}
[cluster]
node_id = "{node}"
lease_s = {LEASE_S}
api_url = "http://127.0.0.1:{port}"

[detection]
fps = 2
labels = ["person"]
min_score = 0.5
cooldown_s = {COOLDOWN_S}
lost_after_s = 2

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
"#,
        organisation = xueliang_e2e::ONE_OFFICER
    );
    // The same cameras in every node's config, as one ConfigMap gives them.
    for id in WALKERS.iter().chain(&DEAD) {
        text.push_str(&format!(
            "\n[[cameras]]\nid = \"{id}\"\nname = \"{id}\"\nurl = \"{}\"\nvillage = \"东村\"\ngrid = \"东村一网格\"\n",
            rtsp.url(id)
        ));
    }
    text
}

fn start_node(
    id: &'static str,
    database: &str,
    rtsp: &RtspServer,
    hook_port: u16,
    first: bool,
) -> Result<Xueliang> {
    let dir = tempfile::tempdir()?;
    if !first {
        // The admin is in the shared database already (made by the first node).
        std::fs::write(dir.path().join("admin-created"), "")?;
    }
    let port = free_port();
    let text = node_config(dir.path(), port, id, database, rtsp, hook_port);
    Xueliang::start_with_args(dir, port, &text, &[], &["--log-format", "json"])
}

/// Who holds which camera, as `GET /api/v1/cluster` on `x` says.
fn holders(x: &Xueliang) -> Result<BTreeMap<String, String>> {
    let c = x.get("/api/v1/cluster")?;
    let mut out = BTreeMap::new();
    for n in c["nodes"].as_array().context("nodes")? {
        for cam in n["cameras"].as_array().context("cameras")? {
            out.insert(
                cam.as_str().context("id")?.to_owned(),
                n["node_id"].as_str().context("node_id")?.to_owned(),
            );
        }
    }
    Ok(out)
}

fn counts(h: &BTreeMap<String, String>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for node in h.values() {
        *out.entry(node.clone()).or_default() += 1;
    }
    out
}

/// Waits until every camera is held and the nodes hold `want` each.
fn wait_spread(x: &Xueliang, want: &[(&str, usize)], limit: Duration) -> Result<Duration> {
    let t0 = Instant::now();
    let want: BTreeMap<String, usize> = want.iter().map(|(n, c)| (n.to_string(), *c)).collect();
    wait_for(limit, || {
        let h = holders(x)?;
        Ok((h.len() == WALKERS.len() + DEAD.len() && counts(&h) == want).then_some(()))
    })
    .with_context(|| format!("cameras never spread as {want:?}: {:?}", holders(x)))?;
    Ok(t0.elapsed())
}

/// A camera started (true) or stopped (false) by a node, from its log, in
/// ms since the epoch.
#[derive(Debug, Clone)]
struct Turn {
    at: i64,
    camera: String,
    start: bool,
}

fn turns(log: &str) -> Vec<Turn> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            let start = match v["fields"]["message"].as_str()? {
                "starting camera (lease taken)" => true,
                "camera stopped (lease given up)" => false,
                _ => return None,
            };
            let at = DateTime::parse_from_rfc3339(v["timestamp"].as_str()?).ok()?;
            Some(Turn {
                at: at.timestamp_millis(),
                camera: v["fields"]["camera"].as_str()?.to_owned(),
                start,
            })
        })
        .collect()
}

/// Each node's running intervals per camera: from the log line before the
/// camera starts to the line after it stopped (so they cover the real
/// runs); a camera still running ends at `end` (the kill, or now).
fn intervals(turns: &[Turn], end: i64) -> HashMap<String, Vec<(i64, i64)>> {
    let mut open: HashMap<String, i64> = HashMap::new();
    let mut out: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for t in turns {
        if t.start {
            open.insert(t.camera.clone(), t.at);
        } else if let Some(s) = open.remove(&t.camera) {
            out.entry(t.camera.clone()).or_default().push((s, t.at));
        }
    }
    for (camera, s) in open {
        out.entry(camera).or_default().push((s, end));
    }
    out
}

fn ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn three_nodes_share_cameras_survive_kill_and_partition_without_overlap() -> Result<()> {
    // Measures handover times: takes the machine alone.
    let rt = tokio::runtime::Runtime::new()?;
    let db = rt.block_on(TestDatabase::create());
    let clip = fixture("vtest-h264.mp4");
    let mut args: Vec<String> = vec!["--loop".into()];
    for id in WALKERS {
        args.push("--mount".into());
        args.push(format!("{id}={}", clip.display()));
    }
    let rtsp = RtspServer::start(&args)?;
    let hook_port = free_port();
    let receiver = HttpReceiver::start(hook_port, "{}")?;
    // Node b reaches the database through a proxy the test can cut.
    let pg_port: u16 = db
        .url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .context("port in the test database URL")?
        .parse()?;
    let proxy = TcpProxy::start(pg_port)?;
    let b_url = db
        .url
        .replacen(&format!(":{pg_port}/"), &format!(":{}/", proxy.port), 1);

    // Two nodes: 3 cameras each.
    let a = start_node("a", &db.url, &rtsp, hook_port, true)?;
    wait_spread(&a, &[("a", 6)], Duration::from_secs(30))?;
    let b = start_node("b", &b_url, &rtsp, hook_port, false)?;
    let t = wait_spread(&a, &[("a", 3), ("b", 3)], Duration::from_secs(30))?;
    eprintln!(
        "cluster: b took its share (3 of 6) {:.1} s after answering",
        t.as_secs_f64()
    );

    // A third node takes its share, two, gradually.
    let c = start_node("c", &db.url, &rtsp, hook_port, false)?;
    let t = wait_spread(&a, &[("a", 2), ("b", 2), ("c", 2)], Duration::from_secs(30))?;
    eprintln!(
        "cluster: c took its share (2 of 6) {:.1} s after answering",
        t.as_secs_f64()
    );
    let status = c.get("/api/v1/cluster")?;
    assert_eq!(status["clustered"], true, "{status}");
    assert_eq!(status["this_node"], "c", "{status}");
    assert_eq!(status["unassigned"], serde_json::json!([]), "{status}");
    let live: Vec<_> = status["nodes"]
        .as_array()
        .context("nodes")?
        .iter()
        .filter(|n| n["live"] == true)
        .collect();
    assert_eq!(live.len(), 3, "{status}");
    // A camera another node runs is listed here with its runner and the
    // state its runner last sampled (online: the stream plays there).
    let (elsewhere, runner) = holders(&c)?
        .into_iter()
        .find(|(cam, n)| n != "c" && WALKERS.contains(&cam.as_str()))
        .context("a walker of another node")?;
    let h = wait_for(Duration::from_secs(20), || {
        let h = c.health(&elsewhere)?;
        let named = h["detail"]
            .as_str()
            .is_some_and(|d| d.ends_with(&format!("run by node \"{runner}\" of the cluster")));
        Ok((named && h["state"] == "online").then_some(h))
    })?;
    assert_eq!(h["frames_received"], 0, "{h}");
    // An offline camera run elsewhere shows its runner's reason.
    let (dead, dead_runner) = holders(&c)?
        .into_iter()
        .find(|(cam, n)| n != "c" && DEAD.contains(&cam.as_str()))
        .context("an offline camera of another node")?;
    let h = wait_for(Duration::from_secs(20), || {
        let h = c.health(&dead)?;
        Ok((h["state"] == "offline").then_some(h))
    })?;
    assert_eq!(h["reason"], "not_found", "{h}");
    let detail = h["detail"].as_str().unwrap_or_default();
    assert!(
        detail.ends_with(&format!("run by node \"{dead_runner}\" of the cluster")),
        "{h}"
    );
    // Its newest frame and live video, asked here, come from its runner.
    let (status, ctype, jpeg) = c.get_bytes(&format!("/api/v1/cameras/{elsewhere}/frame.jpg"))?;
    assert_eq!(
        (status, ctype.as_str()),
        (200, "image/jpeg"),
        "{}",
        String::from_utf8_lossy(&jpeg)
    );
    assert!(jpeg.starts_with(&[0xff, 0xd8]), "not a JPEG");
    let url = format!("{}/api/v1/cameras/{elsewhere}/live.mp4", c.base);
    let w = watch(&url, &c.token, Duration::from_secs(3))?;
    assert_eq!(w.status, 200, "{}", String::from_utf8_lossy(&w.body));
    assert!(
        w.content_type.starts_with("video/mp4"),
        "{}",
        w.content_type
    );
    assert_eq!(
        w.body.get(4..8),
        Some(&b"ftyp"[..]),
        "the stream starts with its init segment"
    );
    assert!(
        w.body.windows(4).any(|b| b == b"moof"),
        "no media segment in 3 s"
    );
    // A camera nobody runs is not forwarded: the usual 404.
    let (status, _, _) = c.get_bytes("/api/v1/cameras/nope/frame.jpg")?;
    assert_eq!(status, 404);
    // A change made through a node that does not run the camera reaches
    // the one that does (an offline camera: a walker's restart would reset
    // its event cooldown, which the checks below rely on).
    let (changed, owner) = holders(&c)?
        .into_iter()
        .find(|(cam, n)| n != "c" && DEAD.contains(&cam.as_str()))
        .context("an offline camera of another node")?;
    let owner = if owner == "a" { &a } else { &b };
    let patch = serde_json::json!({"name": "村口东"});
    let (status, body) = c.call("PATCH", &format!("/api/v1/cameras/{changed}"), Some(&patch))?;
    assert_eq!(status, 200, "{body}");
    wait_for(Duration::from_secs(10), || {
        let cam = owner.get(&format!("/api/v1/cameras/{changed}"))?;
        Ok((cam["name"] == "村口东").then_some(()))
    })
    .context("the camera's runner never saw the change")?;

    // Let events and alerts happen on every node.
    wait_for(Duration::from_secs(60), || {
        let got = a.all_events("&kind=camera_offline")?;
        let persons = a.all_events("&label=person")?;
        Ok((got.len() >= 2 && persons.len() >= 3).then_some(()))
    })?;
    let before_kill: HashSet<i64> = a
        .all_events("")?
        .iter()
        .filter_map(|e| e["id"].as_i64())
        .collect();

    // kill -9 c: its cameras run elsewhere within the lease time.
    let c_cameras: Vec<String> = holders(&a)?
        .into_iter()
        .filter(|(_, n)| n == "c")
        .map(|(cam, _)| cam)
        .collect();
    let c_log = c.log();
    let killed_at = ms(std::time::SystemTime::now());
    let t0 = Instant::now();
    let _c_dir = c.kill9();
    wait_spread(&a, &[("a", 3), ("b", 3)], Duration::from_secs(20))?;
    let taken = t0.elapsed();
    for cam in c_cameras.iter().filter(|c| WALKERS.contains(&c.as_str())) {
        let holder = holders(&a)?[cam].clone();
        let node = if holder == "a" { &a } else { &b };
        wait_for(Duration::from_secs(20), || {
            Ok((node.health(cam)?["state"] == "online").then_some(()))
        })?;
    }
    let running = t0.elapsed();
    eprintln!(
        "cluster: kill -9 of c ({c_cameras:?}): leases taken {:.1} s, streams online {:.1} s after (lease {LEASE_S} s)",
        taken.as_secs_f64(),
        running.as_secs_f64()
    );
    assert!(
        taken.as_secs_f64() < LEASE_S + 2.0,
        "c's cameras were taken {taken:?} after the kill (lease {LEASE_S} s)"
    );
    let status = a.get("/api/v1/cluster")?;
    let dead = status["nodes"]
        .as_array()
        .context("nodes")?
        .iter()
        .find(|n| n["node_id"] == "c")
        .context("c is listed")?;
    assert_eq!(dead["live"], false, "{status}");
    assert_eq!(dead["cameras"], serde_json::json!([]), "{status}");
    // The same on the dashboard's cameras page, in a real browser.
    browser::run_script(
        &a,
        "cluster.mjs",
        ADMIN,
        ADMIN_PASSWORD,
        &[("XUELIANG_LIVE_NODES", "a,b"), ("XUELIANG_LOST_NODE", "c")],
    )?;

    // Cut b off the database: it stops its cameras before its leases
    // expire, and a takes them after. Nothing b sends reaches the database
    // once cut, so the leases as read now are b's last.
    let b_cameras: Vec<String> = holders(&a)?
        .into_iter()
        .filter(|(_, n)| n == "b")
        .map(|(cam, _)| cam)
        .collect();
    let cut_at = ms(std::time::SystemTime::now());
    proxy.set_cut(true);
    let expiry: HashMap<String, i64> = rt.block_on(async {
        let pg = PgStore::open(&db.url).await?;
        let leases = pg.leases().await?;
        Ok::<_, anyhow::Error>(
            leases
                .into_iter()
                .filter(|l| l.node_id == "b")
                .map(|l| (l.camera_id, l.expires_at))
                .collect(),
        )
    })?;
    wait_spread(&a, &[("a", 6)], Duration::from_secs(20))?;
    let b_turns = turns(&b.log());
    for cam in &b_cameras {
        let stop = b_turns
            .iter()
            .find(|t| !t.start && &t.camera == cam && t.at >= cut_at)
            .with_context(|| format!("b never stopped {cam} after the cut"))?;
        let expires = expiry[cam];
        eprintln!(
            "cluster: b cut off: stopped {cam} {} ms after the cut, {} ms before its lease expired",
            stop.at - cut_at,
            expires - stop.at
        );
        assert!(
            stop.at < expires,
            "b stopped {cam} at {}, after its lease expired at {expires}",
            stop.at
        );
    }

    // Mended: b comes back and takes its share again.
    proxy.set_cut(false);
    let t = wait_spread(&a, &[("a", 3), ("b", 3)], Duration::from_secs(40))?;
    eprintln!(
        "cluster: b mended, back to 3 of 6 in {:.1} s",
        t.as_secs_f64()
    );
    // Events keep coming on the cameras that moved.
    let resumed_at = ms(std::time::SystemTime::now());
    std::thread::sleep(Duration::from_secs(8));

    // Never two nodes on one camera, at any moment of the run.
    let end = ms(std::time::SystemTime::now());
    let logs = [
        ("a", intervals(&turns(&a.log()), end)),
        ("b", intervals(&turns(&b.log()), end)),
        ("c", intervals(&turns(&c_log), killed_at)),
    ];
    for cam in WALKERS.iter().chain(&DEAD) {
        let mut runs: Vec<(i64, i64, &str)> = logs
            .iter()
            .flat_map(|(node, m)| {
                m.get(*cam)
                    .into_iter()
                    .flatten()
                    .map(move |(s, e)| (*s, *e, *node))
            })
            .collect();
        runs.sort();
        assert!(!runs.is_empty(), "{cam} never ran");
        for w in runs.windows(2) {
            assert!(
                w[0].1 <= w[1].0,
                "{cam} ran on {} and {} at once: {runs:?}",
                w[0].2,
                w[1].2
            );
        }
    }

    // Nothing stored was lost; nothing was written twice.
    let events = a.all_events("")?;
    let ids: HashSet<i64> = events.iter().filter_map(|e| e["id"].as_i64()).collect();
    assert!(before_kill.is_subset(&ids), "events lost after the kill");
    let starts_of = |cam: &str| -> Vec<i64> {
        let mut s: Vec<i64> = logs
            .iter()
            .flat_map(|(_, m)| m.get(cam).into_iter().flatten().map(|(s, _)| *s))
            .collect();
        s.sort();
        s
    };
    for cam in WALKERS {
        let mut persons: Vec<i64> = events
            .iter()
            .filter(|e| e["camera_id"] == cam && e["label"] == "person")
            .filter_map(|e| DateTime::parse_from_rfc3339(e["started_at"].as_str()?).ok())
            .map(|t| t.timestamp_millis())
            .collect();
        persons.sort();
        // One runner keeps the cooldown between its events; two events
        // closer than that come from two runners, allowed only across a
        // handover.
        let takes = starts_of(cam);
        for w in persons.windows(2) {
            if w[1] - w[0] < (COOLDOWN_S * 1000.0) as i64 - 1 {
                assert!(
                    takes.iter().any(|t| w[0] <= *t && *t <= w[1]),
                    "{cam}: two events {} ms apart without a handover between: {persons:?}, takes {takes:?}",
                    w[1] - w[0]
                );
            }
        }
        // Whatever a previous runner left open was ended when the camera was taken.
        let last_take = *takes.last().context("taken")?;
        for e in events.iter().filter(|e| e["camera_id"] == cam) {
            let started = DateTime::parse_from_rfc3339(e["started_at"].as_str().unwrap_or(""))?
                .timestamp_millis();
            if started < last_take {
                assert!(!e["ended_at"].is_null(), "{cam}: left open: {e}");
            }
        }
    }
    // The cameras that moved have events from their new runners.
    let moved_walkers: Vec<&str> = WALKERS
        .iter()
        .copied()
        .filter(|c| c_cameras.iter().chain(&b_cameras).any(|m| m == c))
        .collect();
    wait_for(Duration::from_secs(30), || {
        let fresh = a.all_events("&label=person")?;
        Ok(moved_walkers
            .iter()
            .all(|cam| {
                fresh.iter().any(|e| {
                    e["camera_id"] == *cam
                        && DateTime::parse_from_rfc3339(e["started_at"].as_str().unwrap_or(""))
                            .is_ok_and(|t| t.timestamp_millis() > resumed_at - 8_000)
                })
            })
            .then_some(()))
    })
    .context("a moved camera has no event from its new runner")?;

    // Each alert delivered once, whichever node led the dispatch. A
    // camera's offline events while its alert is open (each new runner
    // opens one) merge into that alert: one message per alert.
    let offline: Vec<i64> = a
        .all_events("&kind=camera_offline")?
        .iter()
        .filter_map(|e| e["id"].as_i64())
        .collect();
    assert!(offline.len() >= 2, "{offline:?}");
    let mut keys: HashSet<String> = HashSet::new();
    for id in &offline {
        let d = wait_for(Duration::from_secs(30), || {
            let v = a.get(&format!("/api/v1/events/{id}/deliveries"))?;
            let d = v["alert"]["deliveries"][0].clone();
            Ok((d["status"] == "delivered").then_some(d))
        })
        .with_context(|| format!("event {id}'s alert was never delivered"))?;
        keys.insert(d["idempotency_key"].as_str().context("key")?.to_owned());
    }
    std::thread::sleep(Duration::from_secs(2));
    let mut sent: HashMap<String, usize> = HashMap::new();
    for r in receiver.got() {
        *sent
            .entry(r.header("idempotency-key").unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    for key in &keys {
        assert_eq!(sent.get(key), Some(&1), "alert {key} sent: {sent:?}");
    }
    assert_eq!(sent.len(), keys.len(), "{sent:?} for {keys:?}");
    eprintln!(
        "cluster: {} events; {} offline events in {} alerts, each delivered once",
        events.len(),
        offline.len(),
        keys.len()
    );
    drop(a);
    drop(b);
    drop(db);
    Ok(())
}
