//! The scenario language against an API of another shape than the clinic
//! (`support::portal`): an OAuth2 password form login whose password holds
//! `&`, `+`, `=` and spaces, a query, a multipart upload, typed template
//! expectations, a picked peer that stays the same from step to step,
//! setup and clean-up sent once, and a re-login when tokens expire. The
//! suite is `docs/examples/portal.toml`, the reference's own example.

mod support;

use std::sync::Arc;

use serde_json::Value;
use support::portal::{Portal, router};
use support::{root, tempdir};

fn run(portal: Portal, suite: &str) -> (Option<i32>, Value, Arc<Portal>) {
    let dir = tempdir("language");
    let file = dir.join("portal.toml");
    std::fs::write(&file, suite).unwrap();
    let portal = Arc::new(portal);
    let served = portal.clone();
    let url = support::serve(move || router(served));
    let args = ["--seed", "3", "--target", &url, file.to_str().unwrap()];
    let (code, report) = support::run_report(&dir, &args);
    (code, report, portal)
}

fn example() -> String {
    std::fs::read_to_string(root().join("docs/examples/portal.toml")).unwrap()
}

/// (kind, step, location) of every finding bucket.
fn findings(report: &Value) -> Vec<(String, String, String)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    report["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                text(&b["first"]["kind"]),
                text(&b["first"]["step"]),
                text(&b["first"]["location"]),
            )
        })
        .collect()
}

#[test]
fn the_example_runs_clean_on_a_correct_api_and_every_step_did_its_work() {
    let (code, report, portal) = run(Portal::default(), &example());
    assert_eq!(code, Some(0), "{:#}", report["buckets"]);
    let db = portal.state.lock().unwrap();
    // The form login carried the password intact: each member logged in,
    // and so did each member's peer (the witness logs victims in too).
    assert!(db.logins >= 8, "{} logins", db.logins);
    assert!(db.users.iter().all(|u| u.password == "pass word&x+y=z"));
    // Each member's scan arrived whole, with its name and type.
    assert_eq!(db.files.len(), 4);
    for file in &db.files {
        assert_eq!(
            (file.bytes.len(), file.content_type.as_str()),
            (4096, "image/png")
        );
        assert!(
            file.name.starts_with("scan-") && file.name.ends_with(".png"),
            "{}",
            file.name
        );
    }
    // Setup and clean-up were each sent once for the whole run.
    assert_eq!((db.resets, db.cleanups), (1, 1));
    let stats = &report["scenarios"][0];
    assert_eq!(stats["skipped"], 0);
}

#[test]
fn a_stable_pick_sees_its_own_password_change_take_effect() {
    // The peer whose password a member changed is the one it then logs in
    // as: with the fault on, that login fails for every changed peer.
    let (code, report, _) = run(
        Portal {
            password_idor: true,
            ..Portal::default()
        },
        &example(),
    );
    assert_eq!(code, Some(1));
    let steps: Vec<String> = findings(&report)
        .into_iter()
        .map(|(_, step, _)| step)
        .collect();
    assert!(
        steps.contains(&"try to change the peer's password".to_string()),
        "{steps:?}"
    );
    assert!(
        steps.contains(&"the peer still logs in".to_string()),
        "{steps:?}"
    );
}

#[test]
fn a_peer_s_scan_downloaded_is_a_leak_found_in_the_binary_body() {
    let (code, report, _) = run(
        Portal {
            files_idor: true,
            ..Portal::default()
        },
        &example(),
    );
    assert_eq!(code, Some(1));
    let found = findings(&report);
    assert!(
        found
            .iter()
            .any(|(kind, step, _)| kind == "leak" && step == "try a peer's scan"),
        "{found:?}"
    );
}

#[test]
fn expired_tokens_are_renewed_by_the_reauth_step_and_fail_without_it() {
    let expiring = || Portal {
        token_uses: 2,
        ..Portal::default()
    };
    let (code, report, portal) = run(expiring(), &example());
    assert_eq!(code, Some(0), "{:#}", report["buckets"]);
    assert!(
        portal.state.lock().unwrap().logins > 8,
        "the members logged in again"
    );

    let without = example().replace("reauth = \"log in\"\n", "");
    let (code, report, _) = run(expiring(), &without);
    assert_eq!(code, Some(1));
    assert!(
        findings(&report)
            .iter()
            .any(|(_, _, location)| location == "status")
    );
}

#[test]
fn a_failed_setup_stops_the_flow_with_one_finding_and_still_cleans_up() {
    let wrong_key = example().replace("letmein-admin", "not-the-key");
    let (code, report, portal) = run(Portal::default(), &wrong_key);
    assert_eq!(code, Some(1));
    let found = findings(&report);
    assert!(
        found
            .iter()
            .any(|(kind, step, _)| kind == "skipped" && step == "reset the database"),
        "{found:?}"
    );
    let db = portal.state.lock().unwrap();
    assert_eq!(db.users.len(), 0, "no member's step was sent");
    assert_eq!(db.resets, 0);
}

#[test]
fn template_expectations_compare_typed_values() {
    // `"{{user_id}}"` is the integer captured; as text it no longer equals.
    let as_text = example().replace(
        r#""$.id" = "{{user_id}}""#,
        r#""$.id" = "{{user_id | string}}""#,
    );
    let (code, report, _) = run(Portal::default(), &as_text);
    assert_eq!(code, Some(1));
    let found = findings(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].2, "body $.id");
    // The member's own id: its text expected, the number got.
    let first = report["buckets"][0]["first"]["summary"].as_str().unwrap();
    let id = first.rsplit("got ").next().unwrap();
    assert!(
        first.ends_with(&format!("expected \"{id}\", got {id}")),
        "{first}"
    );
}

#[test]
fn a_probe_finds_the_peer_s_scan_without_a_hand_written_step_unless_told_not_to() {
    // The example without its hand-written "try a peer's scan".
    let example = example();
    let start = example.find("# One other member").unwrap();
    let end = example.find("[[steps]]\nname = \"try to change").unwrap();
    let rest = example[end..].replacen(
        "actor = \"member\"\n",
        "actor = \"member\"\npick = { victim = \"peer\" }\n",
        1,
    );
    let without = format!("{}{rest}", &example[..start]);
    let leaky = || Portal {
        files_idor: true,
        ..Portal::default()
    };
    let (code, report, _) = run(leaky(), &without);
    assert_eq!(code, Some(1));
    let found = findings(&report);
    assert!(
        found
            .iter()
            .any(|(kind, step, _)| kind == "leak" && step == "probe: download my scan"),
        "{found:?}"
    );
    let told_not_to = without.replace(
        "request = \"GET /files/{{file_id}}\"",
        "request = \"GET /files/{{file_id}}\"\nprobe = false",
    );
    let (code, report, _) = run(leaky(), &told_not_to);
    assert_eq!(code, Some(0), "{:?}", findings(&report));
}
