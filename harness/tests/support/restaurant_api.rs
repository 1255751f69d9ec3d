//! A test API of the shape FastAPI serves (`fixtures/openapi/
//! fastapi-restaurant.json`): sign-up with a user name, OAuth2's password
//! grant at a relative `tokenUrl` (`token`) with a form body, a menu anyone
//! may read, orders each user reads alone, and a profile. It keeps every
//! account's password, so a test can tell whether each account has its own.

// Handlers refuse with a ready response, as axum handlers do.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Json, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

#[derive(Default)]
pub struct RestaurantApi {
    store: Mutex<Store>,
}

#[derive(Default)]
struct Store {
    /// `users[id - 1]` = (user name, password, phone number, role).
    users: Vec<(String, String, Value, String)>,
    tokens: HashMap<String, usize>,
    /// `orders[id - 1]` = (user id, menu item id, quantity).
    orders: Vec<(usize, u64, u64)>,
}

type Api = State<Arc<RestaurantApi>>;

const MENU: [(u64, &str, f64); 2] = [(1, "Margherita", 9.5), (2, "Tiramisu", 6.0)];

fn error(status: StatusCode, detail: &str) -> Response {
    (status, Json(json!({ "detail": detail }))).into_response()
}

impl RestaurantApi {
    pub fn new() -> Arc<RestaurantApi> {
        Arc::default()
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many accounts there are, and how many passwords among them.
    pub fn accounts_and_passwords(&self) -> (usize, usize) {
        let store = self.store();
        let passwords: BTreeSet<&String> = store.users.iter().map(|u| &u.1).collect();
        (store.users.len(), passwords.len())
    }

    /// The caller's user id, from its bearer token.
    fn caller(&self, headers: &HeaderMap) -> Result<usize, Response> {
        let token = (headers.get(header::AUTHORIZATION))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let caller = token.and_then(|t| self.store().tokens.get(t).copied());
        caller.ok_or_else(|| error(StatusCode::UNAUTHORIZED, "Not authenticated"))
    }
}

pub fn router(api: Arc<RestaurantApi>) -> Router {
    Router::new()
        .route("/register", post(register))
        .route("/token", post(token))
        .route("/menu", get(menu))
        .route("/orders", post(order))
        .route("/orders/{order_id}", get(read_order))
        .route("/profile", get(profile).put(update_profile))
        .with_state(api)
}

fn user_out(store: &Store, id: usize) -> Value {
    let (name, _, phone, role) = &store.users[id - 1];
    json!({ "id": id, "username": name, "phone_number": phone, "role": role })
}

async fn register(State(api): Api, Json(body): Json<Value>) -> Response {
    let (Some(name), Some(password)) = (body["username"].as_str(), body["password"].as_str())
    else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "username and password are required",
        );
    };
    let mut store = api.store();
    if store.users.iter().any(|u| u.0 == name) {
        return error(StatusCode::BAD_REQUEST, "Username already registered");
    }
    let phone = body["phone_number"].clone();
    let user = (
        name.to_string(),
        password.to_string(),
        phone,
        "customer".into(),
    );
    store.users.push(user);
    let id = store.users.len();
    Json(user_out(&store, id)).into_response()
}

async fn token(State(api): Api, Form(form): Form<HashMap<String, String>>) -> Response {
    let get = |k: &str| form.get(k).map(String::as_str);
    if get("grant_type").is_some_and(|g| g != "password") {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "grant_type must be password",
        );
    }
    let mut store = api.store();
    let found = (store.users.iter()).position(|u| {
        Some(u.0.as_str()) == get("username") && Some(u.1.as_str()) == get("password")
    });
    let Some(at) = found else {
        return error(StatusCode::UNAUTHORIZED, "Incorrect username or password");
    };
    let token = format!("t{}-{}", at + 1, store.tokens.len());
    store.tokens.insert(token.clone(), at + 1);
    Json(json!({ "access_token": token, "token_type": "bearer" })).into_response()
}

async fn menu() -> Response {
    let items: Vec<Value> = (MENU.iter())
        .map(|(id, name, price)| json!({ "id": id, "name": name, "price": price, "description": null }))
        .collect();
    Json(items).into_response()
}

fn order_out(store: &Store, id: usize) -> Value {
    let (user, item, quantity) = store.orders[id - 1];
    json!({ "id": id, "menu_item_id": item, "quantity": quantity, "note": null, "user_id": user })
}

async fn order(
    State(api): Api,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Response, Response> {
    let caller = api.caller(&headers)?;
    let item = body["menu_item_id"]
        .as_u64()
        .filter(|i| MENU.iter().any(|m| m.0 == *i));
    let quantity = body["quantity"].as_u64().filter(|q| *q >= 1);
    let (Some(item), Some(quantity)) = (item, quantity) else {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "menu_item_id and quantity",
        ));
    };
    let mut store = api.store();
    store.orders.push((caller, item, quantity));
    let id = store.orders.len();
    Ok(Json(order_out(&store, id)).into_response())
}

async fn read_order(
    State(api): Api,
    headers: HeaderMap,
    Path(id): Path<usize>,
) -> Result<Response, Response> {
    let caller = api.caller(&headers)?;
    let store = api.store();
    let mine = id >= 1 && store.orders.get(id - 1).is_some_and(|o| o.0 == caller);
    match mine {
        true => Ok(Json(order_out(&store, id)).into_response()),
        false => Err(error(StatusCode::NOT_FOUND, "Order not found")),
    }
}

async fn profile(State(api): Api, headers: HeaderMap) -> Result<Response, Response> {
    let caller = api.caller(&headers)?;
    Ok(Json(user_out(&api.store(), caller)).into_response())
}

async fn update_profile(
    State(api): Api,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Response, Response> {
    let caller = api.caller(&headers)?;
    let mut store = api.store();
    let user = &mut store.users[caller - 1];
    if !body["phone_number"].is_null() {
        user.2 = body["phone_number"].clone();
    }
    if let Some(role) = body["role"].as_str() {
        if !["customer", "employee", "chef"].contains(&role) {
            return Err(error(StatusCode::UNPROCESSABLE_ENTITY, "role"));
        }
        user.3 = role.to_string();
    }
    Ok(Json(user_out(&store, caller)).into_response())
}
