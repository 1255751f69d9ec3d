//! Sign-in and sessions: who is calling. A session is a token, sent back as
//! a bearer token or, in cookie mode, as the `clinic_session` cookie.
//!
//! A login also hands out a refresh token, so that an app can get a new
//! session without asking for the password again. Each refresh token works
//! once and belongs to the session it came with: logging out of that
//! session revokes it too, or a stolen one would outlive the logout.

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::{ApiError, ApiResult, Json};

/// Which side of the clinic a user is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Patient,
    Clinician,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::Clinician => "clinician",
        }
    }

    /// The role as stored by [`Role::as_str`].
    fn from_stored(text: &str) -> Role {
        if text == "clinician" {
            Role::Clinician
        } else {
            Role::Patient
        }
    }
}

/// How callers carry their session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sessions {
    /// `Authorization: Bearer <token>`, the token from the login's body.
    #[default]
    Bearer,
    /// The `clinic_session` cookie the login sets; a bearer token is not
    /// accepted (the login's body still shows the token, as many APIs do).
    Cookie,
}

impl std::str::FromStr for Sessions {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "bearer" => Ok(Sessions::Bearer),
            "cookie" => Ok(Sessions::Cookie),
            other => Err(format!("unknown session mode `{other}`: bearer or cookie")),
        }
    }
}

/// The cookie that carries the session in cookie mode.
pub const SESSION_COOKIE: &str = "clinic_session";

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub role: Role,
    pub id: String,
}

impl Caller {
    /// The caller's id when they are a patient; clinicians get 403.
    pub fn patient(&self) -> ApiResult<&str> {
        match self.role {
            Role::Patient => Ok(&self.id),
            Role::Clinician => Err(ApiError::Forbidden("patients only".into())),
        }
    }

    /// The caller's id when they are a clinician; patients get 403.
    pub fn clinician(&self) -> ApiResult<&str> {
        match self.role {
            Role::Clinician => Ok(&self.id),
            Role::Patient => Err(ApiError::Forbidden("clinicians only".into())),
        }
    }
}

/// The authenticated caller with the session token they came with: what
/// logging out ends.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub caller: Caller,
}

impl FromRequestParts<Arc<AppState>> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let token = session_token(parts, state.sessions).ok_or(ApiError::Unauthorized)?;
        let conn = state.db.conn();
        let found = conn
            .prepare_cached("SELECT role, user_id FROM sessions WHERE token = ?1")?
            .query_row(params![token], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .optional()?;
        let (role, id) = found.ok_or(ApiError::Unauthorized)?;
        Ok(Session {
            token: token.to_string(),
            caller: Caller {
                role: Role::from_stored(&role),
                id,
            },
        })
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await?;
        Ok(session.caller)
    }
}

/// The session token a request carries, the way the clinic's mode says.
fn session_token(parts: &Parts, sessions: Sessions) -> Option<&str> {
    match sessions {
        Sessions::Bearer => parts
            .headers
            .get(AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
            .map(str::trim),
        Sessions::Cookie => parts
            .headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .find_map(|pair| pair.trim().strip_prefix(&format!("{SESSION_COOKIE}="))),
    }
}

/// A salted SHA-256 of a password. Staging data only; a production clinic
/// would use a slow password hash.
pub fn hash_password(salt: &str, password: &str) -> String {
    let digest = Sha256::new()
        .chain_update(salt.as_bytes())
        .chain_update([0])
        .chain_update(password.as_bytes())
        .finalize();
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The password and exactly one of `email` (patients and clinicians) or
/// `username` (patients who chose one at sign-up).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub email: Option<String>,
    pub username: Option<String>,
    pub password: String,
}

/// What a login names the account by.
enum LoginName<'a> {
    Email(&'a str),
    Username(&'a str),
}

impl LoginRequest {
    /// The account's name; both or neither is a bad request, as guessing
    /// which one the client meant could log it into the wrong account.
    fn name(&self) -> ApiResult<LoginName<'_>> {
        match (&self.email, &self.username) {
            (Some(email), None) => Ok(LoginName::Email(email.trim())),
            (None, Some(username)) => Ok(LoginName::Username(username.trim())),
            _ => Err(ApiError::bad_request(
                "send exactly one of `email` or `username`",
            )),
        }
    }
}

/// A new session: what a login and a refresh answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    pub token: String,
    /// Trade it once at `POST /v1/auth/refresh` for a new session.
    pub refresh_token: String,
    pub role: Role,
    pub user_id: String,
}

