//! Recordings upward with sipp as the superior platform: it searches a
//! channel's recordings (RecordInfo; the answer, parsed, lists the event
//! clips in the window), plays one back (INVITE `s=Playback` with `t=`):
//! the test receives the RTP, strips it and pipes the PS to
//! `ffmpeg -f mpeg -i - -f null -`, which must decode frames, sent in real
//! time; at the end sipp must get MESSAGE MediaStatus 121 in the call
//! (its scenario fails without it) and hangs up. A window with no clip
//! gets 404, and so does a record query for a channel not in the catalog.
//! The clips are the footage fixture's units through the same
//! [`RecordedClips`] seam the pipeline implements over the event store.

use crate::cascade_video::{
    clip, decoded_frames, link, receive_udp, received, registered, Shared, CHANNEL, RUNNING,
};
use crate::common::{self, superior_record_query, Server, SUPERIOR};
use anyhow::{ensure, Context, Result};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::Instant;
use xueliang_core::{LiveUnit, RecordedClip, RecordedClips, RecordedClipsError, VideoCodec};
use xueliang_gb28181::sip::charset;
use xueliang_gb28181::sip::manscdp::{self, Root};

/// Units per clip: 2.5 s of the 10 fps footage (a 2 s GOP and a bit).
const UNITS: usize = 25;

/// Two clips of [`RUNNING`], ten minutes apart, starting at `t0`.
struct Recordings {
    t0: DateTime<Utc>,
}

impl Recordings {
    fn clips(&self) -> Vec<RecordedClip> {
        let fps = clip(VideoCodec::H264).fps;
        let length = chrono::Duration::milliseconds((UNITS as f64 / fps * 1000.0) as i64);
        (0..2)
            .map(|n| {
                let start = self.t0 + chrono::Duration::minutes(10 * n);
                RecordedClip {
                    event_id: 100 + n,
                    camera_id: RUNNING.into(),
                    name: format!("intrusion person {n}"),
                    start,
                    end: start + length,
                    bytes: 123_456,
                }
            })
            .collect()
    }
}

impl RecordedClips for Recordings {
    fn find(
        &self,
        camera_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<RecordedClip>, RecordedClipsError>> {
        let found = self
            .clips()
            .into_iter()
            .filter(|c| c.camera_id == camera_id && c.start < to && c.end > from)
            .collect();
        Box::pin(async move { Ok(found) })
    }

    fn units(&self, event_id: i64) -> BoxFuture<'_, Result<Vec<LiveUnit>, RecordedClipsError>> {
        let footage = clip(VideoCodec::H264);
        let units = (0..UNITS)
            .map(|i| LiveUnit {
                codec: footage.codec,
                is_key: footage.is_key(i),
                pts: (i as f64 * 90_000.0 / footage.fps).round() as i64,
                data: bytes::Bytes::copy_from_slice(&footage.units[i]),
            })
            .collect();
        let known = self.clips().iter().any(|c| c.event_id == event_id);
        Box::pin(async move {
            if known {
                Ok(units)
            } else {
                Err(RecordedClipsError::NoClip(event_id))
            }
        })
    }
}

/// A registered server sharing the footage live and [`Recordings`] an
/// hour ago.
async fn sharing() -> Result<(Server, common::DeviceRun, DateTime<Utc>)> {
    let (server, sup) = registered(VideoCodec::H264, 16).await?;
    let t0 = DateTime::from_timestamp(Utc::now().timestamp() - 3600, 0).context("now")?;
    server.sip.share_recordings(Arc::new(Recordings { t0 }));
    Ok((server, sup, t0))
}

