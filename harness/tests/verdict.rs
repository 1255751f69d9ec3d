//! A verdict you can trust: a run that did not do its work never passes,
//! every finding is kept and counted where it happened, and no stop loses
//! what was found.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod support;

use support::{tempdir, text, walk};

const CROSSTALK: &str = env!("CARGO_BIN_EXE_crosstalk");

fn scenarios() -> PathBuf {
    support::root().join("scenarios")
}

fn run(dir: &Path, args: &[&str]) -> Output {
    support::command(CROSSTALK)
        .arg("run")
        .args(args)
        .arg("--findings")
        .arg(dir.join("findings"))
        .output()
        .expect("crosstalk runs")
}

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The one run directory under `dir/findings`.
fn run_dir(dir: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir.join("findings"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

/// How a misbehaving server fails the requests it fails.
#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    Hang,
    Reset,
    Truncate,
    Garbage,
    Unavailable,
}

/// A server on 127.0.0.1:0 that answers `{}` to the first request and to
/// every other one after it, and misbehaves on the rest.
fn misbehaving(mode: Misbehaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let n = count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || answer(stream, n % 2 == 1, mode));
        }
    });
    format!("http://{addr}")
}

fn answer(mut stream: std::net::TcpStream, fail: bool, mode: Misbehaviour) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    // Read the head of the request; these requests have no body.
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
        line.clear();
    }
    let ok = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
    let reply: &[u8] = match (fail, mode) {
        (false, _) => ok.as_bytes(),
        (true, Misbehaviour::Hang) => {
            std::thread::sleep(Duration::from_secs(20));
            return;
        }
        (true, Misbehaviour::Reset) => return,
        (true, Misbehaviour::Truncate) => {
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{\"a\""
        }
        (true, Misbehaviour::Garbage) => b"this is not HTTP at all\r\n\r\n",
        (true, Misbehaviour::Unavailable) => {
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        }
    };
    let _ = stream.write_all(reply);
}

const PINGS: &str = r#"
[actors.visitor]
count = 4

[[steps]]
name = "ping"
actor = "visitor"
request = "GET /ping"
expect = { status = 200 }

[[steps]]
name = "ping again"
actor = "visitor"
request = "GET /ping?again=1"
expect = { status = 200 }

[[steps]]
name = "ping a third time"
actor = "visitor"
request = "GET /ping?again=2"
expect = { status = 200 }
"#;

#[test]
fn a_misbehaving_target_is_never_a_pass_and_never_a_leak() {
    for mode in [
        Misbehaviour::Hang,
        Misbehaviour::Reset,
        Misbehaviour::Truncate,
        Misbehaviour::Garbage,
        Misbehaviour::Unavailable,
    ] {
        let dir = tempdir("misbehaving");
        std::fs::write(dir.join("pings.toml"), PINGS).unwrap();
        let junit = dir.join("junit.xml");
        let target = misbehaving(mode);
        let started = Instant::now();
        let out = run(
            &dir,
            &[
                dir.join("pings.toml").to_str().unwrap(),
                "--target",
                &target,
                "--timeout",
                "1s",
                "--no-snapshots",
                "--junit",
                junit.to_str().unwrap(),
            ],
        );
        let stdout = text(&out.stdout);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{mode:?} took too long"
        );
        assert!(!stdout.contains("[leak]"), "{mode:?}: {stdout}");
        let junit = std::fs::read_to_string(&junit).unwrap();
        if let Misbehaviour::Unavailable = mode {
            assert_eq!(out.status.code(), Some(1), "{mode:?}: {stdout}");
            assert!(stdout.contains("[server-error]"), "{stdout}");
            assert!(junit.contains("type=\"server-error\""), "{junit}");
        } else {
            assert_eq!(out.status.code(), Some(3), "{mode:?}: {stdout}");
            assert!(stdout.contains("[transport-error]"), "{mode:?}: {stdout}");
            assert!(stdout.contains("incomplete:"), "{stdout}");
            assert!(junit.contains("type=\"transport-error\""), "{junit}");
            assert!(junit.contains("<error"), "{junit}");
        }
        assert!(!stdout.contains("clean:"), "{stdout}");
    }
}

