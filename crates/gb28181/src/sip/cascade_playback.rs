//! Recorded video upward (历史视音频回放 and 下载, GB/T 28181-2016 §9.8
//! and §9.9): a superior INVITEs a channel with `s=Playback` (or
//! `s=Download`) and `t=<start> <stop>`; we send the event clips of that
//! camera overlapping the window ([`RecordedClips`], the clips found by
//! RecordInfo, [`super::record_info`]) as PS over RTP exactly as live
//! video goes ([`super::cascade_video`]), paced by the samples' own
//! timestamps: in real time for playback, at `a=downloadspeed:` times
//! real time for a download. Nothing is decoded or encoded.
//!
//! `t=` times are read as NTP seconds (RFC 4566, what the standard names)
//! when they are past 1970 in NTP terms, else as Unix seconds (what most
//! platforms send). Clips follow each other without the gaps between them,
//! from the key frame at or before the window's start to its end; where
//! clips overlap (events at the same time) their seconds are sent once.
//!
//! At the end of the last clip we send MESSAGE `MediaStatus` with
//! `NotifyType` 121 (文件结束) in the INVITE's dialog and keep the call:
//! the standard's playback and download flows have the media sender
//! notify the end of the file and the SIP server (the superior) end the
//! call with BYE. Without its BYE within [`BYE_WAIT`] we send ours, so a
//! superior that never hangs up does not hold an upward stream forever.

use super::manscdp::{self, element};
use super::sdp::Answer;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::StreamExt;
use std::time::Duration;
use tokio::time::Instant;
use xueliang_core::{LiveUnit, RecordedClip, RecordedClips, RecordedClipsError};

/// How long we wait for the superior's BYE after the end-of-file notice.
pub const BYE_WAIT: Duration = Duration::from_secs(30);
/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX: u64 = 2_208_988_800;
/// The fastest download we pace (`a=downloadspeed:` above is taken as this).
const MAX_SPEED: f64 = 16.0;

/// What an INVITE asks for, from its SDP's `s=`.
#[derive(Clone, Debug, PartialEq)]
pub enum Wanted {
    Live,
    /// Recorded video of `from..to`, sent at `speed` times real time.
    Recorded {
        download: bool,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        speed: f64,
    },
}

impl Wanted {
    /// The session name our answer carries.
    pub fn session(&self) -> &'static str {
        match self {
            Wanted::Live => "Play",
            Wanted::Recorded {
                download: false, ..
            } => "Playback",
            Wanted::Recorded { download: true, .. } => "Download",
        }
    }

    /// What `offer` asks for; `Err` with why it cannot be served.
    pub fn of(offer: &Answer) -> Result<Wanted, &'static str> {
        let session = offer.session.as_deref().unwrap_or("Play");
        let download = if session.eq_ignore_ascii_case("Play") {
            return Ok(Wanted::Live);
        } else if session.eq_ignore_ascii_case("Playback") {
            false
        } else if session.eq_ignore_ascii_case("Download") {
            true
        } else {
            return Err("only s=Play, Playback or Download");
        };
        let (start, stop) = offer
            .time
            .filter(|(start, stop)| *start > 0 && stop > start)
            .ok_or("playback without a t=<start> <stop> window")?;
        let speed = if download {
            offer.download_speed.unwrap_or(1.0)
        } else {
            1.0
        };
        if speed.is_nan() || speed <= 0.0 {
            return Err("a=downloadspeed is not a positive number");
        }
        Ok(Wanted::Recorded {
            download,
            from: sdp_time(start).ok_or("t= start out of range")?,
            to: sdp_time(stop).ok_or("t= stop out of range")?,
            speed: speed.min(MAX_SPEED),
        })
    }
}

/// An SDP `t=` time: NTP seconds past 1970, else Unix seconds.
fn sdp_time(t: u64) -> Option<DateTime<Utc>> {
    let unix = if t >= NTP_UNIX { t - NTP_UNIX } else { t };
    DateTime::from_timestamp(i64::try_from(unix).ok()?, 0)
}

