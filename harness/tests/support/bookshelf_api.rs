//! A test API of the shape a Flask service documents (`fixtures/openapi/
//! flask-bookshelf.yaml`): every answer wraps its data in a `data`
//! envelope, users are named in paths (`/users/v1/{username}`), books by
//! their titles, the list of books (titles and owners) is everyone's to
//! read, and `GET /createdb` wipes the database. Each user reads only its
//! own account and books. It keeps every account's password, so a test can
//! tell whether each account has its own, and counts the resets.

// Handlers refuse with a ready response, as axum handlers do.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Json, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

#[derive(Default)]
pub struct BookshelfApi {
    store: Mutex<Store>,
}

#[derive(Default)]
struct Store {
    /// User name → (password, e-mail).
    users: HashMap<String, (String, String)>,
    /// Token → user name.
    tokens: HashMap<String, String>,
    /// Title → (owner, secret).
    books: HashMap<String, (String, String)>,
    resets: usize,
}

type Api = State<Arc<BookshelfApi>>;

fn fail(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "status": "fail", "message": message })),
    )
        .into_response()
}

fn success(data: Value) -> Response {
    Json(json!({ "status": "success", "message": "ok", "data": data })).into_response()
}

impl BookshelfApi {
    pub fn new() -> Arc<BookshelfApi> {
        Arc::default()
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many accounts there are, and how many passwords among them.
    pub fn accounts_and_passwords(&self) -> (usize, usize) {
        let store = self.store();
        let passwords: BTreeSet<&String> = store.users.values().map(|u| &u.0).collect();
        (store.users.len(), passwords.len())
    }

    /// How many times the database was wiped.
    pub fn resets(&self) -> usize {
        self.store().resets
    }

    /// The caller's user name, from its bearer token.
    fn caller(&self, headers: &HeaderMap) -> Result<String, Response> {
        let token = (headers.get(header::AUTHORIZATION))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let caller = token.and_then(|t| self.store().tokens.get(t).cloned());
        caller.ok_or_else(|| fail(StatusCode::UNAUTHORIZED, "Invalid token"))
    }
}

pub fn router(api: Arc<BookshelfApi>) -> Router {
    Router::new()
        .route("/createdb", get(create_db))
        .route("/users/v1/register", post(register))
        .route("/users/v1/login", post(login))
        .route("/users/v1/{username}", get(user))
        .route("/books/v1", get(books).post(add_book))
        .route("/books/v1/{book_title}", get(book))
        .with_state(api)
}

async fn create_db(State(api): Api) -> Response {
    let mut store = api.store();
    let resets = store.resets + 1;
    *store = Store {
        resets,
        ..Store::default()
    };
    Json(json!({ "message": "Database populated." })).into_response()
}

/// The string fields `keys` of `body`, or a refusal naming them.
fn fields<const N: usize>(body: &Value, keys: [&str; N]) -> Result<[String; N], Response> {
    let mut out: [String; N] = std::array::from_fn(|_| String::new());
    for (slot, key) in out.iter_mut().zip(keys) {
        let value = body[key].as_str().filter(|v| !v.is_empty());
        let value =
            value.ok_or_else(|| fail(StatusCode::BAD_REQUEST, &format!("{key} is required")))?;
        *slot = value.to_string();
    }
    Ok(out)
}

async fn register(State(api): Api, Json(body): Json<Value>) -> Result<Response, Response> {
    let [name, password, email] = fields(&body, ["username", "password", "email"])?;
    let mut store = api.store();
    if store.users.contains_key(&name) {
        return Err(fail(StatusCode::BAD_REQUEST, "User already exists."));
    }
    store.users.insert(name.clone(), (password, email.clone()));
    Ok(success(json!({ "username": name, "email": email })))
}

async fn login(State(api): Api, Json(body): Json<Value>) -> Result<Response, Response> {
    let [name, password] = fields(&body, ["username", "password"])?;
    let mut store = api.store();
    if store.users.get(&name).is_none_or(|u| u.0 != password) {
        return Err(fail(
            StatusCode::UNAUTHORIZED,
            "Username or password is incorrect.",
        ));
    }
    let token = format!("t-{}-{name}", store.tokens.len());
    store.tokens.insert(token.clone(), name);
    Ok(success(json!({ "auth_token": token })))
}

async fn user(
    State(api): Api,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, Response> {
    let caller = api.caller(&headers)?;
    let store = api.store();
    match store.users.get(&name).filter(|_| caller == name) {
        Some((_, email)) => Ok(success(json!({ "username": name, "email": email }))),
        None => Err(fail(StatusCode::NOT_FOUND, "User not found")),
    }
}

async fn books(State(api): Api) -> Response {
    let store = api.store();
    let all: Vec<Value> = (store.books.iter())
        .map(|(title, (owner, _))| json!({ "book_title": title, "user": owner }))
        .collect();
    success(Value::Array(all))
}

async fn add_book(
    State(api): Api,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Response, Response> {
    let caller = api.caller(&headers)?;
    let [title, secret] = fields(&body, ["book_title", "secret"])?;
    let mut store = api.store();
    if store.books.contains_key(&title) {
        return Err(fail(StatusCode::BAD_REQUEST, "Book already exists."));
    }
    store.books.insert(title.clone(), (caller, secret.clone()));
    Ok(success(json!({ "book_title": title, "secret": secret })))
}

async fn book(
    State(api): Api,
    headers: HeaderMap,
    Path(title): Path<String>,
) -> Result<Response, Response> {
    let caller = api.caller(&headers)?;
    let store = api.store();
    match store
        .books
        .get(&title)
        .filter(|(owner, _)| *owner == caller)
    {
        Some((owner, secret)) => Ok(success(
            json!({ "book_title": title, "owner": owner, "secret": secret }),
        )),
        None => Err(fail(StatusCode::NOT_FOUND, "Book not found")),
    }
}
