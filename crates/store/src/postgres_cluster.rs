//! Camera leases and node heartbeats (migration 0002_cluster.sql) for
//! several nodes on one PostgreSQL database. Every time is the database's
//! clock, so nodes whose clocks drift agree on who holds what.
//!
//! Claiming is one conditional upsert: a camera with no lease, or with an
//! expired one, goes to the first node whose statement commits; a second
//! node's statement waits on the row lock, then finds the lease no longer
//! expired and changes nothing. (No `SKIP LOCKED` is needed: a node asks for
//! cameras it chose from a list, one statement each.)

use crate::{PgStore, StoreError};
use serde::Serialize;
use sqlx::Row;

/// The database's clock, ms since the Unix epoch.
const NOW: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

/// A node as the others see it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NodeRow {
    pub node_id: String,
    /// ms since the Unix epoch (the database's clock).
    pub started_at: i64,
    pub heartbeat_at: i64,
    /// 0: no cap.
    pub max_cameras: i64,
    pub cameras: i64,
    pub cpu_percent: f64,
    pub draining: bool,
    /// `[cluster] api_url`: where its API answers the other nodes.
    pub api_url: Option<String>,
}

/// A camera's lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LeaseRow {
    pub camera_id: String,
    pub node_id: String,
    pub acquired_at: i64,
    pub expires_at: i64,
}

/// What a node says about itself at each beat.
#[derive(Clone, Debug)]
pub struct Beat {
    pub node_id: String,
    pub max_cameras: i64,
    pub cameras: i64,
    pub cpu_percent: f64,
    /// Only ever set to true by the node itself (SIGTERM) or `xueliang
    /// drain`; a beat never clears a drain asked for from outside.
    pub draining: bool,
    /// `[cluster] api_url`.
    pub api_url: Option<String>,
}

/// A camera's live state as its runner publishes it for the other nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedState {
    pub camera_id: String,
    /// `CameraState::as_str`.
    pub state: String,
    /// `HealthReason::as_str`.
    pub reason: Option<String>,
    pub detail: Option<String>,
    /// ms since the Unix epoch.
    pub since: i64,
}

/// The channel camera changes are announced on; the payload is the id.
pub const CAMERAS_CHANNEL: &str = "xueliang_cameras";

impl PgStore {
    /// Tells the other nodes a camera's stored definition changed.
    pub(crate) async fn camera_changed(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CAMERAS_CHANNEL)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Camera ids whose stored definition changed (on any node, this one
    /// included), as they change.
    pub async fn camera_changes(&self) -> Result<sqlx::postgres::PgListener, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(CAMERAS_CHANNEL).await?;
        Ok(listener)
    }

