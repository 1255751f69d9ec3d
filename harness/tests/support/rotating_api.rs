//! A small in-memory "patient notes" HTTP API for integration tests.
//!
//! Accounts sign in with `POST /auth/session`, which sets a `sid` cookie and
//! returns a CSRF token; every sign-in rotates both and revokes the account's
//! previous session. Every write except account creation and sign-in needs an
//! `X-CSRF-Token` header equal to the current session's token. Resources are
//! HAL+JSON and the single-resource responses carry an `ETag` (honouring
//! `If-None-Match` on GET).
//!
//! Fault `note_update_idor`: when set, `PUT /notes/{id}` is served by an older
//! handler that looks the note up by id alone (`find_note` instead of
//! `find_own_note`), so any signed-in user with a valid CSRF token can
//! overwrite someone else's note (204). When unset, that request gets 404.

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use serde_json::{Value, json};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

const HAL: &str = "application/hal+json";

struct Account {
    id: Uuid,
    login: String,
    password: String,
    full_name: String,
    bio: String,
}

struct Session {
    sid: String,
    account: Uuid,
    csrf: String,
}

struct Note {
    id: Uuid,
    owner: Uuid,
    text: String,
}

#[derive(Default)]
struct Store {
    accounts: Vec<Account>,
    sessions: Vec<Session>,
    notes: Vec<Note>,
}

/// Shared state of the API; build it with [`RotatingApi::new`].
pub struct RotatingApi {
    store: Mutex<Store>,
    note_update_idor: bool,
}

