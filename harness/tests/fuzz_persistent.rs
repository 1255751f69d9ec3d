//! Fuzzing a target that keeps its data: a leak that needs an earlier
//! program's records (page 2 running past the patient's rows) and a
//! refresh grant that hands out the account that signed in before are
//! both confirmed, by running the victim's program and then the
//! observer's with fresh identities, and their reproductions hold both
//! parties' steps: they replay against a fresh faulty server (exit 1) and
//! not against a fresh clean one (exit 0). Server errors take no place of
//! the leaks'. Every run is bounded by programs and seeded.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crosstalk::findings::{Finding, FindingKind};
use crosstalk::session::{Exit, Fuzz, Replay, TargetSpec};
use support::records_api::{self, Faults, RecordsApi};

fn serve(faults: Faults) -> String {
    support::serve(move || records_api::router(RecordsApi::new(faults)))
}

fn fuzz(dir: &Path, suite: &Path, url: String, programs: u64) -> Fuzz {
    Fuzz {
        seed: Some(1),
        programs: Some(programs),
        // Ceilings for a loaded machine, never reached by the programs.
        time: Duration::from_secs(600),
        shrink_time: Duration::from_secs(600),
        corpus: dir.join("corpus"),
        findings: dir.join("found"),
        ..Fuzz::new(vec![suite.to_path_buf()], TargetSpec::remote(url))
    }
}

fn findings(dir: &Path) -> Vec<Finding> {
    let text = std::fs::read_to_string(dir.join("found/findings.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn reproductions(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = support::walk(&dir.join("found"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    found.sort();
    found
}

/// A reproduction script run against `target`: its exit code and output;
/// `None` (said on stderr) where bash, curl or jq is missing.
fn run_script(script: &Path, target: &str) -> Option<(Option<i32>, String)> {
    let missing = ["bash", "curl", "jq"].into_iter().find(|tool| {
        let out = std::process::Command::new(tool).arg("--version").output();
        out.map_or(true, |out| !out.status.success())
    });
    if let Some(tool) = missing {
        eprintln!("skipped the reproduction script: {tool} is missing");
        return None;
    }
    let out = support::command("bash")
        .arg(script)
        .arg(target)
        .env("PASSWORD", "correct horse")
        .env("TRIES", "3")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        support::text(&out.stdout),
        support::text(&out.stderr)
    );
    Some((out.status.code(), said))
}

async fn replay(file: &Path, url: String, dir: &Path) -> Exit {
    let replay = Replay {
        file: file.to_path_buf(),
        target: TargetSpec::remote(url),
        findings: dir.join("replays"),
        attempts: None,
        html: None,
        overrides: crosstalk::plan::Overrides {
            vars: [("password".to_string(), "correct horse".to_string())].into(),
            ..Default::default()
        },
    };
    let outcome = replay.execute().await.unwrap();
    eprintln!("{}", outcome.describe());
    outcome.exit
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaks_that_need_an_earlier_programs_data_are_confirmed_and_replay() {
    let dir = support::tempdir("fuzz-persistent");
    let suite = dir.join("records.toml");
    std::fs::write(&suite, records_api::suite(1)).unwrap();
    let faults = Faults {
        paging: true,
        refresh: true,
        email_case: false,
    };
    let outcome = fuzz(&dir, &suite, serve(faults), 400)
        .execute()
        .await
        .unwrap();
    assert_eq!(outcome.exit, Exit::Found, "{}", outcome.describe());
    let found = findings(&dir);
    let steps: Vec<&str> = found.iter().map(|f| f.step.as_str()).collect();
    for step in ["list my older records", "read my profile"] {
        assert!(
            steps.iter().any(|s| s.starts_with(step)),
            "{step} not confirmed: {steps:?}"
        );
    }
    assert!(found.iter().all(|f| f.kind == FindingKind::Leak));
    let files = reproductions(&dir);
    assert_eq!(files.len(), found.len(), "{files:?}");
    for file in &files {
        assert!(file.with_extension("sh").is_file(), "{}", file.display());
        let text = std::fs::read_to_string(file).unwrap();
        // Both parties: the victim's sign-up and the observer's.
        assert!(text.matches("name = \"sign up [").count() >= 2, "{text}");
        assert!(text.contains("instance = 1"), "{text}");
        assert_eq!(
            replay(file, serve(faults), &dir).await,
            Exit::Found,
            "{}",
            file.display()
        );
        let clean = replay(file, serve(Faults::default()), &dir).await;
        assert_eq!(clean, Exit::Clean, "{}", file.display());
        // The script agrees: reproduced on a fresh faulty server, not on a
        // fresh clean one.
        let script = file.with_extension("sh");
        if let (Some(faulty), Some(clean)) = (
            run_script(&script, &serve(faults)),
            run_script(&script, &serve(Faults::default())),
        ) {
            assert_eq!(faulty.0, Some(1), "{}: {}", script.display(), faulty.1);
            assert_eq!(clean.0, Some(0), "{}: {}", script.display(), clean.1);
        }
    }

    // The clean server: nothing found, nothing left open.
    let clean_dir = dir.join("clean");
    let clean = fuzz(&clean_dir, &suite, serve(Faults::default()), 120)
        .execute()
        .await
        .unwrap();
    assert_eq!(clean.exit, Exit::Clean, "{}", clean.describe());
    assert!(clean.candidates.is_empty(), "{:?}", clean.candidates);
}

/// Sign-ups that differ only in e-mail case answer 500 on this server, in
/// most programs: a real but harmless bug. Its bucket is confirmed in a
/// place of its own and reported after the leak, which `--max-findings 1`
/// leaves its place to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_take_no_place_of_a_leak() {
    let dir = support::tempdir("fuzz-errors");
    let suite = dir.join("records.toml");
    std::fs::write(&suite, records_api::suite(2)).unwrap();
    let faults = Faults {
        paging: true,
        email_case: true,
        ..Faults::default()
    };
    let outcome = Fuzz {
        max_findings: Some(1),
        max_errors: Some(1),
        ..fuzz(&dir, &suite, serve(faults), 300)
    }
    .execute()
    .await
    .unwrap();
    assert_eq!(outcome.exit, Exit::Found, "{}", outcome.describe());
    let found = findings(&dir);
    let kinds: Vec<FindingKind> = found.iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds.iter().filter(|k| k.harm()).count(),
        1,
        "one leak, as --max-findings says: {kinds:?}"
    );
    assert!(
        kinds.contains(&FindingKind::ServerError),
        "the 500 is a bucket of its own: {kinds:?}"
    );
    assert_eq!(outcome.new_errors, 1, "{}", outcome.describe());
    assert!(
        outcome
            .describe()
            .contains("1 new bucket(s) of leaks or tampering, 1 of server errors")
    );
    let error = found
        .iter()
        .find(|f| f.kind == FindingKind::ServerError)
        .unwrap();
    assert!(error.step.starts_with("sign up"), "{error:?}");
}

