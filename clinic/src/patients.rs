//! Accounts: patient sign-up, the caller's own profile (`/v1/me`), the data
//! export, the public clinician directory and a clinician's view of a patient.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Map;

use crate::appointments::{self, Appointment};
use crate::auth::{Caller, Role, hash_password};
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::faults::Fault;
use crate::recordings::{self, RecordingSummary};
use crate::{AppState, Filter, fields, now};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Patient {
    pub id: String,
    pub name: String,
    pub email: String,
    /// A second login name, when the patient chose one at sign-up.
    pub username: Option<String>,
    /// `YYYY-MM-DD`.
    pub date_of_birth: String,
    pub phone: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Clinician {
    pub id: String,
    pub name: String,
    pub specialty: String,
}

/// What `GET /v1/me` returns: the caller's own profile.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Profile {
    Patient(Patient),
    Clinician(Clinician),
}

fn patient_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Patient> {
    Ok(Patient {
        id: row.get(0)?,
        name: row.get(1)?,
        email: row.get(2)?,
        date_of_birth: row.get(3)?,
        phone: row.get(4)?,
        created_at: row.get(5)?,
        username: row.get(6)?,
    })
}

pub fn patient(conn: &Connection, id: &str) -> ApiResult<Patient> {
    conn.prepare_cached(
        "SELECT id, name, email, date_of_birth, phone, created_at, username
         FROM patients WHERE id = ?1",
    )?
    .query_row(params![id], patient_from_row)
    .optional()?
    .ok_or(ApiError::NotFound("patient"))
}

fn clinician(conn: &Connection, id: &str) -> ApiResult<Clinician> {
    conn.prepare_cached("SELECT id, name, specialty FROM clinicians WHERE id = ?1")?
        .query_row(params![id], |row| {
            Ok(Clinician {
                id: row.get(0)?,
                name: row.get(1)?,
                specialty: row.get(2)?,
            })
        })
        .optional()?
        .ok_or(ApiError::NotFound("clinician"))
}

/// The profile fields a patient may change.
const WRITABLE: &[&str] = &["name", "email", "phone"];

/// Checks the contact fields as sent (see [`fields`]); they are stored trimmed.
pub(crate) fn validate(patient: &Patient) -> ApiResult<()> {
    fields::NAME.check("name", &patient.name)?;
    fields::EMAIL_ADDRESS.check("email", &patient.email)?;
    fields::DATE_OF_BIRTH.check("date_of_birth", &patient.date_of_birth)?;
    fields::PHONE.check("phone", &patient.phone)?;
    Ok(())
}

/// A failed save: a conflict when the e-mail or user name is taken by
/// another account.
pub(crate) fn conflict_or(err: rusqlite::Error) -> ApiError {
    if !unique_refused(&err) {
        return err.into();
    }
    // SQLite names the column whose unique index refused the row.
    let field = match &err {
        rusqlite::Error::SqliteFailure(_, Some(message)) if message.contains(".username") => {
            "username"
        }
        _ => "email",
    };
    ApiError::Conflict(format!("an account with this {field} already exists"))
}

/// Whether a unique index refused the row: a taken e-mail or user name.
fn unique_refused(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, _)
        if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SignUpRequest {
    #[schema(schema_with = fields::schemas::name)]
    pub name: String,
    #[schema(schema_with = fields::schemas::email)]
    pub email: String,
    #[schema(schema_with = fields::schemas::date_of_birth)]
    pub date_of_birth: String,
    #[schema(schema_with = fields::schemas::phone)]
    pub phone: String,
    #[schema(schema_with = fields::schemas::password)]
    pub password: String,
    /// A second login name; `null` or absent for none.
    #[schema(schema_with = fields::schemas::username_or_null)]
    pub username: Option<String>,
}

#[utoipa::path(post, path = "/v1/patients", tag = "patients", request_body = SignUpRequest,
    responses((status = 201, body = Patient), (status = 409, body = crate::error::ErrorBody)))]
