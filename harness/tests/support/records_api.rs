//! A test API that keeps its data, as a staging server does: every
//! request of every program meets one store behind a Mutex. Patients
//! sign up (JSON), get tokens with the OAuth2 password and refresh grants
//! (form bodies at `/oauth/token`), read their profile, add health
//! records and list them a page of three at a time, newest first.
//!
//! Three faults, each a switch:
//! - `paging`: pages after the first continue from the last record shown
//!   with a cursor query that forgets the owner (`id < cursor`), so page 2
//!   shows whoever's records were created just before the patient's
//!   oldest on page 1: nothing leaks until other patients, usually of
//!   earlier programs, have created records.
//! - `refresh`: the refresh grant checks the token it was given, then
//!   issues tokens for the account of the row before it (a leftover of
//!   1-based row numbers), so a refresh hands out the account that signed
//!   in or refreshed just before.
//! - `email_case`: sign-up checks that the e-mail is free as written, but
//!   the store keeps e-mails unique case-folded, so a second sign-up that
//!   differs only in case fails the insert: a 500.

// Handlers refuse with a ready response, as axum handlers do.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Form, Json, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// Which faults are on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    pub paging: bool,
    pub refresh: bool,
    pub email_case: bool,
}

pub struct RecordsApi {
    faults: Faults,
    store: Mutex<Store>,
}

#[derive(Default)]
struct Store {
    /// `users[id - 1]`: password and profile.
    users: Vec<(String, Value)>,
    /// User name → user id.
    names: HashMap<String, u64>,
    /// E-mails as written, and case-folded (the unique index).
    emails: HashMap<String, u64>,
    folded: HashMap<String, u64>,
    /// Access token → user id.
    access: HashMap<String, u64>,
    /// Refresh rows: the user each was issued to and its secret. A
    /// refresh token is `<row>.<secret>`.
    refresh: Vec<(u64, String)>,
    /// Records: (id, owner, body), ids from 1, in order.
    records: Vec<(u64, u64, Value)>,
}

type Api = State<Arc<RecordsApi>>;
type Res = Result<Response, Response>;

const PAGE: usize = 3;

impl RecordsApi {
    pub fn new(faults: Faults) -> Arc<RecordsApi> {
        Arc::new(RecordsApi {
            faults,
            store: Mutex::default(),
        })
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn caller(&self, headers: &HeaderMap) -> Result<u64, Response> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "));
        let found = token.and_then(|t| self.store().access.get(t).copied());
        found.ok_or_else(|| error(StatusCode::UNAUTHORIZED, "not signed in"))
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn secret() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A new access token and refresh row for `user`.
fn tokens(store: &mut Store, user: u64) -> Value {
    let access = secret();
    store.access.insert(access.clone(), user);
    let key = secret();
    store.refresh.push((user, key.clone()));
    let row = store.refresh.len() - 1;
    json!({
        "access_token": access,
        "refresh_token": format!("{row}.{key}"),
        "token_type": "bearer",
    })
}

async fn sign_up(api: Api, Json(body): Json<Value>) -> Res {
    let text = |k: &str| body[k].as_str().map(str::to_string);
    let (Some(username), Some(password), Some(email)) =
        (text("username"), text("password"), text("email"))
    else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "username, password and email",
        ));
    };
    let mut store = api.store();
    if store.names.contains_key(&username) || store.emails.contains_key(&email) {
        return Err(error(StatusCode::CONFLICT, "taken"));
    }
    let folded = email.to_lowercase();
    if store.folded.contains_key(&folded) {
        // The unique index on the folded e-mail refuses the insert.
        if api.faults.email_case {
            return Err(error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"));
        }
        return Err(error(StatusCode::CONFLICT, "taken"));
    }
    let id = store.users.len() as u64 + 1;
    let profile = json!({
        "id": id,
        "username": username,
        "email": email,
        "name": body["name"].as_str().unwrap_or(""),
    });
    store.users.push((password, profile.clone()));
    store.names.insert(username, id);
    store.emails.insert(email, id);
    store.folded.insert(folded, id);
    Ok((StatusCode::CREATED, Json(profile)).into_response())
}

async fn token(api: Api, Form(form): Form<HashMap<String, String>>) -> Res {
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let mut store = api.store();
    let user = match field("grant_type").as_str() {
        "password" => {
            let id = store.names.get(&field("username")).copied();
            let user = id.filter(|id| store.users[*id as usize - 1].0 == field("password"));
            user.ok_or_else(|| error(StatusCode::UNAUTHORIZED, "invalid_grant"))?
        }
        "refresh_token" => {
            let given = field("refresh_token");
            let (row, key) = given.split_once('.').unwrap_or(("", ""));
            let row: usize = row.parse().unwrap_or(usize::MAX);
            let valid = store.refresh.get(row).is_some_and(|(_, k)| k == key);
            if !valid {
                return Err(error(StatusCode::UNAUTHORIZED, "invalid_grant"));
            }
            let row = if api.faults.refresh {
                row.saturating_sub(1)
            } else {
                row
            };
            store.refresh[row].0
        }
        _ => return Err(error(StatusCode::BAD_REQUEST, "unsupported_grant_type")),
    };
    Ok(Json(tokens(&mut store, user)).into_response())
}

