//! `public = [...]`: places in an answer that anyone may see. A public
//! directory lists every user's e-mail (with its canary): declared public,
//! no finding. The same directory also listing each user's private note
//! beside it: that one is a leak.

mod support;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use support::tempdir;

#[derive(Default)]
struct Directory {
    /// The listing shows each user's private note too (the bug).
    notes: bool,
    users: Mutex<Vec<(String, String)>>,
}

fn api(directory: Directory) -> Router {
    async fn join(State(d): State<Arc<Directory>>, Json(b): Json<Value>) -> Json<Value> {
        let mut users = d.users.lock().unwrap();
        let email = b["email"].as_str().unwrap_or_default().to_string();
        let note = b["note"].as_str().unwrap_or_default().to_string();
        users.push((email, note));
        Json(json!({"id": users.len()}))
    }
    async fn list(State(d): State<Arc<Directory>>) -> Json<Value> {
        let users = d.users.lock().unwrap();
        let entries: Vec<Value> = users
            .iter()
            .map(|(email, note)| match d.notes {
                true => json!({"email": email, "note": note}),
                false => json!({"email": email}),
            })
            .collect();
        Json(json!({"users": entries}))
    }
    Router::new()
        .route("/join", post(join))
        .route("/directory", get(list))
        .with_state(Arc::new(directory))
}

const SUITE: &str = r#"
[actors.member]
count = 4
population = true

[[steps]]
name = "join"
actor = "member"
request = "POST /join"
body = { email = "{{canary}}@members.test", note = "{{canary}}: private" }
expect = { status = 200 }

[[steps]]
name = "read the directory"
actor = "member"
request = "GET /directory"
expect = { status = 200 }
public = ["$.users[*].email"]
"#;

fn run(directory: Directory, suite: &str) -> (Option<i32>, Value) {
    let dir = tempdir("public");
    let file = dir.join("directory.toml");
    std::fs::write(&file, suite).unwrap();
    let url = support::serve(move || api(directory));
    let args = ["--seed", "1", "--target", &url, file.to_str().unwrap()];
    support::run_report(&dir, &args)
}

fn leak_locations(report: &Value) -> Vec<String> {
    report["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["first"]["kind"] == "leak")
        .map(|b| b["first"]["location_pattern"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn declared_public_e_mails_are_no_leak_and_an_undeclared_note_beside_them_is() {
    let (code, report) = run(Directory::default(), SUITE);
    assert_eq!(code, Some(0), "{:#}", report["buckets"]);

    let with_notes = Directory {
        notes: true,
        ..Directory::default()
    };
    let (code, report) = run(with_notes, SUITE);
    assert_eq!(code, Some(1));
    assert_eq!(leak_locations(&report), ["body $.users[*].note"]);
}

#[test]
fn without_the_declaration_the_public_e_mails_are_leaks() {
    let undeclared = SUITE.replace("public = [\"$.users[*].email\"]\n", "");
    let (code, report) = run(Directory::default(), &undeclared);
    assert_eq!(code, Some(1));
    assert_eq!(leak_locations(&report), ["body $.users[*].email"]);
}
