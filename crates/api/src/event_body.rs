//! The JSON body of one event, shared by the listings (`/events`) and the
//! live feed (`/events/stream`): the event and the link to its snapshot.

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
}

impl From<Event> for EventBody {
    fn from(event: Event) -> Self {
        let snapshot_url = event
            .has_snapshot
            .then(|| format!("/api/v1/events/{}/snapshot.jpg", event.id));
        EventBody {
            event,
            snapshot_url,
        }
    }
}