async fn me(api: Api, headers: HeaderMap) -> Res {
    let user = api.caller(&headers)?;
    let profile = api.store().users[user as usize - 1].1.clone();
    Ok(Json(profile).into_response())
}

async fn add_record(api: Api, headers: HeaderMap, Json(body): Json<Value>) -> Res {
    let user = api.caller(&headers)?;
    let Some(note) = body["note"].as_str() else {
        return Err(error(StatusCode::BAD_REQUEST, "note"));
    };
    let mut store = api.store();
    let id = store.records.len() as u64 + 1;
    let record = json!({ "id": id, "note": note });
    store.records.push((id, user, record.clone()));
    Ok((StatusCode::CREATED, Json(record)).into_response())
}

async fn list_records(
    api: Api,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Res {
    let user = api.caller(&headers)?;
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    if page == 0 {
        return Err(error(StatusCode::BAD_REQUEST, "page starts at 1"));
    }
    let store = api.store();
    let mine = || store.records.iter().rev().filter(|r| r.1 == user);
    let items: Vec<Value> = if page == 1 || !api.faults.paging {
        mine()
            .skip((page - 1) * PAGE)
            .take(PAGE)
            .map(|r| r.2.clone())
            .collect()
    } else {
        // The cursor: the oldest record of the page before.
        let cursor = mine().take((page - 1) * PAGE).last().map_or(0, |r| r.0);
        let before = store.records.iter().rev().filter(|r| r.0 < cursor);
        before.take(PAGE).map(|r| r.2.clone()).collect()
    };
    Ok(Json(json!({ "page": page, "items": items })).into_response())
}

pub fn router(api: Arc<RecordsApi>) -> Router {
    Router::new()
        .route("/users", post(sign_up))
        .route("/oauth/token", post(token))
        .route("/me", get(me))
        .route("/records", post(add_record).get(list_records))
        .with_state(api)
}

/// A suite for this API: one patient a program (`patients` instances of
/// it), signing up, adding three records, reading them page by page and
/// refreshing its token.
pub fn suite(patients: usize) -> String {
    format!(
        r#"description = "Patients keep health records on a server that keeps its data"

[vars]
password = "correct horse"

[actors.patient]
count = {patients}
auth = {{ bearer = "{{{{token}}}}" }}

[[steps]]
name = "sign up"
actor = "patient"
request = "POST /users"
body = {{ username = "pat-{{{{serial}}}}-{{{{run_id}}}}", password = "{{{{password}}}}", email = "{{{{canary}}}}@records.test", name = "{{{{canary}}}}" }}
expect.status = 201
capture = {{ user_id = "$.id", username = "$.username" }}

[[steps]]
name = "sign in"
actor = "patient"
request = "POST /oauth/token"
form = {{ grant_type = "password", username = "{{{{username}}}}", password = "{{{{password}}}}" }}
expect.status = 200
capture = {{ token = {{ json = "$.access_token", secret = true }}, refresh = {{ json = "$.refresh_token", secret = true }} }}

[[steps]]
name = "add a record"
actor = "patient"
request = "POST /records"
body = {{ note = "{{{{canary}}}} blood pressure" }}
expect.status = 201

[[steps]]
name = "add another record"
actor = "patient"
request = "POST /records"
body = {{ note = "{{{{canary}}}} allergy" }}
expect.status = 201

[[steps]]
name = "add a third record"
actor = "patient"
request = "POST /records"
body = {{ note = "{{{{canary}}}} prescription" }}
expect.status = 201

[[steps]]
name = "list my records"
actor = "patient"
request = "GET /records?page=1"
expect.status = 200

[[steps]]
name = "list my older records"
actor = "patient"
request = "GET /records?page=2"
expect.status = 200

[[steps]]
name = "refresh my token"
actor = "patient"
request = "POST /oauth/token"
form = {{ grant_type = "refresh_token", refresh_token = "{{{{refresh}}}}" }}
expect.status = 200
capture = {{ token = {{ json = "$.access_token", secret = true }}, refresh = {{ json = "$.refresh_token", secret = true }} }}

[[steps]]
name = "read my profile"
actor = "patient"
request = "GET /me"
expect.status = 200
"#
    )
}
