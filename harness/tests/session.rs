//! Whole commands driven through the library's sessions, no process
//! spawned: what a Rust user of crosstalk calls.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use crosstalk::findings::FindingKind;
use crosstalk::session::{Contracts, Exit, Fuzz, Replay, Run, TargetSpec};

fn scenarios() -> PathBuf {
    support::root().join("scenarios")
}

fn run(faults: &[&str], findings: PathBuf) -> Run {
    Run {
        seed: Some(11),
        findings,
        contracts: Contracts::Off,
        ..Run::new(vec![scenarios()], TargetSpec::embedded(faults))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_run_does_every_step_and_decides_exit_0() {
    let dir = support::tempdir("session-clean");
    let outcome = run(&[], dir.clone()).execute().await.unwrap();
    assert_eq!(outcome.exit, Exit::Clean, "{}", outcome.report.summary());
    assert_eq!(outcome.report.total_findings, 0);
    assert!(outcome.problem.is_none());
    assert_eq!(outcome.report.scenarios.len(), 4);
    for stats in &outcome.report.scenarios {
        assert!(stats.requests > 0, "{} sent nothing", stats.scenario);
        assert_eq!(stats.transport_errors, 0);
        assert!(!stats.interrupted);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaking_clinic_gives_leak_findings_on_disk_and_exit_1() {
    let dir = support::tempdir("session-leak");
    let outcome = run(&["switch-owner"], dir.clone()).execute().await.unwrap();
    assert_eq!(outcome.exit, Exit::Found);
    let leak = outcome
        .report
        .buckets
        .iter()
        .find(|b| b.first.kind == FindingKind::Leak)
        .expect("a leak bucket");
    assert!(leak.first.observer.starts_with("patient#"));
    let victim = leak
        .first
        .victim
        .as_deref()
        .expect("a leak names its victim");
    assert_ne!(victim, leak.first.observer);
    let file = dir.join(&outcome.report.run_id).join("findings.jsonl");
    let lines = std::fs::read_to_string(&file).unwrap();
    assert!(lines.lines().count() >= 1, "nothing in {}", file.display());
    assert!(lines.contains("\"kind\":\"leak\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_an_error_that_decides_exit_2() {
    let dir = support::tempdir("session-bad");
    let err = run(&["no-such-fault"], dir)
        .execute()
        .await
        .err()
        .expect("an unknown fault is refused");
    assert_eq!(err.exit(), Exit::BadInput);
    assert!(err.to_string().contains("no-such-fault"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_is_never_clean() {
    let dir = support::tempdir("session-cancel");
    let session = run(&[], dir);
    session.stop.cancel.cancel();
    let outcome = session.execute().await.unwrap();
    // Nobody signed up, so nobody has anything to tear down: nothing found.
    assert_eq!(
        outcome.exit,
        Exit::Interrupted,
        "{}",
        outcome.report.summary()
    );
    assert_eq!(outcome.report.scenarios.len(), 1, "the run went on");
    assert!(outcome.report.scenarios[0].interrupted);
    assert!(outcome.report.summary().contains("interrupted"));
    assert!(!outcome.report.markdown().contains("passed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_finds_a_leak_that_replay_reproduces_and_the_fixed_clinic_does_not() {
    let dir = support::tempdir("session-fuzz");
    let fuzz = Fuzz {
        seed: Some(3),
        programs: Some(20_000),
        time: Duration::from_secs(3600),
        shrink_time: Duration::from_secs(600),
        max_findings: Some(1),
        corpus: dir.join("corpus"),
        findings: dir.join("found"),
        ..Fuzz::new(
            vec![scenarios()],
            TargetSpec::embedded(&["appointment-idor"]),
        )
    };
    let outcome = fuzz.execute().await.unwrap();
    assert_eq!(outcome.exit, Exit::Found);
    assert!(outcome.new_buckets >= 1);
    let repro = support::walk(&dir.join("found"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "toml"))
        .expect("a reproduction file");
    let replay = |faults: &[&str]| Replay {
        attempts: Some(3),
        ..support::replay(&repro, faults, &dir)
    };
    let still = replay(&["appointment-idor"]).execute().await.unwrap();
    assert_eq!(still.exit, Exit::Found, "the reproduction does not leak");
    let fixed = replay(&[]).execute().await.unwrap();
    assert_eq!(fixed.exit, Exit::Clean, "{}", fixed.describe());
    assert!(fixed.requests > 0);

    // A secret variable that fails every sign-up: no run sends every step,
    // so the replay gives no verdict rather than "fixed".
    let mut broken = replay(&["appointment-idor"]);
    broken
        .overrides
        .vars
        .insert("password".into(), String::new());
    let broken = broken.execute().await.unwrap();
    assert_eq!(broken.exit, Exit::Incomplete, "{}", broken.describe());
    assert!(broken.describe().contains("did not run through"));
}

/// The no-probe suite asks for nobody else's data: the fuzzer must find
/// the conflict message by setting a booking's slot to another patient's,
/// and stay quiet against the clean clinic. Bounded by programs, never by
/// the clock: it stops at the first finding (after a few hundred to a few
/// thousand programs, as the workers interleave), and the time given is a
/// ceiling for a loaded machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzing_the_no_probe_suite_finds_a_fault_no_step_asks_for_and_the_clean_clinic_stays_clean()
 {
    let dir = support::tempdir("session-no-probes");
    let fuzz = |faults: &[&str], programs: u64, name: &str| Fuzz {
        seed: Some(2),
        programs: Some(programs),
        time: Duration::from_secs(3600),
        shrink_time: Duration::from_secs(600),
        max_findings: Some(1),
        corpus: dir.join(name).join("corpus"),
        findings: dir.join(name).join("found"),
        ..Fuzz::new(
            vec![scenarios().join("no-probes")],
            TargetSpec::embedded(faults),
        )
    };
    let found = fuzz(&["conflict-message"], 20_000, "faulty")
        .execute()
        .await
        .unwrap();
    assert_eq!(found.exit, Exit::Found);
    let findings = std::fs::read_to_string(dir.join("faulty/found/findings.jsonl")).unwrap();
    assert!(
        findings.contains("$.error.message"),
        "not the conflict message: {findings}"
    );
    let clean = fuzz(&[], 300, "clean").execute().await.unwrap();
    assert_eq!(clean.exit, Exit::Clean);
    let seen = std::fs::read_to_string(dir.join("clean/found/candidates.jsonl")).unwrap();
    assert!(seen.is_empty(), "{seen}");
}
