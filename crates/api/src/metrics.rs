//! Prometheus metrics in text format, served on their own listener. Labels are
//! bounded: the camera id (from the config) and fixed words, never URLs or
//! error texts.

use crate::{AppState, CameraView};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::fmt::Write;
use xueliang_core::gb28181::{DeviceDirectory, GbUpstream, UpstreamState};
use xueliang_core::telemetry::{telemetry, HistogramSnapshot, Telemetry};
use xueliang_core::{CameraState, CameraStats, HwAccel};
use xueliang_store::OutboxDepth;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

const STATES: [CameraState; 5] = [
    CameraState::Connecting,
    CameraState::Online,
    CameraState::Degraded,
    CameraState::Offline,
    CameraState::Disabled,
];

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut body = render(&state.cameras.list());
    render_store(&mut body, &state);
    let depth = match &state.alerts {
        None => None,
        Some(alerts) => match alerts.store.outbox_depth().await {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(error = %e, "metrics: cannot read the alert outbox depth");
                None
            }
        },
    };
    render_process(&mut body, telemetry(), depth);
    render_media(&mut body, state.cameras.media_totals());
    if let Some(devices) = &state.devices {
        render_gb28181(&mut body, devices.as_ref());
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

/// One metric family: a header, then one line per camera.
fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    cams: &[CameraView],
    value: impl Fn(&CameraView) -> f64,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for c in cams {
        let _ = writeln!(out, "{name}{{camera=\"{}\"}} {}", c.config.id, value(c));
    }
}

/// The GB/T 28181 side: devices by state, then the SIP server's and the
/// media receivers' totals (no per-device labels: a township has hundreds).
fn render_gb28181(out: &mut String, directory: &dyn DeviceDirectory) {
    let devices = directory.devices();
    let online = devices.iter().filter(|d| d.online).count();
    let _ = writeln!(
        out,
        "# HELP xueliang_gb28181_devices GB/T 28181 devices known to the SIP server, by state.\n# TYPE xueliang_gb28181_devices gauge\nxueliang_gb28181_devices{{state=\"online\"}} {online}\nxueliang_gb28181_devices{{state=\"offline\"}} {}",
        devices.len() - online
    );
    let channels: usize = devices.iter().map(|d| d.channels.len()).sum();
    let _ = writeln!(
        out,
        "# HELP xueliang_gb28181_channels Channels in the devices' catalogs.\n# TYPE xueliang_gb28181_channels gauge\nxueliang_gb28181_channels {channels}"
    );
    for c in directory.counters() {
        let name = format!("xueliang_gb28181_{}_total", c.name);
        let _ = writeln!(
            out,
            "# HELP {name} {}\n# TYPE {name} counter\n{name} {}",
            c.help, c.value
        );
    }
    render_upstreams(out, &directory.upstreams());
}

