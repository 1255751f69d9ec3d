//! The OpenAPI 3 document, generated from the handlers' annotations.
//!
//! Spec-driven tools (Schemathesis, `crosstalk init`) take it at its word:
//! every status an operation answers is documented, and a request body
//! that validates against its schema is one the handler accepts (see
//! [`crate::fields`]). `tests/openapi.rs` holds it to both.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "clinic", description = "Reference telehealth staging API for crosstalk"),
    paths(
        crate::patients::sign_up,
        crate::auth::login,
        crate::auth::refresh,
        crate::auth::logout,
        crate::patients::directory,
        crate::patients::me,
        crate::patients::update_me,
        crate::patients::delete_me,
        crate::patients::export,
        crate::account::update_patient,
        crate::account::change_password,
        crate::documents::create,
        crate::documents::read,
        crate::documents::update,
        crate::recordings::list_mine,
        crate::recordings::read,
        crate::recordings::media,
        crate::recordings::delete,
        crate::appointments::list,
        crate::appointments::book,
        crate::appointments::read,
        crate::appointments::reschedule,
        crate::appointments::cancel,
        crate::consultations::start,
        crate::consultations::read,
        crate::consultations::join,
        crate::consultations::switch,
        crate::consultations::end,
        crate::consultations::add_note,
        crate::appointments::list_for_clinician,
        crate::patients::patient_for_clinician,
    ),
    modifiers(&BearerAuth, &Refusals, &OneLoginName)
)]
pub struct ApiDoc;

/// The refusals every operation of a kind can answer, written once: 400
/// where the request carries anything to parse (a body, a path or query
/// parameter), 401 where a session is required, 404 where the path names a
/// record.
struct Refusals;

impl Modify for Refusals {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let refusal = |description: &str| {
            let body = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody")));
            ResponseBuilder::new()
                .description(description)
                .content("application/json", body.build())
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let parses = operation.request_body.is_some()
                    || operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let responses = &mut operation.responses.responses;
                if parses {
                    responses.entry("400".into()).or_insert_with(|| {
                        refusal("the request does not parse or breaks its schema").into()
                    });
                }
                if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    responses
                        .entry("401".into())
                        .or_insert_with(|| refusal("no valid session").into());
                }
                if path.contains('{') {
                    responses
                        .entry("404".into())
                        .or_insert_with(|| refusal("no such record the caller may see").into());
                }
            }
        }
    }
}

/// A login names its account by exactly one of `email` or `username`
/// (`null` counts as absent): both or neither is a 400. utoipa's object
/// schema has no `oneOf` beside its properties, so it goes in through the
/// extensions, which are written into the object as they are.
struct OneLoginName;

impl Modify for OneLoginName {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::extensions::Extensions;
        use utoipa::openapi::schema::Schema;
        let schemas = &mut openapi
            .components
            .get_or_insert_with(Default::default)
            .schemas;
        let Some(RefOr::T(Schema::Object(login))) = schemas.get_mut("LoginRequest") else {
            panic!("LoginRequest is an object schema");
        };
        let only = |name: &str, other: &str| {
            serde_json::json!({
                "required": [name],
                "properties": {name: {"type": "string"}, other: {"type": "null"}},
            })
        };
        let one_of = serde_json::json!([only("email", "username"), only("username", "email")]);
        login
            .extensions
            .get_or_insert_with(Extensions::default)
            .insert("oneOf".into(), one_of);
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON text (what `clinic openapi` prints).
pub fn document_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the document serializes")
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