pub async fn sign_up(
    State(state): State<Arc<AppState>>,
    Json(request): Json<SignUpRequest>,
) -> ApiResult<(StatusCode, Json<Patient>)> {
    let SignUpRequest {
        name,
        email,
        date_of_birth,
        phone,
        password,
        username,
    } = request;
    let mut patient = Patient {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        email,
        username,
        date_of_birth,
        phone,
        created_at: now(),
    };
    validate(&patient)?;
    if let Some(username) = &patient.username {
        fields::USER_NAME.check("username", username)?;
    }
    fields::PASSWORD.check("password", &password)?;
    trim_contact(&mut patient);
    let conn = state.db.conn();
    let inserted = conn
        .prepare_cached(
            "INSERT INTO patients
                 (id, name, email, date_of_birth, phone, password_hash, created_at, username)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            patient.id,
            patient.name,
            patient.email,
            patient.date_of_birth,
            patient.phone,
            hash_password(&patient.id, &password),
            patient.created_at,
            patient.username
        ]);
    match inserted {
        Ok(_) => Ok((StatusCode::CREATED, Json(patient))),
        Err(err) => Err(conflict_or(err)),
    }
}

/// The contact fields as stored: trimmed, once checked as sent.
fn trim_contact(patient: &mut Patient) {
    let contact = [
        &mut patient.name,
        &mut patient.email,
        &mut patient.date_of_birth,
        &mut patient.phone,
    ];
    for field in contact.into_iter().chain(patient.username.as_mut()) {
        *field = field.trim().to_string();
    }
}

fn profile(conn: &Connection, caller: &Caller) -> ApiResult<Profile> {
    match caller.role {
        Role::Patient => patient(conn, &caller.id).map(Profile::Patient),
        Role::Clinician => clinician(conn, &caller.id).map(Profile::Clinician),
    }
}

fn json_bytes(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[utoipa::path(get, path = "/v1/me", tag = "profile",
    responses((status = 200, body = Profile)), security(("bearer" = [])))]
pub async fn me(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<Response> {
    let key = state.cache.key(&caller, uri.path());
    if let Some(body) = state.cache.get(&key) {
        return Ok(json_bytes(body));
    }
    let profile = profile(&state.db.conn(), &caller)?;
    let body = serde_json::to_vec(&profile).expect("a profile always serializes");
    state.cache.put(key, body.clone());
    Ok(json_bytes(body))
}

/// The fields of a patient's profile it may change (`PATCH /v1/me`);
/// absent fields stay as they are. Not `null`: the handler refuses it, and
/// any other field, with a 400. (The handler reads a map, so that the
/// `mass-assignment` fault can assign any column; this is its document.)
/// `Deserialize` only lends it `deny_unknown_fields`, which utoipa writes as
/// `additionalProperties: false`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ProfileChange {
    #[schema(schema_with = fields::schemas::name)]
    name: Option<String>,
    #[schema(schema_with = fields::schemas::email)]
    email: Option<String>,
    #[schema(schema_with = fields::schemas::phone)]
    phone: Option<String>,
}

#[utoipa::path(patch, path = "/v1/me", tag = "profile", request_body = ProfileChange,
    responses((status = 409, description = "not in a state that allows it", body = crate::error::ErrorBody), (status = 403, description = "the caller's role may not", body = crate::error::ErrorBody), (status = 200, body = Patient), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_me(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    uri: Uri,
    Json(changes): Json<Map<String, serde_json::Value>>,
) -> ApiResult<Json<Patient>> {
    let me = caller.patient()?;
    let conn = state.db.conn();
    // Load the profile as a record, assign the changed fields, save what changed.
    let serde_json::Value::Object(mut record) =
        serde_json::to_value(patient(&conn, me)?).expect("a patient always serializes")
    else {
        unreachable!("a patient serializes to an object")
    };
    let mut dirty = Vec::new();
    for (field, value) in changes {
        let assignable = if state.faults.has(Fault::MassAssignment) {
            record.contains_key(&field)
        } else {
            WRITABLE.contains(&field.as_str())
        };
        if !assignable {
            return Err(ApiError::bad_request(format!(
                "field `{field}` cannot be changed"
            )));
        }
        if !value.is_string() {
            return Err(ApiError::bad_request(format!(
                "field `{field}` must be a string"
            )));
        }
        record.insert(field.clone(), value);
        dirty.push(field);
    }
    let updated: Patient = serde_json::from_value(serde_json::Value::Object(record))
        .map_err(|err| ApiError::bad_request(err.to_string()))?;
    validate(&updated)?;
    for field in dirty
        .iter()
        .filter(|field| WRITABLE.contains(&field.as_str()))
    {
        let value = match field.as_str() {
            "name" => &updated.name,
            "email" => &updated.email,
            _ => &updated.phone,
        };
        let sql = format!("UPDATE patients SET {field} = ?1 WHERE id = ?2");
        match conn
            .prepare_cached(&sql)?
            .execute(params![value.trim(), updated.id])
        {
            Ok(_) => {}
            Err(err) if unique_refused(&err) => {
                return Err(ApiError::Conflict(
                    "an account with this email already exists".into(),
                ));
            }
            Err(err) => return Err(err.into()),
        }
    }
    state
        .cache
        .invalidate(&state.cache.key(&caller, uri.path()));
    patient(&conn, &updated.id).map(Json)
}

#[utoipa::path(delete, path = "/v1/me", tag = "profile",
    responses((status = 403, description = "the caller's role may not", body = crate::error::ErrorBody), (status = 204)), security(("bearer" = [])))]
