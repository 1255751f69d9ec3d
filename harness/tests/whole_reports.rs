//! Report files exist only whole, and a session that did no work never
//! passes. A CI step reads `report.json`, `junit.xml` and `report.md` after
//! the run whatever happened to it: after bad input, an unreachable target
//! or a `kill -9` it must find no report (or the previous one, untouched),
//! never an empty file it could take for a verdict. And `fuzz` against a
//! target that never answers, or told to stop before it starts, must not
//! exit 0.

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod support;

use support::{tempdir, text, walk};

const CROSSTALK: &str = env!("CARGO_BIN_EXE_crosstalk");

/// The three report files of a run, in a directory of their own that the
/// run has to create.
struct Reports {
    dir: PathBuf,
    json: PathBuf,
    junit: PathBuf,
    markdown: PathBuf,
}

impl Reports {
    fn in_dir(dir: &Path) -> Reports {
        let dir = dir.join("reports");
        Reports {
            json: dir.join("report.json"),
            junit: dir.join("junit.xml"),
            markdown: dir.join("report.md"),
            dir,
        }
    }

    fn args(&self) -> Vec<String> {
        let pairs = [
            ("--json", &self.json),
            ("--junit", &self.junit),
            ("--markdown", &self.markdown),
        ];
        (pairs.iter())
            .flat_map(|(flag, path)| [flag.to_string(), path.display().to_string()])
            .collect()
    }

    /// Bad input leaves no report file at all, and no temporary one.
    fn assert_none(&self, what: &str) {
        let left = walk(&self.dir);
        assert!(left.is_empty(), "{what} left files behind: {left:?}");
    }
}

/// `crosstalk run ARGS` without snapshots, findings in `dir`.
fn run_command(dir: &Path, args: &[String]) -> std::process::Command {
    let mut command = support::command(CROSSTALK);
    command
        .arg("run")
        .args(args)
        .arg("--no-snapshots")
        .arg("--findings")
        .arg(dir.join("findings"))
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("CROSSTALK_ALLOW_HOSTS");
    command
}

fn run(dir: &Path, args: &[String]) -> Output {
    run_command(dir, args).output().expect("crosstalk runs")
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn scenarios() -> PathBuf {
    support::root().join("scenarios")
}

#[test]
fn a_malformed_scenario_file_leaves_no_report_file() {
    let dir = tempdir("whole-bad-file");
    let reports = Reports::in_dir(&dir);
    let bad = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad/unknown-actor.toml");
    let mut args = strings(&[bad.to_str().unwrap()]);
    args.extend(reports.args());
    let out = run(&dir, &args);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("unknown actor"),
        "{}",
        text(&out.stderr)
    );
    reports.assert_none("a malformed scenario file");
}

#[test]
fn an_unreachable_target_leaves_no_report_file() {
    let dir = tempdir("whole-unreachable");
    let reports = Reports::in_dir(&dir);
    // A port that was bound and is closed again: connections are refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!("http://127.0.0.1:{port}");
    let booking = scenarios().join("booking.toml");
    let mut args = strings(&[booking.to_str().unwrap(), "--target", &target]);
    args.extend(reports.args());
    let out = run(&dir, &args);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("unreachable"),
        "{}",
        text(&out.stderr)
    );
    reports.assert_none("an unreachable target");
}

/// Every visitor pings, then waits on a step the server never answers
/// within the test.
const PING_THEN_WAIT: &str = r#"
[actors.visitor]
count = 3

[[steps]]
name = "ping"
actor = "visitor"
request = "GET /ping"
expect = { status = 200 }

[[steps]]
name = "wait"
actor = "visitor"
request = "GET /slow"
expect = { status = 200 }
"#;

/// An API on 127.0.0.1:0 that answers `/ping` at once and `/slow` after a
/// minute; counts the `/slow` requests it has received.
fn slow_api() -> (String, Arc<AtomicUsize>) {
    use axum::routing::get;
    let waiting = Arc::new(AtomicUsize::new(0));
    let counted = waiting.clone();
    let url = support::serve(move || {
        axum::Router::new()
            .route("/ping", get(|| async { "{}" }))
            .route(
                "/slow",
                get(move || async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    "{}"
                }),
            )
    });
    (url, waiting)
}

/// Kills `child` once `ready` says so (two minutes at most).
fn kill_when(mut child: Child, ready: impl Fn() -> bool) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
            panic!("the run ended before it was killed ({status}): {stderr}");
        }
        assert!(Instant::now() < deadline, "the run never got under way");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap()
}

