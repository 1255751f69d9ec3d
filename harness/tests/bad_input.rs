//! Every bad input is exit 2 with what is wrong and where: a corpus of
//! malformed scenario files and of bad command lines, run through the
//! binary. Each must end quickly, never panic, and say its first line of
//! error as the snapshots in `snapshots/bad-input/` record it.

use std::path::Path;
use std::process::Output;
use std::sync::mpsc;
use std::time::Duration;

mod support;

const CROSSTALK: &str = env!("CARGO_BIN_EXE_crosstalk");

/// Runs the binary in the crate directory (so paths in messages are
/// short and stable), at most 60 seconds.
fn crosstalk(args: &[&str]) -> Output {
    let mut command = support::command(CROSSTALK);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .env_remove("CROSSTALK_ALLOW_HOSTS");
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || send.send(command.output().unwrap()));
    receive
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("crosstalk {args:?} did not end within a minute"))
}

/// `args` → exit 2 and its first line of error; the whole stderr on failure.
fn first_error_line(args: &[&str]) -> String {
    let out = crosstalk(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "crosstalk {args:?}:\n{stderr}");
    assert!(
        !stderr.contains("panicked"),
        "crosstalk {args:?}:\n{stderr}"
    );
    // No command at all shows the usage instead of an error line.
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error"))
        .or_else(|| stderr.lines().find(|l| l.starts_with("Usage:")))
        .unwrap_or_else(|| panic!("crosstalk {args:?} says no error:\n{stderr}"));
    line.to_string()
}

fn snapshot(name: &str, text: String) {
    insta::with_settings!({ snapshot_path => "../../snapshots/bad-input", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn every_malformed_scenario_file_is_refused_with_file_line_and_column() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            format!(
                "tests/fixtures/corpus/{}",
                p.file_name().unwrap().to_string_lossy()
            )
        })
        .collect();
    files.sort();
    assert!(files.len() >= 60, "only {} files", files.len());
    let findings = std::env::temp_dir().join("crosstalk-test-bad-input");
    let findings = findings.to_str().unwrap();
    let mut table = String::new();
    for file in &files {
        let line = first_error_line(&["run", file, "--no-snapshots", "--findings", findings]);
        table.push_str(&format!("{line}\n"));
    }
    snapshot("scenario-files", table);
}

#[test]
fn every_bad_command_line_is_refused_with_what_was_expected() {
    let booking = "../scenarios/booking.toml";
    let lines: &[&[&str]] = &[
        &[],
        &["frobnicate"],
        &["run", booking, "--unknown-flag"],
        &["run", booking, "--patients", "0"],
        &["run", booking, "--patients", "abc"],
        &["run", booking, "--patients", "1000001"],
        &["run", booking, "--concurrency", "0"],
        &["run", booking, "--concurrency", "18446744073709551615"],
        &["run", booking, "--seed", "-1"],
        &["run", booking, "--seed", "abc"],
        &["run", booking, "--shard", "0/3"],
        &["run", booking, "--shard", "4/3"],
        &["run", booking, "--shard", "x"],
        &["run", booking, "--var", "novalue"],
        &["run", booking, "--fault", "no-such-fault"],
        &["run", booking, "--target", "not a url"],
        &["run", booking, "--target", "ftp://127.0.0.1/"],
        &["run", booking, "--target", "http://staging.example.org"],
        &["run", booking, "--target", "http://127.0.0.1:1"],
        &[
            "run",
            booking,
            "--target",
            "http://127.0.0.1:1",
            "--fault",
            "switch-owner",
        ],
        &["run", booking, "--timeout", "soon"],
        &["run", booking, "--max-body", "0"],
        &["run", booking, "--max-body", "lots"],
        &["run", booking, "--rate", "0"],
        &["run", booking, "--threads", "0"],
        &["fuzz", booking, "--threads", "many"],
        &["run", "no-such-dir/"],
        &["run", "/dev/zero"],
        &["run", booking, "--baseline", "no-such-baseline.toml"],
        &["run", booking, "--snapshots", "/dev/null/snapshots"],
        &["run", booking, "--json", "/dev/null/report.json"],
        &["run", booking, "--junit", "/dev/null/junit.xml"],
        &["run", booking, "--markdown", "/dev/null/summary.md"],
        &["run", booking, "--findings", "/dev/null/findings"],
        &["run", booking, "--no-snapshots", "--snapshots", "x"],
        &["fuzz", booking, "--time", "0s"],
        &["fuzz", booking, "--time", "forever"],
        &["fuzz", booking, "--max-findings", "-3"],
        &["fuzz", booking, "--fault", "nope"],
        &["fuzz", "no-such.toml"],
        &["replay"],
        &["replay", "../scenarios"],
        &["replay", "no-such.toml"],
        &["replay", booking, "--attempts", "0"],
        &["snapshots", "accept", "--snapshots", "/no/such/dir"],
    ];
    assert!(lines.len() >= 40);
    let mut table = String::new();
    for args in lines {
        let line = first_error_line(args);
        table.push_str(&format!("crosstalk {}\n  {line}\n", args.join(" ")));
    }
    snapshot("command-lines", table);
}

/// The message is said once: the `error:` line, then the snippet that
/// points at the place, not the message again.
#[test]
fn a_scenario_error_is_said_once_with_its_snippet() {
    let file = "tests/fixtures/corpus/duplicate-step-name.toml";
    let out = support::command(CROSSTALK)
        .args(["run", file, "--no-snapshots"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = support::text(&out.stderr);
    assert_eq!(
        stderr
            .matches("a step named `log in` already exists")
            .count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("12 | name = \"log in\""), "{stderr}");
}

/// `crosstalk check` refuses every malformed file with the very message
/// `run` gives, and describes every shipped scenario without sending a
/// request.
#[test]
fn check_says_what_run_says_of_bad_files_and_describes_the_shipped_suite() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
    let findings = std::env::temp_dir().join("crosstalk-test-check");
    let findings = findings.to_str().unwrap();
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let file = format!(
            "tests/fixtures/corpus/{}",
            entry.file_name().to_string_lossy()
        );
        if !file.ends_with(".toml") {
            continue;
        }
        let run = first_error_line(&["run", &file, "--no-snapshots", "--findings", findings]);
        let check = first_error_line(&["check", &file]);
        assert_eq!(check, run, "{file}");
    }
    let shipped = support::root().join("scenarios");
    let out = support::command(CROSSTALK)
        .arg("check")
        .arg(&shipped)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", support::text(&out.stderr));
    let plans = support::text(&out.stdout);
    for scenario in ["account", "booking", "clinician-side", "mid-call-switch"] {
        assert!(plans.contains(&format!("{scenario}\n  actor ")), "{plans}");
    }
    assert!(plans.contains("step `book`"), "{plans}");
    assert!(
        plans.contains("captures: token ← $.token (secret)"),
        "{plans}"
    );
    assert!(plans.contains("holes: peer.appointment_id"), "{plans}");
}
