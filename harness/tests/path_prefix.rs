//! The target's path prefix is part of its address: with `--target
//! http://host/api`, no request leaves `/api/`, whatever an id captured
//! from the API holds. A hostile id is sent as one segment or refused as
//! a `skipped` finding, and the bearer token never goes anywhere else.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path as Segment, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

mod support;

use support::{run_report, tempdir};

use crosstalk::transport::{Http, HttpOptions, Request as Sent, Transport};

/// Ids that try to climb out of `/api/v1/notes/`, to start a query or a
/// fragment, or to hide `..` behind an encoding.
const HOSTILE: &[&str] = &[
    "../../../../etc/passwd-4",
    "..%2F..%2Fetc",
    "%2e%2e/%2e%2e/x",
    ".%2E/secret",
    "a/../../b",
    "..\\..\\x",
    "x?admin=1",
    "y#frag",
];

/// Ids an ordinary API hands out: a dot inside a segment is fine.
const ORDINARY: &[&str] = &["17", "0b7e3c1a-9f2d-4c55-8e1b-2a6f3d9c4e10", "a.b", "v1.2"];

/// One request as the server received it.
#[derive(Debug, Clone)]
struct Received {
    /// The path as it came over the wire, still percent-encoded.
    path: String,
    authorized: bool,
}

/// The notes API's state: every request seen, and who created which id.
#[derive(Default)]
struct Server {
    received: Mutex<Vec<Received>>,
    owners: Mutex<HashMap<String, Vec<String>>>,
    created: AtomicUsize,
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::to_string)
}

/// Serves the notes API under `/api`, handing out `ids` in turn; every
/// request is recorded, the ones no route answers too.
fn notes_api(ids: &'static [&'static str]) -> (String, Arc<Server>) {
    let server = Arc::new(Server::default());
    let state = server.clone();
    let url = support::serve(move || {
        let api = Router::new()
            .route("/login", post(login))
            .route("/notes", post(create))
            .route("/v1/notes/{id}", get(read));
        let recorder = state.clone();
        Router::new()
            .nest("/api", api)
            .fallback(|| async { StatusCode::NOT_FOUND })
            .with_state((state, ids))
            .layer(axum::middleware::from_fn(
                move |request: Request, next: Next| {
                    let recorder = recorder.clone();
                    async move {
                        recorder.received.lock().unwrap().push(Received {
                            path: request.uri().path().to_string(),
                            authorized: request.headers().contains_key("authorization"),
                        });
                        next.run(request).await
                    }
                },
            ))
    });
    (url, server)
}

type State = axum::extract::State<(Arc<Server>, &'static [&'static str])>;

async fn login() -> Response {
    let token = format!("path-prefix-session-{}", uuid::Uuid::new_v4().simple());
    axum::Json(json!({ "token": token })).into_response()
}

async fn create(axum::extract::State((server, ids)): State, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let id = ids[server.created.fetch_add(1, Ordering::SeqCst) % ids.len()];
    let mut owners = server.owners.lock().unwrap();
    owners.entry(id.to_string()).or_default().push(token);
    (StatusCode::CREATED, axum::Json(json!({ "id": id }))).into_response()
}

