//! Camera definitions changed through the API ([`CameraStore`]): the
//! definitions that override or add to the config file's cameras, and the
//! tombstones of cameras deleted through the API.

use crate::error::StoreError;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

/// One stored camera definition or tombstone.
#[derive(Clone, PartialEq)]
pub struct StoredCamera {
    pub id: String,
    /// The fields of a `[[cameras]]` table as a JSON object (with the
    /// password); an empty object for a tombstone.
    pub definition: serde_json::Value,
    /// Deleted through the API: the config file's camera of this id is not run.
    pub deleted: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Listing order of cameras added through the API.
    pub position: i64,
}

/// The definition holds the password: `Debug` shows only the id and flags.
impl std::fmt::Debug for StoredCamera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCamera")
            .field("id", &self.id)
            .field("deleted", &self.deleted)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

/// Where camera definitions changed through the API live.
pub trait CameraStore: Send + Sync {
    /// Every stored definition and tombstone, by ascending position.
    fn list_cameras(&self) -> BoxFuture<'_, Result<Vec<StoredCamera>, StoreError>>;

    /// Stores a camera's definition (insert, update, or re-create after a
    /// delete). A new or re-created camera goes after every other position
    /// and gets `created_at = at`; an update keeps both.
    fn put_camera(
        &self,
        id: &str,
        definition: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<StoredCamera, StoreError>>;

    /// Marks a camera deleted (a tombstone), forgetting its definition. Works
    /// for ids with no row (cameras only in the config file).
    fn delete_camera(&self, id: &str, at: DateTime<Utc>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Forgets the database's word on a camera: removes its definition or
    /// tombstone, so a config-file camera of this id runs as the file defines
    /// it and one added through the API is gone. `false` when there was none.
    fn forget_camera(&self, id: &str) -> BoxFuture<'_, Result<bool, StoreError>>;
}