/// `t` in Beijing time, the zone of record queries by default.
fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// The RecordInfo responses the superior got for `sn`: (SumNum, items).
fn record_answers(sup: &common::DeviceRun, sn: u32) -> (Option<String>, Vec<String>) {
    let mut sum = None;
    let mut items = Vec::new();
    for body in sup.bodies() {
        let (text, _) = charset::decode(&body);
        let Ok(command) = manscdp::parse(&text) else {
            continue;
        };
        if !command.is(Root::Response, "RecordInfo") || command.sn != Some(sn) {
            continue;
        }
        sum = command.field("SumNum").map(str::to_owned);
        let doc = items_of(&text);
        items.extend(doc);
    }
    (sum, items)
}

/// Each `<Item>` of a RecordList, as its text.
fn items_of(text: &str) -> Vec<String> {
    text.split("<Item>")
        .skip(1)
        .filter_map(|rest| rest.split("</Item>").next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn record_query_lists_the_clips_in_the_window() -> Result<()> {
    let (server, sup, t0) = sharing().await?;
    // The first clip only (the second starts 10 minutes later).
    let window = (
        local(t0 - chrono::Duration::minutes(1)),
        local(t0 + chrono::Duration::minutes(5)),
    );
    let query = superior_record_query(server.addr(), CHANNEL, (&window.0, &window.1), "all", 31)?;
    let log = query.explain_finish(Duration::from_secs(20)).await?;
    ensure!(log.contains("SIP/2.0 200"), "query not taken: {log}");
    // Both clips, and nothing when the type asked for is not ours.
    let both = (
        local(t0 - chrono::Duration::minutes(1)),
        local(t0 + chrono::Duration::minutes(30)),
    );
    superior_record_query(server.addr(), CHANNEL, (&both.0, &both.1), "alarm", 32)?
        .finish(Duration::from_secs(20))
        .await?;
    superior_record_query(server.addr(), CHANNEL, (&both.0, &both.1), "time", 33)?
        .finish(Duration::from_secs(20))
        .await?;
    sup.explain(
        common::until(Duration::from_secs(10), "record answers", || {
            [31, 32, 33]
                .iter()
                .all(|sn| record_answers(&sup, *sn).0.is_some())
        })
        .await,
    )?;
    let (sum, items) = record_answers(&sup, 31);
    assert_eq!(sum.as_deref(), Some("1"));
    assert_eq!(items.len(), 1, "{items:?}");
    let item = &items[0];
    for field in [
        format!("<DeviceID>{CHANNEL}</DeviceID>"),
        "<Name>intrusion person 0</Name>".into(),
        format!("<StartTime>{}</StartTime>", local(t0)),
        "<Type>alarm</Type>".into(),
        "<Secrecy>0</Secrecy>".into(),
        format!("<RecorderID>{}</RecorderID>", common::SERVER_ID),
        "<FileSize>123456</FileSize>".into(),
        "<FilePath>events/100/clip.mp4</FilePath>".into(),
    ] {
        assert!(item.contains(&field), "{field} not in {item}");
    }
    let (sum, items) = record_answers(&sup, 32);
    assert_eq!((sum.as_deref(), items.len()), (Some("2"), 2));
    let (sum, items) = record_answers(&sup, 33);
    assert_eq!((sum.as_deref(), items.len()), (Some("0"), 0));

    // A channel not in the catalog: 404, as DeviceInfo for another id.
    let unknown = superior_record_query(
        server.addr(),
        "34020000001319999999",
        (&both.0, &both.1),
        "all",
        34,
    )?;
    let log = unknown.explain_finish(Duration::from_secs(20)).await?;
    ensure!(log.contains("SIP/2.0 404"), "not 404: {log}");
    let _ = link(&server);
    Ok(())
}

/// sipp's playback INVITE (superior_playback.xml) for `from..to` (Unix
/// seconds), media to `port` over UDP.
fn playback(
    server: &Server,
    session: &str,
    (from, to): (i64, i64),
    port: u16,
) -> Result<common::DeviceRun> {
    let keys = [
        ("superior", SUPERIOR.to_owned()),
        ("realm", common::SUPERIOR_REALM.to_owned()),
        ("channel", CHANNEL.to_owned()),
        ("rtp_port", port.to_string()),
        ("proto", "RTP/AVP".to_owned()),
        ("setup", "passive".to_owned()),
        ("ssrc", "1100000009".to_owned()),
        ("session", session.to_owned()),
        ("start", from.to_string()),
        ("stop", to.to_string()),
        ("speed", "4".to_owned()),
    ];
    common::superior_call(server.addr(), "superior_playback.xml", &keys)
}

#[tokio::test]
async fn playback_streams_the_clip_in_real_time_and_tells_its_end() -> Result<()> {
    let (server, _sup, t0) = sharing().await?;
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let port = socket.local_addr()?.port();
    let media: Shared = Arc::default();
    tokio::spawn(receive_udp(socket, media.clone()));
    let started = Instant::now();
    let call = playback(
        &server,
        "Playback",
        (t0.timestamp() - 5, t0.timestamp() + 60),
        port,
    )?;
    // sipp's scenario ends well only after MediaStatus 121 and our 200 to its BYE.
    let log = call.explain_finish(Duration::from_secs(40)).await?;
    let took = started.elapsed();
    assert!(log.contains("<NotifyType>121</NotifyType>"), "{log}");
    assert!(
        log.contains("s=Playback"),
        "our answer names the session: {log}"
    );
    let r = std::mem::take(&mut *received(&media));
    assert!(
        r.packets.iter().all(|p| p.1 == 1_100_000_009),
        "SSRC from y="
    );
    let first = r.packets.first().map(|p| p.0).context("no RTP")?;
    let last = r.packets.last().map(|p| p.0).context("no RTP")?;
    let fps = clip(VideoCodec::H264).fps;
    let length = (UNITS - 1) as f64 / fps;
    let spread = (last - first).as_secs_f64();
    assert!(
        spread >= length * 0.8 && spread <= length * 1.5,
        "sent over {spread:.2} s, the clip is {length:.2} s: not real time"
    );
    let frames = decoded_frames(&r.ps).await?;
    assert!(
        frames as usize >= UNITS - 1,
        "ffmpeg decoded {frames} frames of {UNITS}"
    );
    eprintln!(
        "playback: {} packets over {spread:.2} s, {frames} frames decoded; call {:.1} s",
        r.packets.len(),
        took.as_secs_f64()
    );
    common::until(Duration::from_secs(5), "the stream ended", || {
        link(&server).streams == 0
    })
    .await
}

#[tokio::test]
async fn download_goes_at_its_speed_and_a_window_without_clips_is_404() -> Result<()> {
    let (server, _sup, t0) = sharing().await?;
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let port = socket.local_addr()?.port();
    let media: Shared = Arc::default();
    tokio::spawn(receive_udp(socket, media.clone()));
    // Both clips, at 4 times real time.
    let call = playback(
        &server,
        "Download",
        (t0.timestamp(), t0.timestamp() + 1800),
        port,
    )?;
    let log = call.explain_finish(Duration::from_secs(40)).await?;
    assert!(log.contains("<NotifyType>121</NotifyType>"), "{log}");
    let r = std::mem::take(&mut *received(&media));
    let spread = r.packets.last().map(|p| p.0).context("no RTP")? - r.packets[0].0;
    let real = 2.0 * UNITS as f64 / clip(VideoCodec::H264).fps;
    assert!(
        spread.as_secs_f64() < real / 2.0,
        "download took {spread:?} for {real} s of video at speed 4"
    );
    let frames = decoded_frames(&r.ps).await?;
    assert!(
        frames as usize >= 2 * UNITS - 1,
        "ffmpeg decoded {frames} frames"
    );

    // Two hours ago: nothing recorded.
    let quiet = t0.timestamp() - 7200;
    let call = playback(&server, "Playback", (quiet, quiet + 600), port)?;
    let log = call.explain_finish(Duration::from_secs(20)).await?;
    assert!(log.contains("SIP/2.0 404"), "not 404: {log}");
    assert_eq!(link(&server).streams_refused, 1);
    Ok(())
}