#[test]
fn a_run_killed_part_way_leaves_no_empty_report_and_the_previous_one_whole() {
    let dir = tempdir("whole-killed");
    let reports = Reports::in_dir(&dir);
    let scenario = dir.join("ping.toml");
    std::fs::write(&scenario, PING_THEN_WAIT).unwrap();
    // An earlier run's report: a kill must leave it as it was.
    std::fs::create_dir_all(&reports.dir).unwrap();
    let previous = r#"{"conclusion": "clean", "earlier": true}"#;
    std::fs::write(&reports.json, previous).unwrap();
    let (target, waiting) = slow_api();
    let mut args = strings(&[scenario.to_str().unwrap(), "--target", &target]);
    args.extend(reports.args());
    let child = run_command(&dir, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Past every check and under way: requests are waiting on the server.
    let status = kill_when(child, || waiting.load(Ordering::SeqCst) > 0);
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert_eq!(std::fs::read_to_string(&reports.json).unwrap(), previous);
    for path in [&reports.junit, &reports.markdown] {
        assert!(!path.exists(), "{} exists after a kill", path.display());
    }
    let empty: Vec<PathBuf> = (walk(&reports.dir).into_iter())
        .filter(|p| std::fs::metadata(p).unwrap().len() == 0)
        .collect();
    assert!(empty.is_empty(), "empty files after a kill: {empty:?}");
}

#[test]
fn a_clean_run_writes_every_report_whole_and_nothing_beside_them() {
    let dir = tempdir("whole-clean");
    let reports = Reports::in_dir(&dir);
    let booking = scenarios().join("booking.toml");
    let mut args = strings(&[booking.to_str().unwrap(), "--patients", "3", "--seed", "3"]);
    args.extend(reports.args());
    let out = run(&dir, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let read = |path: &Path| std::fs::read_to_string(path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&read(&reports.json)).unwrap();
    assert_eq!(json["conclusion"], "clean");
    assert_eq!(json["seed"], 3);
    let junit = read(&reports.junit);
    assert!(junit.starts_with("<?xml"), "{junit}");
    assert!(junit.trim_end().ends_with("</testsuites>"), "{junit}");
    let markdown = read(&reports.markdown);
    assert!(markdown.starts_with("## crosstalk passed"), "{markdown}");
    // No temporary file is left beside the reports.
    let mut files = walk(&reports.dir);
    files.sort();
    let mut expected = vec![reports.json, reports.junit, reports.markdown];
    expected.sort();
    assert_eq!(files, expected);
}

/// `crosstalk fuzz ARGS` over the booking suite, corpus and findings in `dir`.
fn fuzz(dir: &Path, args: &[&str]) -> Output {
    support::command(CROSSTALK)
        .arg("fuzz")
        .arg(scenarios().join("booking.toml"))
        .args(args)
        .arg("--corpus")
        .arg(dir.join("corpus"))
        .arg("--findings")
        .arg(dir.join("findings"))
        .env_remove("CROSSTALK_ALLOW_HOSTS")
        .output()
        .expect("crosstalk fuzz runs")
}

/// A server on 127.0.0.1:0 that accepts connections and never answers,
/// except `GET /` (the check that the target is there at all) when
/// `answer_root` is set.
fn silent_server(answer_root: bool) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut head = String::new();
                let _ = BufReader::new(&stream).read_line(&mut head);
                if answer_root && head.starts_with("GET / ") {
                    let not_found =
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    let _ = (&stream).write_all(not_found.as_bytes());
                    return;
                }
                // Hold the connection open, say nothing.
                std::thread::sleep(Duration::from_secs(60));
                drop(stream);
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn fuzz_against_a_target_that_never_answers_is_incomplete_not_clean() {
    let dir = tempdir("whole-fuzz-hang");
    let target = silent_server(true);
    let started = Instant::now();
    let out = fuzz(
        &dir,
        &["--target", &target, "--time", "3s", "--timeout", "1s"],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stdout.contains("incomplete:"), "{stdout}");
    assert!(stdout.contains("no verdict on the target"), "{stdout}");
    assert!(!stdout.contains("no new leak"), "{stdout}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "it stopped at --time"
    );

    // Silent even to the first check: the target is unreachable, bad input.
    let out = fuzz(
        &dir,
        &[
            "--target",
            &silent_server(false),
            "--time",
            "3s",
            "--timeout",
            "1s",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("unreachable"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn fuzz_refuses_max_findings_0_saying_what_it_expects() {
    let dir = tempdir("whole-fuzz-max");
    let out = fuzz(&dir, &["--max-findings", "0", "--time", "1s"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--max-findings"), "{stderr}");
    assert!(stderr.contains("give at least 1"), "{stderr}");
    // Refused before any work: nothing was fuzzed, nothing written.
    assert!(!dir.join("findings").exists(), "{:?}", walk(&dir));
    assert!(!dir.join("corpus").exists(), "{:?}", walk(&dir));
}
