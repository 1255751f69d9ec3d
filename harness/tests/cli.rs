//! The `crosstalk` binary: its command-line contract, exit codes and outputs,
//! in process and over the network.

use std::path::{Path, PathBuf};
use std::process::Output;

use clinic::{Clinic, Fault, Faults};

mod support;

use support::{tempdir, text, walk};

const CROSSTALK: &str = env!("CARGO_BIN_EXE_crosstalk");

/// A clinic with `faults` served on 127.0.0.1:0.
fn serve(faults: Faults) -> String {
    support::serve(move || Clinic::in_memory(faults).unwrap().router())
}

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn crosstalk(dir: &Path, args: &[&str]) -> Output {
    support::command(CROSSTALK)
        .arg("run")
        .args(args)
        .arg("--findings")
        .arg(dir.join("findings"))
        .arg("--snapshots")
        .arg(dir.join("snapshots"))
        .env_remove("CROSSTALK_ALLOW_HOSTS")
        .output()
        .expect("crosstalk runs")
}

/// Every file under `dir`, concatenated.
fn all_output(dir: &Path) -> String {
    walk(dir)
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect()
}

/// The clinic's tokens are 64 hex digits: none may reach any output.
fn assert_no_token(text: &str) {
    let hex_run = text
        .split(|c: char| !c.is_ascii_hexdigit())
        .find(|run| run.len() >= 64);
    assert!(
        hex_run.is_none(),
        "a credential was written out: {hex_run:?}"
    );
}

#[test]
fn a_clean_run_exits_0_and_writes_json_and_junit() {
    let dir = tempdir("clean");
    let json = dir.join("report.json");
    let junit = dir.join("junit.xml");
    let out = crosstalk(
        &dir,
        &[
            scenarios().to_str().unwrap(),
            "--patients",
            "6",
            "--seed",
            "5",
            "--json",
            json.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("clean:"),
        "{}",
        text(&out.stdout)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["total_findings"], 0);
    assert_eq!(report["seed"], 5);
    assert_eq!(report["scenarios"].as_array().unwrap().len(), 4);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testsuite name=\"mid-call-switch\""), "{xml}");
    assert!(xml.contains("switch to video [leak]"), "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
    assert_no_token(&all_output(&dir));
}

#[test]
fn a_leak_exits_1_says_who_saw_whose_data_and_is_kept_on_disk() {
    let dir = tempdir("leak");
    let junit = dir.join("junit.xml");
    let out = crosstalk(
        &dir,
        &[
            scenarios().join("mid-call-switch.toml").to_str().unwrap(),
            "--patients",
            "6",
            "--fault",
            "media-idor",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "[leak] leak in mid-call-switch: GET /v1/recordings/{peer.recording_id}/media"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("received patient#"), "{stdout}");
    let findings = all_output(&dir.join("findings"));
    assert!(
        findings.lines().any(|l| l.contains("\"kind\":\"leak\"")),
        "{findings}"
    );
    assert!(
        findings.contains("\"seq\":0"),
        "the request order is logged"
    );
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("<failure")
    );
    assert_no_token(&all_output(&dir));
}