/// A bucket left a candidate (here: `--max-findings 1` was reached first)
/// is promoted by hand from `candidates.jsonl`; promoting it again adds
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_are_promoted_by_hand() {
    let dir = support::tempdir("fuzz-promote");
    let suite = dir.join("records.toml");
    std::fs::write(&suite, records_api::suite(1)).unwrap();
    let faults = Faults {
        paging: true,
        refresh: true,
        email_case: false,
    };
    let outcome = Fuzz {
        max_findings: Some(1),
        ..fuzz(&dir, &suite, serve(faults), 120)
    }
    .execute()
    .await
    .unwrap();
    assert_eq!(outcome.exit, Exit::Found, "{}", outcome.describe());
    assert_eq!(findings(&dir).len(), 1);
    assert!(!outcome.candidates.is_empty(), "{}", outcome.describe());
    let promote = |dir: &Path| Fuzz {
        confirm_candidates: Some(dir.join("found/candidates.jsonl")),
        ..fuzz(dir, &suite, "http://127.0.0.1:9".into(), 1)
    };
    let promoted = promote(&dir).execute().await.unwrap();
    assert_eq!(promoted.exit, Exit::Found, "{}", promoted.describe());
    let after = findings(&dir);
    assert_eq!(after.len() as u64, 1 + promoted.new_buckets);
    let again = promote(&dir).execute().await.unwrap();
    assert_eq!(again.exit, Exit::Clean, "{}", again.describe());
    assert_eq!(findings(&dir).len(), after.len());
}
