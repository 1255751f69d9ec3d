//! Sign-in and sessions: who is calling. A session is a token, sent back as
//! a bearer token or, in cookie mode, as the `clinic_session` cookie.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::{ApiError, ApiResult, Json};
use axum::extract::State;

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

impl FromRequestParts<Arc<AppState>> for Caller {
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
        let role = if role == "clinician" {
            Role::Clinician
        } else {
            Role::Patient
        };
        Ok(Caller { role, id })
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    pub token: String,
    pub role: Role,
    pub user_id: String,
}

/// Log in as a patient or a clinician.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = crate::error::ErrorBody)))]
pub async fn login(
    State(state): State<Arc<AppState>>,
    Json(request): Json<LoginRequest>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let conn = state.db.conn();
    let lookup = |sql: &str| {
        conn.prepare_cached(sql)?
            .query_row(params![request.email.trim()], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .optional()
    };
    let account =
        match lookup("SELECT id, password_hash FROM patients WHERE email = ?1 COLLATE NOCASE")? {
            Some(found) => Some((Role::Patient, found)),
            None => {
                lookup("SELECT id, password_hash FROM clinicians WHERE email = ?1 COLLATE NOCASE")?
                    .map(|found| (Role::Clinician, found))
            }
        };
    let (role, (user_id, stored)) = account.ok_or(ApiError::Unauthorized)?;
    if hash_password(&user_id, &request.password) != stored {
        return Err(ApiError::Unauthorized);
    }
    let token = new_token();
    conn.prepare_cached(
        "INSERT INTO sessions (token, role, user_id, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![token, role.as_str(), user_id, crate::now()])?;
    let cookie = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax");
    let body = Json(LoginResponse {
        token,
        role,
        user_id,
    });
    Ok(match state.sessions {
        Sessions::Bearer => body.into_response(),
        Sessions::Cookie => ([(axum::http::header::SET_COOKIE, cookie)], body).into_response(),
    })
}
