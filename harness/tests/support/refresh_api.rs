//! A test API shaped like a FastAPI/OAuth2 telehealth backend: account registration,
//! password and refresh-token grants at `/oauth/token`, a bearer-protected profile at
//! `/api/v2/me`, per-patient encounters and logout. All state lives in memory behind a Mutex.
//!
//! Fault `refresh_mixup`: the refresh grant remembers the last refreshed session in a
//! "recently refreshed" cache keyed by the first characters of the refresh token. With the
//! flag on the key is only the shared `rt_` prefix, so all refreshes share one slot: each
//! refresh issues its new tokens for the account that refreshed before it, then stores its
//! own. With the flag off the key is the whole token and every refresh stays on its account.

// Handlers refuse with a ready response, as axum handlers do.
#![allow(clippy::result_large_err)]

use axum::Router;
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{Form, Json, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

type Api = State<Arc<RefreshApi>>;
type Body = Result<Json<Value>, JsonRejection>;
type Params = Path<HashMap<String, String>>;
type Res = Result<Response, Response>;

pub struct RefreshApi {
    state: Mutex<Store>,
    /// Number of leading refresh-token characters that key the recently-refreshed cache.
    cache_key_len: usize,
}

#[derive(Default)]
struct Store {
    /// `users[id - 1]` = (password, profile `{id, email, displayName, notes}`).
    users: Vec<(String, Value)>,
    /// Lower-cased e-mail -> index into `users`.
    emails: HashMap<String, usize>,
    /// Access token -> (user id, the refresh token issued with it).
    access: HashMap<String, (u64, String)>,
    refresh: HashMap<String, u64>,
    /// Recently refreshed sessions: cache key -> user id.
    recent: HashMap<String, u64>,
    encounters: Vec<Value>,
}

impl Store {
    fn encounters_of(&self, pid: u64) -> impl Iterator<Item = &Value> {
        let mine = move |e: &&Value| e["patientId"] == pid;
        self.encounters.iter().filter(mine)
    }
}

impl RefreshApi {
    pub fn new(refresh_mixup: bool) -> Arc<RefreshApi> {
        Arc::new(RefreshApi {
            state: Mutex::default(),
            cache_key_len: if refresh_mixup { 3 } else { usize::MAX },
        })
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves the bearer token to `(user id, access token)`.
    fn auth(&self, headers: &HeaderMap) -> Result<(u64, String), Response> {
        let value = headers.get(header::AUTHORIZATION);
        let token = value.and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "));
        let token = token.ok_or_else(|| unauthorized("Not authenticated"))?;
        match self.store().access.get(token) {
            Some((id, _)) => Ok((*id, token.to_string())),
            None => Err(unauthorized("invalid token")),
        }
    }

    /// Authenticates the caller and checks that it is the patient named in the path.
    fn patient(&self, headers: &HeaderMap, patient_id: &str) -> Result<u64, Response> {
        let (id, _) = self.auth(headers)?;
        if patient_id.parse() != Ok(id) {
            return Err(detail(StatusCode::FORBIDDEN, "Not enough permissions"));
        }
        Ok(id)
    }
}

pub fn router(api: Arc<RefreshApi>) -> Router {
    let encounters = "/api/v2/patients/{patient_id}/encounters";
    let one = format!("{encounters}/{{encounter_id}}");
    Router::new()
        .route("/api/v2/register", post(register))
        .route("/oauth/token", post(token))
        .route("/api/v2/me", get(me).patch(patch_me))
        .route(encounters, get(list_encounters).post(create_encounter))
        .route(&one, get(get_encounter))
        .route("/auth/logout", post(logout))
        .with_state(api)
}

fn detail(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({ "detail": msg }))).into_response()
}

fn unauthorized(msg: &str) -> Response {
    let challenge = [(header::WWW_AUTHENTICATE, "Bearer")];
    (challenge, detail(StatusCode::UNAUTHORIZED, msg)).into_response()
}

fn unprocessable(errors: Vec<Value>) -> Response {
    let body = Json(json!({ "detail": errors }));
    (StatusCode::UNPROCESSABLE_ENTITY, body).into_response()
}

fn invalid(loc: &[&str], msg: &str, kind: &str) -> Response {
    unprocessable(vec![json!({ "loc": loc, "msg": msg, "type": kind })])
}

fn envelope(data: impl serde::Serialize) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    Json(json!({ "data": data, "meta": { "requestId": request_id } })).into_response()
}

/// Pulls required string fields out of a JSON body, FastAPI/pydantic style on failure.
fn fields<const N: usize>(body: Body, names: [&str; N]) -> Result<[String; N], Response> {
    let Ok(Json(body)) = body else {
        return Err(invalid(&["body"], "JSON decode error", "json_invalid"));
    };
    let mut errors = Vec::new();
    let out = names.map(|name| match body.get(name) {
        Some(Value::String(s)) => s.clone(),
        other => {
            let (msg, kind) = match other {
                None => ("Field required", "missing"),
                Some(_) => ("Input should be a valid string", "string_type"),
            };
            errors.push(json!({ "loc": ["body", name], "msg": msg, "type": kind }));
            String::new()
        }
    });
    if errors.is_empty() {
        return Ok(out);
    }
    Err(unprocessable(errors))
}

