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
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

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

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
