//! Cookie-session mode: the login sets `clinic_session`, which is then the
//! only way in; the bearer token is refused. Bearer mode is the reverse.
//! A refresh sets the new session's cookie as a login does; a logout clears
//! the cookie.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clinic::auth::Sessions;
use clinic::{Clinic, Config};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn send(
    clinic: &Clinic,
    request: Request<Body>,
) -> (StatusCode, Vec<(String, String)>, Value) {
    let response = clinic.router().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn post(path: &str, body: Value) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// Signs a patient up and logs in: the login's headers and body.
async fn log_in(clinic: &Clinic) -> (Vec<(String, String)>, Value) {
    let account = json!({"name": "Ada Brown", "email": "ada@patients.test",
        "date_of_birth": "1980-01-02", "phone": "+44 7700 900000", "password": "a long password"});
    let (status, _, _) = send(clinic, post("/v1/patients", account)).await;
    assert_eq!(status, StatusCode::CREATED);
    let login = json!({"email": "ada@patients.test", "password": "a long password"});
    let (status, headers, body) = send(clinic, post("/v1/auth/login", login)).await;
    assert_eq!(status, StatusCode::OK);
    (headers, body)
}

fn me(header: (&str, String)) -> Request<Body> {
    Request::get("/v1/me")
        .header(header.0, header.1)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn cookie_mode_lets_in_the_session_cookie_and_not_the_bearer_token() {
    let clinic = cookie_clinic();
    let (headers, body) = log_in(&clinic).await;
    let set_cookie = headers
        .iter()
        .find(|(n, _)| n == "set-cookie")
        .map(|(_, v)| v.clone())
        .expect("the login sets a cookie");
    let session = set_cookie.split(';').next().unwrap().to_string();
    assert!(session.starts_with("clinic_session="), "{set_cookie}");
    let (status, _, profile) = send(&clinic, me(("cookie", format!("other=1; {session}")))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(profile["email"], "ada@patients.test");
    let token = body["token"].as_str().unwrap();
    let (status, _, _) = send(&clinic, me(("authorization", format!("Bearer {token}")))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bearer_mode_sets_no_cookie_and_refuses_one() {
    let clinic = Clinic::in_memory(Default::default()).unwrap();
    let (headers, body) = log_in(&clinic).await;
    assert!(!headers.iter().any(|(n, _)| n == "set-cookie"));
    let token = body["token"].as_str().unwrap().to_string();
    let (status, _, _) = send(&clinic, me(("authorization", format!("Bearer {token}")))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(&clinic, me(("cookie", format!("clinic_session={token}")))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

fn cookie_clinic() -> Clinic {
    Clinic::new(Config {
        sessions: Sessions::Cookie,
        ..Config::default()
    })
    .unwrap()
}

/// The `Set-Cookie` header among `headers`.
fn set_cookie(headers: &[(String, String)]) -> Option<String> {
    let mut found = headers.iter().filter(|(n, _)| n == "set-cookie");
    let value = found.next().map(|(_, v)| v.clone());
    assert!(found.next().is_none(), "one Set-Cookie: {headers:?}");
    value
}

/// `clinic_session=<token>`, the pair a `Set-Cookie` sets.
fn session_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

fn with_cookie(path: &str, cookie: &str) -> Request<Body> {
    Request::post(path)
        .header("cookie", cookie)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn cookie_mode_logout_clears_the_cookie_and_ends_the_session() {
    let clinic = cookie_clinic();
    let (headers, body) = log_in(&clinic).await;
    let session = session_pair(&set_cookie(&headers).unwrap());
    let (status, headers, _) = send(&clinic, with_cookie("/v1/auth/logout", &session)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        set_cookie(&headers).as_deref(),
        Some("clinic_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")
    );
    let (status, _, _) = send(&clinic, me(("cookie", session.clone()))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, headers, _) = send(&clinic, with_cookie("/v1/auth/logout", &session)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(set_cookie(&headers), None);
    // The refresh token issued with the session went with it.
    let refresh = json!({"refresh_token": body["refresh_token"]});
    let (status, _, _) = send(&clinic, post("/v1/auth/refresh", refresh)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn cookie_mode_logout_refuses_the_bearer_token() {
    let clinic = cookie_clinic();
    let (headers, body) = log_in(&clinic).await;
    let token = body["token"].as_str().unwrap();
    let logout = Request::post("/v1/auth/logout")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, _) = send(&clinic, logout).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let session = session_pair(&set_cookie(&headers).unwrap());
    let (status, _, _) = send(&clinic, me(("cookie", session))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn cookie_mode_refresh_sets_a_new_session_cookie() {
    let clinic = cookie_clinic();
    let (headers, body) = log_in(&clinic).await;
    let old = session_pair(&set_cookie(&headers).unwrap());
    let refresh = json!({"refresh_token": body["refresh_token"]});
    let (status, headers, renewed) = send(&clinic, post("/v1/auth/refresh", refresh)).await;
    assert_eq!(status, StatusCode::OK);
    let set = set_cookie(&headers).expect("the refresh sets a cookie");
    assert_eq!(
        set,
        format!(
            "clinic_session={}; Path=/; HttpOnly; SameSite=Lax",
            renewed["token"].as_str().unwrap()
        )
    );
    let new = session_pair(&set);
    assert_ne!(new, old);
    assert_eq!(renewed["user_id"], body["user_id"]);
    let (status, _, profile) = send(&clinic, me(("cookie", new))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(profile["email"], "ada@patients.test");
}

#[tokio::test]
async fn bearer_mode_logout_and_refresh_set_no_cookie() {
    let clinic = Clinic::in_memory(Default::default()).unwrap();
    let (_, body) = log_in(&clinic).await;
    let refresh = json!({"refresh_token": body["refresh_token"]});
    let (status, headers, renewed) = send(&clinic, post("/v1/auth/refresh", refresh)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(set_cookie(&headers), None);
    let token = renewed["token"].as_str().unwrap();
    let logout = Request::post("/v1/auth/logout")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = send(&clinic, logout).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(set_cookie(&headers), None);
}
