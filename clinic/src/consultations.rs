//! Consultations: the call of a booked appointment. It starts as audio or
//! video, can switch mode part-way through (each mode segment is a *leg*, and
//! each finished leg becomes a recording), and ends. The clinician's console
//! follows the call it is connected to; clinicians can add notes.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::faults::Fault;
use crate::media::{self, Leg};
use crate::recordings::{self, NewRecording};
use crate::{AppState, appointments, now};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Consultation {
    pub id: String,
    pub appointment_id: i64,
    pub patient_id: String,
    pub clinician_id: String,
    /// `audio` or `video`.
    #[schema(value_type = Mode)]
    pub mode: String,
    /// `active` or `ended`.
    pub state: String,
    /// The current leg, from 1; it grows by one at each switch.
    pub leg: i64,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub notes: Vec<Note>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Note {
    pub id: i64,
    pub consultation_id: String,
    pub clinician_id: String,
    pub body: String,
    pub created_at: String,
}

/// What a switch or an end answers: the call and the recording of the leg
/// that just finished.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LegFinished {
    pub consultation: Consultation,
    pub recording_id: i64,
}

/// How a consultation is held (stored as text).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Mode {
    Audio,
    Video,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ModeRequest {
    /// `audio` or `video`.
    #[schema(value_type = Mode)]
    pub mode: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NoteRequest {
    #[schema(schema_with = crate::fields::schemas::note)]
    pub body: String,
}

fn parse_mode(mode: &str) -> ApiResult<&'static str> {
    match mode {
        "audio" => Ok("audio"),
        "video" => Ok("video"),
        other => Err(ApiError::bad_request(format!(
            "mode must be `audio` or `video`, not `{other}`"
        ))),
    }
}

/// The consultation `id` if the caller is its patient or its clinician.
fn visible(conn: &Connection, caller: &Caller, id: &str) -> ApiResult<Consultation> {
    load(conn, id, Some(&caller.id))
}

