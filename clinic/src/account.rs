//! Account changes by id: a patient's contact details (the app's settings
//! screen saves to `/v1/patients/{id}`) and the password form. Both answer
//! `204` with no body, so a wrong account changed shows nothing.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use rusqlite::params;
use serde::Deserialize;

use crate::auth::{Caller, hash_password};
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::faults::Fault;
use crate::patients::{patient, validate};
use crate::{AppState, fields};

/// Contact details to change; absent or `null` fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactChange {
    #[schema(schema_with = fields::schemas::phone_or_null)]
    pub phone: Option<String>,
    #[schema(schema_with = fields::schemas::email_or_null)]
    pub email: Option<String>,
    #[schema(schema_with = fields::schemas::name_or_null)]
    pub name: Option<String>,
}

#[utoipa::path(patch, path = "/v1/patients/{id}", tag = "profile", params(("id" = String, Path)),
    request_body = ContactChange,
    responses((status = 403, description = "the caller's role may not", body = crate::error::ErrorBody), (status = 204), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "another account has this e-mail", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_patient(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(change): Json<ContactChange>,
) -> ApiResult<StatusCode> {
    let me = caller.patient()?;
    // Patients reach this screen from their own profile only.
    if !state.faults.has(Fault::ProfileUpdateIdor) && id != me {
        return Err(ApiError::NotFound("patient"));
    }
    let conn = state.db.conn();
    let mut updated = patient(&conn, &id)?;
    let changes = [
        (&mut updated.phone, change.phone),
        (&mut updated.email, change.email),
        (&mut updated.name, change.name),
    ];
    for (field, value) in changes {
        if let Some(value) = value {
            *field = value;
        }
    }
    // Checked as sent, stored trimmed.
    validate(&updated)?;
    let saved = conn
        .prepare_cached("UPDATE patients SET phone = ?1, email = ?2, name = ?3 WHERE id = ?4")?
        .execute(params![
            updated.phone.trim(),
            updated.email.trim(),
            updated.name.trim(),
            id
        ]);
    if let Err(err) = saved {
        return Err(crate::patients::conflict_or(err));
    }
    state.cache.invalidate(&state.cache.key_of(&id, "/v1/me"));
    Ok(StatusCode::NO_CONTENT)
}

/// The password form: the current password, the new one, and the account
/// it is for (the form carries the signed-in patient's id).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PasswordChange {
    pub patient_id: String,
    pub current_password: String,
    #[schema(schema_with = fields::schemas::password)]
    pub new_password: String,
}

#[utoipa::path(post, path = "/v1/me/password", tag = "auth", request_body = PasswordChange,
    responses((status = 204), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn change_password(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Json(change): Json<PasswordChange>,
) -> ApiResult<StatusCode> {
    let me = caller.patient()?;
    fields::PASSWORD.check("new_password", &change.new_password)?;
    let conn = state.db.conn();
    let stored: String = conn
        .prepare_cached("SELECT password_hash FROM patients WHERE id = ?1")?
        .query_row(params![me], |row| row.get(0))?;
    if hash_password(me, &change.current_password) != stored {
        return Err(ApiError::Forbidden("the current password is wrong".into()));
    }
    let account = change.patient_id.as_str();
    // The form is always filled in with the signed-in patient's id.
    if !state.faults.has(Fault::PasswordChangeIdor) && account != me {
        return Err(ApiError::Forbidden(
            "this form is for another account".into(),
        ));
    }
    conn.prepare_cached("UPDATE patients SET password_hash = ?1 WHERE id = ?2")?
        .execute(params![
            hash_password(account, &change.new_password),
            account
        ])?;
    Ok(StatusCode::NO_CONTENT)
}