/// The units of `clips` (oldest first) that show `from..to`, one clip
/// after the other, PTS running on; empty when none has a unit in the
/// window. The first clip starts at its key frame at or before `from`;
/// clips overlap when their events did, so a later one starts at its first
/// key frame at or after the video already taken (a gap under a GOP rather
/// than the same seconds twice). Units from `to` on are left out.
pub async fn clip_units(
    recordings: &dyn RecordedClips,
    clips: &[RecordedClip],
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Result<Vec<LiveUnit>, RecordedClipsError> {
    let mut all: Vec<LiveUnit> = Vec::new();
    // The wall-clock end of the video taken so far.
    let mut taken_until: Option<DateTime<Utc>> = None;
    for clip in clips {
        let units = recordings.units(clip.event_id).await?;
        let ticks_at = |t: DateTime<Utc>| (t - clip.start).num_milliseconds() * 90;
        if units.last().is_none_or(|u| u.pts < ticks_at(from)) {
            continue; // it ends before the window
        }
        let start = match taken_until {
            None => units
                .iter()
                .rposition(|u| u.is_key && u.pts <= ticks_at(from).max(0))
                .unwrap_or(0),
            Some(until) => {
                let after = ticks_at(until);
                match units.iter().position(|u| u.is_key && u.pts >= after) {
                    Some(i) => i,
                    None => continue,
                }
            }
        };
        let stop = ticks_at(to);
        let Some(first) = units.get(start).filter(|u| u.pts < stop) else {
            continue;
        };
        let offset = match all.last() {
            // One frame after the previous clip's last (40 ms if unknown).
            Some(last) => last.pts + frame_ticks(&all) - first.pts,
            None => -first.pts,
        };
        let taken: Vec<LiveUnit> = units
            .into_iter()
            .skip(start)
            .take_while(|u| u.pts < stop)
            .collect();
        if let Some(last) = taken.last() {
            let end = clip.start + chrono::Duration::milliseconds(last.pts / 90);
            taken_until = Some(taken_until.map_or(end, |t| t.max(end)));
        }
        all.extend(taken.into_iter().map(|mut u| {
            u.pts += offset;
            u
        }));
    }
    Ok(all)
}

/// A frame's length in ticks from the last two units (3600: 25 fps).
fn frame_ticks(units: &[LiveUnit]) -> i64 {
    match units {
        [.., a, b] if b.pts > a.pts => b.pts - a.pts,
        _ => 3600,
    }
}

/// `units` as a stream released at their presentation times (their
/// highest so far, so B-frames do not stall it) divided by `speed`, timed
/// from the first unit taken.
pub fn paced(units: Vec<LiveUnit>, speed: f64) -> BoxStream<'static, LiveUnit> {
    let first = units.first().map_or(0, |u| u.pts);
    let state = (units.into_iter(), None::<Instant>, first);
    futures::stream::unfold(state, move |(mut units, started, mut latest)| async move {
        let unit = units.next()?;
        let started = started.unwrap_or_else(Instant::now);
        latest = latest.max(unit.pts);
        let seconds = (latest - first) as f64 / 90_000.0 / speed;
        tokio::time::sleep_until(started + Duration::from_secs_f64(seconds)).await;
        Some((unit, (units, Some(started), latest)))
    })
    .boxed()
}

