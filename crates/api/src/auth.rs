//! Who is calling: passwords (argon2), tokens (random, stored as SHA-256),
//! the middleware that turns a bearer token or the session cookie into a
//! [`Caller`], login with rate limiting, and `/auth/*`.

use crate::body::JsonBody;
use crate::error::ApiError;
use crate::AppState;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use xueliang_core::{NewAuditEntry, Role, TokenInfo, TokenKind, User};
use xueliang_store::NewToken;

/// The cookie the dashboard's session rides in.
pub const SESSION_COOKIE: &str = "xueliang_session";
/// How long a login lasts.
pub const SESSION_LENGTH: Duration = Duration::hours(12);
/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 8;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Checks a new password's length (no other rule: long passphrases are best).
pub fn check_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(format!("must be at least {MIN_PASSWORD} characters"));
    }
    if password.len() > 1024 {
        return Err("must be at most 1024 bytes".into());
    }
    Ok(())
}

/// A new random token (`xl_` and 43 base64url characters) and its stored hash.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!(
        "xl_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: User,
    pub token: TokenInfo,
}

impl Caller {
    /// Refuses callers whose role is below `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.user.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {role} role; you are {}",
                self.user.role
            )))
        }
    }

    pub fn sees_village(&self, village: Option<&str>) -> bool {
        self.user.sees_village(village)
    }

    /// The village scope for store queries (`None`: every village).
    pub fn scope(&self) -> Option<Vec<String>> {
        self.user.scope()
    }

    pub fn audit(
        &self,
        action: &str,
        target_kind: &str,
        target_id: impl ToString,
        detail: serde_json::Value,
    ) -> NewAuditEntry {
        NewAuditEntry::now(
            self.user.username.clone(),
            action,
            target_kind,
            target_id,
            detail,
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthenticated("log in or send a token"))
    }
}

impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Caller>().cloned())
    }
}

/// Requests that need no token: logging in, and the signed acknowledgement
/// link in an alert message (its signature is the credential): its page
/// (GET) and its confirm button (POST with the signed query).
fn is_public(method: &Method, path: &str, query: Option<&str>) -> bool {
    let ack_path = path
        .strip_prefix("/api/v1/alerts/")
        .and_then(|rest| rest.strip_suffix("/ack"))
        .is_some_and(|id| !id.contains('/'));
    let signed = query.is_some_and(|q| q.split('&').any(|kv| kv.starts_with("sig=")));
    match (method, path) {
        (&Method::POST, "/api/v1/auth/login") => true,
        (&Method::GET, _) => ack_path,
        (&Method::POST, _) => ack_path && signed,
        _ => false,
    }
}

enum Presented {
    Bearer(String),
    Cookie(String),
}

fn presented_token(headers: &HeaderMap) -> Option<Presented> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| Presented::Bearer(token.trim().to_owned()));
    }
    session_cookie(headers).map(Presented::Cookie)
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == SESSION_COOKIE).then(|| v.to_owned())
        })
}

/// A cookie-authenticated change must come from our own pages: a browser
/// sends `Origin` with it, and it must name the host the request went to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

/// The middleware: every `/api/v1` request but the public ones needs a valid token.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    // Inside `nest("/api/v1")` the URI has lost its prefix; judge the original.
    let uri = request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map(|u| u.0.clone())
        .unwrap_or_else(|| request.uri().clone());
    if is_public(request.method(), uri.path(), uri.query()) {
        return next.run(request).await;
    }
    let Some(presented) = presented_token(request.headers()) else {
        return ApiError::unauthenticated("log in or send `Authorization: Bearer <token>`")
            .into_response();
    };
    let token = match presented {
        Presented::Bearer(t) => t,
        Presented::Cookie(t) => {
            let safe = matches!(*request.method(), Method::GET | Method::HEAD);
            if !safe && !same_origin(request.headers()) {
                return ApiError::forbidden("cross-site request refused").into_response();
            }
            t
        }
    };
    match state
        .access
        .authenticate(token_hash(&token), Utc::now())
        .await
    {
        Ok(Some((token, user))) => {
            request.extensions_mut().insert(Caller { user, token });
            next.run(request).await
        }
        Ok(None) => {
            ApiError::unauthenticated("the token is unknown, expired or revoked").into_response()
        }
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// The client's address: the peer, or behind a trusted reverse proxy the
/// address `X-Forwarded-For` names ([`xueliang_core::TrustedProxies`]);
/// `None` when the server was started without connect info.
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip());
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        Ok(ClientAddr(
            peer.map(|p| state.trusted_proxies.client(p, forwarded)),
        ))
    }
}

