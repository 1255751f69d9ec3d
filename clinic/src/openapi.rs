//! The OpenAPI 3 document, generated from the handlers' annotations.

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
    modifiers(&BearerAuth, &Refusals)
)]
pub struct ApiDoc;

/// The refusals every operation of a kind can answer, written once: 401
/// where a session is required, 404 where the path names a record.
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
                let responses = &mut operation.responses.responses;
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