impl RotatingApi {
    pub fn new(note_update_idor: bool) -> Arc<RotatingApi> {
        Arc::new(RotatingApi {
            store: Mutex::default(),
            note_update_idor,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Builds the axum router serving the API.
pub fn router(api: Arc<RotatingApi>) -> Router {
    let update = if api.note_update_idor {
        put(put_note_v1)
    } else {
        put(put_note)
    };
    Router::new()
        .route("/accounts", post(create_account))
        .route("/accounts/me", get(get_me).put(put_me))
        .route("/auth/session", post(sign_in).delete(sign_out))
        .route("/notes", get(list_notes).post(create_note))
        .route("/notes/{id}", update.get(get_note))
        .with_state(api)
}

struct ApiError(StatusCode, &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;
type St = State<Arc<RotatingApi>>;
type Id = Path<String>;

const UNAUTHORIZED: ApiError = ApiError(StatusCode::UNAUTHORIZED, "unauthorized");
const NOT_FOUND: ApiError = ApiError(StatusCode::NOT_FOUND, "not found");

/// Reads string fields of a JSON object body, in order; 400 if one is missing.
fn fields<const N: usize>(body: &Bytes, names: [&str; N]) -> Result<[String; N], ApiError> {
    let v: Value = serde_json::from_slice(body).unwrap_or_default();
    let out = names.map(|n| v.get(n).and_then(Value::as_str).map(str::to_owned));
    if out.iter().any(Option::is_none) {
        return Err(ApiError(StatusCode::BAD_REQUEST, "bad request"));
    }
    Ok(out.map(Option::unwrap_or_default))
}

fn sid_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix("sid="))
        .find(|s| !s.is_empty())
}

/// HAL response with an `ETag` (quoted hash of the body); 304 on a matching `If-None-Match`.
fn tagged(status: StatusCode, req: &HeaderMap, body: &Value) -> Response {
    let text = body.to_string();
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    let etag = format!("\"{:016x}\"", hasher.finish());
    let etag_value = HeaderValue::from_str(&etag).expect("hex etag is a valid header");
    if status == StatusCode::OK && req.get(header::IF_NONE_MATCH) == Some(&etag_value) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response();
    }
    let mut resp = hal(status, &text);
    resp.headers_mut().insert(header::ETAG, etag_value);
    resp
}

fn hal(status: StatusCode, body: &str) -> Response {
    (status, [(header::CONTENT_TYPE, HAL)], body.to_owned()).into_response()
}

impl Store {
    fn session(&self, headers: &HeaderMap) -> Result<&Session, ApiError> {
        let sid = sid_cookie(headers).ok_or(UNAUTHORIZED)?;
        self.sessions
            .iter()
            .find(|s| s.sid == sid)
            .ok_or(UNAUTHORIZED)
    }

    /// The signed-in account, for reads.
    fn caller(&self, headers: &HeaderMap) -> Result<Uuid, ApiError> {
        self.session(headers).map(|s| s.account)
    }

    /// The signed-in account and its sid, for writes: also checks `X-CSRF-Token`.
    fn writer(&self, headers: &HeaderMap) -> Result<(String, Uuid), ApiError> {
        let session = self.session(headers)?;
        let token = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
        if token != Some(session.csrf.as_str()) {
            return Err(ApiError(StatusCode::FORBIDDEN, "csrf"));
        }
        Ok((session.sid.clone(), session.account))
    }

    fn account(&mut self, id: Uuid) -> Result<&mut Account, ApiError> {
        self.accounts
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or(UNAUTHORIZED)
    }

    fn find_note(&mut self, id: &str) -> Option<&mut Note> {
        let id: Uuid = id.parse().ok()?;
        self.notes.iter_mut().find(|n| n.id == id)
    }

    fn find_own_note(&mut self, owner: Uuid, id: &str) -> Option<&mut Note> {
        self.find_note(id).filter(|n| n.owner == owner)
    }
}

fn note_json(n: &Note) -> Value {
    json!({
        "id": n.id.to_string(),
        "text": n.text,
        "ownerId": n.owner.to_string(),
        "_links": { "self": { "href": format!("/notes/{}", n.id) } },
    })
}

async fn create_account(State(api): St, body: Bytes) -> ApiResult {
    let [login, password, full_name] = fields(&body, ["login", "password", "fullName"])?;
    let mut s = api.lock();
    let lower = login.to_lowercase();
    if s.accounts.iter().any(|a| a.login.to_lowercase() == lower) {
        return Err(ApiError(StatusCode::CONFLICT, "login taken"));
    }
    let id = Uuid::new_v4();
    let href = format!("/accounts/{id}");
    let out = json!({
        "id": id.to_string(), "login": login, "fullName": full_name,
        "_links": { "self": { "href": href } },
    });
    s.accounts.push(Account {
        id,
        login,
        password,
        full_name,
        bio: String::new(),
    });
    Ok(hal(StatusCode::CREATED, &out.to_string()))
}

async fn sign_in(State(api): St, body: Bytes) -> ApiResult {
    let [login, password] = fields(&body, ["login", "password"])?;
    let mut s = api.lock();
    let login = login.to_lowercase();
    let account = s
        .accounts
        .iter()
        .find(|a| a.login.to_lowercase() == login && a.password == password)
        .ok_or(ApiError(StatusCode::UNAUTHORIZED, "bad credentials"))?;
    let id = account.id;
    let out =
        json!({ "id": id.to_string(), "login": account.login, "fullName": account.full_name });
    let sid = Uuid::new_v4().simple().to_string();
    let csrf = Uuid::new_v4().simple().to_string();
    s.sessions.retain(|sess| sess.account != id);
    let session = Session {
        sid: sid.clone(),
        account: id,
        csrf: csrf.clone(),
    };
    s.sessions.push(session);
    let cookie = format!("sid={sid}; Path=/; HttpOnly");
    let body = json!({ "csrfToken": csrf, "account": out });
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

async fn sign_out(State(api): St, headers: HeaderMap) -> ApiResult {
    let mut s = api.lock();
    let (sid, _) = s.writer(&headers)?;
    s.sessions.retain(|sess| sess.sid != sid);
    let cookie = [(header::SET_COOKIE, "sid=; Path=/; Max-Age=0")];
    Ok((StatusCode::NO_CONTENT, cookie).into_response())
}

async fn get_me(State(api): St, headers: HeaderMap) -> ApiResult {
    let mut s = api.lock();
    let caller = s.caller(&headers)?;
    let a = s.account(caller)?;
    let out = json!({
        "id": a.id.to_string(), "login": a.login, "fullName": a.full_name, "bio": a.bio,
        "_links": { "self": { "href": "/accounts/me" }, "notes": { "href": "/notes" } },
    });
    Ok(tagged(StatusCode::OK, &headers, &out))
}

async fn put_me(State(api): St, headers: HeaderMap, body: Bytes) -> ApiResult {
    let mut s = api.lock();
    let (_, caller) = s.writer(&headers)?;
    let [bio] = fields(&body, ["bio"])?;
    s.account(caller)?.bio = bio;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn create_note(State(api): St, headers: HeaderMap, body: Bytes) -> ApiResult {
    let mut s = api.lock();
    let (_, caller) = s.writer(&headers)?;
    let [text] = fields(&body, ["text"])?;
    let note = Note {
        id: Uuid::new_v4(),
        owner: caller,
        text,
    };
    let resp = tagged(StatusCode::CREATED, &headers, &note_json(&note));
    s.notes.push(note);
    Ok(resp)
}

async fn list_notes(State(api): St, headers: HeaderMap) -> ApiResult {
    let s = api.lock();
    let caller = s.caller(&headers)?;
    let notes: Vec<Value> = s
        .notes
        .iter()
        .filter(|n| n.owner == caller)
        .map(note_json)
        .collect();
    let out = json!({
        "_embedded": { "notes": notes }, "count": notes.len(),
        "_links": { "self": { "href": "/notes" } },
    });
    Ok(hal(StatusCode::OK, &out.to_string()))
}

async fn get_note(State(api): St, Path(id): Id, headers: HeaderMap) -> ApiResult {
    let mut s = api.lock();
    let caller = s.caller(&headers)?;
    let note = s.find_own_note(caller, &id).ok_or(NOT_FOUND)?;
    Ok(tagged(StatusCode::OK, &headers, &note_json(note)))
}

async fn put_note(State(api): St, Path(id): Id, headers: HeaderMap, body: Bytes) -> ApiResult {
    let mut s = api.lock();
    let (_, caller) = s.writer(&headers)?;
    let [text] = fields(&body, ["text"])?;
    s.find_own_note(caller, &id).ok_or(NOT_FOUND)?.text = text;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Earlier revision of `put_note`, still mounted when `note_update_idor` is set.
async fn put_note_v1(State(api): St, Path(id): Id, headers: HeaderMap, body: Bytes) -> ApiResult {
    let mut s = api.lock();
    s.writer(&headers)?;
    let [text] = fields(&body, ["text"])?;
    s.find_note(&id).ok_or(NOT_FOUND)?.text = text;
    Ok(StatusCode::NO_CONTENT.into_response())
}