/// A note, to one of the tokens that created it.
async fn read(
    axum::extract::State((server, _)): State,
    Segment(id): Segment<String>,
    headers: HeaderMap,
) -> Response {
    let Some(token) = bearer(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let owners = server.owners.lock().unwrap();
    match owners.get(&id) {
        Some(tokens) if tokens.contains(&token) => axum::Json(json!({ "id": id })).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A scenario where `count` writers each log in, create a note and read
/// it back by the id the API answered.
fn scenario(dir: &Path, count: usize) -> String {
    let text = format!(
        r#"
[actors.writer]
count = {count}
auth = {{ bearer = "{{{{token}}}}" }}

[[steps]]
name = "log in"
actor = "writer"
request = "POST /login"
capture = {{ token = {{ json = "$.token", secret = true }} }}

[[steps]]
name = "write a note"
actor = "writer"
request = "POST /notes"
body = {{ text = "{{{{canary}}}}" }}
capture = {{ note_id = "$.id" }}

[[steps]]
name = "read my note"
actor = "writer"
request = "GET /v1/notes/{{{{note_id}}}}"
"#
    );
    let file = dir.join("notes.toml");
    std::fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_string()
}

/// Runs the scenario against `ids`, one writer each: the exit code, the
/// report, the findings written and every request the server received.
fn run(name: &str, ids: &'static [&'static str]) -> (Option<i32>, Value, String, Vec<Received>) {
    let (url, server) = notes_api(ids);
    let dir = tempdir(name);
    let file = scenario(&dir, ids.len());
    let target = format!("{url}/api");
    let (code, report) = run_report(&dir, &[&file, "--target", &target]);
    let findings = support::walk(&dir.join("findings"))
        .iter()
        .map(|file| std::fs::read_to_string(file).unwrap_or_default())
        .collect();
    let received = server.received.lock().unwrap().clone();
    (code, report, findings, received)
}

/// The note ids read under `/api/v1/notes/`, each one segment, decoded.
fn ids_read(received: &[Received]) -> Vec<String> {
    (received.iter())
        .filter_map(|r| r.path.strip_prefix("/api/v1/notes/"))
        .map(|segment| {
            assert!(!segment.contains('/'), "{segment} is more than one segment");
            let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
            decoded.into_owned()
        })
        .collect()
}

#[test]
fn hostile_ids_never_leave_the_path_prefix() {
    let (code, report, findings, received) = run("path-prefix-hostile", HOSTILE);
    let paths: Vec<&str> = received.iter().map(|r| r.path.as_str()).collect();
    assert!(!received.is_empty(), "the server saw nothing");
    for request in &received {
        assert!(
            request.path.starts_with("/api/"),
            "left the prefix: {paths:?}"
        );
    }
    assert!(
        !(received.iter()).any(|r| r.authorized && !r.path.starts_with("/api/")),
        "a token went outside the prefix: {paths:?}"
    );

    // Each hostile id was read back whole, as one segment, or refused.
    let read = ids_read(&received);
    let refused: Vec<&str> = (findings.lines())
        .filter(|line| line.contains("\"skipped\"") && line.contains("read my note"))
        .collect();
    for id in &read {
        assert!(HOSTILE.contains(&id.as_str()), "{id} was never handed out");
    }
    for id in ["x?admin=1", "y#frag"] {
        assert!(read.iter().any(|r| r == id), "{id} was not read: {paths:?}");
    }
    let distinct: std::collections::BTreeSet<&String> = read.iter().collect();
    assert_eq!(
        distinct.len() + refused.len(),
        HOSTILE.len(),
        "read {read:?}, refused {refused:#?}"
    );
    for line in &refused {
        assert!(line.contains("`.` or `..` segment once decoded"), "{line}");
        assert!(!line.contains("path-prefix-session-"), "{line}");
    }
    // A refused step is a finding: the run is incomplete, never clean.
    assert!(
        matches!(code, Some(1 | 3)),
        "{code:?}: {:#}",
        report["buckets"]
    );
    assert_ne!(report["total_findings"], 0);
}

#[test]
fn ordinary_ids_are_sent_unchanged() {
    let (code, report, _, received) = run("path-prefix-ordinary", ORDINARY);
    let paths: Vec<&str> = received.iter().map(|r| r.path.as_str()).collect();
    for id in ORDINARY {
        let path = format!("/api/v1/notes/{id}");
        assert!(paths.contains(&path.as_str()), "{path} not in {paths:?}");
    }
    assert!(paths.iter().all(|p| p.starts_with("/api/")), "{paths:?}");
    assert_eq!(code, Some(0), "{:#}", report["buckets"]);
}

/// Defence in depth: whatever built a request, the transport itself
/// refuses a path that climbs out of the prefix, and sends nothing.
#[test]
fn the_transport_refuses_a_path_out_of_the_prefix_without_sending_it() {
    let (url, server) = notes_api(ORDINARY);
    let base = url::Url::parse(&format!("{url}/api")).unwrap();
    let http = Http::new(base, HttpOptions::default()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let get = |path: &str| Sent {
        method: axum::http::Method::GET,
        path: path.to_string(),
        headers: vec![("authorization".into(), "Bearer not-for-elsewhere".into())],
        body: bytes::Bytes::new(),
    };
    for path in [
        "/v1/notes/../../../../etc/passwd-4",
        "/v1/notes/%2e%2e/%2E%2e/x",
        "/v1/notes/.%2E/secret",
        "/v1/notes/..%2F..%2Fetc",
        "/v1/notes/%252e%252e",
    ] {
        let err = runtime.block_on(http.send(&get(path))).unwrap_err();
        assert!(err.0.contains("`.` or `..` segment"), "{path}: {err}");
    }
    assert!(server.received.lock().unwrap().is_empty());
    // The same transport sends an ordinary path: the refusals were the dots.
    let answer = runtime.block_on(http.send(&get("/v1/notes/a.b"))).unwrap();
    assert_eq!(answer.status, 404);
    let received = server.received.lock().unwrap();
    let paths: Vec<&str> = received.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/api/v1/notes/a.b"]);
}
