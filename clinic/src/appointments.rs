//! Booking: a patient books a clinician's slot with a free-text reason, lists,
//! reads, reschedules and cancels; a clinician lists their own bookings.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::faults::{Fault, Faults};
use crate::{AppState, Filter, fields, now};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Appointment {
    pub id: i64,
    pub patient_id: String,
    pub patient_name: String,
    pub clinician_id: String,
    pub clinician_name: String,
    /// RFC 3339 start time of the slot.
    #[schema(format = DateTime)]
    pub slot: String,
    /// What the patient wrote when booking.
    pub reason: String,
    /// `booked`, `cancelled` or `completed`.
    #[schema(value_type = AppointmentStatus)]
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

const SELECT: &str = "SELECT a.id, a.patient_id, p.name, a.clinician_id, c.name, a.slot, a.reason,
        a.status, a.created_at, a.updated_at
    FROM appointments a
    JOIN patients p ON p.id = a.patient_id
    JOIN clinicians c ON c.id = a.clinician_id";

const STATUSES: &[&str] = &["booked", "cancelled", "completed"];

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Appointment> {
    Ok(Appointment {
        id: row.get(0)?,
        patient_id: row.get(1)?,
        patient_name: row.get(2)?,
        clinician_id: row.get(3)?,
        clinician_name: row.get(4)?,
        slot: row.get(5)?,
        reason: row.get(6)?,
        status: row.get(7)?,
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
    })
}

/// Appointments matching every filter, oldest first.
pub fn select(conn: &Connection, filters: &[Filter]) -> rusqlite::Result<Vec<Appointment>> {
    let sql = format!("{SELECT}{} ORDER BY a.id", Filter::where_clause(filters));
    conn.prepare_cached(&sql)?
        .query_map(params_from_iter(Filter::values(filters)), from_row)?
        .collect()
}

/// One appointment by id that the caller may see.
pub fn visible(conn: &Connection, caller: &Caller, id: i64) -> ApiResult<Appointment> {
    let sql = format!("{SELECT} WHERE a.id = ?1 AND (a.patient_id = ?2 OR a.clinician_id = ?2)");
    conn.prepare_cached(&sql)?
        .query_row(params![id, caller.id], from_row)
        .optional()?
        .ok_or(ApiError::NotFound("appointment"))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only appointments in this status: `booked`, `cancelled` or `completed`.
    #[param(value_type = Option<AppointmentStatus>)]
    pub status: Option<String>,
}

/// An appointment's status (it is stored as text).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum AppointmentStatus {
    Booked,
    Cancelled,
    Completed,
}

/// The caller's own appointments, optionally filtered by status.
fn list_for(
    conn: &Connection,
    faults: &Faults,
    owner_column: &str,
    owner: &str,
    status: Option<String>,
) -> ApiResult<Vec<Appointment>> {
    let mut filters = vec![Filter::new(
        format!("{owner_column} = ?"),
        [owner.to_string()],
    )];
    if let Some(status) = status {
        if !STATUSES.contains(&status.as_str()) {
            return Err(ApiError::bad_request(format!(
                "status must be one of {}",
                STATUSES.join(", ")
            )));
        }
        let by_status = Filter::new("status = ?", [status]);
        if faults.has(Fault::StatusFilter) {
            filters = vec![by_status];
        } else {
            filters.push(by_status);
        }
    }
    Ok(select(conn, &filters)?)
}

#[utoipa::path(get, path = "/v1/appointments", tag = "appointments", params(ListQuery),
    responses((status = 403, description = "the caller's role may not", body = crate::error::ErrorBody), (status = 200, body = [Appointment])), security(("bearer" = [])))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<Appointment>>> {
    let me = caller.patient()?;
    let conn = state.db.conn();
    list_for(&conn, &state.faults, "patient_id", me, query.status).map(Json)
}

#[utoipa::path(get, path = "/v1/clinician/appointments", tag = "clinician", params(ListQuery),
    responses((status = 403, description = "the caller's role may not", body = crate::error::ErrorBody), (status = 200, body = [Appointment])), security(("bearer" = [])))]
