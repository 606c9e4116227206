//! [`AccessStore`] on PostgreSQL: users, tokens, the audit trail and
//! workflow steps, as in `sqlite_access.rs`.

use crate::access::{AccessStore, NewToken, StepOutcome};
use crate::rows::{
    audit_from_row, corrupt, event_from_row, is_unique_violation, millis, step_audit,
    token_from_row, user_from_row, villages_json, COLUMNS, TOKEN_COLUMNS, USER_COLUMNS,
};
use crate::{PgStore, StoreError};
use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use sqlx::{Postgres, QueryBuilder, Row};
use xueliang_core::{
    AuditEntry, ChangeKind, NewAuditEntry, NewUser, Role, StatsQuery, StatsRow, TokenInfo, User,
    UserPatch, WorkflowAction, WorkflowState, WorkflowStep,
};

/// How often a token's `last_used_at` is written at most.
const TOUCH_EVERY: Duration = Duration::seconds(60);

async fn insert_audit<'c>(
    conn: impl sqlx::Executor<'c, Database = Postgres>,
    e: &NewAuditEntry,
) -> Result<(), StoreError> {
    // `user` is a reserved word in PostgreSQL.
    sqlx::query(
        "INSERT INTO audit_log (at, \"user\", action, target_kind, target_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(millis(e.at))
    .bind(&e.user)
    .bind(&e.action)
    .bind(&e.target_kind)
    .bind(&e.target_id)
    .bind(e.detail.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

impl PgStore {
    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }
}

impl AccessStore for PgStore {
    fn create_user(&self, u: NewUser) -> BoxFuture<'_, Result<User, StoreError>> {
        async move {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO users (username, password_hash, role, villages, created_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(&u.username)
            .bind(&u.password_hash)
            .bind(u.role.as_str())
            .bind(villages_json(&u.villages))
            .bind(millis(Utc::now()))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("the username \"{}\" is taken", u.username))
                } else {
                    e.into()
                }
            })?;
            self.user_by_id(id)
                .await?
                .ok_or_else(|| corrupt("users", "inserted user vanished"))
        }
        .boxed()
    }

    fn list_users(&self) -> BoxFuture<'_, Result<Vec<User>, StoreError>> {
        async move {
            sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(user_from_row)
                .collect()
        }
        .boxed()
    }

    fn get_user(&self, id: i64) -> BoxFuture<'_, Result<Option<User>, StoreError>> {
        async move { self.user_by_id(id).await }.boxed()
    }

    fn user_for_login(
        &self,
        username: String,
    ) -> BoxFuture<'_, Result<Option<(User, String)>, StoreError>> {
        async move {
            let row = sqlx::query(&format!(
                "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = $1"
            ))
            .bind(&username)
            .fetch_optional(&self.pool)
            .await?;
            match row {
                Some(r) => Ok(Some((user_from_row(&r)?, r.try_get("password_hash")?))),
                None => Ok(None),
            }
        }
        .boxed()
    }

    fn update_user(
        &self,
        id: i64,
        p: UserPatch,
    ) -> BoxFuture<'_, Result<Option<User>, StoreError>> {
        async move {
            let mut tx = self.pool.begin().await?;
            // `disabled` is a BIGINT 0/1 flag, not a BOOLEAN.
            let done = sqlx::query(
                "UPDATE users SET password_hash = COALESCE($1, password_hash), \
                 role = COALESCE($2, role), villages = COALESCE($3, villages), \
                 disabled = COALESCE($4, disabled) WHERE id = $5",
            )
            .bind(&p.password_hash)
            .bind(p.role.map(Role::as_str))
            .bind(p.villages.as_deref().map(villages_json))
            .bind(p.disabled.map(i64::from))
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(None);
            }
            // A new password or a disabled account ends every session and
            // API token: whoever knew the old password may have made one.
            if p.password_hash.is_some() || p.disabled == Some(true) {
                sqlx::query(
                    "UPDATE tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
                )
                .bind(millis(Utc::now()))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            self.user_by_id(id).await
        }
        .boxed()
    }

    fn delete_user(&self, id: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let done = sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(id)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() > 0)
        }
        .boxed()
    }

    fn count_admins(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0",
            )
            .fetch_one(&self.pool)
            .await?;
            Ok(n as u64)
        }
        .boxed()
    }

    fn insert_token(&self, t: NewToken) -> BoxFuture<'_, Result<TokenInfo, StoreError>> {
        async move {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO tokens (user_id, kind, name, token_hash, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(t.user_id)
            .bind(t.kind.as_str())
            .bind(&t.name)
            .bind(&t.token_hash)
            .bind(millis(Utc::now()))
            .bind(t.expires_at.map(millis))
            .fetch_one(&self.pool)
            .await?;
            self.get_token(id)
                .await?
                .ok_or_else(|| corrupt("tokens", "inserted token vanished"))
        }
        .boxed()
    }

    fn authenticate(
        &self,
        token_hash: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<(TokenInfo, User)>, StoreError>> {
        async move {
            let row = sqlx::query(&format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id \
                 WHERE t.token_hash = $1 AND t.revoked_at IS NULL \
                 AND (t.expires_at IS NULL OR t.expires_at > $2) AND u.disabled = 0"
            ))
            .bind(&token_hash)
            .bind(millis(now))
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let token = token_from_row(&row)?;
            if token
                .last_used_at
                .is_none_or(|last| now - last >= TOUCH_EVERY)
            {
                sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
                    .bind(millis(now))
                    .bind(token.id)
                    .execute(&self.pool)
                    .await?;
            }
            let user = self
                .user_by_id(token.user_id)
                .await?
                .ok_or_else(|| corrupt("tokens", "token without a user"))?;
            Ok(Some((token, user)))
        }
        .boxed()
    }

    fn list_tokens(
        &self,
        user_id: Option<i64>,
    ) -> BoxFuture<'_, Result<Vec<TokenInfo>, StoreError>> {
        async move {
            // One parameter used twice; the cast types a NULL.
            sqlx::query(&format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id \
                 WHERE ($1::BIGINT IS NULL OR t.user_id = $1) ORDER BY t.id DESC"
            ))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(token_from_row)
            .collect()
        }
        .boxed()
    }

    fn get_token(&self, id: i64) -> BoxFuture<'_, Result<Option<TokenInfo>, StoreError>> {
        async move {
            sqlx::query(&format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1"
            ))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(token_from_row)
            .transpose()
        }
        .boxed()
    }

    fn revoke_token(&self, id: i64, at: DateTime<Utc>) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            // Two revocations at once: the second UPDATE waits for the
            // first's row lock, then finds `revoked_at` set and changes nothing.
            let done = sqlx::query(
                "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(millis(at))
            .bind(id)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() > 0)
        }
        .boxed()
    }

    fn audit(&self, entry: NewAuditEntry) -> BoxFuture<'_, Result<(), StoreError>> {
        async move { insert_audit(&self.pool, &entry).await }.boxed()
    }

    fn list_audit(
        &self,
        target: Option<(String, String)>,
        before_id: Option<i64>,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<AuditEntry>, StoreError>> {
        async move {
            let mut b: QueryBuilder<Postgres> = QueryBuilder::new(
                "SELECT id, at, \"user\", action, target_kind, target_id, detail FROM audit_log WHERE 1 = 1",
            );
            if let Some((kind, id)) = target {
                b.push(" AND target_kind = ").push_bind(kind);
                b.push(" AND target_id = ").push_bind(id);
            }
            if let Some(before) = before_id {
                b.push(" AND id < ").push_bind(before);
            }
            b.push(" ORDER BY id DESC LIMIT ")
                .push_bind(limit.clamp(1, crate::MAX_PAGE + 1) as i64);
            b.build()
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(audit_from_row)
                .collect()
        }
        .boxed()
    }

    fn workflow_step(&self, step: WorkflowStep) -> BoxFuture<'_, Result<StepOutcome, StoreError>> {
        async move {
            let mut tx = self.pool.begin().await?;
            // FOR UPDATE where SQLite's transaction is IMMEDIATE: two steps
            // on one event at once must not both start from the same state;
            // the second waits here until the first commits, then reads its state.
            let current: Option<String> =
                sqlx::query_scalar("SELECT workflow FROM events WHERE id = $1 FOR UPDATE")
                    .bind(step.event_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(current) = current else {
                return Ok(StepOutcome::NoSuchEvent);
            };
            let from: WorkflowState = current.parse().map_err(|e| corrupt("workflow", e))?;
            let to = match step.action.apply(from) {
                Ok(to) => to,
                Err(why) => return Ok(StepOutcome::Refused(why)),
            };
            if let Some(keep) = step.action.keep() {
                // `keep` is a BIGINT 0/1 flag.
                sqlx::query("UPDATE events SET keep = $1 WHERE id = $2")
                    .bind(i64::from(keep))
                    .bind(step.event_id)
                    .execute(&mut *tx)
                    .await?;
            } else if step.action != WorkflowAction::Note {
                sqlx::query(
                    "UPDATE events SET workflow = $1, workflow_at = $2, workflow_by = $3, \
                     assignee = CASE WHEN $4::BOOLEAN THEN $5 ELSE assignee END WHERE id = $6",
                )
                .bind(to.as_str())
                .bind(millis(step.at))
                .bind(&step.by)
                .bind(step.action == WorkflowAction::Assign)
                .bind(&step.assignee)
                .bind(step.event_id)
                .execute(&mut *tx)
                .await?;
            }
            insert_audit(&mut *tx, &step_audit(&step, from, to)).await?;
            let row = sqlx::query(&format!("SELECT {COLUMNS} FROM events WHERE id = $1"))
                .bind(step.event_id)
                .fetch_one(&mut *tx)
                .await?;
            let event = event_from_row(&row)?;
            self.notify(&mut tx, step.event_id, ChangeKind::Updated)
                .await?;
            tx.commit().await?;
            self.announce(step.event_id, ChangeKind::Updated);
            Ok(StepOutcome::Done(Box::new(event)))
        }
        .boxed()
    }

    fn event_stats(&self, q: StatsQuery) -> BoxFuture<'_, Result<Vec<StatsRow>, StoreError>> {
        async move { crate::event_queries::event_stats(&self.pool, &q).await }.boxed()
    }
}
