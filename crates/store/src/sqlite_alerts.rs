//! [`AlertStore`] on the embedded SQLite backend (tables of migration 0004).

use crate::alerts::{
    parse_outcome, Alert, AlertPlan, AlertStore, Attempt, AttemptOutcome, AttemptRecord, Busy,
    Delivery, DeliveryLevel, DeliveryStatus, PlannedDelivery, RouteOutcome,
};
use crate::error::StoreError;
use crate::rows::{
    alert_from_row, delivery_from_row, millis, opt_time, time, ALERT_COLUMNS, DELIVERY_COLUMNS,
};
use crate::sqlite::SqliteStore;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use sqlx::{Row, Sqlite, Transaction};
use std::sync::Arc;
use tokio::sync::Notify;

/// Leaves out [`Busy`] deliveries: binds the JSON arrays of [`busy_json`].
const NOT_BUSY: &str = "d.id NOT IN (SELECT value FROM json_each(?)) \
     AND d.channel NOT IN (SELECT value FROM json_each(?))";

/// The delivery ids and channel names of `busy` as JSON arrays, for [`NOT_BUSY`].
fn busy_json(busy: &Busy) -> (String, String) {
    (
        serde_json::to_string(&busy.deliveries).expect("ids serialise"),
        serde_json::to_string(&busy.channels).expect("names serialise"),
    )
}

