//! The recording of a GB alarm, played back from the superior, end to
//! end: the real `xueliang serve` watching the footage, registered to sipp
//! as the superior (the alarm e2e's setup), records the lawn intrusion's
//! event clip; the superior searches the alarm's channel around the
//! alarm's time (RecordInfo: the clip is listed, with its event's path),
//! then plays that window back (INVITE `s=Playback`): the RTP's PS,
//! stripped, decodes in `ffmpeg -f mpeg`, the stream ends with MediaStatus
//! 121 in the call (the scenario fails without it) and the superior's BYE.
//! A window long before gets 404.

use crate::gb_alarms::{alarms, field, first_intrusion, registered, Registered};
use crate::gb_superior::{
    decoded_frames, finished, play_back, query_records, read_log, Invite, PsReceiver,
};
use anyhow::{ensure, Context, Result};
use std::time::Duration;
use xueliang_e2e::wait_for;

const SERVER_ID: &str = "34020000002000000001";

/// `t` as the superior writes its times: Beijing time, to the second.
fn beijing(t: chrono::DateTime<chrono::Utc>) -> Result<String> {
    let zone = chrono::FixedOffset::east_opt(8 * 3600).context("offset")?;
    Ok(t.with_timezone(&zone)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string())
}

#[test]
fn the_superior_finds_and_plays_back_the_alarms_clip() -> Result<()> {
    let logs = tempfile::tempdir()?;
    let sip_log = logs.path().join("superior.log");
    let Registered {
        x,
        sip_port,
        _footage,
        _superior,
        ..
    } = registered(&sip_log)?;
    let event = first_intrusion(&x)?;
    let id = event["id"].as_i64().context("id")?;
    // The alarm names the camera's channel.
    let channel = wait_for(Duration::from_secs(20), || {
        Ok(alarms(&sip_log)
            .iter()
            .find_map(|a| field(a, "DeviceID").map(str::to_owned)))
    })
    .with_context(|| x.log())?;
    // The clip is written after the event's end and `[clips] post_s`.
    let clip = wait_for(Duration::from_secs(150), || {
        let e = x.get(&format!("/api/v1/events/{id}"))?;
        Ok((!e["clip"].is_null()).then(|| e["clip"].clone()))
    })
    .with_context(|| x.log())?;
    let started: chrono::DateTime<chrono::Utc> = event["started_at"]
        .as_str()
        .context("started_at")?
        .parse()?;

    let window = (
        beijing(started - chrono::Duration::minutes(2))?,
        beijing(started + chrono::Duration::minutes(2))?,
    );
    let query_log = logs.path().join("query.log");
    query_records(
        sip_port,
        SERVER_ID,
        &channel,
        (&window.0, &window.1),
        &query_log,
    )?;
    let answer = wait_for(Duration::from_secs(10), || {
        let log = read_log(&sip_log);
        Ok(log
            .split("<Response>")
            .find(|r| r.contains("<CmdType>RecordInfo</CmdType>"))
            .map(str::to_owned))
    })
    .with_context(|| read_log(&sip_log))?;
    let path = format!("<FilePath>events/{id}/clip.mp4</FilePath>");
    ensure!(answer.contains(&path), "{path} not in {answer}");
    ensure!(answer.contains("<Type>alarm</Type>"), "{answer}");
    ensure!(
        answer.contains(&format!("<FileSize>{}</FileSize>", clip["bytes"])),
        "{answer}"
    );
    let items = answer.matches("<Item>").count();
    ensure!(
        field(&answer, "SumNum") == Some(&items.to_string()),
        "{answer}"
    );

    // Play the window back.
    let receiver = PsReceiver::start()?;
    let call = Invite {
        scenario: "superior_playback.xml",
        channel: &channel,
        rtp_port: receiver.port,
        ssrc: "1100000002",
        hold_ms: None,
    };
    let (from, to) = (started.timestamp() - 60, started.timestamp() + 60);
    let play_log = logs.path().join("playback.log");
    let mut playback = play_back(
        sip_port,
        SERVER_ID,
        &call,
        ("Playback", from, to),
        &play_log,
    )?;
    finished(&mut playback, Duration::from_secs(200)).with_context(|| read_log(&play_log))?;
    let (arrivals, ps, _) = receiver.stop();
    ensure!(
        read_log(&play_log).contains("<NotifyType>121</NotifyType>"),
        "no end-of-file notice"
    );
    let (frames, ffmpeg_said) = decoded_frames(&ps)?;
    let seconds = clip["duration_s"].as_f64().unwrap_or(0.0);
    let spread = match (arrivals.first(), arrivals.last()) {
        (Some(a), Some(b)) => (*b - *a).as_secs_f64(),
        _ => 0.0,
    };
    eprintln!(
        "playback e2e: a {seconds:.1} s clip, {frames} frames decoded, sent over {spread:.1} s"
    );
    ensure!(
        frames >= 25,
        "ffmpeg decoded {frames} frames: {ffmpeg_said}"
    );
    ensure!(
        spread >= seconds * 0.7,
        "a {seconds:.1} s clip sent in {spread:.1} s: not real time"
    );

    // Two hours before: nothing recorded.
    let before = started.timestamp() - 7200;
    let refused_log = logs.path().join("refused.log");
    let mut refused = play_back(
        sip_port,
        SERVER_ID,
        &call,
        ("Playback", before, before + 600),
        &refused_log,
    )?;
    finished(&mut refused, Duration::from_secs(20))?;
    ensure!(
        read_log(&refused_log).contains("SIP/2.0 404"),
        "{}",
        read_log(&refused_log)
    );
    Ok(())
}
