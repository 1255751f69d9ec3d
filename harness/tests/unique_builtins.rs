//! `serial` never repeats within a run: two scenario files that sign users
//! up by an `{{serial}}`-derived name meet no taken name, while the same
//! files by `{{index}}` (which restarts in each file) collide.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

use support::{tempdir, text};

const CROSSTALK: &str = env!("CARGO_BIN_EXE_crosstalk");

/// Sign-up refuses a user name it has seen (409), as most APIs do.
fn api() -> Router {
    async fn sign_up(
        State(taken): State<Arc<Mutex<HashSet<String>>>>,
        Json(body): Json<Value>,
    ) -> StatusCode {
        let name = body["username"].as_str().unwrap_or_default().to_string();
        match taken.lock().unwrap().insert(name) {
            true => StatusCode::CREATED,
            false => StatusCode::CONFLICT,
        }
    }
    Router::new()
        .route("/users", post(sign_up))
        .with_state(Arc::new(Mutex::new(HashSet::new())))
}

fn suite(hole: &str) -> String {
    format!(
        r#"
[actors.user]
count = 3
population = true

[actors.admin]
count = 2

[[steps]]
name = "sign up"
actor = "user"
request = "POST /users"
body = {{ username = "user-{{{{{hole}}}}}" }}
expect = {{ status = 201 }}

[[steps]]
name = "admin signs up"
actor = "admin"
request = "POST /users"
body = {{ username = "user-{{{{{hole}}}}}" }}
expect = {{ status = 201 }}
"#
    )
}

fn run(hole: &str) -> Option<i32> {
    let dir = tempdir("unique");
    for file in ["first.toml", "second.toml"] {
        std::fs::write(dir.join(file), suite(hole)).unwrap();
    }
    let url = support::serve(api);
    let out = support::command(CROSSTALK)
        .args(["run", "--no-snapshots", "--seed", "1", "--target", &url])
        .arg("--findings")
        .arg(dir.join("findings"))
        .arg(dir.join("first.toml"))
        .arg(dir.join("second.toml"))
        .output()
        .unwrap();
    if out.status.code() == Some(2) {
        panic!("{}", text(&out.stderr));
    }
    out.status.code()
}

#[test]
fn serial_never_repeats_across_actors_and_files_and_index_does() {
    assert_eq!(run("serial"), Some(0), "serial names collided");
    assert_eq!(run("index"), Some(1), "index names did not collide");
}
