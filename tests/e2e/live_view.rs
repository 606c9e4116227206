//! Live video (`GET /api/v1/cameras/{id}/live.mp4`) from the real binary,
//! with an H.264 camera in one village and an H.265 camera in another:
//! the streams are the cameras' own codecs remuxed (checked by ffprobe and
//! decoded by ffmpeg, independent peers), start at once, respect village
//! scope and the viewer limits, end when the caller's session ends, and show
//! in the metrics. Then headless Chromium (tests/browser/live-view.mjs)
//! plays the H.264 camera on the video wall and on the cameras page and
//! falls back to frames for H.265 where it cannot play it.

use anyhow::{ensure, Context, Result};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use xueliang_e2e::live::{block_on, header_of, watch};
use xueliang_e2e::{
    add_user, browser, config_header, fixture, free_port, login, wait_for, RtspServer, Xueliang,
};

/// The top-level MP4 boxes of a stream, in order.
fn boxes(data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= data.len() {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        out.push(String::from_utf8_lossy(&data[at + 4..at + 8]).into_owned());
        if size < 8 {
            break;
        }
        at += size;
    }
    out
}

/// ffprobe's CSV of `entries` for the video of an MP4 held in memory.
fn ffprobe(data: &[u8], entries: &str) -> Result<String> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("video.mp4");
    std::fs::write(&file, data)?;
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            entries,
        ])
        .args(["-of", "csv=p=0"])
        .arg(&file)
        .output()?;
    ensure!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// ffprobe's codec and size of the stream, and the frames ffmpeg decodes
