//! Targets that misbehave at the connection, not in what they answer: one
//! that closes kept-alive connections under the next request (the race a
//! server's idle timeout opens), and one that stops answering altogether (a
//! service deadlocked by the requests in flight). The first must not fail a
//! clean run, nor have a write sent twice; the second must end the run soon,
//! incomplete, saying why.
//!
//! The servers are raw TCP, so that what happens to each connection is
//! exactly what the test says.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;

use support::{tempdir, text};

const CROSSTALK: &str = env!("CARGO_BIN_EXE_crosstalk");

/// Connections a test server accepts at most: far more than any test here
/// opens, so that every loop ends.
const MAX_CONNECTIONS: usize = 10_000;

/// Requests one connection carries at most.
const MAX_REQUESTS: usize = 1_000;

/// What a connection does after reading each request.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Answers the first request, then, when the next one arrives, closes
    /// the connection without reading or answering it: what a client sees
    /// when the server closed an idle keep-alive connection just as the
    /// client sent on it (the unread request makes the close a reset).
    ClosesWhenReused,
    /// Answers this many requests in all, then reads requests and never
    /// answers: a deadlocked service.
    StopsAfter(usize),
}

/// A server on 127.0.0.1:0 in a thread of its own; its URL and its counts.
fn serve(behaviour: Behaviour) -> (String, Arc<Counts>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let counts = Arc::new(Counts::default());
    let shared = counts.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            for _ in 0..MAX_CONNECTIONS {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(connection(stream, behaviour, shared.clone()));
            }
        });
    });
    (url, counts)
}

/// What a test server did.
#[derive(Default)]
struct Counts {
    /// Requests read in full, on every connection.
    read: AtomicUsize,
    answered: AtomicUsize,
    /// Requests that arrived on a connection the server then closed
    /// without reading them.
    refused: AtomicUsize,
}

async fn connection(mut stream: TcpStream, behaviour: Behaviour, counts: Arc<Counts>) {
    for _ in 0..MAX_REQUESTS {
        if !read_request(&mut stream).await {
            return;
        }
        // Counted as read, so that connections racing agree on which
        // requests are past the last answer.
        let earlier = counts.read.fetch_add(1, Ordering::SeqCst);
        match behaviour {
            Behaviour::StopsAfter(n) if earlier >= n => {
                // Holds the connection until the client gives up on it.
                let _ = read_request(&mut stream).await;
                return;
            }
            _ => answer(&mut stream, &counts).await,
        }
        if let Behaviour::ClosesWhenReused = behaviour {
            // The next request, or the client's own close: left unread,
            // so that the close resets the connection under it.
            let mut byte = [0u8; 1];
            if stream.peek(&mut byte).await.unwrap_or(0) > 0 {
                counts.refused.fetch_add(1, Ordering::SeqCst);
            }
            return;
        }
    }
}

/// A small JSON 200 that asks to keep the connection alive.
async fn answer(stream: &mut TcpStream, counts: &Counts) {
    let body = r#"{"ok":true}"#;
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: keep-alive\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(response.as_bytes()).await.is_ok() {
        counts.answered.fetch_add(1, Ordering::SeqCst);
    }
}

/// Reads one request, head and body; `false` when the connection ended
/// first.
async fn read_request(stream: &mut TcpStream) -> bool {
    let mut request = Vec::new();
    let mut chunk = [0u8; 4096];
    // The requests here are a few hundred bytes: a few reads at most.
    for _ in 0..64 {
        if complete(&request) {
            return true;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => request.extend_from_slice(&chunk[..n]),
        }
    }
    false
}

/// Whether `request` holds a whole head and the body it announces.
fn complete(request: &[u8]) -> bool {
    let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
    let length = (head.lines())
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    request.len() >= end + 4 + length
}

/// A scenario of `visitors` anonymous instances, each sending `steps`
/// requests `request` one after another, and `teardown` once each at the
/// end.
fn scenario(dir: &Path, visitors: usize, steps: usize, request: &str, teardown: bool) -> String {
    let mut toml = format!("[actors.visitor]\ncount = {visitors}\n");
    for i in 0..steps {
        toml.push_str(&format!(
            "\n[[steps]]\nname = \"step {i}\"\nactor = \"visitor\"\nrequest = \"{request}\"\n"
        ));
    }
    if teardown {
        toml.push_str("\n[[teardown]]\nname = \"clean up\"\nactor = \"visitor\"\nrequest = \"DELETE /items/1\"\n");
    }
    let file = dir.join("flaky.toml");
    std::fs::write(&file, toml).unwrap();
    file.to_str().unwrap().to_string()
}