pub async fn list_for_clinician(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<Appointment>>> {
    let me = caller.clinician()?;
    let conn = state.db.conn();
    list_for(&conn, &state.faults, "clinician_id", me, query.status).map(Json)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BookRequest {
    /// An id from `GET /v1/clinicians`; another answers 404.
    pub clinician_id: String,
    #[schema(schema_with = fields::schemas::slot)]
    pub slot: String,
    #[schema(schema_with = fields::schemas::reason)]
    pub reason: String,
}

/// The slot as stored: the instant in UTC, so that one time written two
/// ways is one slot.
fn parse_slot(slot: &str) -> ApiResult<String> {
    let slot = fields::SLOT_TIME.check("slot", slot)?;
    let parsed: jiff::Timestamp = slot
        .parse()
        .map_err(|err| ApiError::bad_request(format!("slot: {err}")))?;
    Ok(parsed.to_string())
}

fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, _)
        if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// The 409 for a slot that is already booked.
fn slot_taken(conn: &Connection, faults: &Faults, clinician_id: &str, slot: &str) -> ApiError {
    if faults.has(Fault::ConflictMessage) {
        // Tell the front desk exactly which booking is in the way.
        let sql =
            format!("{SELECT} WHERE a.clinician_id = ?1 AND a.slot = ?2 AND a.status = 'booked'");
        if let Ok(existing) = conn.query_row(&sql, params![clinician_id, slot], from_row) {
            return ApiError::Conflict(format!(
                "{slot} with {} is already booked by {} for \"{}\" (appointment {})",
                existing.clinician_name, existing.patient_name, existing.reason, existing.id
            ));
        }
    }
    ApiError::Conflict(format!("{slot} is not available with this clinician"))
}

#[utoipa::path(post, path = "/v1/appointments", tag = "appointments", request_body = BookRequest,
    responses((status = 403, description = "the caller's role may not", body = crate::error::ErrorBody), (status = 201, body = Appointment),
        (status = 404, description = "no clinician has this id", body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn book(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Json(request): Json<BookRequest>,
) -> ApiResult<(StatusCode, Json<Appointment>)> {
    let me = caller.patient()?;
    let slot = parse_slot(&request.slot)?;
    fields::REASON.check("reason", &request.reason)?;
    let conn = state.db.conn();
    let clinician_known = conn
        .prepare_cached("SELECT 1 FROM clinicians WHERE id = ?1")?
        .exists(params![request.clinician_id])?;
    if !clinician_known {
        return Err(ApiError::NotFound("clinician"));
    }
    let now = now();
    let inserted = conn
        .prepare_cached(
            "INSERT INTO appointments (patient_id, clinician_id, slot, reason, status, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 'booked', ?5, ?5)",
        )?
        .execute(params![me, request.clinician_id, slot, request.reason, now]);
    match inserted {
        Ok(_) => {}
        Err(err) if is_unique_violation(&err) => {
            return Err(slot_taken(
                &conn,
                &state.faults,
                &request.clinician_id,
                &slot,
            ));
        }
        Err(err) => return Err(err.into()),
    }
    let appointment = visible(&conn, &caller, conn.last_insert_rowid())?;
    Ok((StatusCode::CREATED, Json(appointment)))
}

#[utoipa::path(get, path = "/v1/appointments/{id}", tag = "appointments", operation_id = "read_appointment",
    params(("id" = i64, Path)), responses((status = 403, description = "the caller's role may not", body = crate::error::ErrorBody), (status = 200, body = Appointment), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn read(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<Appointment>> {
    let conn = state.db.conn();
    if state.faults.has(Fault::AppointmentIdor) {
        // The id comes from the caller's own list, so loading it is enough.
        let sql = format!("{SELECT} WHERE a.id = ?1");
        return conn
            .query_row(&sql, params![id], from_row)
            .optional()?
            .map(Json)
            .ok_or(ApiError::NotFound("appointment"));
    }
    visible(&conn, &caller, id).map(Json)
}

/// The caller's own booking, which it may move or cancel.
fn to_change(
    conn: &Connection,
    faults: &Faults,
    caller: &Caller,
    id: i64,
) -> ApiResult<Appointment> {
    let me = caller.patient()?;
    if faults.has(Fault::AppointmentWriteIdor) {
        // Patients only ever see their own ids, so the id is enough.
        let sql = format!("{SELECT} WHERE a.id = ?1");
        return conn
            .query_row(&sql, params![id], from_row)
            .optional()?
            .ok_or(ApiError::NotFound("appointment"));
    }
    let current = visible(conn, caller, id)?;
    if current.patient_id != me {
        return Err(ApiError::NotFound("appointment"));
    }
    Ok(current)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RescheduleRequest {
    /// The new start time.
    #[schema(schema_with = fields::schemas::slot)]
    pub slot: String,
}

#[utoipa::path(patch, path = "/v1/appointments/{id}", tag = "appointments", params(("id" = i64, Path)),
    request_body = RescheduleRequest, responses((status = 200, body = Appointment), (status = 409, body = crate::error::ErrorBody),
        (status = 403, description = "the caller's role may not", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn reschedule(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(request): Json<RescheduleRequest>,
) -> ApiResult<Json<Appointment>> {
    let slot = parse_slot(&request.slot)?;
    let conn = state.db.conn();
    let current = to_change(&conn, &state.faults, &caller, id)?;
    if current.status != "booked" {
        return Err(ApiError::Conflict(format!(
            "a {} appointment cannot be rescheduled",
            current.status
        )));
    }
    let updated = conn
        .prepare_cached("UPDATE appointments SET slot = ?1, updated_at = ?2 WHERE id = ?3")?
        .execute(params![slot, now(), id]);
    match updated {
        Ok(_) => visible(&conn, &caller, id).map(Json),
        Err(err) if is_unique_violation(&err) => Err(slot_taken(
            &conn,
            &state.faults,
            &current.clinician_id,
            &slot,
        )),
        Err(err) => Err(err.into()),
    }
}

#[utoipa::path(delete, path = "/v1/appointments/{id}", tag = "appointments", params(("id" = i64, Path)),
    responses((status = 409, description = "not in a state that allows it", body = crate::error::ErrorBody), (status = 403, description = "the caller's role may not", body = crate::error::ErrorBody), (status = 200, body = Appointment)), security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<Appointment>> {
    let conn = state.db.conn();
    let current = to_change(&conn, &state.faults, &caller, id)?;
    if current.status != "booked" {
        return Err(ApiError::Conflict(format!(
            "a {} appointment cannot be cancelled",
            current.status
        )));
    }
    conn.prepare_cached(
        "UPDATE appointments SET status = 'cancelled', updated_at = ?1 WHERE id = ?2",
    )?
    .execute(params![now(), id])?;
    visible(&conn, &caller, id).map(Json)
}
