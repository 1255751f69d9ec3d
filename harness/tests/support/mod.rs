//! Helpers shared by the tests that drive the `crosstalk` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub mod bookshelf_api;
pub mod hal_api;
pub mod nested_api;
pub mod portal;
pub mod records_api;
pub mod refresh_api;
pub mod restaurant_api;
pub mod rotating_api;

use axum::Router;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh directory under the system's temporary directory.
pub fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "crosstalk-test-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every file under `dir`.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Serves `router` on 127.0.0.1:0 from a background thread; its base URL.
pub fn serve(router: impl FnOnce() -> Router + Send + 'static) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, router()).await.unwrap();
            });
    });
    format!("http://{addr}")
}

/// A command for `program` outside CI mode, whatever the environment says:
/// tests of CI mode set `CI` themselves, and of a CI's run id (which a
/// shard takes for its run id) theirs.
pub fn command(program: &str) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    command.env_remove("CI");
    for run_id in [
        "GITHUB_RUN_ID",
        "CI_PIPELINE_ID",
        "BUILDKITE_BUILD_ID",
        "CIRCLE_WORKFLOW_ID",
    ] {
        command.env_remove(run_id);
    }
    command
}

/// `crosstalk run ARGS` without snapshots, its findings and JSON report in
/// `dir`: the exit code and the report.
pub fn run_report(dir: &Path, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let json = dir.join("report.json");
    let out = command(env!("CARGO_BIN_EXE_crosstalk"))
        .arg("run")
        .args(args)
        .args(["--no-snapshots", "--json"])
        .arg(&json)
        .arg("--findings")
        .arg(dir.join("findings"))
        .output()
        .unwrap();
    let report = std::fs::read_to_string(&json)
        .unwrap_or_else(|_| panic!("no report: {}", text(&out.stderr)));
    (out.status.code(), serde_json::from_str(&report).unwrap())
}

/// A replay of reproduction `file` against the embedded clinic with
/// `faults` on, the shipped suite's secret variables given, its findings
/// under `dir`.
pub fn replay(file: &Path, faults: &[&str], dir: &Path) -> crosstalk::session::Replay {
    crosstalk::session::Replay {
        file: file.to_path_buf(),
        target: crosstalk::session::TargetSpec::embedded(faults),
        findings: dir.join("replays"),
        attempts: None,
        html: None,
        overrides: crosstalk::plan::Overrides {
            vars: [
                ("password", "correct horse battery staple"),
                ("clinician_password", "staging-clinician"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into(),
            ..Default::default()
        },
    }
}
