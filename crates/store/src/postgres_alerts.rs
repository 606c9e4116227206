//! [`AlertStore`] on PostgreSQL: the alert outbox, alerts, deliveries and
//! attempts, as in `sqlite_alerts.rs`.

use crate::alerts::{
    parse_outcome, Alert, AlertPlan, AlertStore, Attempt, AttemptRecord, Busy, Delivery,
    DeliveryLevel, DeliveryLog, DeliveryStatus, PlannedDelivery, RouteOutcome,
};
use crate::error::StoreError;
use crate::postgres::PgStore;
use crate::rows::{
    after_attempt, alert_from_row, delivery_from_row, delivery_key, millis, opt_time, time,
    ALERT_COLUMNS, DELIVERY_COLUMNS,
};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use sqlx::{Postgres, Row, Transaction};
use std::sync::Arc;
use tokio::sync::Notify;

/// Leaves out [`Busy`] deliveries: binds the delivery ids as a BIGINT[] and
/// the channel names as a TEXT[] (SQLite's version reads JSON arrays).
const NOT_BUSY: &str = "NOT (d.id = ANY($1)) AND NOT (d.channel = ANY($2))";

/// Inserts deliveries; the idempotency key ([`delivery_key`]) makes a
/// replayed plan's insert do nothing.
async fn insert_deliveries(
    tx: &mut Transaction<'_, Postgres>,
    alert_id: i64,
    level: DeliveryLevel,
    at: DateTime<Utc>,
    deliveries: &[PlannedDelivery],
) -> Result<(), StoreError> {
    for d in deliveries {
        sqlx::query(
            "INSERT INTO alert_deliveries (alert_id, channel, officer, level, idempotency_key, \
             status, attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8) \
             ON CONFLICT DO NOTHING",
        )
        .bind(alert_id)
        .bind(&d.channel)
        .bind(&d.officer)
        .bind(level.as_str())
        .bind(delivery_key(alert_id, level, d))
        .bind(DeliveryStatus::Pending.as_str())
        .bind(millis(at))
        .bind(millis(at))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl AlertStore for PgStore {
    fn leadership(&self) -> crate::alerts::Leadership {
        PgStore::leadership(self)
    }

    fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox_signal.clone()
    }

    fn waiting_outbox(&self, limit: u32) -> BoxFuture<'_, Result<Vec<i64>, StoreError>> {
        async move {
            Ok(sqlx::query_scalar(
                "SELECT event_id FROM alert_outbox WHERE processed_at IS NULL ORDER BY event_id LIMIT $1",
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
            // Claim the row first: a second dispatcher (or a replay) finds it
            // done. Routing the same row at once, the second UPDATE waits for
            // the first's row lock, then finds `processed_at` set.
            let claimed = sqlx::query(
                "UPDATE alert_outbox SET processed_at = $1 WHERE event_id = $2 AND processed_at IS NULL",
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
            // SQLite's single writer routes one event at a time; here two
            // events of the same camera and rule routed at once could both
            // find no open alert and both open one. A lock on the pair,
            // held to the commit, merges the second into the first's alert.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))")
                .bind(&plan.camera_id)
                .bind(&plan.rule_key)
                .execute(&mut *tx)
                .await?;
            let open: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM alerts WHERE camera_id = $1 AND rule_key = $2 AND flood_until > $3 \
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(&plan.camera_id)
            .bind(&plan.rule_key)
            .bind(millis(at))
            .fetch_optional(&mut *tx)
            .await?;
            let flood_until = millis(at + plan.flood_window);
            let (outcome, alert_id) = if let Some(alert_id) = open {
                let count: i64 = sqlx::query_scalar(
                    "UPDATE alerts SET count = count + 1, last_event_at = $1, last_event_id = $2, \
                     flood_until = $3 WHERE id = $4 RETURNING count",
                )
                .bind(millis(at))
                .bind(event_id)
                .bind(flood_until)
                .bind(alert_id)
                .fetch_one(&mut *tx)
                .await?;
                (RouteOutcome::Merged { alert_id, count }, alert_id)
            } else {
                let alert_id: i64 = sqlx::query_scalar(
                    "INSERT INTO alerts (event_id, camera_id, rule_key, count, created_at, last_event_at, \
                     last_event_id, flood_until, escalate_at) VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8) \
                     RETURNING id",
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
            sqlx::query("UPDATE alert_outbox SET alert_id = $1 WHERE event_id = $2")
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
        let busy = busy.clone();
        async move {
            let rows = sqlx::query(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id \
                 WHERE {NOT_BUSY} AND d.status = 'pending' AND d.next_attempt_at <= $3 \
                 ORDER BY d.next_attempt_at, d.id LIMIT $4"
            ))
            .bind(busy.deliveries)
            .bind(busy.channels)
            .bind(millis(now))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(delivery_from_row).collect()
        }
        .boxed()
    }

    fn next_due(&self, busy: &Busy) -> BoxFuture<'_, Result<Option<DateTime<Utc>>, StoreError>> {
        let busy = busy.clone();
        async move {
            // PostgreSQL 15 wants a name for a subquery in FROM.
            let t: Option<i64> = sqlx::query_scalar(&format!(
                "SELECT MIN(t) FROM (\
                 SELECT MIN(d.next_attempt_at) AS t FROM alert_deliveries d WHERE d.status = 'pending' AND {NOT_BUSY} \
                 UNION ALL SELECT MIN(escalate_at) FROM alerts WHERE escalated_at IS NULL AND acked_at IS NULL) AS due",
            ))
            .bind(busy.deliveries)
            .bind(busy.channels)
            .fetch_one(&self.pool)
            .await?;
            opt_time(t)
        }
        .boxed()
    }

    fn record_attempt(&self, r: AttemptRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let (status, next, delivered_at) = after_attempt(&r);
            let mut tx = self.pool.begin().await?;
            // The delivery's UPDATE first (SQLite inserts the attempt first):
            // its row lock serialises two records of one delivery as SQLite's
            // single writer does, so the attempts' ids follow the order in
            // which they changed the delivery.
            sqlx::query(
                "UPDATE alert_deliveries SET attempts = attempts + 1, status = $1, next_attempt_at = $2, \
                 last_error = COALESCE($3, last_error), delivered_at = $4 WHERE id = $5",
            )
            .bind(status.as_str())
            .bind(millis(next))
            .bind(&r.error)
            .bind(delivered_at.map(millis))
            .bind(r.delivery_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO alert_attempts (delivery_id, at, duration_ms, outcome, error) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(r.delivery_id)
            .bind(millis(r.at))
            .bind(r.duration_ms)
            .bind(r.outcome.as_str())
            .bind(&r.error)
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
            sqlx::query(
                "UPDATE alert_deliveries SET next_attempt_at = $1 WHERE id = $2 AND status = 'pending'",
            )
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
                 AND escalate_at <= $1 ORDER BY escalate_at LIMIT $2"
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
            // Conditional: against a concurrent escalation or acknowledgement
            // the UPDATE waits for the row lock, then re-checks its WHERE.
            let n = sqlx::query(
                "UPDATE alerts SET escalated_at = $1 WHERE id = $2 AND escalated_at IS NULL AND acked_at IS NULL",
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
            insert_deliveries(&mut tx, alert_id, DeliveryLevel::Escalation, at, &deliveries)
                .await?;
            tx.commit().await?;
            Ok(true)
        }
        .boxed()
    }

    fn get_alert(&self, alert_id: i64) -> BoxFuture<'_, Result<Option<Alert>, StoreError>> {
        async move {
            let row = sqlx::query(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"))
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
            // The first acknowledgement is kept: a concurrent second UPDATE
            // waits for the row lock, then finds `acked_at` set.
            sqlx::query(
                "UPDATE alerts SET acked_at = $1, acked_by = $2, acked_via = $3 WHERE id = $4 AND acked_at IS NULL",
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
                 (SELECT alert_id FROM alert_outbox WHERE event_id = $1)"
            ))
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(alert_from_row).transpose()
        }
        .boxed()
    }

    fn deliveries(&self, alert_id: i64) -> BoxFuture<'_, Result<Vec<DeliveryLog>, StoreError>> {
        async move {
            let rows = sqlx::query(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id \
                 WHERE d.alert_id = $1 ORDER BY d.id"
            ))
            .bind(alert_id)
            .fetch_all(&self.pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let d = delivery_from_row(r)?;
                let attempts = sqlx::query(
                    "SELECT at, duration_ms, outcome, error FROM alert_attempts \
                     WHERE delivery_id = $1 ORDER BY id",
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
