//! `crosstalk replay` judges what the fuzzer judged: a reproduction of a
//! server error reproduces (exit 1) while that error shows, and says so;
//! not once it is fixed; a kind that is no finding's is bad input.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;

use crosstalk::session::{Exit, Replay, TargetSpec};

mod support;

/// Sign-ups answer 500 when `broken`, 201 when not.
fn target(broken: bool) -> String {
    support::serve(move || {
        Router::new().route(
            "/signup",
            post(move || async move {
                match broken {
                    true => (StatusCode::INTERNAL_SERVER_ERROR, "{\"error\":\"boom\"}"),
                    false => (StatusCode::CREATED, "{\"id\":\"u-1\"}"),
                }
            }),
        )
    })
}

/// A reproduction of a server error at its one step, as `fuzz` writes it.
fn reproduction(dir: &Path, kind: &str) -> PathBuf {
    let text = format!(
        r#"seed = 1
description = "Reproduction: a sign-up answers 500"

[actors.patient]
count = 2

[[steps]]
name = "sign up [0]"
actor = "patient"
request = "POST /signup"
body = {{ email = "{{{{canary}}}}@example.test" }}

[reproduces]
kind = "{kind}"
step = "sign up [0]"
"#
    );
    let file = dir.join(format!("{kind}.toml"));
    std::fs::write(&file, text).unwrap();
    file
}

fn replay(dir: &Path, file: PathBuf, url: String) -> Replay {
    Replay {
        file,
        target: TargetSpec::remote(url),
        findings: dir.join("replays"),
        attempts: Some(2),
        html: None,
        overrides: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_s_reproduction_reproduces_while_the_error_shows() {
    let dir = support::tempdir("replay-kinds");
    let file = reproduction(&dir, "server-error");
    let still = replay(&dir, file.clone(), target(true))
        .execute()
        .await
        .unwrap();
    assert_eq!(still.exit, Exit::Found, "{}", still.describe());
    assert!(
        still.describe().contains("the server error reproduces"),
        "{}",
        still.describe()
    );
    let fixed = replay(&dir, file, target(false)).execute().await.unwrap();
    assert_eq!(fixed.exit, Exit::Clean, "{}", fixed.describe());
    assert!(
        fixed.describe().contains("no server error"),
        "{}",
        fixed.describe()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leak_s_reproduction_is_not_reproduced_by_a_server_error() {
    let dir = support::tempdir("replay-kinds-leak");
    let file = reproduction(&dir, "leak");
    let outcome = replay(&dir, file, target(true)).execute().await.unwrap();
    assert_eq!(outcome.exit, Exit::Clean, "{}", outcome.describe());
    assert!(outcome.describe().contains("no leak or tampering"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_that_is_no_finding_s_is_bad_input_naming_the_file() {
    let dir = support::tempdir("replay-kinds-bad");
    let file = reproduction(&dir, "meltdown");
    let err = replay(&dir, file, target(true))
        .execute()
        .await
        .err()
        .expect("refused");
    assert_eq!(err.exit(), Exit::BadInput);
    let message = err.to_string();
    assert!(
        message.contains("meltdown.toml") && message.contains("meltdown"),
        "{message}"
    );
}
