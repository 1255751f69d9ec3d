//! The CI gate: contract drift against snapshots, baselines, shards, the
//! Markdown summary, and the scripts the example workflows call.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use axum::body::Body;
use axum::http::Response;
use clinic::{Clinic, Faults};

mod support;

use support::{root, tempdir, text, walk};

const CROSSTALK: &str = env!("CARGO_BIN_EXE_crosstalk");

fn run(dir: &Path, args: &[&str]) -> Output {
    support::command(CROSSTALK)
        .arg("run")
        .args(args)
        .arg("--findings")
        .arg(dir.join("findings"))
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

/// The clinic as a developer might change it: every `reason` field renamed.
async fn rename_reason(response: Response<Body>) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let renamed = String::from_utf8_lossy(&bytes).replace("\"reason\":", "\"reason_text\":");
    let mut response = Response::from_parts(parts, Body::from(renamed));
    response.headers_mut().remove("content-length");
    response
}

fn serve(renamed: bool) -> String {
    support::serve(move || {
        let router = Clinic::in_memory(Faults::none()).unwrap().router();
        if renamed {
            router.layer(axum::middleware::map_response(rename_reason))
        } else {
            router
        }
    })
}

#[test]
fn a_renamed_field_fails_with_a_readable_diff_until_the_snapshot_is_accepted() {
    let dir = tempdir("drift");
    let snapshots = dir.join("snapshots");
    copy_dir(&root().join("scenarios/snapshots"), &snapshots);
    let booking = root().join("scenarios/booking.toml");
    let run_against = |target: &str| {
        run(
            &dir,
            &[
                booking.to_str().unwrap(),
                "--patients",
                "4",
                "--target",
                target,
                "--snapshots",
                snapshots.to_str().unwrap(),
            ],
        )
    };

    let unchanged = run_against(&serve(false));
    assert_eq!(
        unchanged.status.code(),
        Some(0),
        "{}",
        text(&unchanged.stdout)
    );

    let renamed = serve(true);
    let drifted = run_against(&renamed);
    let stdout = text(&drifted.stdout);
    assert_eq!(drifted.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("[drift]") && stdout.contains("no longer matches its contract snapshot"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-  \"reason\": string") && stdout.contains("+  \"reason_text\": string"),
        "{stdout}"
    );

    let accepted = support::command(CROSSTALK)
        .args(["snapshots", "accept", "--snapshots"])
        .arg(&snapshots)
        .output()
        .unwrap();
    assert!(
        text(&accepted.stdout).starts_with("accepted "),
        "{}",
        text(&accepted.stdout)
    );
    let again = run_against(&renamed);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stdout));

    // Snapshots hold shapes only: no canary, id or credential.
    for entry in walk(&snapshots) {
        let content = std::fs::read_to_string(&entry).unwrap();
        assert!(
            !content.contains("ct")
                || !content
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|w| w.len() == 22 && w.starts_with("ct")),
            "{}",
            entry.display()
        );
        assert!(
            !content
                .split(|c: char| !c.is_ascii_hexdigit())
                .any(|w| w.len() >= 32),
            "{}",
            entry.display()
        );
    }
}

#[test]
fn a_baseline_accepts_a_known_fault_but_not_a_second_one_and_reports_stale_entries() {
    let dir = tempdir("baseline");
    let scenarios = root().join("scenarios");
    let scenarios = scenarios.to_str().unwrap();
    let baseline = dir.join("baseline.toml");
    let baseline = baseline.to_str().unwrap();
    let common = ["--patients", "5", "--seed", "3", "--no-snapshots"];
    let with = |extra: &[&str]| {
        let mut args = vec![scenarios];
        args.extend(common);
        args.extend(extra);
        run(&dir, &args)
    };

    let first = with(&["--fault", "status-filter", "--write-baseline", baseline]);
    assert_eq!(first.status.code(), Some(1));
    assert!(
        std::fs::read_to_string(baseline)
            .unwrap()
            .contains("status=booked")
    );

    let known = with(&["--fault", "status-filter", "--baseline", baseline]);
    assert_eq!(known.status.code(), Some(0), "{}", text(&known.stdout));
    assert!(text(&known.stdout).contains("[accepted by baseline]"));

    let second = with(&[
        "--fault",
        "status-filter",
        "--fault",
        "media-idor",
        "--baseline",
        baseline,
    ]);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second.stdout));
    assert!(
        text(&second.stdout).contains("{peer.recording_id}/media"),
        "{}",
        text(&second.stdout)
    );

    let fixed = with(&["--baseline", baseline]);
    assert_eq!(fixed.status.code(), Some(0));
    assert!(
        text(&fixed.stdout).contains("stale baseline entries"),
        "{}",
        text(&fixed.stdout)
    );

    std::fs::write(dir.join("bad.toml"), "accepted = [ { bucket = 5 } ]").unwrap();
    let bad = with(&["--baseline", dir.join("bad.toml").to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("bad.toml:1:"),
        "{}",
        text(&bad.stderr)
    );
}

