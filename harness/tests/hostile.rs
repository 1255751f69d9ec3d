//! A hostile target: links and redirects to another origin, bodies that are
//! huge or never end, answers that drip or never come. Credentials never
//! leave the target's origin, and every run ends in bounded time.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

mod support;

use support::{tempdir, text};

const CROSSTALK: &str = env!("CARGO_BIN_EXE_crosstalk");

/// A server that counts every request it gets: nothing may reach it.
fn trap() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let url = support::serve(move || {
        Router::new().fallback(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { "caught" }
        })
    });
    (url, hits)
}

/// The hostile target; `trap` is the other origin it tries to send us to.
fn hostile(trap: String) -> String {
    support::serve(move || {
        let link = trap.clone();
        let location = trap.clone();
        Router::new()
            .route("/", get(|| async { "hostile" }))
            .route(
                "/login",
                post(move || {
                    let link = link.clone();
                    async move {
                        let body = serde_json::json!({
                            "token": "hostile-session-token-0123456789",
                            "next": format!("{link}/steal"),
                            "protocol_relative": format!("//{}/steal", link.trim_start_matches("http://")),
                            "home": "/",
                        });
                        axum::Json(body)
                    }
                }),
            )
            .route(
                "/redirect",
                get(move || {
                    let location = format!("{}/steal", location.clone());
                    async move { (StatusCode::FOUND, [("location", location)]).into_response() }
                }),
            )
            .route("/huge", get(huge))
            .route("/endless", get(endless))
            .route("/drip", get(drip))
            .route("/hang", get(std::future::pending::<&'static str>))
    })
}

async fn huge() -> Response {
    let chunk = bytes::Bytes::from(vec![b'x'; 1 << 20]);
    let stream =
        futures::stream::iter((0..200).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    Body::from_stream(stream).into_response()
}

async fn endless() -> Response {
    let chunk = bytes::Bytes::from(vec![b'y'; 64 << 10]);
    let stream = futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
    Body::from_stream(stream).into_response()
}

async fn drip(_: Query<std::collections::HashMap<String, String>>, _: HeaderMap) -> Response {
    let stream = futures::stream::unfold(0u64, |n| async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        Some((
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"z")),
            n + 1,
        ))
    });
    Body::from_stream(stream).into_response()
}

/// A scenario that logs in to the hostile target and then sends `steps`.
fn scenario(dir: &Path, steps: &[(&str, &str)]) -> String {
    let mut text = String::from(
        r#"
[actors.patient]
count = 3
auth = { bearer = "{{token}}" }

[[steps]]
name = "log in"
actor = "patient"
request = "POST /login"
capture = { token = { json = "$.token", secret = true }, next = "$.next", relative = "$.protocol_relative", home = { json = "$.home", shared = true } }
"#,
    );
    for (name, request) in steps {
        text.push_str(&format!(
            "\n[[steps]]\nname = \"{name}\"\nactor = \"patient\"\nrequest = \"{request}\"\n"
        ));
    }
    let file = dir.join("hostile.toml");
    std::fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_string()
}

fn run(dir: &Path, file: &str, target: &str, extra: &[&str]) -> Output {
    support::command(CROSSTALK)
        .args(["run", file, "--target", target, "--no-snapshots"])
        .args(extra)
        .arg("--findings")
        .arg(dir.join("findings"))
        .output()
        .unwrap()
}