/// The superior platforms we register to (cascade), labelled by their id:
/// a handful per centre at most.
fn render_upstreams(out: &mut String, upstreams: &[GbUpstream]) {
    if upstreams.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "# HELP xueliang_gb28181_upstream_state The registration to each superior platform: 1 for its current state.\n# TYPE xueliang_gb28181_upstream_state gauge"
    );
    for u in upstreams {
        for state in UpstreamState::ALL {
            let _ = writeln!(
                out,
                "xueliang_gb28181_upstream_state{{upstream=\"{}\",state=\"{}\"}} {}",
                u.id,
                state.as_str(),
                u8::from(u.state == state)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP xueliang_gb28181_upstream_streams Live video streams to each superior platform now.\n# TYPE xueliang_gb28181_upstream_streams gauge"
    );
    for u in upstreams {
        let _ = writeln!(
            out,
            "xueliang_gb28181_upstream_streams{{upstream=\"{}\"}} {}",
            u.id, u.streams
        );
    }
    type Pick = fn(&GbUpstream) -> u64;
    let totals: [(&str, &str, Pick); 9] = [
        (
            "registrations",
            "Successful registrations to the superior platform (first ones and refreshes).",
            |u| u.registrations,
        ),
        (
            "failures",
            "Failed registrations or lost links to the superior platform.",
            |u| u.failures,
        ),
        (
            "catalog_queries",
            "Catalog queries of the superior platform answered.",
            |u| u.catalog_queries,
        ),
        (
            "alarms_sent",
            "Alarms (MESSAGE Notify Alarm) the superior platform accepted.",
            |u| u.alarms_sent,
        ),
        (
            "alarms_failed",
            "Alarm attempts to the superior platform that failed (retried from the alert outbox).",
            |u| u.alarms_failed,
        ),
        (
            "catalog_notifies_sent",
            "Catalog NOTIFYs (catalog subscription) the superior platform accepted.",
            |u| u.catalog_notifies_sent,
        ),
        (
            "catalog_notifies_failed",
            "Catalog NOTIFYs to the superior platform that failed (their changes are sent again).",
            |u| u.catalog_notifies_failed,
        ),
        (
            "streams_refused",
            "Live video INVITEs of the superior platform refused.",
            |u| u.streams_refused,
        ),
        (
            "stream_bytes",
            "Bytes of live video sent to the superior platform (RTP).",
            |u| u.stream_bytes,
        ),
    ];
    for (name, help, pick) in totals {
        let name = format!("xueliang_gb28181_upstream_{name}_total");
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for u in upstreams {
            let _ = writeln!(out, "{name}{{upstream=\"{}\"}} {}", u.id, pick(u));
        }
    }
}

/// Live video (viewers now, bytes sent and viewers refused since start)
/// and event clips.
fn render_media(out: &mut String, live: crate::MediaTotals) {
    let _ = writeln!(
        out,
        "# HELP xueliang_live_viewers Live video viewers now.\n# TYPE xueliang_live_viewers gauge\nxueliang_live_viewers {}\n\
         # HELP xueliang_live_sent_bytes_total Live video bytes sent to viewers.\n# TYPE xueliang_live_sent_bytes_total counter\nxueliang_live_sent_bytes_total {}\n\
         # HELP xueliang_live_refused_total Live video requests refused by a viewer limit.\n# TYPE xueliang_live_refused_total counter\nxueliang_live_refused_total {}",
        live.viewers, live.bytes_sent, live.refused
    );
    let _ = writeln!(
        out,
        "# HELP xueliang_clips_written_total Event clips stored.\n# TYPE xueliang_clips_written_total counter\nxueliang_clips_written_total {}\n\
         # HELP xueliang_clip_bytes_total Bytes of the event clips stored.\n# TYPE xueliang_clip_bytes_total counter\nxueliang_clip_bytes_total {}\n\
         # HELP xueliang_clips_failed_total Event clips lost: dropped while the clip writer was behind, or failed to mux or store.\n# TYPE xueliang_clips_failed_total counter\nxueliang_clips_failed_total {}\n\
         # HELP xueliang_media_ring_bytes Bytes held in the cameras' rings of recent compressed video (live view's start, clips' pre-roll).\n# TYPE xueliang_media_ring_bytes gauge\nxueliang_media_ring_bytes {}",
        live.clips_written, live.clip_bytes, live.clips_failed, live.ring_bytes
    );
}

/// The store's health, and what retention removed since start.
fn render_store(out: &mut String, state: &AppState) {
    let _ = writeln!(
        out,
        "# HELP xueliang_store_degraded 1 while the store's writes fail (a full disk: they are retried).\n# TYPE xueliang_store_degraded gauge\nxueliang_store_degraded {}",
        state.store.health().current().is_some() as u8
    );
    let Some(r) = &state.retention else { return };
    let _ = writeln!(out, "# HELP xueliang_retention_removed_total Rows removed by retention and the disk budget.\n# TYPE xueliang_retention_removed_total counter");
    for (kind, n) in r.removed() {
        let _ = writeln!(
            out,
            "xueliang_retention_removed_total{{kind=\"{kind}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP xueliang_retention_reclaimed_bytes_total Bytes given back to the file system by retention.\n# TYPE xueliang_retention_reclaimed_bytes_total counter\nxueliang_retention_reclaimed_bytes_total {}",
        r.reclaimed_bytes()
    );
    let _ = writeln!(
        out,
        "# HELP xueliang_retention_passes_total Retention passes done.\n# TYPE xueliang_retention_passes_total counter\nxueliang_retention_passes_total {}",
        r.passes()
    );
    let _ = writeln!(
        out,
        "# HELP xueliang_store_disk_bytes The service's files (database, WAL, data directory) after the latest retention pass.\n# TYPE xueliang_store_disk_bytes gauge\nxueliang_store_disk_bytes {}",
        r.disk_bytes()
    );
    let _ = writeln!(
        out,
        "# HELP xueliang_store_over_budget 1 when the latest retention pass could not get under max_disk_gb.\n# TYPE xueliang_store_over_budget gauge\nxueliang_store_over_budget {}",
        r.over_budget() as u8
    );
}

pub fn render(cams: &[CameraView]) -> String {
    let mut out = String::with_capacity(256 + cams.len() * 1024);
    let get = |f: fn(&CameraStats) -> &std::sync::atomic::AtomicU64| {
        move |c: &CameraView| CameraStats::get(f(&c.stats)) as f64
    };
    family(
        &mut out,
        "xueliang_camera_up",
        "gauge",
        "1 while the camera delivers video (online or degraded).",
        cams,
        |c| c.health.borrow().state.delivers_video() as u8 as f64,
    );
    let _ = writeln!(out, "# HELP xueliang_camera_state The camera's state (1 for the current one).\n# TYPE xueliang_camera_state gauge");
    for c in cams {
        let current = c.health.borrow().state;
        for s in STATES {
            let _ = writeln!(
                out,
                "xueliang_camera_state{{camera=\"{}\",state=\"{}\"}} {}",
                c.config.id,
                s.as_str(),
                (s == current) as u8
            );
        }
    }
    let _ = writeln!(out, "# HELP xueliang_camera_decoder Where the camera's video is decoded (1 for the current one): hwaccel=\"none\" is software.\n# TYPE xueliang_camera_decoder gauge");
    for c in cams {
        let current = c.stats.hardware_decoding();
        for device in std::iter::once(None).chain(HwAccel::ALL.map(Some)) {
            let _ = writeln!(
                out,
                "xueliang_camera_decoder{{camera=\"{}\",hwaccel=\"{}\"}} {}",
                c.config.id,
                device.map_or("none", HwAccel::as_str),
                (device == current) as u8
            );
        }
    }
    family(
        &mut out,
        "xueliang_camera_fps",
        "gauge",
        "Frames per second received (10 s window).",
        cams,
        |c| c.health.borrow().fps,
    );
    family(
        &mut out,
        "xueliang_camera_detection_fps",
        "gauge",
        "Detections per second achieved (10 s window).",
        cams,
        |c| c.health.borrow().detection_fps,
    );
    family(
        &mut out,
        "xueliang_camera_frames_received_total",
        "counter",
        "Encoded frames received.",
        cams,
        get(|s| &s.frames_received),
    );
    family(
        &mut out,
        "xueliang_camera_received_bytes_total",
        "counter",
        "Bytes of encoded video received.",
        cams,
        get(|s| &s.bytes_received),
    );
    family(
        &mut out,
        "xueliang_camera_lost_packets_total",
        "counter",
        "RTP packets lost.",
        cams,
        get(|s| &s.lost_packets),
    );
    family(
        &mut out,
        "xueliang_camera_reconnects_total",
        "counter",
        "Sessions started after the first.",
        cams,
        get(|s| &s.reconnects),
    );
    family(
        &mut out,
        "xueliang_camera_decode_errors_total",
        "counter",
        "Packets the decoder rejected.",
        cams,
        get(|s| &s.decode_errors),
    );
    family(
        &mut out,
        "xueliang_camera_frames_detected_total",
        "counter",
        "Frames the detector ran on.",
        cams,
        get(|s| &s.frames_detected),
    );
    family(
        &mut out,
        "xueliang_camera_idle",
        "gauge",
        "1 while the camera is idle (no motion, nothing tracked): key frames only are decoded.",
        cams,
        |c| c.stats.idle() as u8 as f64,
    );
    family(
        &mut out,
        "xueliang_camera_frames_skipped_idle_total",
        "counter",
        "Encoded frames never decoded because the camera was idle.",
        cams,
        get(|s| &s.frames_skipped_idle),
    );
    family(
        &mut out,
        "xueliang_camera_detection_reduced",
        "gauge",
        "1 while the camera's objects are settled and far from its zones and lines: detection at min_fps.",
        cams,
        |c| (c.stats.need.need() == xueliang_core::DetectionNeed::Reduced) as u8 as f64,
    );
    family(
        &mut out,
        "xueliang_camera_frames_reduced_total",
        "counter",
        "Frames the full detection rate would have shown the model and the reduced rate did not.",
        cams,
        get(|s| &s.frames_reduced),
    );
    family(
        &mut out,
        "xueliang_camera_frames_woken_by_motion_total",
        "counter",
        "Frames shown to the model at a reduced need because something moved outside the tracked objects.",
        cams,
        get(|s| &s.frames_woken_by_motion),
    );
    family(
        &mut out,
        "xueliang_camera_regions_detected_total",
        "counter",
        "Regions of detected frames the model looked at besides the whole frame (region detection).",
        cams,
        get(|s| &s.regions_detected),
    );
    family(
        &mut out,
        "xueliang_camera_key_frame_wakes_total",
        "counter",
        "Times the idle camera woke because its key frames changed (motion its frame sizes did not show).",
        cams,
        get(|s| &s.key_frame_wakes),
    );
    let seconds = |f: fn(&CameraStats) -> &std::sync::atomic::AtomicU64| {
        move |c: &CameraView| CameraStats::get(f(&c.stats)) as f64 / 1e9
    };
    family(
        &mut out,
        "xueliang_camera_decode_cpu_seconds_total",
        "counter",
        "CPU time its decode thread spent inside the video decoder for the camera.",
        cams,
        seconds(|s| &s.decode_cpu_ns),
    );
    family(
        &mut out,
        "xueliang_camera_convert_cpu_seconds_total",
        "counter",
        "CPU time its decode thread spent converting the camera's pictures (copy for the picture checks, scaling to the model input).",
        cams,
        seconds(|s| &s.convert_cpu_ns),
    );
    let _ = writeln!(
        out,
        "# HELP xueliang_camera_frames_dropped_total Frames dropped because a stage was behind.\n# TYPE xueliang_camera_frames_dropped_total counter"
    );
    for c in cams {
        for (stage, n) in [
            ("decode", &c.stats.frames_dropped_decode),
            ("detect", &c.stats.frames_dropped_detect),
        ] {
            let _ = writeln!(
                out,
                "xueliang_camera_frames_dropped_total{{camera=\"{}\",stage=\"{stage}\"}} {}",
                c.config.id,
                CameraStats::get(n)
            );
        }
    }
    out
}

/// The metrics that are not a camera's: latencies, failed logins, alert
/// deliveries by channel and what waits in the alert outbox (`depth`:
/// `None` when the alerts stage is not running).
pub fn render_process(out: &mut String, t: &Telemetry, depth: Option<OutboxDepth>) {
    histogram(
        out,
        "xueliang_inference_seconds",
        "Time of the model on one frame (a frame's share of a batched run).",
        &t.inference_seconds.snapshot(),
    );
    let _ = writeln!(
        out,
        "# HELP xueliang_inference_runs_total Model runs; frames per run = xueliang_inference_seconds_count / this.\n# TYPE xueliang_inference_runs_total counter\nxueliang_inference_runs_total {}",
        t.inference_runs.load(std::sync::atomic::Ordering::Relaxed)
    );
    histogram(
        out,
        "xueliang_store_write_seconds",
        "Time of one event write (event, update, end, line crossing), retries included.",
        &t.store_write_seconds.snapshot(),
    );
    let _ = writeln!(
        out,
        "# HELP xueliang_login_failures_total Logins refused for a wrong user name or password.\n# TYPE xueliang_login_failures_total counter\nxueliang_login_failures_total {}",
        t.login_failures.load(std::sync::atomic::Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP xueliang_alert_delivery_attempts_total Attempts to send an alert, by channel and outcome (delivered, retried: failed and tried again, failed: given up).\n# TYPE xueliang_alert_delivery_attempts_total counter"
    );
    for (channel, c) in t.deliveries() {
        let channel = channel.replace('\\', "\\\\").replace('"', "\\\"");
        for (outcome, n) in [
            ("delivered", c.delivered),
            ("retried", c.retried),
            ("failed", c.failed),
        ] {
            let _ = writeln!(
                out,
                "xueliang_alert_delivery_attempts_total{{channel=\"{channel}\",outcome=\"{outcome}\"}} {n}"
            );
        }
    }
    if let Some(d) = depth {
        let _ = writeln!(
            out,
            "# HELP xueliang_alert_outbox_depth What waits in the alert outbox: events not yet routed, deliveries not yet sent.\n# TYPE xueliang_alert_outbox_depth gauge\nxueliang_alert_outbox_depth{{kind=\"events\"}} {}\nxueliang_alert_outbox_depth{{kind=\"deliveries\"}} {}",
            d.events, d.deliveries
        );
    }
}

/// One histogram in Prometheus text: cumulative buckets, `+Inf`, sum, count.
fn histogram(out: &mut String, name: &str, help: &str, h: &HistogramSnapshot) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (bound, n) in &h.buckets {
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum {}", h.sum_seconds);
    let _ = writeln!(out, "{name}_count {}", h.count);
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use xueliang_core::gb28181::{CatalogError, GbChannel, GbCounter, GbDevice};

    struct Directory(Vec<GbDevice>);

    impl DeviceDirectory for Directory {
        fn devices(&self) -> Vec<GbDevice> {
            self.0.clone()
        }
        fn query_catalog(&self, _: &str) -> BoxFuture<'_, Result<(), CatalogError>> {
            Box::pin(async { Ok(()) })
        }
        fn counters(&self) -> Vec<GbCounter> {
            vec![GbCounter {
                name: "sip_keepalives".into(),
                help: "Keepalives received.",
                value: 42,
            }]
        }
        fn upstreams(&self) -> Vec<GbUpstream> {
            vec![GbUpstream {
                id: "11010000002000000001".into(),
                address: "10.1.2.3:5060".into(),
                transport: "udp".into(),
                local_id: "34020000002000000001".into(),
                state: UpstreamState::Failed,
                since: chrono::Utc::now(),
                last_error: Some("403 Forbidden".into()),
                registered_until: None,
                last_keepalive: None,
                registrations: 4,
                failures: 2,
                catalog_queries: 1,
                alarms_sent: 7,
                alarms_failed: 3,
                catalog_notifies_sent: 5,
                catalog_notifies_failed: 1,
                streams: 2,
                streams_refused: 3,
                stream_bytes: 4096,
            }]
        }
    }

    fn device(id: &str, online: bool, channels: usize) -> GbDevice {
        GbDevice {
            id: id.into(),
            name: None,
            online,
            reason: None,
            address: None,
            transport: None,
            registered_at: None,
            expires_at: None,
            last_keepalive: None,
            catalog_at: None,
            channels: (0..channels)
                .map(|i| GbChannel {
                    id: format!("{id}-{i}"),
                    name: None,
                    manufacturer: None,
                    model: None,
                    status: None,
                    camera_id: None,
                })
                .collect(),
        }
    }

    #[test]
    fn gb28181_devices_by_state_and_counters_as_totals() {
        let directory = Directory(vec![
            device("34020000001320000001", true, 2),
            device("34020000001320000002", false, 1),
            device("34020000001320000003", true, 0),
        ]);
        let mut out = String::new();
        render_gb28181(&mut out, &directory);
        let lines: Vec<&str> = out.lines().collect();
        for want in [
            "xueliang_gb28181_devices{state=\"online\"} 2",
            "xueliang_gb28181_devices{state=\"offline\"} 1",
            "xueliang_gb28181_channels 3",
            "# TYPE xueliang_gb28181_sip_keepalives_total counter",
            "# HELP xueliang_gb28181_sip_keepalives_total Keepalives received.",
            "xueliang_gb28181_sip_keepalives_total 42",
            "xueliang_gb28181_upstream_state{upstream=\"11010000002000000001\",state=\"failed\"} 1",
            "xueliang_gb28181_upstream_state{upstream=\"11010000002000000001\",state=\"registered\"} 0",
            "xueliang_gb28181_upstream_registrations_total{upstream=\"11010000002000000001\"} 4",
            "xueliang_gb28181_upstream_failures_total{upstream=\"11010000002000000001\"} 2",
            "# TYPE xueliang_gb28181_upstream_catalog_queries_total counter",
            "xueliang_gb28181_upstream_alarms_sent_total{upstream=\"11010000002000000001\"} 7",
            "xueliang_gb28181_upstream_alarms_failed_total{upstream=\"11010000002000000001\"} 3",
            "xueliang_gb28181_upstream_catalog_notifies_sent_total{upstream=\"11010000002000000001\"} 5",
            "xueliang_gb28181_upstream_catalog_notifies_failed_total{upstream=\"11010000002000000001\"} 1",
            "xueliang_gb28181_upstream_streams{upstream=\"11010000002000000001\"} 2",
            "xueliang_gb28181_upstream_streams_refused_total{upstream=\"11010000002000000001\"} 3",
            "xueliang_gb28181_upstream_stream_bytes_total{upstream=\"11010000002000000001\"} 4096",
        ] {
            assert!(lines.contains(&want), "missing {want:?} in\n{out}");
        }
        assert!(
            !out.contains("34020000001320000001"),
            "no device ids as labels"
        );
        assert!(!out.contains("403"), "no error strings as labels");
    }
}