/// The account `name` names: its role, and its id and stored password hash.
fn find_account(
    conn: &Connection,
    name: &LoginName<'_>,
) -> rusqlite::Result<Option<(Role, (String, String))>> {
    let lookup = |role: Role, sql: &str, value: &str| {
        conn.prepare_cached(sql)?
            .query_row(params![value], |row| Ok((role, (row.get(0)?, row.get(1)?))))
            .optional()
    };
    match *name {
        // Clinicians have no user name.
        LoginName::Username(username) => lookup(
            Role::Patient,
            "SELECT id, password_hash FROM patients WHERE username = ?1 COLLATE NOCASE",
            username,
        ),
        LoginName::Email(email) => match lookup(
            Role::Patient,
            "SELECT id, password_hash FROM patients WHERE email = ?1 COLLATE NOCASE",
            email,
        )? {
            Some(found) => Ok(Some(found)),
            None => lookup(
                Role::Clinician,
                "SELECT id, password_hash FROM clinicians WHERE email = ?1 COLLATE NOCASE",
                email,
            ),
        },
    }
}

/// Opens a session for the user, with a refresh token issued with it.
fn open_session(conn: &Connection, role: Role, user_id: String) -> rusqlite::Result<LoginResponse> {
    let (token, refresh_token, now) = (new_token(), new_token(), crate::now());
    conn.prepare_cached(
        "INSERT INTO sessions (token, role, user_id, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![token, role.as_str(), user_id, now])?;
    conn.prepare_cached(
        "INSERT INTO refresh_tokens (token, session, role, user_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![refresh_token, token, role.as_str(), user_id, now])?;
    Ok(LoginResponse {
        token,
        refresh_token,
        role,
        user_id,
    })
}

/// The answer to a login or a refresh: the new session in the body and, in
/// cookie mode, in the session cookie as well.
fn signed_in(sessions: Sessions, body: LoginResponse) -> Response {
    match sessions {
        Sessions::Bearer => Json(body).into_response(),
        Sessions::Cookie => {
            let cookie = format!(
                "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax",
                body.token
            );
            ([(SET_COOKIE, cookie)], Json(body)).into_response()
        }
    }
}

/// Log in as a patient or a clinician.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody)))]
pub async fn login(
    State(state): State<Arc<AppState>>,
    Json(request): Json<LoginRequest>,
) -> ApiResult<Response> {
    let name = request.name()?;
    let mut conn = state.db.conn();
    let account = find_account(&conn, &name)?;
    let (role, (user_id, stored)) = account.ok_or(ApiError::Unauthorized)?;
    if hash_password(&user_id, &request.password) != stored {
        return Err(ApiError::Unauthorized);
    }
    let tx = conn.transaction()?;
    let body = open_session(&tx, role, user_id)?;
    tx.commit()?;
    Ok(signed_in(state.sessions, body))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RefreshRequest {
    /// The `refresh_token` of a login or of the last refresh.
    pub refresh_token: String,
}

/// Deletes a refresh token; whom it was issued to, if it was there.
fn redeem(conn: &Connection, token: &str) -> rusqlite::Result<Option<(Role, String)>> {
    let found = conn
        .prepare_cached("SELECT role, user_id FROM refresh_tokens WHERE token = ?1")?
        .query_row(params![token], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .optional()?;
    conn.prepare_cached("DELETE FROM refresh_tokens WHERE token = ?1")?
        .execute(params![token])?;
    Ok(found.map(|(role, user_id)| (Role::from_stored(&role), user_id)))
}

/// Trade a refresh token for a new session and a new refresh token. Each
/// refresh token works once; the session it came with is left as it is.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = LoginResponse), (status = 400, body = crate::error::ErrorBody),
        (status = 401, description = "an unknown, used or revoked refresh token", body = crate::error::ErrorBody)))]
pub async fn refresh(
    State(state): State<Arc<AppState>>,
    Json(request): Json<RefreshRequest>,
) -> ApiResult<Response> {
    let mut conn = state.db.conn();
    // One transaction: the old refresh token goes only with the new session stored.
    let tx = conn.transaction()?;
    let (role, user_id) =
        redeem(&tx, request.refresh_token.trim())?.ok_or(ApiError::Unauthorized)?;
    let body = open_session(&tx, role, user_id)?;
    tx.commit()?;
    Ok(signed_in(state.sessions, body))
}

/// End the caller's session: its token stops working at once, and so do the
/// refresh tokens issued with it. Other sessions of the user stay.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "logged out; in cookie mode the session cookie is cleared")),
    security(("bearer" = [])))]
pub async fn logout(State(state): State<Arc<AppState>>, session: Session) -> ApiResult<Response> {
    let mut conn = state.db.conn();
    let tx = conn.transaction()?;
    tx.prepare_cached("DELETE FROM refresh_tokens WHERE session = ?1")?
        .execute(params![session.token])?;
    tx.prepare_cached("DELETE FROM sessions WHERE token = ?1")?
        .execute(params![session.token])?;
    tx.commit()?;
    Ok(match state.sessions {
        Sessions::Bearer => StatusCode::NO_CONTENT.into_response(),
        Sessions::Cookie => {
            let cleared = format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
            (StatusCode::NO_CONTENT, [(SET_COOKIE, cleared)]).into_response()
        }
    })
}