#[test]
fn no_request_leaves_the_targets_origin() {
    let (trap_url, hits) = trap();
    let target = hostile(trap_url.clone());
    let dir = tempdir("origin");
    let file = scenario(
        &dir,
        &[
            ("follow the link", "GET {{next}}"),
            ("follow the protocol-relative link", "GET {{relative}}"),
            ("follow a redirect", "GET /redirect"),
            (
                "a path that looks like a URL",
                "GET /http://example.invalid/x",
            ),
            ("a variable holding a URL", "GET {{elsewhere}}"),
        ],
    );
    let out = run(
        &dir,
        &file,
        &target,
        &["--var", &format!("elsewhere={trap_url}/steal")],
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a request reached the trap: {stdout}"
    );
    // The links are refused, each a finding: the run is not clean.
    assert_eq!(
        out.status.code(),
        Some(3),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("would leave the target's origin"),
        "{stdout}"
    );
    assert!(!stdout.contains("hostile-session-token"), "{stdout}");

    // A clean scenario against the same server is clean: the refusals were
    // the links, nothing else; a link on the target is followed.
    let dir = tempdir("origin-clean");
    let file = scenario(
        &dir,
        &[
            ("follow a redirect", "GET /redirect"),
            ("follow a link on the target", "GET {{home}}"),
        ],
    );
    let out = run(&dir, &file, &target, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[test]
fn huge_endless_dripping_and_hanging_answers_end_in_bounded_time() {
    let (trap_url, _) = trap();
    let target = hostile(trap_url);
    for path in ["/huge", "/endless", "/drip", "/hang"] {
        let dir = tempdir("bounded");
        let file = scenario(&dir, &[("read", &format!("GET {path}"))]);
        let started = Instant::now();
        let out = run(
            &dir,
            &file,
            &target,
            &["--timeout", "2s", "--max-body", "4MiB"],
        );
        let stdout = text(&out.stdout);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{path}: {stdout}"
        );
        assert_eq!(out.status.code(), Some(3), "{path}: {stdout}");
        assert!(stdout.contains("[transport-error]"), "{path}: {stdout}");
        assert!(!stdout.contains("[leak]"), "{path}: {stdout}");
        if path == "/huge" || path == "/endless" {
            assert!(
                stdout.contains("longer than 4194304 bytes"),
                "{path}: {stdout}"
            );
        }
    }
}

#[test]
fn fuzz_against_a_hanging_target_stops_at_its_deadline() {
    let (trap_url, _) = trap();
    let target = hostile(trap_url);
    let dir = tempdir("fuzz-hang");
    let file = scenario(&dir, &[("read", "GET /hang")]);
    let started = Instant::now();
    let out = support::command(CROSSTALK)
        .args(["fuzz", &file, "--target", &target, "--time", "5s"])
        .arg("--corpus")
        .arg(dir.join("corpus"))
        .arg("--findings")
        .arg(dir.join("found"))
        .output()
        .unwrap();
    // It stops: a generous bound, for a loaded machine (the deadline is
    // the feature tested, never how fast the machine is).
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(60),
        "fuzz --time 5s took {took:?}"
    );
    assert_ne!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn an_answer_cut_at_the_body_limit_is_still_judged_on_what_was_read() {
    // Every note anyone posted, then megabytes of padding.
    let notes = Arc::new(std::sync::Mutex::new(String::new()));
    let target = support::serve(move || {
        let (stored, shown) = (notes.clone(), notes.clone());
        Router::new().route("/", get(|| async { "notes" })).route(
            "/notes",
            post(move |body: String| {
                stored.lock().unwrap().push_str(&body);
                async { StatusCode::CREATED }
            })
            .get(move || {
                let head = shown.lock().unwrap().clone();
                async move { head + &"-".repeat(8 << 20) }
            }),
        )
    });
    let dir = tempdir("cut-body");
    let file = dir.join("notes.toml");
    std::fs::write(
        &file,
        r#"
[actors.visitor]
count = 2

[[steps]]
name = "post a note"
actor = "visitor"
request = "POST /notes"
body = { note = "{{canary}} private" }

[[steps]]
name = "read the notes"
actor = "visitor"
request = "GET /notes"
"#,
    )
    .unwrap();
    let out = run(
        &dir,
        file.to_str().unwrap(),
        &target,
        &["--max-body", "1MiB"],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("[leak]"), "{stdout}");
    assert!(stdout.contains("[transport-error]"), "{stdout}");
    assert!(
        stdout.contains("only that much was read and judged"),
        "{stdout}"
    );
}

#[test]
fn run_time_limit_cancels_requests_in_flight() {
    let (trap_url, _) = trap();
    let target = hostile(trap_url);
    let dir = tempdir("time-limit");
    let file = scenario(&dir, &[("read", "GET /hang")]);
    let started = Instant::now();
    let out = run(&dir, &file, &target, &["--time-limit", "2s"]);
    let took = started.elapsed();
    let stdout = text(&out.stdout);
    assert!(took < Duration::from_secs(10), "took {took:?}: {stdout}");
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    assert!(stdout.contains("interrupted"), "{stdout}");
}
