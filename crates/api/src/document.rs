//! The OpenAPI document, generated: each handler's `#[utoipa::path]`
//! annotation and the types of its parameters and bodies describe an
//! operation, and `utoipa_axum::routes!` routes the handler and documents it
//! in one step (design/openapi.md). This module adds what belongs to every
//! operation rather than to one: the document's header, the two ways to
//! authenticate, and the error answers that the middleware and the body
//! extractor give for any operation.

use crate::auth::SESSION_COOKIE;
use crate::error::ErrorBody;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::{Modify, ToSchema};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Xueliang (雪亮) API",
        version = "1",
        description = "Monitoring-centre API of Xueliang. JSON, times RFC 3339 UTC, errors \
            `{\"error\": {\"code\", \"message\"}}`. Unknown query parameters are refused (400). \
            Every request but logging in, `/healthz`, `/readyz` and the signed acknowledgement link \
            needs a token: `Authorization: Bearer <token>` or the session cookie. See docs/api.md."
    ),
    servers((url = "/")),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    components(schemas(ErrorBody)),
    modifiers(&Authentication),
)]
pub struct Header;

/// The security schemes every secured operation names.
struct Authentication;

impl Modify for Authentication {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "a session token (from logging in) or an API token (`xl_...`)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookieAuth",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "the session cookie set by logging in; changes must come from the same origin",
            ))),
        );
    }
}

/// Adds to every operation the error answers it can get whatever it does,
/// where its annotation does not name them already:
/// - 401 without a valid token, for operations that need one ([`crate::auth::authenticate`]);
/// - 403 for a change sent with the session cookie from another site (ibid.);
/// - 400 and 413 for a body that is not the JSON asked for, or too large
///   ([`crate::body::JsonBody`], [`crate::BODY_LIMIT`]);
/// - 500 for an internal error.
pub fn add_common_errors(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let ops = [
            (HttpMethod::Get, &mut item.get),
            (HttpMethod::Head, &mut item.head),
            (HttpMethod::Post, &mut item.post),
            (HttpMethod::Put, &mut item.put),
            (HttpMethod::Patch, &mut item.patch),
            (HttpMethod::Delete, &mut item.delete),
        ];
        for (method, op) in ops {
            if let Some(op) = op {
                add_errors(method, op);
            }
        }
    }
}

fn add_errors(method: HttpMethod, op: &mut Operation) {
    // No `security` of its own: the document's (a token) applies.
    let secured = op
        .security
        .as_ref()
        .is_none_or(|s| !s.iter().all(is_empty_requirement));
    let changes = !matches!(method, HttpMethod::Get | HttpMethod::Head);
    let mut errors = Vec::new();
    if op.request_body.is_some() {
        errors.push((
            "400",
            "The body is not the JSON asked for (`invalid_parameter`)",
        ));
        errors.push(("413", "The body is too large (`body_too_large`)"));
    }
    if secured {
        errors.push(("401", "No valid token (`unauthenticated`)"));
        if changes {
            errors.push((
                "403",
                "Refused (`forbidden`): a change sent with the session cookie from another site",
            ));
        }
    }
    errors.push((
        "500",
        "Internal error (`internal`); the server log says more",
    ));
    for (status, description) in errors {
        if !op.responses.responses.contains_key(status) {
            op.responses
                .responses
                .insert(status.to_owned(), error_response(description).into());
        }
    }
}

fn is_empty_requirement(r: &utoipa::openapi::security::SecurityRequirement) -> bool {
    r == &utoipa::openapi::security::SecurityRequirement::default()
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build(),
        )
        .build()
}
