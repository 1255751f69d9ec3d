//! Cookie-session mode: the login sets `clinic_session`, which is then the
//! only way in; the bearer token is refused. Bearer mode is the reverse.

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
    let clinic = Clinic::new(Config {
        sessions: Sessions::Cookie,
        ..Config::default()
    })
    .unwrap();
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
