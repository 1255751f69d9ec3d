//! Documents a patient shares with the clinic before a call (a symptom
//! diary, a referral letter): shared from the patient's own screen
//! (`POST /v1/me/documents`), then read and edited under the patient:
//! `/v1/patients/{patient_id}/documents/{document_id}`.
//!
//! A nested path names two records, so a handler has two checks to make:
//! that the caller is the path's patient, and that the document is that
//! patient's. Real APIs often make the first and forget the second; the
//! catalog's `document-idor` and `document-write-idor` are that line.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::faults::Fault;
use crate::{AppState, fields, now};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Document {
    pub id: String,
    pub patient_id: String,
    pub title: String,
    pub text: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A new document.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDocument {
    #[schema(schema_with = fields::schemas::title)]
    pub title: String,
    #[schema(schema_with = fields::schemas::note)]
    pub text: String,
}

/// What to change in a document; absent or `null` fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentChange {
    #[schema(schema_with = fields::schemas::title_or_null)]
    pub title: Option<String>,
    #[schema(schema_with = fields::schemas::note_or_null)]
    pub text: Option<String>,
}

const COLUMNS: &str = "id, patient_id, title, text, created_at, updated_at";

fn document_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Document> {
    Ok(Document {
        id: row.get(0)?,
        patient_id: row.get(1)?,
        title: row.get(2)?,
        text: row.get(3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
    })
}

/// The caller's id when the path's patient is the caller; anyone else's
/// documents are not there for them.
fn own_patient<'a>(caller: &'a Caller, patient_id: &str) -> ApiResult<&'a str> {
    let me = caller.patient()?;
    if patient_id != me {
        return Err(ApiError::NotFound("patient"));
    }
    Ok(me)
}

#[utoipa::path(post, path = "/v1/me/documents", tag = "documents", operation_id = "share_document",
    request_body = NewDocument,
    responses((status = 201, body = Document), (status = 403, description = "the caller's role may not", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Json(new): Json<NewDocument>,
) -> ApiResult<(StatusCode, Json<Document>)> {
    let me = caller.patient()?;
    fields::TITLE.check("title", &new.title)?;
    fields::NOTE.check("text", &new.text)?;
    let created_at = now();
    let document = Document {
        id: uuid::Uuid::new_v4().to_string(),
        patient_id: me.to_string(),
        title: new.title,
        text: new.text,
        updated_at: created_at.clone(),
        created_at,
    };
    state
        .db
        .conn()
        .prepare_cached(&format!(
            "INSERT INTO documents ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        ))?
        .execute(params![
            document.id,
            document.patient_id,
            document.title,
            document.text,
            document.created_at,
            document.updated_at
        ])?;
    Ok((StatusCode::CREATED, Json(document)))
}

/// The document `id`, when `owner` (if named) is its patient.
fn load(conn: &Connection, id: &str, owner: Option<&str>) -> ApiResult<Document> {
    let document = match owner {
        Some(owner) => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM documents WHERE id = ?1 AND patient_id = ?2"
            ))?
            .query_row(params![id, owner], document_from_row),
        None => conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM documents WHERE id = ?1"))?
            .query_row(params![id], document_from_row),
    };
    document.optional()?.ok_or(ApiError::NotFound("document"))
}

#[utoipa::path(get, path = "/v1/patients/{patient_id}/documents/{document_id}", tag = "documents", operation_id = "read_document",
    params(("patient_id" = String, Path), ("document_id" = String, Path)),
    responses((status = 200, body = Document), (status = 403, description = "the caller's role may not", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn read(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((patient_id, document_id)): Path<(String, String)>,
) -> ApiResult<Json<Document>> {
    let me = own_patient(&caller, &patient_id)?;
    // The path's patient is the caller, checked above; the document id
    // comes from that patient's own screen.
    let owner = (!state.faults.has(Fault::DocumentIdor)).then_some(me);
    load(&state.db.conn(), &document_id, owner).map(Json)
}

#[utoipa::path(patch, path = "/v1/patients/{patient_id}/documents/{document_id}", tag = "documents", operation_id = "update_document",
    params(("patient_id" = String, Path), ("document_id" = String, Path)), request_body = DocumentChange,
    responses((status = 204), (status = 403, description = "the caller's role may not", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((patient_id, document_id)): Path<(String, String)>,
    Json(change): Json<DocumentChange>,
) -> ApiResult<StatusCode> {
    let me = own_patient(&caller, &patient_id)?;
    let conn = state.db.conn();
    // The path's patient is the caller, checked above.
    let owner = (!state.faults.has(Fault::DocumentWriteIdor)).then_some(me);
    let mut document = load(&conn, &document_id, owner)?;
    if let Some(title) = change.title {
        document.title = fields::TITLE.check("title", &title)?.to_string();
    }
    if let Some(text) = change.text {
        document.text = fields::NOTE.check("text", &text)?.to_string();
    }
    conn.prepare_cached(
        "UPDATE documents SET title = ?1, text = ?2, updated_at = ?3 WHERE id = ?4",
    )?
    .execute(params![document.title, document.text, now(), document.id])?;
    Ok(StatusCode::NO_CONTENT)
}