fn issue(st: &mut Store, user_id: u64) -> Response {
    let access = format!("at_{}", uuid::Uuid::new_v4().simple());
    let refresh = format!("rt_{}", uuid::Uuid::new_v4().simple());
    st.access.insert(access.clone(), (user_id, refresh.clone()));
    st.refresh.insert(refresh.clone(), user_id);
    Json(json!({
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "bearer",
        "expires_in": 3600,
    }))
    .into_response()
}

/// 26-character Crockford base32 id: 48-bit millisecond time then 80 random bits.
fn ulid() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let ms = now.unwrap_or_default().as_millis() & 0xFFFF_FFFF_FFFF;
    let value = (ms << 80) | (uuid::Uuid::new_v4().as_u128() & ((1 << 80) - 1));
    let char_at = |i: u32| ALPHABET[((value >> (i * 5)) & 31) as usize] as char;
    (0..26).rev().map(char_at).collect()
}

async fn register(State(api): Api, body: Body) -> Res {
    let [email, password, display_name] = fields(body, ["email", "password", "displayName"])?;
    let mut st = api.store();
    if st.emails.contains_key(&email.to_lowercase()) {
        return Err(detail(StatusCode::CONFLICT, "email already registered"));
    }
    let id = st.users.len() as u64 + 1;
    st.emails.insert(email.to_lowercase(), id as usize - 1);
    let body = json!({ "id": id, "email": email, "displayName": display_name });
    let mut profile = body.clone();
    profile["notes"] = json!("");
    st.users.push((password, profile));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn token(State(api): Api, form: Result<Form<HashMap<String, String>>, FormRejection>) -> Res {
    let Ok(Form(form)) = form else {
        let msg = "expected an application/x-www-form-urlencoded body";
        return Err(invalid(&["body"], msg, "form_invalid"));
    };
    let field = |name: &str| {
        let missing = || invalid(&["body", name], "Field required", "missing");
        form.get(name).ok_or_else(missing)
    };
    let mut st = api.store();
    match field("grant_type")?.as_str() {
        "password" => {
            let (username, password) = (field("username")?, field("password")?);
            let index = st.emails.get(&username.to_lowercase()).copied();
            match index.filter(|i| st.users[*i].0 == *password) {
                Some(i) => Ok(issue(&mut st, i as u64 + 1)),
                None => Err(detail(StatusCode::UNAUTHORIZED, "invalid credentials")),
            }
        }
        "refresh_token" => {
            let rt = field("refresh_token")?;
            let Some(owner) = st.refresh.remove(rt) else {
                return Err(detail(StatusCode::UNAUTHORIZED, "invalid refresh token"));
            };
            // Remember the refreshed session so a retried refresh resolves to the same account.
            let key: String = rt.chars().take(api.cache_key_len).collect();
            let account = st.recent.insert(key, owner).unwrap_or(owner);
            Ok(issue(&mut st, account))
        }
        _ => {
            let msg = "Input should be 'password' or 'refresh_token'";
            Err(invalid(&["body", "grant_type"], msg, "literal_error"))
        }
    }
}

async fn me(State(api): Api, headers: HeaderMap) -> Res {
    let (id, _) = api.auth(&headers)?;
    Ok(envelope(&api.store().users[id as usize - 1].1))
}

async fn patch_me(State(api): Api, headers: HeaderMap, body: Body) -> Res {
    let (id, _) = api.auth(&headers)?;
    let [notes] = fields(body, ["notes"])?;
    api.store().users[id as usize - 1].1["notes"] = json!(notes);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_encounters(State(api): Api, headers: HeaderMap, Path(p): Params) -> Res {
    let pid = api.patient(&headers, &p["patient_id"])?;
    let st = api.store();
    Ok(envelope(st.encounters_of(pid).collect::<Vec<_>>()))
}

async fn create_encounter(State(api): Api, headers: HeaderMap, Path(p): Params, body: Body) -> Res {
    let pid = api.patient(&headers, &p["patient_id"])?;
    let [summary] = fields(body, ["summary"])?;
    let encounter = json!({ "encounterId": ulid(), "summary": summary, "patientId": pid });
    api.store().encounters.push(encounter.clone());
    Ok((StatusCode::CREATED, Json(encounter)).into_response())
}

async fn get_encounter(State(api): Api, headers: HeaderMap, Path(p): Params) -> Res {
    let pid = api.patient(&headers, &p["patient_id"])?;
    let st = api.store();
    let eid = json!(p["encounter_id"]);
    let found = st.encounters_of(pid).find(|e| e["encounterId"] == eid);
    let missing = || detail(StatusCode::NOT_FOUND, "encounter not found");
    found.map(envelope).ok_or_else(missing)
}

async fn logout(State(api): Api, headers: HeaderMap) -> Res {
    let (_, access) = api.auth(&headers)?;
    let mut st = api.store();
    if let Some((_, refresh)) = st.access.remove(&access) {
        st.refresh.remove(&refresh);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