/// Inserts deliveries; the idempotency key names the alert, level, channel and
/// officer, so a replayed plan cannot make a second message.
async fn insert_deliveries(
    tx: &mut Transaction<'_, Sqlite>,
    alert_id: i64,
    level: DeliveryLevel,
    at: DateTime<Utc>,
    deliveries: &[PlannedDelivery],
) -> Result<(), StoreError> {
    for d in deliveries {
        let key = crate::rows::delivery_key(alert_id, level, d);
        sqlx::query(
            "INSERT OR IGNORE INTO alert_deliveries (alert_id, channel, officer, level, idempotency_key, \
             status, attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
        )
        .bind(alert_id)
        .bind(&d.channel)
        .bind(&d.officer)
        .bind(level.as_str())
        .bind(key)
        .bind(DeliveryStatus::Pending.as_str())
        .bind(millis(at))
        .bind(millis(at))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl AlertStore for SqliteStore {
    fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox_signal.clone()
    }

    fn waiting_outbox(&self, limit: u32) -> BoxFuture<'_, Result<Vec<i64>, StoreError>> {
        async move {
            Ok(sqlx::query_scalar(
                "SELECT event_id FROM alert_outbox WHERE processed_at IS NULL ORDER BY event_id LIMIT ?",
            )
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?)
        }
        .boxed()
    }

    fn outbox_depth(&self) -> BoxFuture<'_, Result<crate::OutboxDepth, StoreError>> {
        async move {
            // Both counts use the partial indexes on what waits.
            let (events, deliveries): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM alert_outbox WHERE processed_at IS NULL), \
                        (SELECT COUNT(*) FROM alert_deliveries WHERE status = 'pending')",
            )
            .fetch_one(&self.pool)
            .await?;
            Ok(crate::OutboxDepth {
                events: events.max(0) as u64,
                deliveries: deliveries.max(0) as u64,
            })
        }
        .boxed()
    }

    fn route_event(
        &self,
        event_id: i64,
        at: DateTime<Utc>,
        plan: Option<AlertPlan>,
    ) -> BoxFuture<'_, Result<RouteOutcome, StoreError>> {
        async move {
            let mut tx = self.pool.begin().await?;
            // Claim the row first: a second dispatcher (or a replay) finds it done.
            let claimed = sqlx::query(
                "UPDATE alert_outbox SET processed_at = ? WHERE event_id = ? AND processed_at IS NULL",
            )
            .bind(millis(at))
            .bind(event_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 0 {
                tx.rollback().await?;
                return Ok(RouteOutcome::AlreadyRouted);
            }
            let Some(plan) = plan else {
                tx.commit().await?;
                return Ok(RouteOutcome::NoRoute);
            };
            let open: Option<(i64, i64)> = sqlx::query_as(
                "SELECT id, count FROM alerts WHERE camera_id = ? AND rule_key = ? AND flood_until > ? \
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(&plan.camera_id)
            .bind(&plan.rule_key)
            .bind(millis(at))
            .fetch_optional(&mut *tx)
            .await?;
            let flood_until = millis(at + plan.flood_window);
            let (outcome, alert_id) = if let Some((alert_id, count)) = open {
                sqlx::query(
                    "UPDATE alerts SET count = count + 1, last_event_at = ?, last_event_id = ?, flood_until = ? \
                     WHERE id = ?",
                )
                .bind(millis(at))
                .bind(event_id)
                .bind(flood_until)
                .bind(alert_id)
                .execute(&mut *tx)
                .await?;
                (
                    RouteOutcome::Merged {
                        alert_id,
                        count: count + 1,
                    },
                    alert_id,
                )
            } else {
                let alert_id: i64 = sqlx::query_scalar(
                    "INSERT INTO alerts (event_id, camera_id, rule_key, count, created_at, last_event_at, \
                     last_event_id, flood_until, escalate_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?) RETURNING id",
                )
                .bind(event_id)
                .bind(&plan.camera_id)
                .bind(&plan.rule_key)
                .bind(millis(at))
                .bind(millis(at))
                .bind(event_id)
                .bind(flood_until)
                .bind(plan.escalate_at.map(millis))
                .fetch_one(&mut *tx)
                .await?;
                insert_deliveries(&mut tx, alert_id, DeliveryLevel::Primary, at, &plan.deliveries)
                    .await?;
                (RouteOutcome::Opened { alert_id }, alert_id)
            };
            sqlx::query("UPDATE alert_outbox SET alert_id = ? WHERE event_id = ?")
                .bind(alert_id)
                .bind(event_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(outcome)
        }
        .boxed()
    }

    fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        busy: &Busy,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, StoreError>> {
        let (ids, channels) = busy_json(busy);
        async move {
            let rows = sqlx::query(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id \
                 WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND {NOT_BUSY} \
                 ORDER BY d.next_attempt_at, d.id LIMIT ?"
            ))
            .bind(millis(now))
            .bind(ids)
            .bind(channels)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(delivery_from_row).collect()
        }
        .boxed()
    }

    fn next_due(&self, busy: &Busy) -> BoxFuture<'_, Result<Option<DateTime<Utc>>, StoreError>> {
        let (ids, channels) = busy_json(busy);
        async move {
            let t: Option<i64> = sqlx::query_scalar(&format!(
                "SELECT MIN(t) FROM (\
                 SELECT MIN(d.next_attempt_at) AS t FROM alert_deliveries d WHERE d.status = 'pending' AND {NOT_BUSY} \
                 UNION ALL SELECT MIN(escalate_at) FROM alerts WHERE escalated_at IS NULL AND acked_at IS NULL)",
            ))
            .bind(ids)
            .bind(channels)
            .fetch_one(&self.pool)
            .await?;
            opt_time(t)
        }
        .boxed()
    }

    fn record_attempt(&self, r: AttemptRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO alert_attempts (delivery_id, at, duration_ms, outcome, error) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(r.delivery_id)
            .bind(millis(r.at))
            .bind(r.duration_ms)
            .bind(r.outcome.as_str())
            .bind(&r.error)
            .execute(&mut *tx)
            .await?;
            let (status, next) = match (r.outcome, r.retry_at) {
                (AttemptOutcome::Ok, _) => (DeliveryStatus::Delivered, r.at),
                (AttemptOutcome::Retriable, Some(t)) => (DeliveryStatus::Pending, t),
                _ => (DeliveryStatus::Failed, r.at),
            };
            let done = r.at + chrono::Duration::milliseconds(r.duration_ms);
            sqlx::query(
                "UPDATE alert_deliveries SET attempts = attempts + 1, status = ?, next_attempt_at = ?, \
                 last_error = COALESCE(?, last_error), delivered_at = ? WHERE id = ?",
            )
            .bind(status.as_str())
            .bind(millis(next))
            .bind(&r.error)
            .bind((status == DeliveryStatus::Delivered).then(|| millis(done)))
            .bind(r.delivery_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        }
        .boxed()
    }

    fn defer_delivery(
        &self,
        delivery_id: i64,
        until: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            sqlx::query("UPDATE alert_deliveries SET next_attempt_at = ? WHERE id = ? AND status = 'pending'")
                .bind(millis(until))
                .bind(delivery_id)
                .execute(&self.pool)
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn due_escalations(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<Alert>, StoreError>> {
        async move {
            let rows = sqlx::query(&format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE escalated_at IS NULL AND acked_at IS NULL \
                 AND escalate_at <= ? ORDER BY escalate_at LIMIT ?"
            ))
            .bind(millis(now))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(alert_from_row).collect()
        }
        .boxed()
    }

    fn escalate(
        &self,
        alert_id: i64,
        at: DateTime<Utc>,
        deliveries: Vec<PlannedDelivery>,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let mut tx = self.pool.begin().await?;
            let n = sqlx::query(
                "UPDATE alerts SET escalated_at = ? WHERE id = ? AND escalated_at IS NULL AND acked_at IS NULL",
            )
            .bind(millis(at))
            .bind(alert_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            insert_deliveries(&mut tx, alert_id, DeliveryLevel::Escalation, at, &deliveries).await?;
            tx.commit().await?;
            Ok(true)
        }
        .boxed()
    }

    fn get_alert(&self, alert_id: i64) -> BoxFuture<'_, Result<Option<Alert>, StoreError>> {
        async move {
            let row = sqlx::query(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?"))
                .bind(alert_id)
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(alert_from_row).transpose()
        }
        .boxed()
    }

    fn ack_alert(
        &self,
        alert_id: i64,
        by: String,
        via: String,
        at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<Alert>, StoreError>> {
        async move {
            sqlx::query(
                "UPDATE alerts SET acked_at = ?, acked_by = ?, acked_via = ? WHERE id = ? AND acked_at IS NULL",
            )
            .bind(millis(at))
            .bind(by)
            .bind(via)
            .bind(alert_id)
            .execute(&self.pool)
            .await?;
            self.get_alert(alert_id).await
        }
        .boxed()
    }

    fn alert_of_event(&self, event_id: i64) -> BoxFuture<'_, Result<Option<Alert>, StoreError>> {
        async move {
            let row = sqlx::query(&format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE id = \
                 (SELECT alert_id FROM alert_outbox WHERE event_id = ?)"
            ))
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(alert_from_row).transpose()
        }
        .boxed()
    }

    fn deliveries(
        &self,
        alert_id: i64,
    ) -> BoxFuture<'_, Result<Vec<crate::alerts::DeliveryLog>, StoreError>> {
        async move {
            let rows = sqlx::query(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id \
                 WHERE d.alert_id = ? ORDER BY d.id"
            ))
            .bind(alert_id)
            .fetch_all(&self.pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let d = delivery_from_row(r)?;
                let attempts = sqlx::query(
                    "SELECT at, duration_ms, outcome, error FROM alert_attempts WHERE delivery_id = ? ORDER BY id",
                )
                .bind(d.id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|a| {
                    Ok(Attempt {
                        at: time(a.try_get("at")?)?,
                        duration_ms: a.try_get("duration_ms")?,
                        outcome: parse_outcome(&a.try_get::<String, _>("outcome")?)?,
                        error: a.try_get("error")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
                out.push((d, attempts));
            }
            Ok(out)
        }
        .boxed()
    }
}
