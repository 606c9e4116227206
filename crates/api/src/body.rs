//! JSON request bodies whose errors use the stable error body and name the field.

use crate::error::{ApiError, ErrorCode};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::Json;
use serde::de::DeserializeOwned;

/// Like `axum::Json`, but a bad body is a 400 `invalid_parameter` naming
/// `body` and saying what serde found wrong (the unknown or missing field).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::bad_parameter(
                "body",
                "send JSON with `Content-Type: application/json`",
            )),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BodyTooLarge,
                "the request body is too large",
            )),
            Err(e) => Err(ApiError::bad_parameter("body", e.body_text())),
        }
    }
}

/// A listing: `{"items": [...]}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct List<T> {
    pub items: Vec<T>,
}
