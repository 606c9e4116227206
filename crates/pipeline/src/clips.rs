//! Event clips: when an event of a `[clips] kinds` kind is written, its
//! camera's [`CameraMedia`] starts collecting samples from its ring (`pre_s`
//! before the start, from the key frame at or before); when the event ends
//! the clip runs on `post_s`, and is capped at `max_s`. The finished
//! samples go through a bounded queue to one writer task, which muxes them
//! into an MP4 (faststart, no re-encoding) on the blocking pool and stores
//! it with the event. When that queue is full (a slow disk) the clip is
//! dropped and counted: ingest and detection never wait for clips.

use crate::media::CameraMedia;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tracing::{debug, warn};
use xueliang_core::{ClipsConfig, EventKind, NewEvent};
use xueliang_record::{write_mp4, Sample};
use xueliang_store::{EventLifecycle, EventStore};

/// Finished clips waiting for the writer; when full, clips are dropped.
const WRITE_QUEUE: usize = 16;

/// A clip's samples, ready to be written.
pub(crate) struct FinishedClip {
    pub event_id: i64,
    pub samples: Vec<Sample>,
    pub starts_late: bool,
}

/// Clips written, their bytes, and clips lost (dropped or failed).
#[derive(Debug, Default)]
pub struct ClipTotals {
    written: AtomicU64,
    bytes: AtomicU64,
    failed: AtomicU64,
}