#[test]
fn bad_input_exits_2_with_file_line_and_column() {
    let dir = tempdir("bad");
    let bad = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad/unknown-actor.toml");
    let out = crosstalk(&dir, &[bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown-actor.toml:6:9: unknown actor `doctor`"),
        "{}",
        text(&out.stderr)
    );

    let out = crosstalk(
        &dir,
        &[scenarios().to_str().unwrap(), "--fault", "no-such-fault"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown fault `no-such-fault`"),
        "{}",
        text(&out.stderr)
    );

    let out = crosstalk(&dir, &[scenarios().to_str().unwrap(), "--patients", "0"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unreachable_and_unlisted_targets_exit_2() {
    let dir = tempdir("targets");
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = format!("http://127.0.0.1:{free_port}");
    let out = crosstalk(
        &dir,
        &[scenarios().to_str().unwrap(), "--target", &unreachable],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unreachable"),
        "{}",
        text(&out.stderr)
    );

    let out = crosstalk(
        &dir,
        &[
            scenarios().to_str().unwrap(),
            "--target",
            "https://staging.example.org",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("refusing to target staging.example.org"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn runs_over_the_network_against_a_served_clinic() {
    let dir = tempdir("network");
    let clean = serve(Faults::none());
    let out = crosstalk(
        &dir,
        &[
            scenarios().to_str().unwrap(),
            "--patients",
            "6",
            "--target",
            &clean,
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    let faulty = serve(Faults::none().with(Fault::AppointmentIdor));
    let out = crosstalk(
        &dir,
        &[
            scenarios().join("booking.toml").to_str().unwrap(),
            "--patients",
            "6",
            "--target",
            &faulty,
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("GET /v1/appointments/{peer.appointment_id}"),
        "{}",
        text(&out.stdout)
    );

    let out = crosstalk(
        &dir,
        &[
            scenarios().to_str().unwrap(),
            "--target",
            &clean,
            "--fault",
            "media-idor",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "--fault cannot change a remote target"
    );
}

fn fuzz(dir: &Path, args: &[&str]) -> Output {
    support::command(CROSSTALK)
        .arg("fuzz")
        .arg(scenarios())
        .args(args)
        .arg("--corpus")
        .arg(dir.join("corpus"))
        .arg("--findings")
        .arg(dir.join("found"))
        .output()
        .expect("crosstalk runs")
}

#[test]
fn fuzz_finds_shrinks_and_writes_a_reproduction_that_replay_confirms() {
    let dir = tempdir("fuzz");
    let out = fuzz(
        &dir,
        &[
            "--fault",
            "profile-cache",
            "--seed",
            "3",
            // Bounded by programs; the time is a ceiling for a loaded machine.
            "--programs",
            "20000",
            "--time",
            "1h",
            "--shrink-time",
            "10m",
            "--max-findings",
            "1",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("received"),
        "{}",
        text(&out.stderr)
    );
    let found = dir.join("found");
    let repro = std::fs::read_dir(&found)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "toml"))
        .expect("a reproduction scenario");
    assert!(repro.with_extension("sh").is_file(), "and its curl script");
    let ops = std::fs::read_to_string(&repro)
        .unwrap()
        .matches("[[steps]]")
        .count();
    assert!(ops <= 8, "shrunk to {ops} operations");
    assert!(
        std::fs::read_to_string(found.join("findings.jsonl"))
            .unwrap()
            .contains("\"kind\":\"leak\"")
    );
    assert_no_token(&all_output(&found));

    let replay = |faults: &[&str]| {
        support::command(CROSSTALK)
            .arg("replay")
            .arg(&repro)
            .args(faults)
            .env("CROSSTALK_VAR_password", "correct horse battery staple")
            .env("CROSSTALK_VAR_clinician_password", "staging-clinician")
            .arg("--findings")
            .arg(dir.join("replays"))
            .output()
            .unwrap()
    };
    let still = replay(&["--fault", "profile-cache"]);
    assert_eq!(still.status.code(), Some(1), "{}", text(&still.stdout));
    let fixed = replay(&[]);
    assert_eq!(fixed.status.code(), Some(0), "{}", text(&fixed.stdout));
}

#[test]
fn fuzz_on_the_clean_clinic_finds_nothing_and_a_second_run_resumes_from_its_corpus() {
    let dir = tempdir("fuzz-clean");
    let first = fuzz(&dir, &["--seed", "4", "--programs", "150"]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}\n{}",
        text(&first.stdout),
        text(&first.stderr)
    );
    let kept = std::fs::read_dir(dir.join("corpus")).unwrap().count();
    assert!(
        kept > 0,
        "the corpus keeps inputs that reached new behaviour"
    );
    let second = fuzz(&dir, &["--seed", "5", "--programs", "60"]);
    assert_eq!(second.status.code(), Some(0));
    let seeds = 4;
    assert!(
        text(&second.stderr).contains(&format!("{} corpus input(s)", kept + seeds)),
        "{}",
        text(&second.stderr)
    );
}

#[test]
fn fuzz_takes_the_variables_and_patients_a_suite_needs() {
    let dir = tempdir("fuzz-var");
    let suite = dir.join("suite");
    std::fs::create_dir_all(suite.join("lib")).unwrap();
    let accounts = std::fs::read_to_string(scenarios().join("lib/accounts.toml")).unwrap();
    let without_password = accounts.replace("password = \"correct horse battery staple\"", "");
    assert_ne!(accounts, without_password);
    std::fs::write(suite.join("lib/accounts.toml"), without_password).unwrap();
    std::fs::copy(scenarios().join("booking.toml"), suite.join("booking.toml")).unwrap();
    std::fs::create_dir_all(suite.join("flows")).unwrap();
    let flow = "flows/booking.toml";
    std::fs::copy(scenarios().join(flow), suite.join(flow)).unwrap();
    let fuzz = |extra: &[&str]| {
        support::command(CROSSTALK)
            .arg("fuzz")
            .arg(&suite)
            .args(["--programs", "60", "--seed", "1"])
            .args(extra)
            .arg("--corpus")
            .arg(dir.join("corpus"))
            .arg("--findings")
            .arg(dir.join("found"))
            .output()
            .unwrap()
    };
    let missing = fuzz(&[]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing.stderr));
    assert!(text(&missing.stderr).contains("unknown variable `password`"));
    let given = fuzz(&["--var", "password=a long test password", "--patients", "4"]);
    assert_eq!(given.status.code(), Some(0), "{}", text(&given.stderr));
    assert!(text(&given.stdout).contains("no new leak, tampering or server error found"));
}
