//! The cameras' recordings for superior platforms (GB/T 28181 record
//! queries and playback): the event clips in the store
//! ([`RecordedClips`]). A clip's wall-clock start is its event's start
//! less `[clips] pre_s` (the store keeps its length, not its start: the
//! real start is at the key frame at or before, up to a GOP earlier, or
//! later when the camera's ring did not hold `pre_s` yet); its end is that
//! plus its length. Reading a clip back demuxes the stored MP4
//! ([`xueliang_record::read_mp4`]) on the blocking pool.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::sync::Arc;
use xueliang_core::{
    ClipsConfig, EventQuery, LiveUnit, RecordedClip, RecordedClips, RecordedClipsError,
};
use xueliang_store::{EventStore, MAX_PAGE};

/// [`RecordedClips`] over the event store.
pub struct StoredClips {
    store: Arc<dyn EventStore>,
    pre: chrono::Duration,
    longest: chrono::Duration,
}

fn seconds(s: f64) -> chrono::Duration {
    chrono::Duration::milliseconds((s.max(0.0) * 1000.0) as i64)
}

impl StoredClips {
    pub fn new(store: Arc<dyn EventStore>, clips: &ClipsConfig) -> StoredClips {
        StoredClips {
            store,
            pre: seconds(clips.pre_s),
            longest: seconds(clips.max_s + clips.pre_s + clips.post_s),
        }
    }
}

fn store_error(e: impl std::fmt::Display) -> RecordedClipsError {
    RecordedClipsError::Store(e.to_string())
}

impl RecordedClips for StoredClips {
    fn find(
        &self,
        camera_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<RecordedClip>, RecordedClipsError>> {
        let query = EventQuery {
            camera_id: Some(camera_id.to_owned()),
            // A clip starts `pre_s` before its event and lasts at most `longest`.
            since: Some(from - self.longest),
            until: Some(to + self.pre),
            limit: MAX_PAGE,
            ..Default::default()
        };
        Box::pin(async move {
            let events = self.store.list_events(query).await.map_err(store_error)?;
            let mut clips: Vec<RecordedClip> = events
                .into_iter()
                .filter_map(|event| {
                    let info = event.clip?;
                    let start = event.started_at - self.pre;
                    let end = start + seconds(info.duration_s);
                    (start < to && end > from).then(|| RecordedClip {
                        event_id: event.id,
                        name: format!("{} {}", event.kind.as_str(), event.label),
                        camera_id: event.camera_id,
                        start,
                        end,
                        bytes: info.bytes,
                    })
                })
                .collect();
            clips.sort_by_key(|c| (c.start, c.event_id));
            Ok(clips)
        })
    }

    fn units(&self, event_id: i64) -> BoxFuture<'_, Result<Vec<LiveUnit>, RecordedClipsError>> {
        Box::pin(async move {
            let mp4 = self
                .store
                .clip(event_id)
                .await
                .map_err(store_error)?
                .ok_or(RecordedClipsError::NoClip(event_id))?;
            let samples = tokio::task::spawn_blocking(move || xueliang_record::read_mp4(&mp4))
                .await
                .map_err(store_error)?
                .map_err(|e| RecordedClipsError::Damaged {
                    event: event_id,
                    detail: e.to_string(),
                })?;
            Ok(samples
                .into_iter()
                .map(|s| LiveUnit {
                    codec: s.codec,
                    is_key: s.is_key,
                    pts: s.pts,
                    data: s.data,
                })
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xueliang_core::{EventKind, NewEvent, VideoCodec};
    use xueliang_record::{write_mp4, Sample};
    use xueliang_store::testing::{TestBackend, TestStore};

    /// A tiny H.264 stream: SPS/PPS and an IDR, then P slices (what the
    /// MP4 writer needs; nothing decodes it here).
    fn samples() -> Vec<Sample> {
        let sps = [0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5, 0x84];
        let pps = [0x68, 0xce, 0x3c, 0x80];
        (0..50)
            .map(|i| {
                let mut data = Vec::new();
                if i % 25 == 0 {
                    for set in [&sps[..], &pps[..]] {
                        data.extend_from_slice(&[0, 0, 0, 1]);
                        data.extend_from_slice(set);
                    }
                    data.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, i as u8]);
                } else {
                    data.extend_from_slice(&[0, 0, 0, 1, 0x41, 0x9a, i as u8]);
                }
                Sample::new(VideoCodec::H264, data, i % 25 == 0, 1000 + i * 3600)
            })
            .collect()
    }

    #[tokio::test]
    async fn clips_are_found_by_their_video_window_and_read_back() {
        let test = TestStore::new(TestBackend::Sqlite).await;
        let store: Arc<dyn EventStore> = test.store.clone();
        let t0 = DateTime::from_timestamp(1_765_000_000, 0).unwrap();
        let mut mp4 = Vec::new();
        let summary = write_mp4(&samples(), &mut mp4).unwrap();
        let mut ids = Vec::new();
        for (camera, minutes) in [("east", 0), ("east", 10), ("west", 0), ("east", 20)] {
            let id = store
                .insert_event(NewEvent {
                    camera_id: camera.into(),
                    kind: EventKind::Intrusion,
                    label: "person".into(),
                    started_at: t0 + chrono::Duration::minutes(minutes),
                    ..Default::default()
                })
                .await
                .unwrap();
            ids.push(id);
        }
        // The last event has no clip (yet).
        for id in &ids[..3] {
            let stored = store
                .put_clip(*id, mp4.clone(), summary.duration_seconds())
                .await
                .unwrap();
            assert!(stored);
        }
        let config = ClipsConfig {
            pre_s: 5.0,
            ..Default::default()
        };
        let clips = StoredClips::new(store, &config);
        let found = clips
            .find(
                "east",
                t0 - chrono::Duration::hours(1),
                t0 + chrono::Duration::hours(1),
            )
            .await
            .unwrap();
        assert_eq!(
            found.iter().map(|c| c.event_id).collect::<Vec<_>>(),
            ids[..2]
        );
        let first = &found[0];
        assert_eq!(first.start, t0 - chrono::Duration::seconds(5));
        assert_eq!(first.end, first.start + chrono::Duration::seconds(2));
        assert_eq!(first.bytes, mp4.len() as u64);
        assert_eq!(first.name, "intrusion person");
        // A window that ends before the clip's video starts finds nothing;
        // one that starts inside it finds it.
        let before = clips
            .find(
                "east",
                t0 - chrono::Duration::minutes(5),
                t0 - chrono::Duration::seconds(6),
            )
            .await
            .unwrap();
        assert!(before.is_empty(), "{before:?}");
        let inside = clips
            .find(
                "east",
                t0 - chrono::Duration::seconds(4),
                t0 + chrono::Duration::seconds(1),
            )
            .await
            .unwrap();
        assert_eq!(inside.len(), 1);

        let units = clips.units(ids[0]).await.unwrap();
        assert_eq!(units.len(), 50);
        assert!(units[0].is_key && units[25].is_key && !units[1].is_key);
        assert_eq!((units[0].pts, units[1].pts), (0, 3600));
        assert!(units[0].data.starts_with(&[0, 0, 0, 1, 0x67]), "SPS first");
        assert_eq!(
            clips.units(ids[3]).await.err(),
            Some(RecordedClipsError::NoClip(ids[3]))
        );
    }
}
