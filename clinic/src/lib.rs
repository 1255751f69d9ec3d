//! The reference clinic: a small but realistic telehealth staging API.
//!
//! Patients sign up, book clinicians, join calls that switch between audio
//! and video part-way through, and find each leg's recording in their
//! profile. Clinicians see the patients who booked with them. It is the
//! embedded default target of crosstalk, the in-process target of its fuzz
//! targets and the test bed of its own tests, so clean it must never leak,
//! and each entry of its [fault catalog](faults) must leak the way real
//! systems do.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let clinic = clinic::Clinic::new(clinic::Config::default())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! clinic.serve(listener).await?;
//! # Ok(()) }
//! ```

pub mod account;
pub mod appointments;
pub mod auth;
pub mod cache;
pub mod consultations;
pub mod db;
pub mod documents;
pub mod error;
pub mod faults;
pub mod fields;
pub mod media;
pub mod openapi;
pub mod patients;
pub mod recordings;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use rusqlite::types::Value;

pub use db::{CLINICIAN_PASSWORD, SEED_CLINICIANS};
pub use faults::{FAULTS_ENV, Fault, Faults, UnknownFault};

/// How to build a clinic.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// SQLite file to persist to; in memory when `None`.
    pub db: Option<PathBuf>,
    /// Faults switched on.
    pub faults: Faults,
    /// How a logged-in caller proves who they are.
    pub sessions: auth::Sessions,
}

/// Shared by every handler.
pub struct AppState {
    pub db: db::Db,
    pub faults: Faults,
    pub sessions: auth::Sessions,
    pub cache: cache::ResponseCache,
    pub media: media::MediaPipeline,
}

/// A clinic ready to answer requests, in process or on a socket.
#[derive(Clone)]
pub struct Clinic {
    state: Arc<AppState>,
}

impl Clinic {
    pub fn new(config: Config) -> Result<Self, rusqlite::Error> {
        let db = db::Db::open(config.db.as_deref())?;
        Ok(Self::with_db(db, config.faults, config.sessions))
    }

    /// A clinic with `faults` on whose database is held in memory up to a
    /// few MiB and spilled to a temporary file beyond, gone with the
    /// clinic: for one that holds a whole large run (an in-memory one grows
    /// with everything it holds). Slower per request than
    /// [`Clinic::in_memory`], and slower to make.
    pub fn scratch(faults: Faults) -> Result<Self, rusqlite::Error> {
        let db = db::Db::scratch()?;
        Ok(Self::with_db(db, faults, auth::Sessions::default()))
    }

    fn with_db(db: db::Db, faults: Faults, sessions: auth::Sessions) -> Self {
        Self {
            state: Arc::new(AppState {
                db,
                cache: cache::ResponseCache::new(faults.clone()),
                faults,
                sessions,
                media: media::MediaPipeline::default(),
            }),
        }
    }

    /// An in-memory clinic with `faults` on.
    pub fn in_memory(faults: Faults) -> Result<Self, rusqlite::Error> {
        Self::new(Config {
            faults,
            ..Config::default()
        })
    }

    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// The clinic as an axum router (a `tower::Service`), for in-process use.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/openapi.json", get(openapi::document))
            .route("/v1/patients", post(patients::sign_up))
            .route("/v1/auth/login", post(auth::login))
            .route("/v1/auth/refresh", post(auth::refresh))
            .route("/v1/auth/logout", post(auth::logout))
            .route("/v1/clinicians", get(patients::directory))
            .route(
                "/v1/me",
                get(patients::me)
                    .patch(patients::update_me)
                    .delete(patients::delete_me),
            )
            .route("/v1/me/password", post(account::change_password))
            .route("/v1/patients/{id}", patch(account::update_patient))
            .route("/v1/me/documents", post(documents::create))
            .route(
                "/v1/patients/{patient_id}/documents/{document_id}",
                get(documents::read).patch(documents::update),
            )
            .route("/v1/me/recordings", get(recordings::list_mine))
            .route("/v1/me/export", get(patients::export))
            .route(
                "/v1/appointments",
                get(appointments::list).post(appointments::book),
            )
            .route(
                "/v1/appointments/{id}",
                get(appointments::read)
                    .patch(appointments::reschedule)
                    .delete(appointments::cancel),
            )
            .route(
                "/v1/appointments/{id}/consultation",
                post(consultations::start),
            )
            .route("/v1/consultations/{id}", get(consultations::read))
            .route("/v1/consultations/{id}/join", post(consultations::join))
            .route("/v1/consultations/{id}/switch", post(consultations::switch))
            .route("/v1/consultations/{id}/end", post(consultations::end))
            .route(
                "/v1/consultations/{id}/notes",
                post(consultations::add_note),
            )
            .route(
                "/v1/recordings/{id}",
                get(recordings::read).delete(recordings::delete),
            )
            .route("/v1/recordings/{id}/media", get(recordings::media))
            .route(
                "/v1/clinician/appointments",
                get(appointments::list_for_clinician),
            )
            .route(
                "/v1/clinician/patients/{id}",
                get(patients::patient_for_clinician),
            )
            .fallback(|| async {
                error::error_response(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "no such endpoint".into(),
                )
            })
            .method_not_allowed_fallback(|| async {
                error::error_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "this endpoint does not accept that method".into(),
                )
            })
            .with_state(self.state.clone())
    }

    /// Serves the clinic on `listener` until the process stops.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }
}

/// A SQL condition with its `?` placeholders' values, ANDed with others to
/// make a query's WHERE clause.
#[derive(Debug, Clone)]
pub struct Filter {
    sql: String,
    values: Vec<Value>,
}

impl Filter {
    pub fn new<V: Into<Value>>(
        sql: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        Self {
            sql: sql.into(),
            values: values.into_iter().map(Into::into).collect(),
        }
    }

    /// ` WHERE a AND b`, or nothing for no filters.
    pub fn where_clause(filters: &[Filter]) -> String {
        if filters.is_empty() {
            return String::new();
        }
        let conditions: Vec<&str> = filters.iter().map(|f| f.sql.as_str()).collect();
        format!(" WHERE {}", conditions.join(" AND "))
    }

    pub fn values(filters: &[Filter]) -> impl Iterator<Item = &Value> {
        filters.iter().flat_map(|f| f.values.iter())
    }
}

/// The current time as stored and returned: RFC 3339 in UTC.
pub fn now() -> String {
    jiff::Timestamp::now().to_string()
}
