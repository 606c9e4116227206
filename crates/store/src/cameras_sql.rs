//! [`CameraStore`] on both backends: the same statements (numbered
//! parameters, which SQLite takes as well) on either pool.

use crate::cameras::{CameraStore, StoredCamera};
use crate::error::StoreError;
use crate::rows::{camera_from_row, CAMERA_COLUMNS as COLUMNS};
use crate::{PgStore, SqliteStore};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;

macro_rules! camera_store {
    ($store:ty) => {
impl CameraStore for $store {
    fn list_cameras(&self) -> BoxFuture<'_, Result<Vec<StoredCamera>, StoreError>> {
        async move {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM cameras ORDER BY position, id"
            ))
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(camera_from_row).collect()
        }
        .boxed()
    }

    fn put_camera(
        &self,
        id: &str,
        definition: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<StoredCamera, StoreError>> {
        let id = id.to_owned();
        let definition = definition.to_string();
        async move {
            let at = at.timestamp_millis();
            // A live row keeps its position and creation time; a new or
            // tombstoned one goes to the end as a new camera.
            let row = sqlx::query(&format!(
                "INSERT INTO cameras (id, definition, deleted, created_at, updated_at, position) \
                 VALUES ($1, $2, 0, $3, $3, (SELECT COALESCE(MAX(position), 0) + 1 FROM cameras)) \
                 ON CONFLICT (id) DO UPDATE SET \
                   definition = excluded.definition, \
                   updated_at = excluded.updated_at, \
                   created_at = CASE WHEN cameras.deleted <> 0 THEN excluded.created_at ELSE cameras.created_at END, \
                   position = CASE WHEN cameras.deleted <> 0 THEN excluded.position ELSE cameras.position END, \
                   deleted = 0 \
                 RETURNING {COLUMNS}",
            ))
            .bind(&id)
            .bind(&definition)
            .bind(at)
            .fetch_one(&self.pool)
            .await?;
            self.camera_changed(&id).await?;
            camera_from_row(&row)
        }
        .boxed()
    }

    fn delete_camera(&self, id: &str, at: DateTime<Utc>) -> BoxFuture<'_, Result<(), StoreError>> {
        let id = id.to_owned();
        async move {
            let at = at.timestamp_millis();
            sqlx::query(
                "INSERT INTO cameras (id, definition, deleted, created_at, updated_at, position) \
                 VALUES ($1, '{}', 1, $2, $2, (SELECT COALESCE(MAX(position), 0) + 1 FROM cameras)) \
                 ON CONFLICT (id) DO UPDATE SET definition = '{}', deleted = 1, updated_at = excluded.updated_at",
            )
            .bind(&id)
            .bind(at)
            .execute(&self.pool)
            .await?;
            self.camera_changed(&id).await?;
            Ok(())
        }
        .boxed()
    }

    fn forget_camera(&self, id: &str) -> BoxFuture<'_, Result<bool, StoreError>> {
        let id = id.to_owned();
        async move {
            let done = sqlx::query("DELETE FROM cameras WHERE id = $1")
                .bind(&id)
                .execute(&self.pool)
                .await?;
            self.camera_changed(&id).await?;
            Ok(done.rows_affected() > 0)
        }
        .boxed()
    }
}
    };
}

impl SqliteStore {
    /// One node: nobody else to tell.
    async fn camera_changed(&self, _id: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

camera_store!(SqliteStore);
camera_store!(PgStore);
