//! Recordings: one per leg of a call, owned by the patient. The profile's
//! recordings subsection pages through them by cursor; a recording can be
//! read with its transcript and its media downloaded.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::faults::Fault;
use crate::{AppState, Filter, media};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecordingSummary {
    pub id: i64,
    pub consultation_id: String,
    pub appointment_id: i64,
    /// `audio` or `video`.
    #[schema(value_type = crate::consultations::Mode)]
    pub mode: String,
    /// Which leg of the call, from 1.
    pub leg: i64,
    pub title: String,
    pub duration_seconds: i64,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Recording {
    #[serde(flatten)]
    pub summary: RecordingSummary,
    pub patient_id: String,
    pub clinician_id: String,
    pub transcript: String,
    pub media_url: String,
}

const SUMMARY_COLUMNS: &str =
    "id, consultation_id, appointment_id, mode, leg, title, duration_seconds, created_at";

fn summary_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RecordingSummary> {
    Ok(RecordingSummary {
        id: row.get(0)?,
        consultation_id: row.get(1)?,
        appointment_id: row.get(2)?,
        mode: row.get(3)?,
        leg: row.get(4)?,
        title: row.get(5)?,
        duration_seconds: row.get(6)?,
        created_at: row.get(7)?,
    })
}

/// Recordings matching every filter, oldest first, at most `limit`.
pub fn select(
    conn: &Connection,
    filters: &[Filter],
    limit: Option<i64>,
) -> rusqlite::Result<Vec<RecordingSummary>> {
    let limit = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM recordings{} ORDER BY id{limit}",
        Filter::where_clause(filters)
    );
    conn.prepare_cached(&sql)?
        .query_map(params_from_iter(Filter::values(filters)), summary_from_row)?
        .collect()
}

/// A new recording of a finished leg, owned by `patient_id`.
pub struct NewRecording<'a> {
    pub consultation_id: &'a str,
    pub appointment_id: i64,
    pub patient_id: &'a str,
    pub clinician_id: &'a str,
    pub mode: &'a str,
    pub leg_number: i64,
    pub leg: media::Leg,
}

pub fn insert(conn: &Connection, new: &NewRecording<'_>) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO recordings (consultation_id, appointment_id, patient_id, clinician_id, mode, leg,
            title, transcript, duration_seconds, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        new.consultation_id,
        new.appointment_id,
        new.patient_id,
        new.clinician_id,
        new.mode,
        new.leg_number,
        new.leg.title,
        new.leg.transcript,
        new.leg.duration_seconds,
        crate::now()
    ])?;
    Ok(conn.last_insert_rowid())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `next_after` cursor of the previous page.
    pub after: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordingPage {
    pub items: Vec<RecordingSummary>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

#[utoipa::path(get, path = "/v1/me/recordings", tag = "recordings", params(PageQuery),
    responses((status = 403, description = "the caller's role may not", body = crate::error::ErrorBody), (status = 200, body = RecordingPage)), security(("bearer" = [])))]
pub async fn list_mine(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<RecordingPage>> {
    let me = caller.patient()?;
    let limit = page.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 100"));
    }
    let mut filters = vec![Filter::new("patient_id = ?", [me.to_string()])];
    if let Some(after) = page.after {
        let seek = Filter::new("id > ?", [after]);
        if state.faults.has(Fault::CursorPagination) {
            // Seek pages only need the cursor: the first page already scoped it.
            filters = vec![seek];
        } else {
            filters.push(seek);
        }
    }
    let items = select(&state.db.conn(), &filters, Some(limit + 1))?;
    Ok(Json(page_of(items, limit)))
}

fn page_of(mut items: Vec<RecordingSummary>, limit: i64) -> RecordingPage {
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_after = if more {
        items.last().map(|r| r.id)
    } else {
        None
    };
    RecordingPage { items, next_after }
}

const SELECT_VISIBLE: &str =
    "SELECT id, consultation_id, appointment_id, mode, leg, title, duration_seconds,
        created_at, patient_id, clinician_id, transcript
    FROM recordings WHERE id = ?1 AND (patient_id = ?2 OR clinician_id = ?2)";

fn recording_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Recording> {
    let summary = summary_from_row(row)?;
    let media_url = format!("/v1/recordings/{}/media", summary.id);
    Ok(Recording {
        summary,
        patient_id: row.get(8)?,
        clinician_id: row.get(9)?,
        transcript: row.get(10)?,
        media_url,
    })
}

#[utoipa::path(get, path = "/v1/recordings/{id}", tag = "recordings", operation_id = "read_recording", params(("id" = i64, Path)),
    responses((status = 200, body = Recording), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn read(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<Recording>> {
    let conn = state.db.conn();
    conn.prepare_cached(SELECT_VISIBLE)?
        .query_row(params![id, caller.id], recording_from_row)
        .optional()?
        .map(Json)
        .ok_or(ApiError::NotFound("recording"))
}

#[utoipa::path(delete, path = "/v1/recordings/{id}", tag = "recordings", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let conn = state.db.conn();
    let deleted = if state.faults.has(Fault::RecordingDeleteIdor) {
        // The delete button is only shown on the owner's own recordings.
        conn.prepare_cached("DELETE FROM recordings WHERE id = ?1")?
            .execute(params![id])?
    } else {
        conn.prepare_cached("DELETE FROM recordings WHERE id = ?1 AND patient_id = ?2")?
            .execute(params![id, caller.id])?
    };
    if deleted == 0 {
        return Err(ApiError::NotFound("recording"));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/recordings/{id}/media", tag = "recordings", params(("id" = i64, Path)),
    responses((status = 200, content_type = "text/vtt", body = String)), security(("bearer" = [])))]
pub async fn media(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let conn = state.db.conn();
    let recording = if state.faults.has(Fault::MediaIdor) {
        // Media ids are only ever handed out in the owner's own listing.
        conn.query_row(
            "SELECT id, consultation_id, appointment_id, mode, leg, title, duration_seconds,
                created_at, patient_id, clinician_id, transcript FROM recordings WHERE id = ?1",
            params![id],
            recording_from_row,
        )
        .optional()?
    } else {
        conn.prepare_cached(SELECT_VISIBLE)?
            .query_row(params![id, caller.id], recording_from_row)
            .optional()?
    };
    let recording = recording.ok_or(ApiError::NotFound("recording"))?;
    let body = media::webvtt(
        &recording.summary.title,
        &recording.transcript,
        recording.summary.duration_seconds,
    );
    Ok(([(header::CONTENT_TYPE, "text/vtt; charset=utf-8")], body).into_response())
}