/// The consultation `id`, if `participant` (when given) takes part in it.
fn load(conn: &Connection, id: &str, participant: Option<&str>) -> ApiResult<Consultation> {
    let mut consultation = conn
        .prepare_cached(
            "SELECT id, appointment_id, patient_id, clinician_id, mode, state, leg, started_at, ended_at
             FROM consultations WHERE id = ?1 AND (?2 IS NULL OR patient_id = ?2 OR clinician_id = ?2)",
        )?
        .query_row(params![id, participant], |row| {
            Ok(Consultation {
                id: row.get(0)?,
                appointment_id: row.get(1)?,
                patient_id: row.get(2)?,
                clinician_id: row.get(3)?,
                mode: row.get(4)?,
                state: row.get(5)?,
                leg: row.get(6)?,
                started_at: row.get(7)?,
                ended_at: row.get(8)?,
                notes: Vec::new(),
            })
        })
        .optional()?
        .ok_or(ApiError::NotFound("consultation"))?;
    consultation.notes = conn
        .prepare_cached(
            "SELECT id, consultation_id, clinician_id, body, created_at FROM notes
             WHERE consultation_id = ?1 ORDER BY id",
        )?
        .query_map(params![id], |row| {
            Ok(Note {
                id: row.get(0)?,
                consultation_id: row.get(1)?,
                clinician_id: row.get(2)?,
                body: row.get(3)?,
                created_at: row.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(consultation)
}

fn active(conn: &Connection, caller: &Caller, id: &str) -> ApiResult<Consultation> {
    live(visible(conn, caller, id)?)
}

fn live(consultation: Consultation) -> ApiResult<Consultation> {
    if consultation.state != "active" {
        return Err(ApiError::Conflict("the consultation has ended".into()));
    }
    Ok(consultation)
}

fn connect_console(
    conn: &Connection,
    clinician_id: &str,
    consultation_id: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE clinicians SET current_consultation = ?1 WHERE id = ?2")?
        .execute(params![consultation_id, clinician_id])?;
    Ok(())
}

/// The patient of the call the clinician's console is connected to.
fn patient_on_console(conn: &Connection, clinician_id: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT co.patient_id FROM clinicians cl
         JOIN consultations co ON co.id = cl.current_consultation WHERE cl.id = ?1",
    )?
    .query_row(params![clinician_id], |row| row.get(0))
    .optional()
}

#[utoipa::path(post, path = "/v1/appointments/{id}/consultation", tag = "consultations",
    params(("id" = i64, Path)), request_body = ModeRequest,
    responses((status = 403, description = "the caller's role may not", body = crate::error::ErrorBody), (status = 201, body = Consultation), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn start(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(appointment_id): Path<i64>,
    Json(request): Json<ModeRequest>,
) -> ApiResult<(StatusCode, Json<Consultation>)> {
    let me = caller.patient()?;
    let mode = parse_mode(&request.mode)?;
    let conn = state.db.conn();
    let appointment = appointments::visible(&conn, &caller, appointment_id)?;
    if appointment.patient_id != me {
        return Err(ApiError::NotFound("appointment"));
    }
    if appointment.status != "booked" {
        return Err(ApiError::Conflict(format!(
            "the appointment is {}",
            appointment.status
        )));
    }
    let already = conn
        .prepare_cached(
            "SELECT 1 FROM consultations WHERE appointment_id = ?1 AND state = 'active'",
        )?
        .exists(params![appointment_id])?;
    if already {
        return Err(ApiError::Conflict(
            "this appointment's call is already in progress".into(),
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let now = now();
    conn.prepare_cached(
        "INSERT INTO consultations (id, appointment_id, patient_id, clinician_id, mode, state, leg,
            leg_started_at, started_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'active', 1, ?6, ?6)",
    )?
    .execute(params![
        id,
        appointment_id,
        me,
        appointment.clinician_id,
        mode,
        now
    ])?;
    // The clinician's console rings and connects to the new call.
    connect_console(&conn, &appointment.clinician_id, &id)?;
    let consultation = visible(&conn, &caller, &id)?;
    Ok((StatusCode::CREATED, Json(consultation)))
}

#[utoipa::path(get, path = "/v1/consultations/{id}", tag = "consultations", operation_id = "read_consultation", params(("id" = String, Path)),
    responses((status = 200, body = Consultation)), security(("bearer" = [])))]
pub async fn read(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Consultation>> {
    visible(&state.db.conn(), &caller, &id).map(Json)
}

#[utoipa::path(post, path = "/v1/consultations/{id}/join", tag = "consultations", params(("id" = String, Path)),
    responses((status = 409, description = "not in a state that allows it", body = crate::error::ErrorBody), (status = 403, description = "the caller's role may not", body = crate::error::ErrorBody), (status = 200, body = Consultation)), security(("bearer" = [])))]
pub async fn join(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Consultation>> {
    let me = caller.clinician()?;
    let conn = state.db.conn();
    let consultation = active(&conn, &caller, &id)?;
    connect_console(&conn, me, &consultation.id)?;
    Ok(Json(consultation))
}

/// The leg of `consultation` that has just finished, as stored before the
/// switch or end moved it on.
struct FinishedLeg {
    consultation: Consultation,
    leg_started_at: String,
    reason: String,
    clinician_name: String,
}

/// Moves the call on (to the next leg, or to its end) in one statement so two
/// concurrent requests cannot both finish the same leg.
fn finish_leg(
    conn: &Connection,
    consultation: Consultation,
    transition: &str,
    transition_params: &[&dyn rusqlite::ToSql],
) -> ApiResult<FinishedLeg> {
    let id = consultation.id.as_str();
    let (leg_started_at, reason, clinician_name): (String, String, String) = conn
        .prepare_cached(
            "SELECT co.leg_started_at, a.reason, c.name FROM consultations co
             JOIN appointments a ON a.id = co.appointment_id
             JOIN clinicians c ON c.id = co.clinician_id WHERE co.id = ?1",
        )?
        .query_row(params![id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    let mut values: Vec<&dyn rusqlite::ToSql> = transition_params.to_vec();
    values.push(&consultation.id);
    values.push(&consultation.leg);
    let changed = conn.execute(
        &format!(
            "UPDATE consultations SET {transition} WHERE id = ? AND leg = ? AND state = 'active'"
        ),
        values.as_slice(),
    )?;
    if changed == 0 {
        return Err(ApiError::Conflict(
            "the call changed meanwhile; try again".into(),
        ));
    }
    Ok(FinishedLeg {
        consultation,
        leg_started_at,
        reason,
        clinician_name,
    })
}

/// Encodes the finished leg and files its recording under `owner`.
async fn record(state: &AppState, finished: &FinishedLeg, owner: &str) -> ApiResult<i64> {
    let c = &finished.consultation;
    let duration = finished
        .leg_started_at
        .parse::<jiff::Timestamp>()
        .map(|start| (jiff::Timestamp::now() - start).get_seconds())
        .unwrap_or(1);
    let leg = Leg::render(
        &c.mode,
        c.leg,
        &finished.reason,
        &finished.clinician_name,
        duration,
    );
    let (encoder_slot, time) = if state.faults.has(Fault::SwitchRace) {
        // One encoder session per clinician console.
        (c.clinician_id.as_str(), media::CONSOLE_ENCODE_TIME)
    } else {
        (c.id.as_str(), media::ENCODE_TIME)
    };
    let leg = state.media.encode(encoder_slot, leg, time).await;
    let conn = state.db.conn();
    let recording_id = recordings::insert(
        &conn,
        &NewRecording {
            consultation_id: &c.id,
            appointment_id: c.appointment_id,
            patient_id: owner,
            clinician_id: &c.clinician_id,
            mode: &c.mode,
            leg_number: c.leg,
            leg,
        },
    )?;
    Ok(recording_id)
}

#[utoipa::path(post, path = "/v1/consultations/{id}/switch", tag = "consultations",
    params(("id" = String, Path)), request_body = ModeRequest,
    responses((status = 200, body = LegFinished), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn switch(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<ModeRequest>,
) -> ApiResult<Json<LegFinished>> {
    let mode = parse_mode(&request.mode)?;
    let (finished, owner) = {
        let conn = state.db.conn();
        let current = active(&conn, &caller, &id)?;
        if current.mode == mode {
            return Err(ApiError::Conflict(format!("the call is already {mode}")));
        }
        let now = now();
        let finished = finish_leg(
            &conn,
            current,
            "mode = ?, leg = leg + 1, leg_started_at = ?",
            &[&mode, &now],
        )?;
        let owner = if state.faults.has(Fault::SwitchOwner) {
            // The switch is driven from the clinician's console: its call's patient.
            patient_on_console(&conn, &finished.consultation.clinician_id)?
                .unwrap_or_else(|| finished.consultation.patient_id.clone())
        } else {
            finished.consultation.patient_id.clone()
        };
        (finished, owner)
    };
    let recording_id = record(&state, &finished, &owner).await?;
    let consultation = visible(&state.db.conn(), &caller, &id)?;
    Ok(Json(LegFinished {
        consultation,
        recording_id,
    }))
}

#[utoipa::path(post, path = "/v1/consultations/{id}/end", tag = "consultations", params(("id" = String, Path)),
    responses((status = 409, description = "not in a state that allows it", body = crate::error::ErrorBody), (status = 200, body = LegFinished)), security(("bearer" = [])))]
pub async fn end(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<LegFinished>> {
    let finished = {
        let conn = state.db.conn();
        let now = now();
        let call = if state.faults.has(Fault::EndByStranger) {
            // The same hang-up as the idle timeout, which has no caller.
            live(load(&conn, &id, None)?)?
        } else {
            active(&conn, &caller, &id)?
        };
        let finished = finish_leg(&conn, call, "state = 'ended', ended_at = ?", &[&now])?;
        let c = &finished.consultation;
        conn.prepare_cached(
            "UPDATE appointments SET status = 'completed', updated_at = ?1 WHERE id = ?2",
        )?
        .execute(params![now, c.appointment_id])?;
        conn.prepare_cached(
            "UPDATE clinicians SET current_consultation = NULL WHERE id = ?1 AND current_consultation = ?2",
        )?
        .execute(params![c.clinician_id, c.id])?;
        finished
    };
    let owner = finished.consultation.patient_id.clone();
    let recording_id = record(&state, &finished, &owner).await?;
    state.media.release(&finished.consultation.id);
    let consultation = visible(&state.db.conn(), &caller, &id)?;
    Ok(Json(LegFinished {
        consultation,
        recording_id,
    }))
}

#[utoipa::path(post, path = "/v1/consultations/{id}/notes", tag = "consultations",
    params(("id" = String, Path)), request_body = NoteRequest,
    responses((status = 403, description = "the caller's role may not", body = crate::error::ErrorBody), (status = 201, body = Note)), security(("bearer" = [])))]
pub async fn add_note(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<NoteRequest>,
) -> ApiResult<(StatusCode, Json<Note>)> {
    let me = caller.clinician()?;
    crate::fields::NOTE.check("body", &request.body)?;
    let conn = state.db.conn();
    let consultation = visible(&conn, &caller, &id)?;
    let created_at = now();
    conn.prepare_cached(
        "INSERT INTO notes (consultation_id, clinician_id, patient_id, body, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        id,
        me,
        consultation.patient_id,
        request.body,
        created_at
    ])?;
    let note = Note {
        id: conn.last_insert_rowid(),
        consultation_id: id,
        clinician_id: me.to_string(),
        body: request.body,
        created_at,
    };
    Ok((StatusCode::CREATED, Json(note)))
}
