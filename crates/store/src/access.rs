//! Storage of users, tokens, the audit trail and event workflow steps.

use crate::StoreError;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use xueliang_core::{
    AuditEntry, Event, NewAuditEntry, NewUser, StatsQuery, StatsRow, TokenInfo, TokenKind, User,
    UserPatch, WorkflowStep,
};

/// A token to store: only its hash.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub user_id: i64,
    pub kind: TokenKind,
    pub name: String,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Why a workflow step was not taken.
#[derive(Debug)]
pub enum StepOutcome {
    Done(Box<Event>),
    NoSuchEvent,
    /// The step is not allowed from the event's state; says why.
    Refused(String),
}

pub trait AccessStore: Send + Sync {
    /// Fails with [`StoreError::Conflict`] when the username is taken.
    fn create_user(&self, user: NewUser) -> BoxFuture<'_, Result<User, StoreError>>;
    fn list_users(&self) -> BoxFuture<'_, Result<Vec<User>, StoreError>>;
    fn get_user(&self, id: i64) -> BoxFuture<'_, Result<Option<User>, StoreError>>;
    /// The user and their password hash, for logging in.
    fn user_for_login(
        &self,
        username: String,
    ) -> BoxFuture<'_, Result<Option<(User, String)>, StoreError>>;
    /// `None` if no such user. A new password or disabling the user revokes
    /// all their tokens (sessions and API tokens).
    fn update_user(
        &self,
        id: i64,
        patch: UserPatch,
    ) -> BoxFuture<'_, Result<Option<User>, StoreError>>;
    /// Deletes a user and their tokens; false if no such user.
    fn delete_user(&self, id: i64) -> BoxFuture<'_, Result<bool, StoreError>>;
    fn count_admins(&self) -> BoxFuture<'_, Result<u64, StoreError>>;

    fn insert_token(&self, token: NewToken) -> BoxFuture<'_, Result<TokenInfo, StoreError>>;
    /// The valid (not revoked, not expired, user not disabled) token with
    /// this hash and its user; records the use.
    fn authenticate(
        &self,
        token_hash: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Option<(TokenInfo, User)>, StoreError>>;
    /// Tokens of one user, or of everyone; newest first.
    fn list_tokens(
        &self,
        user_id: Option<i64>,
    ) -> BoxFuture<'_, Result<Vec<TokenInfo>, StoreError>>;
    fn get_token(&self, id: i64) -> BoxFuture<'_, Result<Option<TokenInfo>, StoreError>>;
    /// Revokes a token; false if no such token or revoked already.
    fn revoke_token(&self, id: i64, at: DateTime<Utc>) -> BoxFuture<'_, Result<bool, StoreError>>;

    fn audit(&self, entry: NewAuditEntry) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Audit lines, newest first, optionally of one target, below a cursor id.
    fn list_audit(
        &self,
        target: Option<(String, String)>,
        before_id: Option<i64>,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<AuditEntry>, StoreError>>;

    /// Takes a workflow step on an event and records it in the audit trail,
    /// in one transaction.
    fn workflow_step(&self, step: WorkflowStep) -> BoxFuture<'_, Result<StepOutcome, StoreError>>;

    /// Event counts per group (and bucket), largest buckets last.
    fn event_stats(&self, query: StatsQuery) -> BoxFuture<'_, Result<Vec<StatsRow>, StoreError>>;
}
