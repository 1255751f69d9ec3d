//! A tiny in-process client for the clinic's router: no sockets, no crosstalk.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use clinic::{Clinic, Fault, Faults};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

pub struct Api {
    router: Router,
}

/// A response: status, content type (empty when there is none) and body text.
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

/// A signed-in user.
#[derive(Clone)]
pub struct User {
    pub id: String,
    pub token: String,
    pub refresh_token: String,
    pub email: String,
}

impl Api {
    pub fn new(faults: &[Fault]) -> Api {
        let faults: Faults = faults.iter().copied().collect();
        Api::on(&Clinic::in_memory(faults).expect("in-memory clinic"))
    }

    /// A client of `clinic`, made however the test needs.
    pub fn on(clinic: &Clinic) -> Api {
        Api {
            router: clinic.router(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        user: Option<&User>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(user) = user {
            request = request.header("authorization", format!("Bearer {}", user.token));
        }
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            content_type,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str, user: &User) -> Reply {
        self.call(Method::GET, path, Some(user), None).await
    }

    pub async fn post(&self, path: &str, user: &User, body: Value) -> Reply {
        self.call(Method::POST, path, Some(user), Some(body)).await
    }

    /// Logs in by e-mail; a new session each time.
    pub async fn login(&self, email: &str, password: &str) -> User {
        let reply = self
            .call(
                Method::POST,
                "/v1/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        user(&reply, email)
    }

    /// Signs up and logs in a patient.
    pub async fn patient(&self, name: &str, date_of_birth: &str) -> User {
        let email = format!(
            "{}-{}@patients.test",
            name.to_lowercase().replace(' ', "."),
            uuid::Uuid::new_v4().simple()
        );
        let reply = self
            .call(
                Method::POST,
                "/v1/patients",
                None,
                Some(
                    json!({"name": name, "email": email, "date_of_birth": date_of_birth,
                            "phone": "+44 20 7946 0000", "password": "correct horse"}),
                ),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        self.login(&email, "correct horse").await
    }

    /// Logs in seeded clinician `n` (from 1).
    pub async fn clinician(&self, n: usize) -> User {
        self.login(
            &format!("clinician-{n}@clinic.test"),
            clinic::CLINICIAN_PASSWORD,
        )
        .await
    }

    /// Books `clinician` at `slot` for `reason`; returns the appointment id.
    pub async fn book(&self, patient: &User, clinician: &User, slot: &str, reason: &str) -> i64 {
        let reply = self
            .post(
                "/v1/appointments",
                patient,
                json!({"clinician_id": clinician.id, "slot": slot, "reason": reason}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.json()["id"].as_i64().unwrap()
    }

    /// Starts the appointment's call in `mode`; returns the consultation id.
    pub async fn start_call(&self, patient: &User, appointment: i64, mode: &str) -> String {
        let reply = self
            .post(
                &format!("/v1/appointments/{appointment}/consultation"),
                patient,
                json!({"mode": mode}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.json()["id"].as_str().unwrap().to_string()
    }

    /// Shares a document whose text is `text`; returns its path.
    pub async fn share_document(&self, patient: &User, text: &str) -> String {
        let body = json!({"title": "Symptom diary", "text": text});
        let reply = self.post("/v1/me/documents", patient, body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        let id = reply.json()["id"].as_str().unwrap().to_string();
        format!("/v1/patients/{}/documents/{id}", patient.id)
    }

    pub async fn switch(&self, user: &User, consultation: &str, mode: &str) -> Reply {
        self.post(
            &format!("/v1/consultations/{consultation}/switch"),
            user,
            json!({"mode": mode}),
        )
        .await
    }

    pub async fn end(&self, user: &User, consultation: &str) -> Reply {
        self.call(
            Method::POST,
            &format!("/v1/consultations/{consultation}/end"),
            Some(user),
            None,
        )
        .await
    }
}

/// A marker unique to one patient's own words, so that finding it in another
/// patient's response is proof of a leak.
pub fn secret(owner: &str) -> String {
    format!("{owner} private {}", uuid::Uuid::new_v4().simple())
}

/// The signed-in user a login or refresh answered.
pub fn user(reply: &Reply, email: &str) -> User {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let body = reply.json();
    User {
        id: body["user_id"].as_str().unwrap().to_string(),
        token: body["token"].as_str().unwrap().to_string(),
        refresh_token: body["refresh_token"].as_str().unwrap().to_string(),
        email: email.to_string(),
    }
}
