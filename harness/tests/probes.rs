//! Automatic probes: the shipped flows with every hand-written probe step
//! removed (`scenarios/no-probes/`) catch, by probes alone, the faults
//! that only a step asking for another's data can show, and stay clean
//! against the clean clinic over 20 seeds; switched off, they miss them.

mod support;

use serde_json::Value;
use support::{root, tempdir};

fn run(args: &[&str]) -> (Option<i32>, Value) {
    let dir = tempdir("probes");
    let suite = root().join("scenarios/no-probes");
    let mut all: Vec<&str> = vec!["--concurrency", "16"];
    all.extend_from_slice(args);
    let suite = suite.to_str().unwrap().to_string();
    all.push(&suite);
    support::run_report(&dir, &all)
}

/// (kind, step) of every finding bucket.
fn buckets(report: &Value) -> Vec<(String, String)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (report["buckets"].as_array().unwrap().iter())
        .map(|b| (text(&b["first"]["kind"]), text(&b["first"]["step"])))
        .collect()
}

fn probes_sent(report: &Value) -> u64 {
    (report["scenarios"].as_array().unwrap().iter())
        .map(|s| s["probes"].as_u64().unwrap())
        .sum()
}

#[test]
fn probes_alone_catch_the_faults_no_step_asks_for() {
    // Each fault, and the probe finding that shows it.
    let cases = [
        ("appointment-idor", "leak", "probe: read own appointment"),
        ("media-idor", "leak", "probe: download its media"),
        ("appointment-write-idor", "tamper", "probe: reschedule"),
        ("end-by-stranger", "tamper", "probe: end the call"),
        (
            "profile-update-idor",
            "tamper",
            "probe: update own contact details",
        ),
        (
            "password-change-idor",
            "tamper",
            "probe: change own password",
        ),
        (
            "recording-delete-idor",
            "tamper",
            "probe: delete a recording",
        ),
        // A nested path: the owner's document under the prober's own
        // patient id, which the faulty handler checks alone.
        ("document-idor", "leak", "probe: read own document"),
        ("document-write-idor", "tamper", "probe: edit own document"),
    ];
    for (fault, kind, step) in cases {
        let (code, report) = run(&["--seed", "1", "--fault", fault]);
        assert_eq!(code, Some(1), "{fault}");
        let found = buckets(&report);
        assert!(
            found.contains(&(kind.to_string(), step.to_string())),
            "{fault}: {found:?}"
        );
        // Without probes the same suite misses it.
        let (code, report) = run(&["--seed", "1", "--fault", fault, "--no-probes"]);
        assert_eq!(
            code,
            Some(0),
            "{fault} without probes: {:?}",
            buckets(&report)
        );
        assert_eq!(probes_sent(&report), 0);
    }
}

#[test]
fn the_faults_the_flows_show_themselves_are_still_found() {
    for fault in [
        "profile-cache",
        "status-filter",
        "cursor-pagination",
        "export-demographics",
        "switch-owner",
    ] {
        let (code, report) = run(&["--seed", "2", "--fault", fault]);
        assert_eq!(code, Some(1), "{fault}");
        assert!(
            buckets(&report).iter().any(|(kind, _)| kind == "leak"),
            "{fault}: {:?}",
            buckets(&report)
        );
    }
}

/// Clean over seeds 1 to 20: half here, half in the next test (run at once).
#[test]
fn probes_stay_clean_against_the_clean_clinic_seeds_1_to_10() {
    clean_over(1..=10);
}

#[test]
fn probes_stay_clean_against_the_clean_clinic_seeds_11_to_20() {
    clean_over(11..=20);
}

fn clean_over(seeds: std::ops::RangeInclusive<u32>) {
    for seed in seeds {
        let seed = seed.to_string();
        let (code, report) = run(&["--seed", &seed]);
        assert_eq!(code, Some(0), "seed {seed}: {:#}", report["buckets"]);
        assert!(
            probes_sent(&report) > 500,
            "seed {seed}: {}",
            probes_sent(&report)
        );
    }
}
