//! Logging in and out, in bearer mode: a logout ends that session at once
//! and revokes its refresh tokens; a refresh token buys one new session and
//! no more; a patient logs in by e-mail or by user name, in any case.
//! (Cookie mode's cookies are in `sessions.rs`.)

mod support;

use axum::http::{Method, StatusCode};
use clinic::{Clinic, Config};
use serde_json::{Value, json};
use support::{Api, Reply, User, user};

const PASSWORD: &str = "correct horse";

async fn logout(api: &Api, user: &User) -> Reply {
    api.call(Method::POST, "/v1/auth/logout", Some(user), None)
        .await
}

async fn refresh(api: &Api, refresh_token: &str) -> Reply {
    let body = json!({ "refresh_token": refresh_token });
    api.call(Method::POST, "/v1/auth/refresh", None, Some(body))
        .await
}

async fn login(api: &Api, credentials: Value) -> Reply {
    api.call(Method::POST, "/v1/auth/login", None, Some(credentials))
        .await
}

/// Signs up a patient with `email` and, when given, `username`.
async fn sign_up(api: &Api, email: &str, username: Option<&str>) -> Reply {
    let mut account = json!({"name": "Ada Lovelace", "email": email, "date_of_birth": "1990-01-01",
        "phone": "+44 20 7946 0000", "password": PASSWORD});
    if let Some(username) = username {
        account["username"] = json!(username);
    }
    api.call(Method::POST, "/v1/patients", None, Some(account))
        .await
}

#[tokio::test]
async fn logout_ends_that_session_at_once_and_leaves_the_users_others() {
    let api = Api::new(&[]);
    let first = api.patient("Ada Brown", "1980-01-02").await;
    let second = api.login(&first.email, PASSWORD).await;
    let reply = logout(&api, &first).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    assert_eq!(reply.text, "");
    assert_eq!(
        api.get("/v1/me", &first).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(logout(&api, &first).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.get("/v1/me", &second).await.status, StatusCode::OK);
}

#[tokio::test]
async fn logout_without_a_valid_session_is_refused() {
    let api = Api::new(&[]);
    let reply = api.call(Method::POST, "/v1/auth/logout", None, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    let mut stranger = api.patient("Ada Brown", "1980-01-02").await;
    stranger.token = "not-a-session".into();
    assert_eq!(
        logout(&api, &stranger).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_refresh_gives_a_working_new_session_and_each_refresh_token_works_once() {
    let api = Api::new(&[]);
    let ada = api.patient("Ada Brown", "1980-01-02").await;
    let renewed = user(&refresh(&api, &ada.refresh_token).await, &ada.email);
    assert_eq!(renewed.id, ada.id);
    assert_ne!(renewed.token, ada.token);
    assert_ne!(renewed.refresh_token, ada.refresh_token);
    let me = api.get("/v1/me", &renewed).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.json()["id"], ada.id.as_str());
    assert_eq!(me.json()["role"], "patient");
    let again = refresh(&api, &ada.refresh_token).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.text);
    // The new refresh token is good for its own one refresh.
    user(&refresh(&api, &renewed.refresh_token).await, &ada.email);
}

#[tokio::test]
async fn a_clinicians_refresh_keeps_the_clinician_role() {
    let api = Api::new(&[]);
    let dr = api.clinician(2).await;
    let reply = refresh(&api, &dr.refresh_token).await;
    let renewed = user(&reply, &dr.email);
    assert_eq!(reply.json()["role"], "clinician");
    let seen = api.get("/v1/clinician/appointments", &renewed).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.text);
}

#[tokio::test]
async fn logout_revokes_the_refresh_tokens_of_that_session_only() {
    let api = Api::new(&[]);
    let first = api.patient("Ada Brown", "1980-01-02").await;
    let second = api.login(&first.email, PASSWORD).await;
    assert_eq!(logout(&api, &first).await.status, StatusCode::NO_CONTENT);
    let revoked = refresh(&api, &first.refresh_token).await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED, "{}", revoked.text);
    user(&refresh(&api, &second.refresh_token).await, &first.email);
}

#[tokio::test]
async fn an_unknown_or_missing_refresh_token_is_refused() {
    let api = Api::new(&[]);
    let ada = api.patient("Ada Brown", "1980-01-02").await;
    // A session token is not a refresh token.
    for token in ["not-a-refresh-token", ada.token.as_str()] {
        let reply = refresh(&api, token).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    }
    let empty = api
        .call(Method::POST, "/v1/auth/refresh", None, Some(json!({})))
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{}", empty.text);
}