/// from it with no error.
fn probe(data: &[u8]) -> Result<(String, String, u64)> {
    let line = ffprobe(data, "stream=codec_name,width,height")?
        .trim()
        .to_owned();
    let (codec, size) = line.split_once(',').context("ffprobe's answer")?;
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i", "-", "-f", "null", "-"])
        .args(["-progress", "pipe:1", "-nostats"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    ffmpeg.stdin.take().context("stdin")?.write_all(data)?;
    let out = ffmpeg.wait_with_output()?;
    let errors = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success() && errors.trim().is_empty(),
        "ffmpeg decoding the stream: {errors}"
    );
    let frames = xueliang_e2e::progress_frames(&out.stdout);
    Ok((codec.to_owned(), size.replace(',', "x"), frames))
}

fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// GET with a `Range` header: status, `Content-Range`, body.
fn get_range(x: &Xueliang, path: &str, range: &str) -> Result<(u16, String, Vec<u8>)> {
    block_on(async {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", x.base))
            .bearer_auth(&x.token)
            .header("Range", range)
            .send()
            .await?;
        let status = r.status().as_u16();
        let content_range = header_of(&r, "content-range");
        Ok((status, content_range, r.bytes().await?.to_vec()))
    })
}

/// The clip starts with a key frame, its timestamps rise, its length is the
/// event's plus pre and post roll (within a GOP), and Range requests get
/// the right bytes.
fn check_clip(x: &Xueliang, event: &serde_json::Value) -> Result<()> {
    let id = event["id"].as_i64().context("id")?;
    let path = format!("/api/v1/events/{id}/clip.mp4");
    let (status, ctype, mp4) = x.get_bytes(&path)?;
    ensure!(
        status == 200 && ctype == "video/mp4",
        "GET {path}: {status} {ctype}"
    );
    let text = ffprobe(&mp4, "packet=dts_time,flags:format=duration")?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let (format_line, packets) = lines.split_last().context("ffprobe printed nothing")?;
    ensure!(
        packets.first().is_some_and(|p| p.contains('K')),
        "the clip does not start with a key frame: {:?}",
        packets.first()
    );
    let dts: Vec<f64> = packets
        .iter()
        .filter_map(|p| p.split(',').next()?.parse().ok())
        .collect();
    ensure!(
        dts.len() == packets.len() && dts.windows(2).all(|w| w[0] < w[1]),
        "timestamps do not rise"
    );
    let duration: f64 = format_line.trim().parse().context("clip duration")?;
    let time = |k: &str| -> Result<chrono::DateTime<chrono::Utc>> {
        Ok(event[k].as_str().context("time")?.parse()?)
    };
    let lasted = (time("ended_at")? - time("started_at")?).num_milliseconds() as f64 / 1000.0;
    let expected = (lasted + 2.0 + 2.0).min(20.0);
    // The start moves back to the key frame before (GOP 2 s); frames come
    // at 10 fps.
    ensure!(
        duration >= expected - 0.5 && duration <= expected + 2.5,
        "clip of {duration} s for an event of {lasted} s (expected {expected} s + up to a GOP)"
    );
    let said = event["clip"]["duration_s"]
        .as_f64()
        .context("clip.duration_s")?;
    ensure!(
        (said - duration).abs() < 0.2,
        "the event says {said} s, the file {duration} s"
    );
    ensure!(event["clip"]["bytes"].as_u64() == Some(mp4.len() as u64));
    let (status, range, part) = get_range(x, &path, "bytes=100-199")?;
    ensure!(
        status == 206 && part == mp4[100..200] && range == format!("bytes 100-199/{}", mp4.len()),
        "a range: {status} {range}"
    );
    let (status, _, tail) = get_range(x, &path, "bytes=-16")?;
    ensure!(status == 206 && tail == mp4[mp4.len() - 16..]);
    let (status, range, _) = get_range(x, &path, &format!("bytes={}-", mp4.len()))?;
    ensure!(
        status == 416 && range == format!("bytes */{}", mp4.len()),
        "past the end: {status} {range}"
    );
    eprintln!(
        "clip of event {id}: {} bytes, {duration:.2} s for an event of {lasted:.2} s",
        mp4.len()
    );
    Ok(())
}

#[test]
fn live_video_streams_each_camera_s_own_codec_within_scope_and_limits() -> Result<()> {
    // Alone: it bounds the player's delay and the frames a stream carries in
    // a few seconds, which a machine shared with other servers would blur.
    let rtsp = RtspServer::start(&[
        "--mount".into(),
        format!("walkway={}", fixture("vtest-h264.mp4").display()),
        "--mount".into(),
        format!("hevc={}", fixture("vtest-h265.mp4").display()),
        "--loop".into(),
    ])?;
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let config = format!(
        r#"{header}
[live]
max_viewers_per_camera = 2
max_viewers = 3

[clips]
pre_s = 2
post_s = 2
max_s = 20

[[cameras]]
id = "walkway"
name = "村口步道"
url = "{walkway}"
village = "东村"
grid = "东村一网格"
detection = {{ fps = 2, labels = ["person"], min_score = 0.5, lost_after_s = 2 }}

[[cameras]]
id = "hevc"
name = "西村路口"
url = "{hevc}"
village = "西村"
detection = {{ fps = 2, labels = ["person"], min_score = 0.5, lost_after_s = 2 }}
clips = []
"#,
        header = config_header(dir.path(), port, 1.0),
        walkway = rtsp.url("walkway"),
        hevc = rtsp.url("hevc"),
    );
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, &config)?;
    let password = format!("pw-{}-西村", std::process::id());
    add_user(&config_path, "li.xi", &password, "operator", &["西村"], &[])?;
    add_user(&config_path, "zhao.wall", &password, "operator", &[], &[])?;
    let x = Xueliang::start(dir, port, &config, &[])?;
    for id in ["walkway", "hevc"] {
        wait_for(Duration::from_secs(30), || {
            Ok((x.health(id)?["state"] == "online").then_some(()))
        })
        .with_context(|| format!("camera {id} did not come online: {}", x.log()))?;
    }
    // Let each camera pass a key frame, so a stream can start at once.
    std::thread::sleep(Duration::from_secs(3));
    let live = |id: &str| format!("{}/api/v1/cameras/{id}/live.mp4", x.base);

    // The H.264 camera: its own codec, starting at a key frame, decodable.
    let w = watch(&live("walkway"), &x.token, Duration::from_secs(4))?;
    ensure!(
        w.status == 200,
        "walkway: {} {}",
        w.status,
        String::from_utf8_lossy(&w.body)
    );
    ensure!(
        w.content_type.starts_with("video/mp4; codecs=\"avc1."),
        "walkway content type {}",
        w.content_type
    );
    ensure!(!w.ended, "the stream ended by itself");
    let first = w.first_byte.context("no byte")?;
    ensure!(first < Duration::from_secs(1), "first byte after {first:?}");
    let b = boxes(&w.body);
    ensure!(
        b.len() > 20 && b[..2] == ["ftyp", "moov"],
        "boxes {:?}",
        &b[..b.len().min(6)]
    );
    ensure!(
        b[2..]
            .chunks(2)
            .all(|p| p[0] == "moof" && p.get(1).is_none_or(|m| m == "mdat")),
        "boxes {b:?}"
    );
    let (codec, size, frames) = probe(&w.body)?;
    ensure!(
        codec == "h264" && size == "768x576",
        "walkway: {codec} {size}"
    );
    // 4 s at the footage's 10 fps, plus the frames since the last key frame.
    ensure!(
        frames >= 38,
        "walkway: ffmpeg decoded {frames} frames from 4 s"
    );
    eprintln!(
        "walkway: {} bytes, {frames} frames in 4 s, first byte after {first:?}",
        w.body.len()
    );

    // The H.265 camera: H.265 as it came (hvc1), decodable.
    let h = watch(&live("hevc"), &x.token, Duration::from_secs(3))?;
    ensure!(h.status == 200, "hevc: {}", h.status);
    ensure!(
        h.content_type.contains("codecs=\"hvc1."),
        "hevc content type {}",
        h.content_type
    );
    let (codec, size, frames) = probe(&h.body)?;
    ensure!(codec == "hevc" && size == "768x576", "hevc: {codec} {size}");
    ensure!(
        frames >= 28,
        "hevc: ffmpeg decoded {frames} frames from 3 s"
    );

    // Village scope: 西村's operator does not see 东村's camera at all.
    let li = login(&x.base, "li.xi", &password)?;
    let other = watch(&live("walkway"), &li, Duration::from_secs(1))?;
    ensure!(
        other.status == 404,
        "a camera outside the user's villages: {}",
        other.status
    );
    ensure!(watch(&live("nope"), &x.token, Duration::from_secs(1))?.status == 404);

    // Limits: two viewers of a camera, three in all.
    let url = live("walkway");
    let token = x.token.clone();
    let viewers: Vec<_> = (0..2)
        .map(|_| {
            let (url, token) = (url.clone(), token.clone());
            std::thread::spawn(move || watch(&url, &token, Duration::from_secs(6)))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let third = watch(&url, &x.token, Duration::from_secs(1))?;
    let refusal = String::from_utf8_lossy(&third.body);
    ensure!(
        third.status == 503
            && refusal.contains("too_many_viewers")
            && refusal.contains("max_viewers_per_camera"),
        "a third viewer of one camera: {} {refusal}",
        third.status
    );
    let metrics = x.metrics()?;
    ensure!(
        metric(&metrics, "xueliang_live_viewers") == Some(2),
        "viewers in the metrics:\n{metrics}"
    );
    ensure!(metric(&metrics, "xueliang_live_refused_total") >= Some(1));
    ensure!(metric(&metrics, "xueliang_live_sent_bytes_total") > Some(100_000));
    let hevc_viewer = {
        let (url, token) = (live("hevc"), token.clone());
        std::thread::spawn(move || watch(&url, &token, Duration::from_secs(3)))
    };
    std::thread::sleep(Duration::from_secs(1));
    let fourth = watch(&live("hevc"), &x.token, Duration::from_secs(1))?;
    ensure!(
        fourth.status == 503
            && String::from_utf8_lossy(&fourth.body).contains("[live] max_viewers"),
        "a fourth viewer in all: {}",
        fourth.status
    );
    for v in viewers {
        let v = v.join().expect("viewer thread")?;
        ensure!(
            v.status == 200 && !v.ended && v.body.len() > 100_000,
            "a shared viewer: {} {}",
            v.status,
            v.body.len()
        );
    }
    ensure!(hevc_viewer.join().expect("viewer thread")?.status == 200);
    wait_for(Duration::from_secs(5), || {
        Ok((metric(&x.metrics()?, "xueliang_live_viewers") == Some(0)).then_some(()))
    })
    .context("viewers are not counted out when they leave")?;

    // Logging out ends the session's stream (re-checked at once).
    let ends = {
        let (url, li) = (live("hevc"), li.clone());
        std::thread::spawn(move || watch(&url, &li, Duration::from_secs(20)))
    };
    std::thread::sleep(Duration::from_secs(2));
    let (status, _, _) = xueliang_e2e::http_request(
        "POST",
        &format!("{}/api/v1/auth/logout", x.base),
        Some(&li),
        None,
    )?;
    ensure!(status == 204, "logout: {status}");
    let cut = ends.join().expect("viewer thread")?;
    ensure!(
        cut.status == 200 && cut.ended,
        "the stream outlived its session"
    );

    // Event clips: an ended person event of the H.264 camera gets one.
    let event = wait_for(Duration::from_secs(90), || {
        Ok(x.all_events("&camera=walkway&status=ended")?
            .into_iter()
            .find(|e| !e["clip_url"].is_null()))
    })
    .with_context(|| format!("no event got a clip: {}", x.log()))?;
    let id = event["id"].as_i64().context("event id")?;
    check_clip(&x, &event)?;
    let path = format!("/api/v1/events/{id}/clip.mp4");
    let (status, _, _) = xueliang_e2e::http_request(
        "GET",
        &format!("{}{path}", x.base),
        Some(&login(&x.base, "li.xi", &password)?),
        None,
    )?;
    ensure!(
        status == 404,
        "a clip outside the user's villages: {status}"
    );
    // The H.265 camera records no clip (`clips = []`).
    let ended = wait_for(Duration::from_secs(30), || {
        let ended = x.all_events("&camera=hevc&status=ended")?;
        Ok((!ended.is_empty()).then_some(ended))
    })?;
    std::thread::sleep(Duration::from_secs(3));
    for e in x
        .all_events("&camera=hevc&status=ended")?
        .iter()
        .chain(&ended)
    {
        ensure!(
            e["clip"].is_null(),
            "a clip for a camera with clips = []: {e}"
        );
    }
    let metrics = x.metrics()?;
    ensure!(
        metric(&metrics, "xueliang_clips_written_total") >= Some(1),
        "{metrics}"
    );
    ensure!(
        metric(&metrics, "xueliang_clips_failed_total") == Some(0),
        "{metrics}"
    );

    // In the browser: the wall plays H.264 and falls back for H.265; the
    // event's clip plays on its page.
    let id = id.to_string();
    browser::run_script(
        &x,
        "live-view.mjs",
        "zhao.wall",
        &password,
        &[("XUELIANG_CLIP_EVENT", &id)],
    )?;
    x.stop()?;
    Ok(())
}