    /// The database's clock, ms since the Unix epoch.
    pub async fn db_now(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(&format!("SELECT {NOW}"))
            .fetch_one(&self.pool)
            .await?)
    }

    /// Records a node starting (clears an old drain mark of the same id).
    pub async fn join(
        &self,
        node_id: &str,
        max_cameras: i64,
        api_url: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO cluster_nodes (node_id, started_at, heartbeat_at, max_cameras, api_url) \
             VALUES ($1, {NOW}, {NOW}, $2, $3) ON CONFLICT (node_id) DO UPDATE SET \
             started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, \
             max_cameras = excluded.max_cameras, cameras = 0, draining = 0, \
             api_url = excluded.api_url"
        ))
        .bind(node_id)
        .bind(max_cameras)
        .bind(api_url)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A heartbeat; returns whether the node is (now) draining.
    pub async fn beat(&self, b: &Beat) -> Result<bool, StoreError> {
        let draining: Option<i64> = sqlx::query_scalar(&format!(
            "UPDATE cluster_nodes SET heartbeat_at = {NOW}, max_cameras = $2, cameras = $3, \
             cpu_percent = $4, draining = GREATEST(draining, $5) WHERE node_id = $1 RETURNING draining"
        ))
        .bind(&b.node_id)
        .bind(b.max_cameras)
        .bind(b.cameras)
        .bind(b.cpu_percent)
        .bind(b.draining as i64)
        .fetch_optional(&self.pool)
        .await?;
        match draining {
            Some(d) => Ok(d != 0),
            None => {
                self.join(&b.node_id, b.max_cameras, b.api_url.as_deref())
                    .await?;
                Ok(false)
            }
        }
    }

    /// Asks `node_id` to hand its cameras over and stop (`xueliang drain`);
    /// false when no such node ever joined.
    pub async fn ask_to_drain(&self, node_id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE cluster_nodes SET draining = 1 WHERE node_id = $1")
            .bind(node_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Renews every lease `node_id` holds for `lease_ms` more; the cameras
    /// it still holds.
    pub async fn renew(&self, node_id: &str, lease_ms: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(&format!(
            "UPDATE camera_leases SET expires_at = {NOW} + $2 WHERE node_id = $1 RETURNING camera_id"
        ))
        .bind(node_id)
        .bind(lease_ms)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Takes `camera_id` if nobody holds it or its lease expired.
    pub async fn claim(
        &self,
        node_id: &str,
        camera_id: &str,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO camera_leases (camera_id, node_id, acquired_at, expires_at) \
             VALUES ($1, $2, {NOW}, {NOW} + $3) ON CONFLICT (camera_id) DO UPDATE SET \
             node_id = excluded.node_id, acquired_at = excluded.acquired_at, \
             expires_at = excluded.expires_at WHERE camera_leases.expires_at < {NOW} \
             RETURNING camera_id"
        ))
        .bind(camera_id)
        .bind(node_id)
        .bind(lease_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Gives a camera up (after stopping it); false if `node_id` did not hold it.
    pub async fn release(&self, node_id: &str, camera_id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM camera_leases WHERE camera_id = $1 AND node_id = $2")
            .bind(camera_id)
            .bind(node_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Every node that ever joined, by id.
    pub async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT node_id, started_at, heartbeat_at, max_cameras, cameras, cpu_percent, draining, \
             api_url FROM cluster_nodes ORDER BY node_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(NodeRow {
                    node_id: r.try_get("node_id")?,
                    started_at: r.try_get("started_at")?,
                    heartbeat_at: r.try_get("heartbeat_at")?,
                    max_cameras: r.try_get("max_cameras")?,
                    cameras: r.try_get("cameras")?,
                    cpu_percent: r.try_get("cpu_percent")?,
                    draining: r.try_get::<i64, _>("draining")? != 0,
                    api_url: r.try_get("api_url")?,
                })
            })
            .collect()
    }

    /// The node holding a live lease on `camera`, and where its API
    /// answers (if it said).
    pub async fn runner(
        &self,
        camera: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT l.node_id, n.api_url FROM camera_leases l \
             LEFT JOIN cluster_nodes n ON n.node_id = l.node_id \
             WHERE l.camera_id = $1 AND l.expires_at > {NOW}"
        ))
        .bind(camera)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get("node_id")?, r.try_get("api_url")?)))
            .transpose()
    }

    /// Records the live state of the cameras `node_id` runs (one upsert).
    pub async fn publish_states(
        &self,
        node_id: &str,
        states: &[PublishedState],
    ) -> Result<(), StoreError> {
        if states.is_empty() {
            return Ok(());
        }
        let column = |f: fn(&PublishedState) -> Option<String>| -> Vec<Option<String>> {
            states.iter().map(f).collect()
        };
        sqlx::query(&format!(
            "INSERT INTO camera_states (camera_id, node_id, state, reason, detail, since, at) \
             SELECT c, $1, s, r, d, si, {NOW} \
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[]) AS t(c, s, r, d, si) \
             ON CONFLICT (camera_id) DO UPDATE SET node_id = excluded.node_id, \
             state = excluded.state, reason = excluded.reason, detail = excluded.detail, \
             since = excluded.since, at = excluded.at"
        ))
        .bind(node_id)
        .bind(column(|s| Some(s.camera_id.clone())))
        .bind(column(|s| Some(s.state.clone())))
        .bind(column(|s| s.reason.clone()))
        .bind(column(|s| s.detail.clone()))
        .bind(states.iter().map(|s| s.since).collect::<Vec<i64>>())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The states written within the last `max_age_ms` (the database's
    /// clock), by camera: (writer, state).
    pub async fn camera_states(
        &self,
        max_age_ms: i64,
    ) -> Result<Vec<(String, PublishedState)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT camera_id, node_id, state, reason, detail, since FROM camera_states \
             WHERE at > {NOW} - $1 ORDER BY camera_id"
        ))
        .bind(max_age_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("node_id")?,
                    PublishedState {
                        camera_id: r.try_get("camera_id")?,
                        state: r.try_get("state")?,
                        reason: r.try_get("reason")?,
                        detail: r.try_get("detail")?,
                        since: r.try_get("since")?,
                    },
                ))
            })
            .collect()
    }

    /// Every lease, live or expired, by camera.
    pub async fn leases(&self) -> Result<Vec<LeaseRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT camera_id, node_id, acquired_at, expires_at FROM camera_leases ORDER BY camera_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LeaseRow {
                    camera_id: r.try_get("camera_id")?,
                    node_id: r.try_get("node_id")?,
                    acquired_at: r.try_get("acquired_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect()
    }
}