#[test]
fn steps_that_cannot_be_sent_fail_the_run_and_show_in_junit() {
    // One patient: the peer probes have no peer.
    let dir = tempdir("skipped-peer");
    let junit = dir.join("junit.xml");
    let booking = scenarios().join("booking.toml");
    let out = run(
        &dir,
        &[
            booking.to_str().unwrap(),
            "--patients",
            "1",
            "--no-snapshots",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("[skipped]"), "{stdout}");
    let junit = std::fs::read_to_string(&junit).unwrap();
    assert!(junit.contains("type=\"skipped\""), "{junit}");

    // A path with a space in it cannot be sent as it is.
    let dir = tempdir("skipped-space");
    let file = dir.join("space.toml");
    std::fs::write(
        &file,
        r#"
[actors.visitor]
count = 2

[[steps]]
name = "look up by name"
actor = "visitor"
request = "GET /v1/clinicians/{{name}}"
"#,
    )
    .unwrap();
    let out = run(&dir, &[file.to_str().unwrap(), "--no-snapshots"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("has spaces or control characters"),
        "{stdout}"
    );

    // The same suite with enough patients is clean: the skips were the fault.
    let dir = tempdir("not-skipped");
    let out = run(
        &dir,
        &[
            booking.to_str().unwrap(),
            "--patients",
            "3",
            "--no-snapshots",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn findings_are_counted_under_their_own_scenario_and_every_one_is_on_disk() {
    let dir = tempdir("counts");
    let json = dir.join("report.json");
    let out = run(
        &dir,
        &[
            scenarios().to_str().unwrap(),
            "--fault",
            "profile-cache",
            "--patients",
            "8",
            "--seed",
            "4",
            "--no-snapshots",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let lines = json_lines(&run_dir(&dir).join("findings.jsonl"));
    assert_eq!(
        lines.len() as u64,
        report["total_findings"].as_u64().unwrap(),
        "findings.jsonl holds every finding"
    );
    let leaking: std::collections::BTreeSet<&str> = lines
        .iter()
        .filter(|f| f["kind"] == "leak")
        .map(|f| f["scenario"].as_str().unwrap())
        .collect();
    assert!(
        leaking.len() >= 2,
        "the cache leaks in several scenarios: {leaking:?}"
    );
    for bucket in report["buckets"].as_array().unwrap() {
        let scenario = bucket["first"]["scenario"].as_str().unwrap();
        let key = bucket["key"].as_str().unwrap();
        assert!(key.contains(&format!("in {scenario}:")), "{key}");
        let on_disk = lines
            .iter()
            .filter(|f| f["scenario"] == scenario && f["kind"] == bucket["first"]["kind"])
            .filter(|f| f["endpoint"] == bucket["first"]["endpoint"])
            .filter(|f| f["location_pattern"] == bucket["first"]["location_pattern"])
            .count();
        assert_eq!(on_disk as u64, bucket["count"].as_u64().unwrap(), "{key}");
    }
    for lines_of in lines.iter().filter(|f| f["kind"] == "leak") {
        let curl = lines_of["curl"].as_str().unwrap();
        assert!(
            curl.starts_with("curl ") && curl.contains("$AUTHORIZATION"),
            "{curl}"
        );
    }
}

/// Starts a long run that finds a leak early; waits for the first finding.
/// The caller signals and waits for the child it gets.
#[allow(clippy::zombie_processes)]
fn long_leaking_run(dir: &Path) -> std::process::Child {
    let mut child = support::command(CROSSTALK)
        .args(["run", scenarios().join("booking.toml").to_str().unwrap()])
        .args([
            "--fault",
            "appointment-idor",
            "--patients",
            "3000",
            "--no-snapshots",
        ])
        .arg("--findings")
        .arg(dir.join("findings"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let found = walk(&dir.join("findings"))
            .iter()
            .any(|p| p.ends_with("findings.jsonl") && std::fs::metadata(p).unwrap().len() > 0);
        if found {
            return child;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no finding within two minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &std::process::Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sigint_and_sigterm_stop_the_flow_run_teardown_and_keep_the_verdict() {
    for name in ["INT", "TERM"] {
        let dir = tempdir("signal");
        let mut child = long_leaking_run(&dir);
        signal(&child, name);
        let mut stdout = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(1), "SIG{name}: {stdout}");
        assert!(stdout.contains("interrupted"), "{stdout}");
        // One thing said of the work: stopped, never also "every step ran".
        assert!(
            stdout.contains("Interrupted before every step ran"),
            "{stdout}"
        );
        assert!(!stdout.contains(", every step ran"), "{stdout}");
        let run = run_dir(&dir);
        let findings = json_lines(&run.join("findings.jsonl"));
        assert!(findings.iter().any(|f| f["kind"] == "leak"));
        let requests = json_lines(&run.join("requests.jsonl"));
        assert!(
            requests
                .iter()
                .any(|r| r["step"] == "patient deletes account"),
            "SIG{name}: teardown ran"
        );
    }
}

#[test]
fn a_killed_run_leaves_whole_lines_of_everything_it_found_and_sent() {
    let dir = tempdir("sigkill");
    let mut child = long_leaking_run(&dir);
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, "KILL");
    child.wait().unwrap();
    let run = run_dir(&dir);
    assert!(!json_lines(&run.join("findings.jsonl")).is_empty());
    let requests = json_lines(&run.join("requests.jsonl"));
    assert!(requests.len() > 3000, "{} requests logged", requests.len());
}

#[test]
fn the_same_seed_gives_the_same_verdict_against_a_served_clinic() {
    let verdict = || {
        let target = support::serve(|| {
            let faults = clinic::Faults::parse_list("appointment-idor,status-filter").unwrap();
            clinic::Clinic::in_memory(faults).unwrap().router()
        });
        let dir = tempdir("same-seed");
        let json = dir.join("report.json");
        let out = run(
            &dir,
            &[
                scenarios().to_str().unwrap(),
                "--target",
                &target,
                "--seed",
                "21",
                "--patients",
                "12",
                "--no-snapshots",
                "--json",
                json.to_str().unwrap(),
            ],
        );
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let buckets: Vec<(String, u64)> = report["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["key"].as_str().unwrap().to_string(),
                    b["count"].as_u64().unwrap(),
                )
            })
            .collect();
        (out.status.code(), buckets)
    };
    let first = verdict();
    assert_eq!(first.0, Some(1));
    assert!(!first.1.is_empty());
    assert_eq!(first, verdict());
}

#[test]
fn contract_snapshots_belong_to_their_suite_and_ci_requires_them() {
    let scenario = |read: &str| {
        format!(
            r#"
include = ["{}"]

[[steps]]
name = "read"
actor = "patient"
request = "{read}"
expect = {{ status = 200 }}
"#,
            scenarios().join("lib/accounts.toml").display()
        )
    };
    let root = tempdir("suites");
    for (suite, read) in [("a", "GET /v1/me"), ("b", "GET /v1/appointments")] {
        std::fs::create_dir_all(root.join(suite)).unwrap();
        std::fs::write(root.join(suite).join("booking.toml"), scenario(read)).unwrap();
    }
    let suite = |name: &str| root.join(name).to_str().unwrap().to_string();
    let args = |name: &str| vec![suite(name), "--patients".into(), "2".into()];
    let go = |name: &str, ci: bool| {
        let mut command = support::command(CROSSTALK);
        command
            .arg("run")
            .args(args(name))
            .arg("--findings")
            .arg(root.join("findings"));
        if ci {
            command.env("CI", "true");
        }
        command.output().unwrap()
    };
    // In CI a suite without snapshots fails; locally it leaves them for review.
    let missing = go("a", true);
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing.stdout));
    assert!(text(&missing.stdout).contains("[drift]"));
    let local = go("a", false);
    assert_eq!(local.status.code(), Some(0), "{}", text(&local.stdout));
    let accept = support::command(CROSSTALK)
        .args(["snapshots", "accept", "--snapshots"])
        .arg(root.join("a/snapshots"))
        .output()
        .unwrap();
    assert!(accept.status.success());
    assert!(root.join("a/snapshots/booking/read.snap").exists());
    let matching = go("a", true);
    assert_eq!(
        matching.status.code(),
        Some(0),
        "{}",
        text(&matching.stdout)
    );
    // Suite b's booking.toml has its own snapshots: no drift against a's.
    let other = go("b", false);
    assert_eq!(other.status.code(), Some(0), "{}", text(&other.stdout));
    assert!(root.join("b/snapshots/booking/read.snap.new").exists());
    let header = std::fs::read_to_string(root.join("b/snapshots/booking/read.snap.new")).unwrap();
    assert!(header.contains("b/booking.toml"), "{header}");
}

#[test]
fn a_failed_login_stops_that_instance_with_one_finding_not_a_cascade_of_401s() {
    let dir = tempdir("stopped");
    let file = dir.join("wrong-password.toml");
    let read = |name: &str, path: &str| {
        format!(
            "[[steps]]\nname = \"{name}\"\nactor = \"patient\"\nrequest = \"GET {path}\"\nexpect = {{ status = 200 }}\n\n"
        )
    };
    let mut toml = String::from(
        r#"
[actors.patient]
count = 4
auth = { bearer = "{{token}}" }

[[steps]]
name = "sign up"
actor = "patient"
request = "POST /v1/patients"
body = { name = "{{name}}", email = "{{canary}}@patients.test", date_of_birth = "{{date_of_birth}}", phone = "+44 7700 900000", password = "right password" }
expect = { status = 201 }

[[steps]]
name = "log in with the wrong password"
actor = "patient"
request = "POST /v1/auth/login"
body = { email = "{{canary}}@patients.test", password = "wrong password" }
expect = { status = 200 }
capture = { token = { json = "$.token", secret = true } }

"#,
    );
    for (name, path) in [
        ("profile", "/v1/me"),
        ("bookings", "/v1/appointments"),
        ("recordings", "/v1/me/recordings"),
    ] {
        toml.push_str(&read(name, path));
    }
    toml.push_str("[[teardown]]\nname = \"delete\"\nactor = \"patient\"\nrequest = \"DELETE /v1/me\"\nexpect = { status = 204 }\n");
    std::fs::write(&file, toml).unwrap();
    let json = dir.join("report.json");
    let out = run(
        &dir,
        &[
            file.to_str().unwrap(),
            "--no-snapshots",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let buckets = report["buckets"].as_array().unwrap();
    assert_eq!(
        buckets.len(),
        1,
        "one finding per patient, at the login: {stdout}"
    );
    assert_eq!(
        buckets[0]["first"]["step"],
        "log in with the wrong password"
    );
    assert_eq!(buckets[0]["count"], 4);
    let stats = &report["scenarios"][0];
    assert_eq!(stats["stopped"], 4, "{stats}");
    assert_eq!(
        stats["not_sent"],
        3 * 4 + 4,
        "three steps and the teardown: {stats}"
    );
    assert!(
        stdout.contains("16 not sent after their instance stopped"),
        "{stdout}"
    );
}

#[test]
fn a_baseline_never_accepts_work_that_was_not_done() {
    let dir = tempdir("baseline-incomplete");
    std::fs::write(dir.join("pings.toml"), PINGS).unwrap();
    let baseline = dir.join("baseline.toml");
    let pings = dir.join("pings.toml");
    // A fresh server each time: each answers its first request.
    let args = |extra: &[&str]| {
        let target = misbehaving(Misbehaviour::Reset);
        let mut all = vec![
            pings.to_str().unwrap(),
            "--target",
            &target,
            "--no-snapshots",
        ];
        all.extend_from_slice(extra);
        run(&dir, &all)
    };
    let first = args(&["--write-baseline", baseline.to_str().unwrap()]);
    assert_eq!(
        first.status.code(),
        Some(3),
        "{}{}",
        text(&first.stdout),
        text(&first.stderr)
    );
    let written = std::fs::read_to_string(&baseline).unwrap();
    assert!(written.contains("transport-error"), "{written}");
    let again = args(&["--baseline", baseline.to_str().unwrap()]);
    let stdout = text(&again.stdout);
    assert_eq!(again.status.code(), Some(3), "{stdout}");
    assert!(!stdout.contains("[accepted by baseline]"), "{stdout}");
}
