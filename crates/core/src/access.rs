//! Who may use the monitoring centre's API, and what they did: users with
//! roles and village scopes, tokens, the audit trail, and the workflow an
//! operator moves an event through.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;

/// What a user may do. Each role can do everything the ones after it can.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads cameras, events, reports.
    Viewer,
    /// A viewer who also works events (acknowledge, assign, resolve, ...).
    Operator,
    /// Everything, including cameras, users and every token.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role `{other}` (known: admin, operator, viewer)"
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user of the API and dashboard (never with the password hash).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    /// The villages this user may see; empty means every village.
    pub villages: Vec<String>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl User {
    /// Whether the user may see things of `village` (`None`: a camera
    /// without a village, visible only to unscoped users).
    pub fn sees_village(&self, village: Option<&str>) -> bool {
        self.villages.is_empty() || village.is_some_and(|v| self.villages.iter().any(|s| s == v))
    }

    /// The village scope to apply to queries: `None` for every village.
    pub fn scope(&self) -> Option<Vec<String>> {
        (!self.villages.is_empty()).then(|| self.villages.clone())
    }
}

/// A new user; `password_hash` is an argon2 PHC string.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    pub villages: Vec<String>,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    pub password_hash: Option<String>,
    pub role: Option<Role>,
    pub villages: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

/// Session tokens come from logging in and end with the session; API tokens
/// are made for integrations and live until revoked or expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Session,
    Api,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Session => "session",
            TokenKind::Api => "api",
        }
    }
}

impl FromStr for TokenKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "session" => Ok(TokenKind::Session),
            "api" => Ok(TokenKind::Api),
            other => Err(format!("unknown token kind `{other}`")),
        }
    }
}

/// A token as listed: never the token itself (only its hash is stored).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[schema(as = Token)]
pub struct TokenInfo {
    pub id: i64,
    pub user_id: i64,
    pub username: String,
    pub kind: TokenKind,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Where an operator has taken an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowState {
    /// Nobody has looked at it yet.
    New,
    Acknowledged,
    /// Someone (the assignee) is to deal with it.
    Assigned,
    Resolved,
    FalseAlarm,
}

impl WorkflowState {
    pub const ALL: [WorkflowState; 5] = [
        WorkflowState::New,
        WorkflowState::Acknowledged,
        WorkflowState::Assigned,
        WorkflowState::Resolved,
        WorkflowState::FalseAlarm,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowState::New => "new",
            WorkflowState::Acknowledged => "acknowledged",
            WorkflowState::Assigned => "assigned",
            WorkflowState::Resolved => "resolved",
            WorkflowState::FalseAlarm => "false_alarm",
        }
    }

    /// Resolved and false alarms are closed: only notes and keep marks can be added.
    pub fn is_closed(self) -> bool {
        matches!(self, WorkflowState::Resolved | WorkflowState::FalseAlarm)
    }
}

impl FromStr for WorkflowState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        WorkflowState::ALL
            .into_iter()
            .find(|w| w.as_str() == s)
            .ok_or_else(|| {
                format!("unknown workflow state `{s}` (known: new, acknowledged, assigned, resolved, false_alarm)")
            })
    }
}

/// What an operator does to an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowAction {
    Acknowledge,
    Assign,
    Resolve,
    FalseAlarm,
    Note,
    /// Keep the event (and its snapshot) past retention and the disk budget.
    Keep,
    /// Let retention remove it again.
    Unkeep,
}