pub async fn delete_me(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    uri: Uri,
) -> ApiResult<StatusCode> {
    let me = caller.patient()?;
    let mut conn = state.db.conn();
    let tx = conn.transaction()?;
    for table in [
        "documents",
        "notes",
        "recordings",
        "consultations",
        "appointments",
        "sessions",
        "refresh_tokens",
    ] {
        let column = if ["sessions", "refresh_tokens"].contains(&table) {
            "user_id"
        } else {
            "patient_id"
        };
        tx.execute(
            &format!("DELETE FROM {table} WHERE {column} = ?1"),
            params![me],
        )?;
    }
    tx.execute("DELETE FROM patients WHERE id = ?1", params![me])?;
    tx.commit()?;
    state
        .cache
        .invalidate(&state.cache.key(&caller, uri.path()));
    Ok(StatusCode::NO_CONTENT)
}

/// Everything the clinic holds about the caller.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Export {
    pub patient: Patient,
    pub appointments: Vec<Appointment>,
    pub recordings: Vec<RecordingSummary>,
}

#[utoipa::path(get, path = "/v1/me/export", tag = "profile",
    responses((status = 403, description = "the caller's role may not", body = crate::error::ErrorBody), (status = 200, body = Export)), security(("bearer" = [])))]
pub async fn export(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Json<Export>> {
    let me = caller.patient()?;
    let conn = state.db.conn();
    let patient = patient(&conn, me)?;
    let owner = if state.faults.has(Fault::ExportDemographics) {
        // Records imported from the old system carry no patient id, so the
        // export matches on the demographics both systems have.
        Filter::new(
            "patient_id IN (SELECT id FROM patients WHERE name = ? AND date_of_birth = ?)",
            [patient.name.clone(), patient.date_of_birth.clone()],
        )
    } else {
        Filter::new("patient_id = ?", [me.to_string()])
    };
    let appointments = appointments::select(&conn, std::slice::from_ref(&owner))?;
    let recordings = recordings::select(&conn, &[owner], None)?;
    Ok(Json(Export {
        patient,
        appointments,
        recordings,
    }))
}

#[utoipa::path(get, path = "/v1/clinicians", tag = "clinicians",
    responses((status = 200, body = [Clinician])))]
pub async fn directory(State(state): State<Arc<AppState>>) -> ApiResult<Json<Vec<Clinician>>> {
    let conn = state.db.conn();
    let clinicians = conn
        .prepare_cached("SELECT id, name, specialty FROM clinicians ORDER BY email")?
        .query_map([], |row| {
            Ok(Clinician {
                id: row.get(0)?,
                name: row.get(1)?,
                specialty: row.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Json(clinicians))
}

#[utoipa::path(get, path = "/v1/clinician/patients/{id}", tag = "clinician",
    params(("id" = String, Path)), responses((status = 403, description = "the caller's role may not", body = crate::error::ErrorBody), (status = 200, body = Patient)), security(("bearer" = [])))]
pub async fn patient_for_clinician(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Patient>> {
    let me = caller.clinician()?;
    let conn = state.db.conn();
    let booked_with_me = conn
        .prepare_cached("SELECT 1 FROM appointments WHERE patient_id = ?1 AND clinician_id = ?2")?
        .exists(params![id, me])?;
    if !booked_with_me {
        return Err(ApiError::NotFound("patient"));
    }
    patient(&conn, &id).map(Json)
}
