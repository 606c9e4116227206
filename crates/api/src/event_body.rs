//! The JSON body of one event, shared by the listings (`/events`) and the
//! live feed (`/events/stream`): the event and the links to its snapshot
//! and its clip.

use serde::Serialize;
use utoipa::ToSchema;
use xueliang_core::Event;

/// An event as the API shows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventBody {
    #[serde(flatten)]
    pub event: Event,
    /// Where the snapshot is; `null` without one.
    snapshot_url: Option<String>,
    /// Where the clip is; `null` until it is written.
    clip_url: Option<String>,
}

impl From<Event> for EventBody {
    fn from(event: Event) -> Self {
        let snapshot_url = event
            .has_snapshot
            .then(|| format!("/api/v1/events/{}/snapshot.jpg", event.id));
        let clip_url = event
            .clip
            .is_some()
            .then(|| format!("/api/v1/events/{}/clip.mp4", event.id));
        EventBody {
            event,
            snapshot_url,
            clip_url,
        }
    }
}