/// Checks `username`'s password under the login limits ([`crate::limiter`]):
/// waits for the attempt's turn, verifies on a hashing permit, and records
/// the outcome. The user, or 401 `invalid_credentials` (429 when limited).
pub async fn verify_login(
    state: &AppState,
    username: &str,
    password: String,
    ip: Option<IpAddr>,
) -> Result<User, ApiError> {
    let attempt = state.limiter.reserve(username, ip)?;
    attempt.wait_turn().await;
    let found = state
        .access
        .user_for_login(username.to_owned())
        .await
        .map_err(ApiError::internal)?;
    // Verify even for unknown users, so timing does not tell which names exist.
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), Some(h)),
        None => (None, None),
    };
    let ok = state
        .limiter
        .hashing(move || {
            let hash = hash.as_deref().unwrap_or_else(|| dummy_hash());
            verify_password(&password, hash)
        })
        .await?;
    match user {
        Some(u) if ok && !u.disabled => {
            attempt.succeeded();
            Ok(u)
        }
        known => {
            attempt.failed();
            xueliang_core::telemetry::telemetry().login_failed();
            // The name only when it is a user's: a password typed into the
            // name field must not land in the log.
            match known {
                Some(u) => tracing::info!(username = %u.username, ip = ?ip, "login failed"),
                None => tracing::info!(ip = ?ip, "login failed for an unknown username"),
            }
            Err(ApiError::invalid_credentials())
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
struct LoginResponse {
    /// The session token: send it as `Authorization: Bearer <token>`.
    token: String,
    /// 12 hours after the login.
    expires_at: DateTime<Utc>,
    user: User,
}

/// Log in: a session token (also set as the `xueliang_session` cookie).
///
/// Failed logins are limited per username (5) and per client address (20)
/// within 5 minutes.
#[utoipa::path(post, path = "/auth/login", tag = "auth", security(),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse,
            headers(("Set-Cookie" = String, description = "the session cookie (HttpOnly, SameSite=Strict)"))),
        (status = 401, description = "Wrong username or password, or the user is disabled (`invalid_credentials`)", body = crate::error::ErrorBody),
        (status = 429, description = "Too many failed logins (`too_many_attempts`)", body = crate::error::ErrorBody,
            headers(("Retry-After" = i64, description = "seconds to wait"))),
    ))]
async fn login(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let user = verify_login(&state, &req.username, req.password, ip).await?;
    let now = Utc::now();
    let (token, hash) = new_token();
    let expires_at = now + SESSION_LENGTH;
    state
        .access
        .insert_token(NewToken {
            user_id: user.id,
            kind: TokenKind::Session,
            name: "login".into(),
            token_hash: hash,
            expires_at: Some(expires_at),
        })
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(username = %user.username, "logged in");
    let cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_LENGTH.num_seconds()
    );
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(LoginResponse {
            token,
            expires_at,
            user,
        }),
    )
        .into_response())
}

/// An argon2 hash of a random password, verified against when the username
/// is unknown.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let (random, _) = new_token();
        hash_password(&random).unwrap_or_default()
    })
}

/// Log out: ends the session (an API token stays valid) and clears the cookie.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses((status = 204, description = "Logged out",
        headers(("Set-Cookie" = String, description = "clears the session cookie")))))]
async fn logout(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    if caller.token.kind == TokenKind::Session {
        state
            .access
            .revoke_token(caller.token.id, Utc::now())
            .await
            .map_err(ApiError::internal)?;
        state.access_changed();
    }
    let clear = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

/// The caller.
#[utoipa::path(get, path = "/auth/me", tag = "auth",
    responses((status = 200, description = "The caller's user", body = User)))]
async fn me(caller: Caller) -> Json<User> {
    Json(caller.user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong horse battery", &h));
        assert!(!verify_password("x", "not a hash"));
        // The dummy hash parses, so unknown users cost a real verification.
        assert!(PasswordHash::new(dummy_hash()).is_ok());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with("xl_") && a.len() == 46);
        assert_eq!(ha, token_hash(&a));
        assert_eq!(ha.len(), 64);
    }

    #[test]
    fn public_paths() {
        assert!(is_public(&Method::POST, "/api/v1/auth/login", None));
        assert!(is_public(&Method::GET, "/api/v1/alerts/7/ack", None));
        assert!(!is_public(&Method::POST, "/api/v1/alerts/7/ack", None));
        assert!(is_public(
            &Method::POST,
            "/api/v1/alerts/7/ack",
            Some("officer=li&exp=1&sig=ab")
        ));
        assert!(!is_public(
            &Method::POST,
            "/api/v1/alerts/7/ack",
            Some("xsig=ab")
        ));
        assert!(!is_public(&Method::GET, "/api/v1/alerts/7/x/ack", None));
        assert!(!is_public(&Method::GET, "/api/v1/events", None));
    }
}