/// The end-of-file notice (媒体通知, A.2.5.5): `Notify` MediaStatus with
/// NotifyType 121, from the channel played back.
pub fn end_of_file(channel: &str, sn: u32, charset_label: &str) -> String {
    manscdp::notify(
        "MediaStatus",
        sn,
        channel,
        charset_label,
        &element("NotifyType", "121"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::sdp::parse_answer;
    use bytes::Bytes;
    use futures::future::BoxFuture;
    use xueliang_core::VideoCodec;

    fn offer(session: &str, t: &str, extra: &str) -> Answer {
        parse_answer(&format!(
            "v=0\r\ns={session}\r\nc=IN IP4 127.0.0.1\r\nt={t}\r\nm=video 9 RTP/AVP 96\r\n\
             a=rtpmap:96 PS/90000\r\n{extra}"
        ))
    }

    #[test]
    fn sessions_windows_and_speeds() {
        assert_eq!(Wanted::of(&offer("Play", "0 0", "")), Ok(Wanted::Live));
        let Ok(Wanted::Recorded {
            download: false,
            from,
            to,
            speed,
        }) = Wanted::of(&offer("Playback", "1765000000 1765000060", ""))
        else {
            panic!("playback")
        };
        assert_eq!(
            (from.timestamp(), to.timestamp(), speed),
            (1_765_000_000, 1_765_000_060, 1.0)
        );
        // NTP seconds are the same instant.
        let ntp = Wanted::of(&offer(
            "Playback",
            &format!("{} {}", 1_765_000_000 + NTP_UNIX, 1_765_000_060 + NTP_UNIX),
            "",
        ));
        assert!(matches!(ntp, Ok(Wanted::Recorded { from: f, .. }) if f == from));
        let download = Wanted::of(&offer(
            "Download",
            "1765000000 1765000060",
            "a=downloadspeed:4\r\n",
        ));
        assert!(
            matches!(download, Ok(Wanted::Recorded { download: true, speed, .. }) if speed == 4.0)
        );
        assert_eq!(download.unwrap().session(), "Download");
        for (s, t, extra) in [
            ("Playback", "0 0", ""),
            ("Playback", "1765000060 1765000000", ""),
            ("Talk", "0 0", ""),
            ("Download", "1765000000 1765000060", "a=downloadspeed:0\r\n"),
        ] {
            assert!(Wanted::of(&offer(s, t, extra)).is_err(), "{s} {t} {extra}");
        }
    }

    struct Two;

    fn unit(n: i64) -> LiveUnit {
        LiveUnit {
            codec: VideoCodec::H264,
            is_key: n % 5 == 0,
            pts: n * 3600,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
        }
    }

    impl RecordedClips for Two {
        fn find(
            &self,
            _: &str,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
        ) -> BoxFuture<'_, Result<Vec<RecordedClip>, RecordedClipsError>> {
            Box::pin(async { Ok(vec![]) })
        }

        fn units(&self, _: i64) -> BoxFuture<'_, Result<Vec<LiveUnit>, RecordedClipsError>> {
            Box::pin(async { Ok((0..10).map(unit).collect()) })
        }
    }

    #[tokio::test]
    async fn clips_follow_each_other_once_within_the_window() {
        let t0 = DateTime::from_timestamp(1_765_000_000, 0).unwrap();
        let ms = chrono::Duration::milliseconds;
        let clip = |id, start| RecordedClip {
            event_id: id,
            camera_id: "c".into(),
            name: "n".into(),
            start,
            end: start + ms(400),
            bytes: 1,
        };
        // Ten units of 40 ms each, key frames at 0 and 0.2 s.
        let clips = [clip(1, t0), clip(2, t0 + chrono::Duration::hours(1))];
        // From 0.28 s into the first clip: its key frame at 0.2 s (unit 5).
        let window = (t0 + ms(280), t0 + chrono::Duration::hours(2));
        let units = clip_units(&Two, &clips, window).await.unwrap();
        assert_eq!(units.len(), 5 + 10);
        assert!(units[0].is_key && units[0].pts == 0);
        let pts: Vec<i64> = units.iter().map(|u| u.pts).collect();
        assert!(pts.windows(2).all(|w| w[1] - w[0] == 3600), "{pts:?}");
        // The window ends 0.1 s into the second clip: its first 3 units.
        let short = (t0 + ms(280), t0 + chrono::Duration::hours(1) + ms(100));
        assert_eq!(clip_units(&Two, &clips, short).await.unwrap().len(), 5 + 3);
        // A clip 0.2 s after the first overlaps it: it goes on from its
        // first key frame at or after 0.36 s (its 0.2 s, at 0.4 s; unit 5).
        let overlapping = [clip(1, t0), clip(2, t0 + ms(200))];
        let units = clip_units(&Two, &overlapping, (t0, t0 + ms(2000)))
            .await
            .unwrap();
        assert_eq!(units.len(), 10 + 5);
        // 0.1 s after: its key frames (at 0.1 and 0.3 s) are both in what
        // was sent: it adds nothing.
        let within = [clip(1, t0), clip(2, t0 + ms(100))];
        let units = clip_units(&Two, &within, (t0, t0 + ms(2000)))
            .await
            .unwrap();
        assert_eq!(units.len(), 10);
        // Nothing in the window: nothing.
        let none = clip_units(&Two, &clips, (t0 + ms(500), t0 + ms(600)))
            .await
            .unwrap();
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn units_come_at_their_times_divided_by_the_speed() {
        let start = Instant::now();
        let got: Vec<_> = paced((0..5).map(unit).collect(), 2.0)
            .map(|_| start.elapsed())
            .collect()
            .await;
        assert_eq!(got.len(), 5);
        assert!(got[0] < Duration::from_millis(15), "{got:?}");
        // The fifth at 4 frames of 40 ms, at double speed.
        assert!(got[4] >= Duration::from_millis(80), "{got:?}");
        assert!(got[4] < Duration::from_millis(400), "{got:?}");
    }

    #[test]
    fn the_end_of_file_notice() {
        let body = end_of_file("34020000001310000001", 3, "GB2312");
        let c = manscdp::parse(&body).unwrap();
        assert!(c.is(manscdp::Root::Notify, "MediaStatus"));
        assert_eq!(c.field("NotifyType"), Some("121"));
        assert_eq!(c.device_id.as_deref(), Some("34020000001310000001"));
    }
}
