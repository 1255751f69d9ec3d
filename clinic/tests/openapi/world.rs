//! A clinic with one of every record, for the contract tests to name: real
//! ids for ordinary requests, and owners and strangers to send them.

use std::sync::atomic::{AtomicI64, Ordering};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Api, User};

/// The password of every patient here (what `Api::patient` signs up with).
pub const PASSWORD: &str = "correct horse";

pub struct World {
    pub api: Api,
    /// A patient with a user name, who owns the records below.
    pub ada: User,
    pub username: String,
    /// Another patient, with a booking of her own.
    pub bea: User,
    /// Ada's clinician, and one she never booked.
    pub dr: User,
    pub dr2: User,
    /// Ada's booking with `dr`, whose call `live` is in progress.
    pub booked: i64,
    pub live: String,
    /// The recording of the leg the call's switch finished.
    pub recording: i64,
    /// Another booking of Ada's, with no call yet.
    pub spare: i64,
    /// A call of Ada's that has ended (its booking is completed).
    pub ended: String,
    pub bea_booked: i64,
    /// A document Ada shared.
    pub document: String,
    slots: AtomicI64,
}

impl World {
    pub async fn new() -> World {
        let api = Api::new(&[]);
        let username = format!("ada-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let email = fresh_email();
        let body = json!({"name": "Ada Lovelace", "email": email, "date_of_birth": "1990-01-01",
            "phone": "+44 20 7946 0000", "password": PASSWORD, "username": username});
        let signed_up = api
            .call(Method::POST, "/v1/patients", None, Some(body))
            .await;
        assert_eq!(signed_up.status, StatusCode::CREATED, "{}", signed_up.text);
        let ada = api.login(&email, PASSWORD).await;
        let bea = api.patient("Bea Lovelace", "1991-02-03").await;
        let (dr, dr2) = (api.clinician(1).await, api.clinician(2).await);
        let mut world = World {
            api,
            ada,
            username,
            bea,
            dr,
            dr2,
            booked: 0,
            live: String::new(),
            recording: 0,
            spare: 0,
            ended: String::new(),
            bea_booked: 0,
            document: String::new(),
            slots: AtomicI64::new(0),
        };
        world.records().await;
        world
    }

    async fn records(&mut self) {
        let (api, ada, dr) = (&self.api, &self.ada, &self.dr);
        self.booked = api.book(ada, dr, &self.slot(), "migraines").await;
        self.live = api.start_call(ada, self.booked, "audio").await;
        let switched = api.switch(ada, &self.live, "video").await;
        assert_eq!(switched.status, StatusCode::OK, "{}", switched.text);
        self.recording = switched.json()["recording_id"].as_i64().unwrap();
        self.spare = api.book(ada, dr, &self.slot(), "a check-up").await;
        let done = api.book(ada, dr, &self.slot(), "a rash").await;
        self.ended = api.start_call(ada, done, "video").await;
        assert_eq!(api.end(ada, &self.ended).await.status, StatusCode::OK);
        let document = api.share_document(ada, "headaches since Monday").await;
        self.document = document.rsplit('/').next().unwrap().to_string();
        self.bea_booked = api
            .book(&self.bea, &self.dr2, &self.slot(), "a cough")
            .await;
    }

    /// A slot no booking has taken yet.
    pub fn slot(&self) -> String {
        let n = self.slots.fetch_add(1, Ordering::Relaxed);
        let time = jiff::Timestamp::from_second(1_830_000_000 + 300 * n).unwrap();
        time.to_string()
    }

    /// A patient who exists only to be changed, logged out or deleted.
    pub async fn throwaway(&self) -> User {
        self.api.patient("Cy Throwaway", "1980-04-05").await
    }

    /// Who sends an operation's ordinary request: clinicians for theirs.
    pub fn owner(&self, method: &Method, template: &str) -> &User {
        let clinician_s = template.starts_with("/v1/clinician/")
            || template.ends_with("/join")
            || template.ends_with("/notes");
        let profile = *method == Method::GET && template == "/v1/me";
        if clinician_s && !profile {
            &self.dr
        } else {
            &self.ada
        }
    }

    /// The id an ordinary request names in `template`'s path: Ada's own.
    pub fn id_in(&self, template: &str) -> String {
        if template.starts_with("/v1/appointments/") {
            self.booked.to_string()
        } else if template.starts_with("/v1/consultations/") {
            self.live.clone()
        } else if template.starts_with("/v1/recordings/") {
            self.recording.to_string()
        } else if template.ends_with("{document_id}") {
            format!("{}/{}", self.ada.id, self.document)
        } else {
            self.ada.id.clone()
        }
    }

    /// A body the document accepts for the operation, if it takes one.
    pub async fn body_for(&self, method: &Method, template: &str) -> Option<Value> {
        let body = match (method.as_str(), template) {
            ("POST", "/v1/patients") => json!({"name": "Cy Lovelace", "email": fresh_email(),
                "date_of_birth": "1992-03-04", "phone": "+44 20 7946 0003", "password": PASSWORD,
                "username": format!("cy-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])}),
            ("POST", "/v1/auth/login") => json!({"email": self.ada.email, "password": PASSWORD}),
            ("POST", "/v1/auth/refresh") => {
                let session = self.api.login(&self.ada.email, PASSWORD).await;
                json!({"refresh_token": session.refresh_token})
            }
            ("PATCH", "/v1/me") => json!({"name": "Ada Lovelace", "phone": "+44 20 7946 0001"}),
            ("PATCH", "/v1/patients/{id}") => json!({"phone": "+44 20 7946 0002"}),
            // Not the current password: a valid form that changes nothing.
            ("POST", "/v1/me/password") => json!({"patient_id": self.ada.id,
                "current_password": "not the password", "new_password": "a new password"}),
            ("POST", "/v1/appointments") => {
                json!({"clinician_id": self.dr.id, "slot": self.slot(), "reason": "a sprain"})
            }
            ("PATCH", "/v1/appointments/{id}") => json!({"slot": self.slot()}),
            ("POST", "/v1/appointments/{id}/consultation") => json!({"mode": "video"}),
            ("POST", "/v1/consultations/{id}/switch") => json!({"mode": "audio"}),
            ("POST", "/v1/consultations/{id}/notes") => json!({"body": "seen; follow up"}),
            ("POST", "/v1/me/documents") => {
                json!({"title": "Symptom diary", "text": "a rash since Friday"})
            }
            ("PATCH", "/v1/patients/{patient_id}/documents/{document_id}") => {
                json!({"text": "the rash is gone"})
            }
            _ => return None,
        };
        Some(body)
    }
}

pub fn fresh_email() -> String {
    format!("{}@patients.test", uuid::Uuid::new_v4().simple())
}