impl ClipTotals {
    /// (written, bytes, failed).
    pub fn get(&self) -> (u64, u64, u64) {
        (
            self.written.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// What a camera's media hands finished clips to.
#[derive(Clone)]
pub(crate) struct ClipSink {
    tx: mpsc::Sender<FinishedClip>,
    totals: Arc<ClipTotals>,
    pub ring_bytes: usize,
}

impl ClipSink {
    /// Never waits: a full queue drops the clip (counted, logged).
    pub(crate) fn send(&self, clip: FinishedClip) {
        let id = clip.event_id;
        if clip.samples.is_empty() {
            return;
        }
        if let Err(e) = self.tx.try_send(clip) {
            self.totals.failed.fetch_add(1, Ordering::Relaxed);
            let why = match e {
                mpsc::error::TrySendError::Full(_) => "the clip writer is behind (a slow disk?)",
                mpsc::error::TrySendError::Closed(_) => "the clip writer is stopped",
            };
            warn!(event = id, "event clip dropped: {why}");
        }
    }
}

#[cfg(test)]
impl ClipSink {
    /// A sink with a queue of `capacity`, and its receiving end.
    pub(crate) fn for_test(
        capacity: usize,
        ring_bytes: usize,
    ) -> (ClipSink, mpsc::Receiver<FinishedClip>, Arc<ClipTotals>) {
        let (tx, rx) = mpsc::channel(capacity);
        let totals = Arc::new(ClipTotals::default());
        let sink = ClipSink {
            tx,
            totals: totals.clone(),
            ring_bytes,
        };
        (sink, rx, totals)
    }
}

/// A running camera and the event kinds that get clips on it.
struct Recorded {
    media: Arc<CameraMedia>,
    kinds: Vec<EventKind>,
}

/// Records event clips for the running cameras.
pub struct ClipRecorder {
    config: ClipsConfig,
    totals: Arc<ClipTotals>,
    /// Taken at shutdown, so that the writer task ends once the cameras'
    /// clones are gone too.
    sink: Mutex<Option<ClipSink>>,
    /// Running cameras by id.
    cameras: Mutex<HashMap<String, Recorded>>,
    /// Events whose clips are being collected, and their camera.
    active: Mutex<HashMap<i64, Arc<CameraMedia>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ClipRecorder {
    /// Starts the writer task on `runtime`.
    pub fn start(
        config: ClipsConfig,
        store: Arc<dyn EventStore>,
        runtime: &tokio::runtime::Handle,
    ) -> Arc<ClipRecorder> {
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let totals = Arc::new(ClipTotals::default());
        let task = runtime.spawn(write_clips(rx, store, totals.clone()));
        Arc::new(ClipRecorder {
            sink: Mutex::new(Some(ClipSink {
                tx,
                totals: totals.clone(),
                ring_bytes: config.ring_bytes(),
            })),
            totals,
            config,
            cameras: Mutex::default(),
            active: Mutex::default(),
            task: Mutex::new(Some(task)),
        })
    }

    /// (written, bytes, failed).
    pub fn totals(&self) -> (u64, u64, u64) {
        self.totals.get()
    }

    /// The sink a camera's media hands its clips to; `None` when clips are
    /// off (or after shutdown).
    pub(crate) fn sink(&self) -> Option<ClipSink> {
        let sink = crate::pipeline::lock(&self.sink).clone();
        sink.filter(|_| self.config.enabled)
    }

    /// A running camera; `kinds` overrides `[clips] kinds` for it.
    pub(crate) fn attach(
        &self,
        camera_id: &str,
        media: Arc<CameraMedia>,
        kinds: Option<&[EventKind]>,
    ) {
        let kinds = kinds.unwrap_or(&self.config.kinds).to_vec();
        crate::pipeline::lock(&self.cameras)
            .insert(camera_id.to_owned(), Recorded { media, kinds });
    }

    pub(crate) fn detach(&self, camera_id: &str) {
        crate::pipeline::lock(&self.cameras).remove(camera_id);
    }

    /// Writes the clips handed over so far, then stops (at shutdown, after
    /// every camera stopped: they hand over what they were collecting).
    /// Gives up after 30 s.
    pub async fn finish(&self) {
        crate::pipeline::lock(&self.sink).take();
        crate::pipeline::lock(&self.cameras).clear();
        crate::pipeline::lock(&self.active).clear();
        let task = crate::pipeline::lock(&self.task).take();
        if let Some(task) = task {
            let limit = std::time::Duration::from_secs(30);
            if tokio::time::timeout(limit, task).await.is_err() {
                warn!("event clips still being written at shutdown were not stored");
            }
        }
    }
}

impl EventLifecycle for ClipRecorder {
    fn started(&self, id: i64, event: &NewEvent) {
        if !self.config.enabled {
            return;
        }
        let media = crate::pipeline::lock(&self.cameras)
            .get(&event.camera_id)
            .filter(|r| r.kinds.contains(&event.kind))
            .map(|r| r.media.clone());
        let Some(media) = media else { return };
        media.record(id, event.started_at, self.config.pre_s, self.config.max_s);
        crate::pipeline::lock(&self.active).insert(id, media);
    }

    fn ended(&self, id: i64, ended_at: DateTime<Utc>) {
        let media = crate::pipeline::lock(&self.active).remove(&id);
        if let Some(media) = media {
            let post = chrono::Duration::milliseconds((self.config.post_s * 1000.0) as i64);
            media.end_recording(id, ended_at + post);
        }
    }
}

/// The writer task: muxes each clip on the blocking pool and stores it.
async fn write_clips(
    mut rx: mpsc::Receiver<FinishedClip>,
    store: Arc<dyn EventStore>,
    totals: Arc<ClipTotals>,
) {
    while let Some(clip) = rx.recv().await {
        let id = clip.event_id;
        let starts_late = clip.starts_late;
        let muxed = tokio::task::spawn_blocking(move || {
            let mut mp4 = Vec::new();
            write_mp4(&clip.samples, &mut mp4).map(|summary| (mp4, summary))
        })
        .await;
        let (mp4, summary) = match muxed {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                totals.failed.fetch_add(1, Ordering::Relaxed);
                warn!(event = id, error = %e, "event clip not written");
                continue;
            }
            Err(e) => {
                totals.failed.fetch_add(1, Ordering::Relaxed);
                warn!(event = id, error = %e, "event clip not written");
                continue;
            }
        };
        let bytes = mp4.len() as u64;
        let duration = summary.duration_seconds();
        match store.put_clip(id, mp4, duration).await {
            Ok(true) => {
                totals.written.fetch_add(1, Ordering::Relaxed);
                totals.bytes.fetch_add(bytes, Ordering::Relaxed);
                debug!(
                    event = id,
                    bytes, duration, starts_late, "event clip written"
                );
            }
            Ok(false) => debug!(event = id, "event gone before its clip was written"),
            Err(e) => {
                totals.failed.fetch_add(1, Ordering::Relaxed);
                warn!(event = id, error = %e, "event clip not stored");
            }
        }
    }
}