#[tokio::test]
async fn a_patient_logs_in_by_user_name_in_any_case_as_by_e_mail() {
    let api = Api::new(&[]);
    let signed_up = sign_up(&api, "ada@patients.test", Some("Ada.Lovelace")).await;
    assert_eq!(signed_up.status, StatusCode::CREATED, "{}", signed_up.text);
    assert_eq!(signed_up.json()["username"], "Ada.Lovelace");
    let id = signed_up.json()["id"].as_str().unwrap().to_string();
    for credentials in [
        json!({"username": "Ada.Lovelace", "password": PASSWORD}),
        json!({"username": "ada.lovelace", "password": PASSWORD}),
        json!({"username": " ADA.LOVELACE ", "password": PASSWORD}),
        json!({"email": "ADA@Patients.test", "password": PASSWORD}),
    ] {
        let ada = user(&login(&api, credentials.clone()).await, "ada@patients.test");
        assert_eq!(ada.id, id, "{credentials}");
        let me = api.get("/v1/me", &ada).await;
        assert_eq!(me.json()["username"], "Ada.Lovelace", "{}", me.text);
    }
    let wrong = json!({"username": "ada.lovelace", "password": "wrong horse"});
    assert_eq!(login(&api, wrong).await.status, StatusCode::UNAUTHORIZED);
    // The e-mail is not a user name, nor a user name an e-mail.
    let swapped = json!({"username": "ada@patients.test", "password": PASSWORD});
    assert_eq!(login(&api, swapped).await.status, StatusCode::UNAUTHORIZED);
    let swapped = json!({"email": "Ada.Lovelace", "password": PASSWORD});
    assert_eq!(login(&api, swapped).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_taken_user_name_is_a_conflict_whatever_its_case() {
    let api = Api::new(&[]);
    let first = sign_up(&api, "ada@patients.test", Some("ada")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let taken = sign_up(&api, "bea@patients.test", Some("ADA")).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);
    assert!(taken.text.contains("username"), "{}", taken.text);
    // A taken e-mail is still told as one.
    let taken = sign_up(&api, "ADA@patients.test", Some("bea")).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);
    assert!(taken.text.contains("email"), "{}", taken.text);
    // Patients without a user name do not collide with one another.
    for email in ["cy@patients.test", "dee@patients.test"] {
        let reply = sign_up(&api, email, None).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        assert_eq!(reply.json()["username"], Value::Null);
    }
}

#[tokio::test]
async fn a_user_name_is_plain_ascii_and_never_an_e_mail() {
    let api = Api::new(&[]);
    for username in ["ada@patients.test", "ab", "Ada Lovelace", "ädä"] {
        let reply = sign_up(&api, "ada@patients.test", Some(username)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{username}: {}",
            reply.text
        );
    }
}

#[tokio::test]
async fn a_login_names_exactly_one_of_e_mail_or_user_name() {
    let api = Api::new(&[]);
    let signed_up = sign_up(&api, "ada@patients.test", Some("ada")).await;
    assert_eq!(signed_up.status, StatusCode::CREATED, "{}", signed_up.text);
    for refused in [
        json!({"password": PASSWORD}),
        json!({"email": "ada@patients.test", "username": "ada", "password": PASSWORD}),
    ] {
        let reply = login(&api, refused.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{refused}: {}",
            reply.text
        );
        assert!(
            reply.json()["error"]["message"].is_string(),
            "{}",
            reply.text
        );
    }
    // The old body keeps working, and the answer keeps its fields.
    let reply = login(
        &api,
        json!({"email": "ada@patients.test", "password": PASSWORD}),
    )
    .await;
    let body = reply.json();
    for field in ["token", "refresh_token", "role", "user_id"] {
        assert!(body[field].is_string(), "{field}: {}", reply.text);
    }
    // Clinicians log in by e-mail only.
    let dr = json!({"username": "clinician-1@clinic.test", "password": clinic::CLINICIAN_PASSWORD});
    assert_eq!(login(&api, dr).await.status, StatusCode::UNAUTHORIZED);
    api.clinician(1).await;
}

#[tokio::test]
async fn a_database_made_before_user_names_gains_them() {
    let path = std::env::temp_dir().join(format!("clinic-{}.db", uuid::Uuid::new_v4().simple()));
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch(
        "CREATE TABLE patients (id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL,
             date_of_birth TEXT NOT NULL, phone TEXT NOT NULL, password_hash TEXT NOT NULL,
             created_at TEXT NOT NULL);",
    )
    .unwrap();
    drop(old);
    let clinic = Clinic::new(Config {
        db: Some(path.clone()),
        ..Config::default()
    })
    .unwrap();
    let api = Api::on(&clinic);
    let signed_up = sign_up(&api, "ada@patients.test", Some("ada")).await;
    assert_eq!(signed_up.status, StatusCode::CREATED, "{}", signed_up.text);
    user(
        &login(&api, json!({"username": "ADA", "password": PASSWORD})).await,
        "ada@patients.test",
    );
    let taken = sign_up(&api, "bea@patients.test", Some("Ada")).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);
    drop((api, clinic));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