impl WorkflowAction {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowAction::Acknowledge => "acknowledge",
            WorkflowAction::Assign => "assign",
            WorkflowAction::Resolve => "resolve",
            WorkflowAction::FalseAlarm => "false_alarm",
            WorkflowAction::Note => "note",
            WorkflowAction::Keep => "keep",
            WorkflowAction::Unkeep => "unkeep",
        }
    }

    /// What the action does to the event's `keep` flag, if anything.
    pub fn keep(self) -> Option<bool> {
        match self {
            WorkflowAction::Keep => Some(true),
            WorkflowAction::Unkeep => Some(false),
            _ => None,
        }
    }

    /// The state after this action from `from`, or why it is not allowed.
    /// Closed events take only notes and keep marks (a resolved case is
    /// what one keeps); neither changes the state.
    pub fn apply(self, from: WorkflowState) -> Result<WorkflowState, String> {
        if matches!(
            self,
            WorkflowAction::Note | WorkflowAction::Keep | WorkflowAction::Unkeep
        ) {
            return Ok(from);
        }
        if from.is_closed() {
            return Err(format!(
                "the event is {} already; only notes and keep marks can be added",
                from.as_str()
            ));
        }
        Ok(match self {
            WorkflowAction::Acknowledge if from == WorkflowState::New => {
                WorkflowState::Acknowledged
            }
            WorkflowAction::Acknowledge => {
                return Err(format!("the event is {} already", from.as_str()))
            }
            WorkflowAction::Assign => WorkflowState::Assigned,
            WorkflowAction::Resolve => WorkflowState::Resolved,
            WorkflowAction::FalseAlarm => WorkflowState::FalseAlarm,
            WorkflowAction::Note | WorkflowAction::Keep | WorkflowAction::Unkeep => from,
        })
    }
}

/// An event's workflow as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Workflow {
    pub state: WorkflowState,
    pub assignee: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    pub updated_by: Option<String>,
}

impl Default for Workflow {
    fn default() -> Self {
        Workflow {
            state: WorkflowState::New,
            assignee: None,
            updated_at: None,
            updated_by: None,
        }
    }
}

/// One workflow step asked of the store.
#[derive(Clone, Debug)]
pub struct WorkflowStep {
    pub event_id: i64,
    pub action: WorkflowAction,
    pub by: String,
    pub assignee: Option<String>,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// One line of the audit trail: who did what to what, when.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The username, or `cli` for the command line.
    pub user: String,
    pub action: String,
    /// `event`, `camera`, `user` or `token`.
    pub target_kind: String,
    pub target_id: String,
    /// Action details (assignee, note, changed fields), never a secret.
    pub detail: serde_json::Value,
}

impl NewAuditEntry {
    /// `user` did `action` on the `target_kind` `target_id`, now.
    pub fn now(
        user: impl Into<String>,
        action: &str,
        target_kind: &str,
        target_id: impl ToString,
        detail: serde_json::Value,
    ) -> Self {
        NewAuditEntry {
            at: Utc::now(),
            user: user.into(),
            action: action.into(),
            target_kind: target_kind.into(),
            target_id: target_id.to_string(),
            detail,
        }
    }
}

/// A new audit line.
#[derive(Clone, Debug)]
pub struct NewAuditEntry {
    pub at: DateTime<Utc>,
    pub user: String,
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub detail: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_and_parse() {
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
        assert_eq!("operator".parse::<Role>().unwrap(), Role::Operator);
        assert!("root".parse::<Role>().unwrap_err().contains("known"));
    }

    #[test]
    fn workflow_transitions() {
        use WorkflowAction as A;
        use WorkflowState as S;
        assert_eq!(A::Acknowledge.apply(S::New), Ok(S::Acknowledged));
        assert!(A::Acknowledge.apply(S::Acknowledged).is_err());
        assert_eq!(A::Assign.apply(S::Acknowledged), Ok(S::Assigned));
        assert_eq!(A::Resolve.apply(S::Assigned), Ok(S::Resolved));
        assert!(A::Assign.apply(S::Resolved).is_err());
        assert!(A::FalseAlarm.apply(S::FalseAlarm).is_err());
        assert_eq!(A::Note.apply(S::Resolved), Ok(S::Resolved));
        assert_eq!(A::Keep.apply(S::Resolved), Ok(S::Resolved));
        assert_eq!(A::Unkeep.apply(S::New), Ok(S::New));
        assert_eq!(
            (A::Keep.keep(), A::Unkeep.keep(), A::Note.keep()),
            (Some(true), Some(false), None)
        );
    }

    #[test]
    fn village_scope() {
        let mut u = User {
            id: 1,
            username: "a".into(),
            role: Role::Viewer,
            villages: vec![],
            disabled: false,
            created_at: Utc::now(),
        };
        assert!(u.sees_village(None) && u.sees_village(Some("东村")));
        u.villages = vec!["东村".into()];
        assert!(u.sees_village(Some("东村")));
        assert!(!u.sees_village(Some("西村")) && !u.sees_village(None));
    }
}