/// Requests sent per (scenario, instance, step), a probe's as its step's
/// (`probe: cancel`, whoever probed: a shard probes with an instance it
/// drives). The witness's reads are left out: how many it sends depends on
/// which peers the writes named (a victim is read once per batch) and on
/// timing (a record that moved while it looked is read again), not on the
/// work asked for.
fn work(dir: &Path) -> BTreeMap<(String, String, String), usize> {
    let mut out = BTreeMap::new();
    for file in walk(&dir.join("findings"))
        .into_iter()
        .filter(|p| p.ends_with("requests.jsonl"))
    {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let step = v["step"].as_str().unwrap();
            if step.starts_with("witness ") {
                continue;
            }
            let (instance, step) = match step.split_once(" as ") {
                Some((probed, _)) if step.starts_with("probe: ") => ("probe", probed),
                _ => (v["instance"].as_str().unwrap(), step),
            };
            let key = (
                v["scenario"].as_str().unwrap().to_string(),
                instance.to_string(),
                step.to_string(),
            );
            *out.entry(key).or_default() += 1;
        }
    }
    out
}

#[test]
fn two_shards_do_exactly_the_work_of_one_run() {
    let scenarios = root().join("scenarios");
    let scenarios = scenarios.to_str().unwrap();
    let args = [
        scenarios,
        "--patients",
        "6",
        "--seed",
        "9",
        "--no-snapshots",
    ];
    let whole = tempdir("whole");
    assert_eq!(run(&whole, &args).status.code(), Some(0));
    let mut sharded: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    let mut per_shard = Vec::new();
    for k in 1..=2 {
        let dir = tempdir(&format!("shard{k}"));
        let shard = format!("{k}/2");
        let sharded_args = [&args[..], &["--shard", &shard, "--run-id", "gate"]].concat();
        assert_eq!(run(&dir, &sharded_args).status.code(), Some(0));
        let part = work(&dir);
        per_shard.push(part.len());
        for (key, n) in part {
            let known = sharded.entry(key.clone()).or_default();
            // Each instance's own requests are sent by one shard only.
            assert!(key.1 == "probe" || *known == 0, "{key:?} ran in two shards");
            *known += n;
        }
    }
    assert!(
        per_shard.iter().all(|n| *n > 0),
        "every shard has work: {per_shard:?}"
    );
    assert_eq!(sharded, work(&whole));
}

#[test]
fn the_gate_script_writes_junit_json_and_markdown_to_the_step_summary() {
    let dir = tempdir("script");
    let summary = dir.join("step-summary.md");
    let out = support::command("bash")
        .arg(root().join(".ci/gate"))
        .env("CROSSTALK", CROSSTALK)
        .env("OUT", &dir)
        .env("PATIENTS", "4")
        .env("SEED", "2")
        .env("GATE_FLAGS", "--fault conflict-message --no-snapshots")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let markdown = std::fs::read_to_string(&summary).unwrap();
    assert!(markdown.starts_with("## crosstalk failed"), "{markdown}");
    assert!(
        markdown.contains("### New findings") && markdown.contains("POST /v1/appointments"),
        "{markdown}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("summary.md")).unwrap(),
        markdown
    );
    assert!(
        std::fs::read_to_string(dir.join("junit.xml"))
            .unwrap()
            .contains("<failure")
    );
    assert!(dir.join("report.json").is_file());

    let clean = support::command("bash")
        .arg(root().join(".ci/gate"))
        .env("CROSSTALK", CROSSTALK)
        .env("OUT", dir.join("clean"))
        .env("PATIENTS", "4")
        .env("GATE_FLAGS", "--no-snapshots")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}\n{}",
        text(&clean.stdout),
        text(&clean.stderr)
    );
}

#[test]
fn the_nightly_fuzz_script_finds_and_keeps_a_reproduction() {
    let dir = tempdir("nightly");
    let out = support::command("bash")
        .arg(root().join(".ci/nightly-fuzz"))
        .env("CROSSTALK", CROSSTALK)
        .env("FUZZ_TIME", "60s")
        .env("SEED", "1")
        .env("CORPUS", dir.join("corpus"))
        .env("FINDINGS", dir.join("found"))
        .env("FUZZ_FLAGS", "--fault mass-assignment --max-findings 1")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        walk(&dir.join("found"))
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "toml"))
    );
}
