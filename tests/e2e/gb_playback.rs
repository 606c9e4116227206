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

/// The Response RecordInfo bodies (SN 9) the superior got, decoded from
/// GB2312.
fn record_answers(log: &std::path::Path) -> Vec<String> {
    let bytes = std::fs::read(log).unwrap_or_default();
    let (text, _, _) = encoding_rs::GB18030.decode(&bytes);
    text.split("<Response>")
        .skip(1)
        .filter(|r| r.contains("<CmdType>RecordInfo</CmdType>") && r.contains("<SN>9</SN>"))
        .filter_map(|r| r.split("</Response>").next())
        .map(str::to_owned)
        .collect()
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
    // Every chunk of the answer (events of other rules there too).
    let (sum, answer) = wait_for(Duration::from_secs(10), || {
        let chunks = record_answers(&sip_log);
        let sum: Option<usize> = chunks
            .first()
            .and_then(|c| field(c, "SumNum")?.parse().ok());
        let items: usize = chunks.iter().map(|c| c.matches("<Item>").count()).sum();
        Ok(sum
            .filter(|sum| *sum == items)
            .map(|sum| (sum, chunks.concat())))
    })
    .with_context(|| read_log(&sip_log))?;
    eprintln!("playback e2e: RecordInfo around the alarm lists {sum} clips");
    let item = answer
        .split("<Item>")
        .find(|i| i.contains(&format!("<FilePath>events/{id}/clip.mp4</FilePath>")))
        .with_context(|| format!("event {id}'s clip not in {answer}"))?;
    ensure!(item.contains("<Type>alarm</Type>"), "{item}");
    ensure!(item.contains("<Name>intrusion person</Name>"), "{item}");
    ensure!(
        item.contains(&format!("<FileSize>{}</FileSize>", clip["bytes"])),
        "{item}"
    );
    ensure!(
        field(item, "StartTime") == Some(beijing(started - chrono::Duration::seconds(5))?.as_str()),
        "the clip starts [clips] pre_s before the event: {item}"
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
    // 14 s of the intrusion (and of whatever else was recorded then).
    let (from, to) = (started.timestamp() - 2, started.timestamp() + 12);
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
    let seconds = (to - from) as f64;
    let spread = match (arrivals.first(), arrivals.last()) {
        (Some(a), Some(b)) => (*b - *a).as_secs_f64(),
        _ => 0.0,
    };
    eprintln!(
        "playback e2e: a {seconds:.0} s window, {frames} frames decoded, sent over {spread:.1} s"
    );
    ensure!(
        frames >= 25,
        "ffmpeg decoded {frames} frames: {ffmpeg_said}"
    );
    ensure!(
        spread >= seconds * 0.7 && spread <= seconds + 5.0,
        "a {seconds:.0} s window sent in {spread:.1} s: not real time"
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
