//! The stable error body: `{"error": {"code": "...", "message": "..."}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tracing::error;
use utoipa::ToSchema;

/// The error codes: stable, for programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A query or path parameter, or a field of the body, is not valid.
    InvalidParameter,
    Unauthenticated,
    InvalidCredentials,
    Forbidden,
    NotFound,
    Conflict,
    /// Demoting, disabling or deleting the last active admin.
    LastAdmin,
    /// A workflow action the event's state does not allow.
    InvalidTransition,
    TooManyAttempts,
    BodyTooLarge,
    Internal,
    InvalidCamera,
    /// The camera has no decoded frame yet.
    NoFrame,
    MethodNotAllowed,
    /// A token that would outlive the one making it needs the caller's password.
    PasswordRequired,
    /// The password given to make a long-lived token is wrong.
    WrongPassword,
    /// The live-viewer limit of a camera or of the server is reached.
    TooManyViewers,
}

/// Every error: `{"error": {"code", "message"}}`.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    code: ErrorCode,
    /// For people; names the parameter at fault.
    message: String,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    retry_after: Option<i64>,
}

impl ApiError {
    pub fn bad_parameter(name: &str, message: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidParameter,
            format!("parameter `{name}`: {message}"),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    pub(crate) fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            message,
        )
    }

    pub fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidCredentials,
            "wrong username or password",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 429 with `Retry-After`.
    pub fn too_many_attempts(retry_after_s: i64) -> Self {
        ApiError {
            retry_after: Some(retry_after_s),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::TooManyAttempts,
                format!("too many failed logins; try again in {retry_after_s} s"),
            )
        }
    }

    /// 503 with `Retry-After`: a limit on something shared is reached.
    pub fn unavailable(code: ErrorCode, message: impl Into<String>, retry_after_s: i64) -> Self {
        ApiError {
            retry_after: Some(retry_after_s),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    /// A camera body or patch that is not a valid camera; the message names the field.
    pub fn invalid_camera(field: &str, message: impl std::fmt::Display) -> Self {
        let message = message.to_string();
        let message = if message.starts_with(&format!("field `{field}`")) {
            message
        } else {
            format!("field `{field}`: {message}")
        };
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidCamera, message)
    }

    /// 404 with its own code, for a resource that exists but has nothing to show yet.
    pub fn not_found_code(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// Logs the cause; the client gets a fixed message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        error!(error = %cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error; see the server log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
        response
    }
}