/// `crosstalk run FILE --target URL` with `extra`; its output and its
/// JSON report.
fn run(dir: &Path, file: &str, target: &str, extra: &[&str]) -> (Output, serde_json::Value) {
    let json = dir.join("report.json");
    let out = support::command(CROSSTALK)
        .args(["run", file, "--target", target, "--no-snapshots"])
        .args(extra)
        .arg("--json")
        .arg(&json)
        .arg("--findings")
        .arg(dir.join("findings"))
        .output()
        .unwrap();
    let report = std::fs::read_to_string(&json)
        .unwrap_or_else(|_| panic!("no report: {}\n{}", text(&out.stdout), text(&out.stderr)));
    (out, serde_json::from_str(&report).unwrap())
}

fn shown(out: &Output) -> String {
    format!("{}\n{}", text(&out.stdout), text(&out.stderr))
}

#[test]
fn reads_on_closed_keep_alive_connections_are_retried_and_the_run_is_clean() {
    let (target, counts) = serve(Behaviour::ClosesWhenReused);
    let dir = tempdir("flaky-keep-alive");
    let file = scenario(&dir, 3, 12, "GET /items/1", false);
    let (out, report) = run(&dir, &file, &target, &[]);
    let stats = &report["scenarios"][0];
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert_eq!(stats["requests"], 36, "{stats}");
    assert_eq!(stats["transport_errors"], 0, "{stats}");
    let retried = stats["retried"].as_u64().unwrap();
    assert!(retried > 0, "no request met a closed connection: {stats}");
    // Every request the server closed a connection under was sent again,
    // and only those.
    assert_eq!(counts.refused.load(Ordering::SeqCst) as u64, retried);
    assert!(stats["gave_up"].is_null(), "{stats}");
}

#[test]
fn a_write_on_a_closed_keep_alive_connection_is_not_sent_twice() {
    let (target, counts) = serve(Behaviour::ClosesWhenReused);
    let dir = tempdir("flaky-post");
    // The first POST goes out on the connection of crosstalk's check that
    // the target answers: the server closes it under the request.
    let file = scenario(&dir, 1, 3, "POST /items", false);
    let (out, report) = run(&dir, &file, &target, &[]);
    let stats = &report["scenarios"][0];
    assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
    assert_eq!(stats["retried"], 0, "{stats}");
    let errors = stats["transport_errors"].as_u64().unwrap();
    assert!(errors > 0, "{stats}");
    assert_eq!(counts.refused.load(Ordering::SeqCst) as u64, errors);
    assert!(
        text(&out.stdout).contains("[transport-error]"),
        "{}",
        shown(&out)
    );
}

#[test]
fn a_target_that_stops_answering_is_given_up_on() {
    // The check that the target answers, then four requests of the run.
    let (target, counts) = serve(Behaviour::StopsAfter(5));
    let dir = tempdir("flaky-deadlock");
    // 200 lockstep batches of a one-second timeout: minutes without giving up.
    let file = scenario(&dir, 8, 200, "GET /items/1", true);
    let extra = ["--timeout", "1s", "--concurrency", "8"];
    let (out, report) = run(&dir, &file, &target, &extra);
    let stats = &report["scenarios"][0];
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
    assert_eq!(report["conclusion"], "incomplete", "{report}");
    assert_eq!(stats["interrupted"], false, "{stats}");
    assert!(stderr.contains("giving up on scenario"), "{stderr}");
    assert!(stderr.contains("stopped answering"), "{stderr}");
    assert!(stderr.contains("--concurrency"), "{stderr}");
    let reason = stats["gave_up"]
        .as_str()
        .unwrap_or_else(|| panic!("{stats}"));
    assert!(reason.contains("--concurrency"), "{reason}");
    // The rest of the flow is work not done, and said so.
    let requests = stats["requests"].as_u64().unwrap();
    assert!(requests < 100, "{stats}");
    assert!(stats["not_sent"].as_u64().unwrap() > 1_000, "{stats}");
    // The teardown was tried, and given up on as the target still hung.
    assert!(
        stderr.contains("the rest of the teardown is not sent"),
        "{stderr}"
    );
    assert_eq!(counts.answered.load(Ordering::SeqCst), 5);
}
