//! A small member portal of another shape than the clinic: integer ids, an
//! OAuth2 password login (a form), bearer tokens that may expire after a
//! number of uses, multipart uploads, an echo of its query, and admin
//! endpoints to reset and clean up. Two faults can be switched on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::{Value, json};

pub const ADMIN_KEY: &str = "letmein-admin";

#[derive(Default)]
pub struct Portal {
    /// Any member may download any file (the fault).
    pub files_idor: bool,
    /// Any member may change any member's password (the fault).
    pub password_idor: bool,
    /// A token stops working after this many requests (0: never).
    pub token_uses: usize,
    pub state: Mutex<Db>,
}

#[derive(Default)]
pub struct Db {
    pub users: Vec<User>,
    /// Token → (user id, requests made with it).
    pub tokens: HashMap<String, (usize, usize)>,
    pub files: Vec<File>,
    pub resets: usize,
    pub cleanups: usize,
    pub logins: usize,
}

pub struct User {
    pub username: String,
    pub password: String,
    pub email: String,
}

pub struct File {
    pub owner: usize,
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

type Shared = State<Arc<Portal>>;

fn admin(headers: &HeaderMap) -> Result<(), StatusCode> {
    match headers.get("x-admin").and_then(|v| v.to_str().ok()) {
        Some(ADMIN_KEY) => Ok(()),
        _ => Err(StatusCode::FORBIDDEN),
    }
}

/// The member a bearer token names, counting its use.
fn member(portal: &Portal, headers: &HeaderMap) -> Result<usize, StatusCode> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(StatusCode::UNAUTHORIZED)?;
    let mut db = portal.state.lock().unwrap();
    let (user, uses) = db.tokens.get_mut(token).ok_or(StatusCode::UNAUTHORIZED)?;
    *uses += 1;
    if portal.token_uses > 0 && *uses > portal.token_uses {
        return Err(StatusCode::UNAUTHORIZED);
    }
    Ok(*user)
}

async fn reset(State(p): Shared, headers: HeaderMap) -> Result<Json<Value>, StatusCode> {
    admin(&headers)?;
    let mut db = p.state.lock().unwrap();
    let resets = db.resets + 1;
    *db = Db {
        resets,
        ..Db::default()
    };
    Ok(Json(json!({"welcome": 7000 + resets})))
}

async fn cleanup(State(p): Shared, headers: HeaderMap) -> Result<StatusCode, StatusCode> {
    admin(&headers)?;
    p.state.lock().unwrap().cleanups += 1;
    Ok(StatusCode::NO_CONTENT)
}

async fn sign_up(State(p): Shared, Json(b): Json<Value>) -> (StatusCode, Json<Value>) {
    let mut db = p.state.lock().unwrap();
    let text = |k: &str| b[k].as_str().unwrap_or_default().to_string();
    db.users.push(User {
        username: text("username"),
        password: text("password"),
        email: text("email"),
    });
    let id = db.users.len();
    (
        StatusCode::CREATED,
        Json(json!({"id": id, "username": text("username")})),
    )
}

async fn token(State(p): Shared, Form(form): Form<HashMap<String, String>>) -> Response {
    if form.get("grant_type").map(String::as_str) != Some("password") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let mut db = p.state.lock().unwrap();
    let found = db.users.iter().position(|u| {
        Some(&u.username) == form.get("username") && Some(&u.password) == form.get("password")
    });
    let Some(index) = found else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    db.logins += 1;
    let token = format!("tok-{}", uuid::Uuid::new_v4().simple());
    db.tokens.insert(token.clone(), (index + 1, 0));
    Json(json!({"access_token": token, "token_type": "bearer"})).into_response()
}

async fn me(State(p): Shared, headers: HeaderMap) -> Result<Json<Value>, StatusCode> {
    let id = member(&p, &headers)?;
    let db = p.state.lock().unwrap();
    let user = &db.users[id - 1];
    let welcome = 7000 + db.resets;
    Ok(Json(
        json!({"id": id, "username": user.username, "email": user.email, "welcome": welcome}),
    ))
}

async fn change(
    State(p): Shared,
    Path(id): Path<usize>,
    headers: HeaderMap,
    Json(b): Json<Value>,
) -> Result<StatusCode, StatusCode> {
    let caller = member(&p, &headers)?;
    if caller != id && !p.password_idor {
        return Err(StatusCode::FORBIDDEN);
    }
    let mut db = p.state.lock().unwrap();
    let user = db
        .users
        .get_mut(id.wrapping_sub(1))
        .ok_or(StatusCode::NOT_FOUND)?;
    if let Some(password) = b["password"].as_str() {
        user.password = password.to_string();
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn echo(Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    Json(json!(q))
}

async fn upload(
    State(p): Shared,
    headers: HeaderMap,
    mut form: Multipart,
) -> Result<(StatusCode, Json<Value>), StatusCode> {
    let owner = member(&p, &headers)?;
    let (mut note, mut file) = (String::new(), None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|_| StatusCode::BAD_REQUEST)?
    {
        match field.name() {
            Some("note") => note = field.text().await.map_err(|_| StatusCode::BAD_REQUEST)?,
            Some("scan") => {
                let name = field.file_name().unwrap_or_default().to_string();
                let kind = field.content_type().unwrap_or_default().to_string();
                let bytes = field.bytes().await.map_err(|_| StatusCode::BAD_REQUEST)?;
                file = Some((name, kind, bytes.to_vec()));
            }
            _ => return Err(StatusCode::BAD_REQUEST),
        }
    }
    let (name, content_type, bytes) = file.ok_or(StatusCode::BAD_REQUEST)?;
    let mut db = p.state.lock().unwrap();
    let size = bytes.len();
    db.files.push(File {
        owner,
        name: name.clone(),
        content_type: content_type.clone(),
        bytes,
    });
    let id = db.files.len();
    let body =
        json!({"id": id, "name": name, "content_type": content_type, "size": size, "note": note});
    Ok((StatusCode::CREATED, Json(body)))
}

async fn download(State(p): Shared, Path(id): Path<usize>, headers: HeaderMap) -> Response {
    let caller = match member(&p, &headers) {
        Ok(caller) => caller,
        Err(status) => return status.into_response(),
    };
    let db = p.state.lock().unwrap();
    match db.files.get(id.wrapping_sub(1)) {
        Some(file) if file.owner == caller || p.files_idor => (
            [("content-type", file.content_type.clone())],
            file.bytes.clone(),
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

pub fn router(portal: Arc<Portal>) -> Router {
    Router::new()
        .route("/admin/reset", post(reset))
        .route("/admin/cleanup", post(cleanup))
        .route("/users", post(sign_up))
        .route("/users/{id}", patch(change))
        .route("/token", post(token))
        .route("/me", get(me))
        .route("/echo", get(echo))
        .route("/files", post(upload))
        .route("/files/{id}", get(download))
        .with_state(portal)
}
