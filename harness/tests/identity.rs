//! Identity from evidence, against APIs of other shapes than the clinic's
//! default: a logout after sign-up (bearer and cookie sessions), an OAuth2
//! API whose refresh grant hands out another account's token, a cookie API
//! that rotates its session and a CSRF token at every sign-in, a suite
//! whose patients all share one account, and a run of two scenario files.
//! Each detection is shown with its clean twin.

use std::path::Path;

use clinic::auth::Sessions;
use clinic::{Clinic, Config, Fault, Faults};
use serde_json::Value;

mod support;

use support::refresh_api::{self, RefreshApi};
use support::rotating_api::{self, RotatingApi};
use support::{root, run_report, tempdir};

/// The faults whose harm is a change to another patient's data, which the
/// integrity witness must see; every other fault shows data.
const WRITE_FAULTS: &[Fault] = &[
    Fault::AppointmentWriteIdor,
    Fault::EndByStranger,
    Fault::ProfileUpdateIdor,
    Fault::PasswordChangeIdor,
    Fault::RecordingDeleteIdor,
    Fault::DocumentWriteIdor,
];

/// The buckets of a report: (kind, summary).
fn buckets(report: &Value) -> Vec<(String, String)> {
    report["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            (
                b["first"]["kind"].as_str().unwrap_or_default().to_string(),
                b["first"]["summary"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// Every finding the run wrote, as JSON.
fn findings(dir: &Path) -> Vec<Value> {
    support::walk(&dir.join("findings"))
        .into_iter()
        .filter(|p| p.ends_with("findings.jsonl"))
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<Value>>()
        })
        .collect()
}

/// A suite file written into `dir`.
fn suite(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The clinic in cookie mode, served over HTTP, data in memory.
fn cookie_clinic(faults: Faults) -> String {
    support::serve(move || {
        let config = Config {
            db: None,
            faults,
            sessions: Sessions::Cookie,
        };
        Clinic::new(config).unwrap().router()
    })
}

/// The logout suite in `mode` (`logout` or `cookie/logout`) with `fault`,
/// over `target` (none: the embedded clinic).
fn logout_run(
    mode: &str,
    target: Option<&str>,
    fault: Option<Fault>,
    seed: u64,
) -> (Option<i32>, Value, std::path::PathBuf) {
    let dir = tempdir("logout");
    let suite = root().join("scenarios").join(mode).display().to_string();
    let seed = seed.to_string();
    let mut args = vec![suite.as_str(), "--seed", &seed, "--patients", "8"];
    let name = fault.map(|f| f.name().to_string());
    match (target, &name) {
        (Some(target), _) => args.extend(["--target", target]),
        (None, Some(name)) => args.extend(["--fault", name.as_str()]),
        (None, None) => {}
    }
    let (code, report) = run_report(&dir, &args);
    (code, report, dir)
}

/// The logout suite with `fault` finds it by its own judges: a read fault
/// by a leak or access finding, a write fault by a tamper finding blamed
/// on an accepted write or, where the fault answers `404` all the same, on
/// no write the server refused as unauthorised.
fn assert_judged(mode: &str, fault: Fault, target: Option<&str>) {
    let (code, report, dir) = logout_run(mode, target, Some(fault), 3);
    let kinds: Vec<String> = buckets(&report).into_iter().map(|(k, _)| k).collect();
    assert_eq!(code, Some(1), "{mode} {fault}: {kinds:?}");
    if !WRITE_FAULTS.contains(&fault) {
        assert!(
            kinds.iter().any(|k| k == "leak" || k == "access"),
            "{mode} {fault}: no leak or access finding: {kinds:?}"
        );
        return;
    }
    let tampers: Vec<Value> = (findings(&dir).into_iter())
        .filter(|f| f["kind"] == "tamper")
        .collect();
    assert!(
        !tampers.is_empty(),
        "{mode} {fault}: no tamper finding: {kinds:?}"
    );
    for tamper in &tampers {
        let status = tamper["exchange"]["status"].as_u64().unwrap();
        assert!(
            !matches!(status, 401 | 403),
            "{mode} {fault}: a tamper blamed on a refused write: {}",
            tamper["summary"]
        );
    }
    let accepted = tampers
        .iter()
        .filter(|t| (200..300).contains(&t["exchange"]["status"].as_u64().unwrap()));
    if !matches!(fault, Fault::AppointmentWriteIdor | Fault::EndByStranger) {
        assert!(
            accepted.count() > 0,
            "{mode} {fault}: no tamper blamed on a 2xx write"
        );
    }
}

#[test]
fn the_logout_suite_finds_every_fault_by_its_judges_in_bearer_mode() {
    for fault in Fault::ALL {
        assert_judged("logout", *fault, None);
    }
}

#[test]
fn the_logout_suite_finds_every_fault_by_its_judges_in_cookie_mode() {
    for fault in Fault::ALL {
        let target = cookie_clinic(Faults::none().with(*fault));
        assert_judged("cookie/logout", *fault, Some(&target));
    }
}

#[test]
fn the_logout_suite_is_clean_and_sees_over_twenty_seeds_in_both_modes() {
    let cookie = cookie_clinic(Faults::none());
    for seed in 1..=20 {
        for (mode, target) in [("logout", None), ("cookie/logout", Some(cookie.as_str()))] {
            let (code, report, _) = logout_run(mode, target, None, seed);
            assert_eq!(code, Some(0), "{mode} seed {seed}: {:?}", buckets(&report));
            for scenario in report["scenarios"].as_array().unwrap() {
                let health = &scenario["health"];
                assert_eq!(health["merged"], Value::Array(vec![]), "{mode} seed {seed}");
                assert_eq!(health["unattributed"], 0, "{mode} seed {seed}");
            }
        }
    }
}

/// An OAuth2 suite: JSON sign-up, password and refresh grants with form
/// bodies, the profile read after each.
const OAUTH: &str = r#"
[vars]
password = "pw-{{canary}}"

[actors.patient]
count = 6
population = true
auth = { bearer = "{{access}}" }

[[steps]]
name = "register"
actor = "patient"
request = "POST /api/v2/register"
body = { email = "{{canary}}@patients.test", password = "{{password}}", displayName = "{{canary}}" }
expect = { status = 201 }
capture = { patient_id = "$.id" }

[[steps]]
name = "password grant"
actor = "patient"
request = "POST /oauth/token"
form = { grant_type = "password", username = "{{canary}}@patients.test", password = "{{password}}" }
expect = { status = 200 }
capture = { access = { json = "$.access_token", secret = true }, refresh = { json = "$.refresh_token", secret = true } }

[[steps]]
name = "read own profile"
actor = "patient"
request = "GET /api/v2/me"
expect = { status = 200 }

[[steps]]
name = "refresh grant"
actor = "patient"
request = "POST /oauth/token"
form = { grant_type = "refresh_token", refresh_token = "{{refresh}}" }
expect = { status = 200 }
capture = { access = { json = "$.access_token", secret = true }, refresh = { json = "$.refresh_token", secret = true } }

[[steps]]
name = "read own profile after refreshing"
actor = "patient"
request = "GET /api/v2/me"
expect = { status = 200 }
"#;

#[test]
fn a_refreshed_token_of_another_account_is_a_leak_naming_both() {
    let dir = tempdir("oauth");
    let file = suite(&dir, "oauth.toml", OAUTH);
    let clean = support::serve(|| refresh_api::router(RefreshApi::new(false)));
    let (code, report) = run_report(&dir, &[&file, "--target", &clean, "--seed", "4"]);
    assert_eq!(code, Some(0), "{:?}", buckets(&report));
    let health = &report["scenarios"][0]["health"];
    assert_eq!(
        health["unattributed"], 0,
        "every token has its owner: {health}"
    );

    let dir = tempdir("oauth-fault");
    let faulty = support::serve(|| refresh_api::router(RefreshApi::new(true)));
    let (code, report) = run_report(&dir, &[&file, "--target", &faulty, "--seed", "4"]);
    assert_eq!(code, Some(1));
    let leaks: Vec<Value> = (findings(&dir).into_iter())
        .filter(|f| f["kind"] == "leak" && f["step"] == "read own profile after refreshing")
        .collect();
    assert!(!leaks.is_empty(), "{:?}", buckets(&report));
    for leak in &leaks {
        let (observer, victim) = (
            leak["observer"].as_str().unwrap(),
            leak["victim"].as_str().unwrap(),
        );
        assert!(observer.starts_with("patient#") && victim.starts_with("patient#"));
        assert_ne!(observer, victim, "{}", leak["summary"]);
        let summary = leak["summary"].as_str().unwrap();
        assert!(
            summary.starts_with(&format!("{observer} received {victim}'s")),
            "the summary and the fields agree: {summary}"
        );
    }
}

/// A cookie suite whose sign-in rotates the session and a CSRF token that
/// every write must carry.
const ROTATING: &str = r#"
[vars]
password = "pw-{{canary}}"

[actors.patient]
count = 6
population = true
auth = { cookies = true }

[[steps]]
name = "create account"
actor = "patient"
request = "POST /accounts"
body = { login = "user-{{serial}}-{{run_id}}", password = "{{password}}", fullName = "{{canary}}" }
expect = { status = 201 }

[[steps]]
name = "sign in"
actor = "patient"
request = "POST /auth/session"
body = { login = "user-{{serial}}-{{run_id}}", password = "{{password}}" }
expect = { status = 200 }
capture = { csrf = { json = "$.csrfToken", secret = true } }

[[steps]]
name = "write a note"
actor = "patient"
request = "POST /notes"
headers = { x-csrf-token = "{{csrf}}" }
body = { text = "{{canary}}: blood pressure diary" }
expect = { status = 201 }
capture = { note_id = "$.id" }

[[steps]]
name = "read own note"
actor = "patient"
request = "GET /notes/{{note_id}}"
expect = { status = 200 }

[[steps]]
name = "update own note"
actor = "patient"
request = "PUT /notes/{{note_id}}"
headers = { x-csrf-token = "{{csrf}}" }
body = { text = "{{canary}}: readings for March" }
expect = { status = 204 }

[[steps]]
name = "sign in again"
actor = "patient"
request = "POST /auth/session"
body = { login = "user-{{serial}}-{{run_id}}", password = "{{password}}" }
expect = { status = 200 }
capture = { csrf = { json = "$.csrfToken", secret = true } }

[[steps]]
name = "read own note again"
actor = "patient"
request = "GET /notes/{{note_id}}"
expect = { status = 200 }
"#;

#[test]
fn a_rotating_cookie_api_is_clean_over_twenty_seeds_with_no_own_sign_in_taken_for_a_foreign_write()
{
    let dir = tempdir("rotating");
    let file = suite(&dir, "notes.toml", ROTATING);
    for seed in 1..=20 {
        let api = RotatingApi::new(false);
        let target = support::serve(move || rotating_api::router(api));
        let seed = seed.to_string();
        let (code, report) = run_report(&dir, &[&file, "--target", &target, "--seed", &seed]);
        assert_eq!(code, Some(0), "seed {seed}: {:?}", buckets(&report));
        let writes = report["scenarios"][0]["foreign_writes"]
            .as_array()
            .unwrap()
            .clone();
        for write in &writes {
            let writer = write["writer"].as_str().unwrap();
            assert!(
                !writer.starts_with(write["victim"].as_str().unwrap()),
                "seed {seed}: an instance's own request listed as a foreign write: {write}"
            );
        }
    }
}

#[test]
fn a_note_anyone_may_overwrite_behind_a_rotating_session_is_tamper_found_by_a_probe() {
    let dir = tempdir("rotating-fault");
    let file = suite(&dir, "notes.toml", ROTATING);
    let api = RotatingApi::new(true);
    let target = support::serve(move || rotating_api::router(api));
    let (code, report) = run_report(&dir, &[&file, "--target", &target, "--seed", "2"]);
    assert_eq!(code, Some(1), "{:?}", buckets(&report));
    let tampers: Vec<Value> = (findings(&dir).into_iter())
        .filter(|f| f["kind"] == "tamper")
        .collect();
    let by_probe = tampers
        .iter()
        .find(|t| t["step"] == "probe: update own note");
    let tamper = by_probe.unwrap_or_else(|| panic!("{:?}", buckets(&report)));
    assert_eq!(tamper["exchange"]["status"], 204, "{}", tamper["summary"]);
    assert_ne!(tamper["observer"], tamper["victim"]);
}

/// Patients who all log in to one account the setup made.
fn shared_account(declared: bool) -> String {
    format!(
        r#"
[vars]
password = "correct horse battery staple"

[actors.patient]
count = 4
population = true
auth = {{ bearer = "{{{{token}}}}" }}
one_account = {declared}

[[setup]]
name = "the demo account signs up"
request = "POST /v1/patients"
body = {{ name = "Demo Patient", email = "demo-{{{{run_id}}}}@patients.test", date_of_birth = "1980-01-01", phone = "+44 7700 900000", password = "{{{{password}}}}" }}
expect = {{ status = 201 }}

[[steps]]
name = "log in to the demo account"
actor = "patient"
request = "POST /v1/auth/login"
body = {{ email = "demo-{{{{run_id}}}}@patients.test", password = "{{{{password}}}}" }}
expect = {{ status = 200 }}
capture = {{ token = {{ json = "$.token", secret = true }} }}

[[steps]]
name = "read the profile"
actor = "patient"
request = "GET /v1/me"
expect = {{ status = 200 }}
"#
    )
}

#[test]
fn patients_that_share_one_account_make_the_run_incomplete_unless_the_scenario_says_so() {
    let dir = tempdir("one-account");
    let file = suite(&dir, "demo.toml", &shared_account(false));
    let out = support::command(env!("CARGO_BIN_EXE_crosstalk"))
        .args(["run", &file, "--seed", "5", "--no-snapshots", "--findings"])
        .arg(dir.join("findings"))
        .output()
        .unwrap();
    let stdout = support::text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("BLIND: 3 patient(s) logged in to another patient's account"),
        "{stdout}"
    );
    assert!(
        stdout.contains("incomplete: the judges could not see"),
        "{stdout}"
    );

    let file = suite(&dir, "demo.toml", &shared_account(true));
    let (code, report) = run_report(&dir, &[&file, "--seed", "5"]);
    assert_eq!(code, Some(0), "{report}");
    let health = &report["scenarios"][0]["health"];
    assert_eq!(health["merged"].as_array().unwrap().len(), 3, "{health}");
    assert_eq!(health["blind"], Value::Array(vec![]));
}

/// A feed of notes: each author's own, or, with the filter lost, everyone's.
fn feed(lost_filter: bool) -> String {
    use axum::extract::State;
    use axum::http::HeaderMap;
    use axum::routing::{get, post};
    use std::sync::{Arc, Mutex};
    type Notes = Arc<Mutex<Vec<(String, Value)>>>;
    let user = |headers: &HeaderMap| {
        let value = headers.get("x-user").and_then(|v| v.to_str().ok());
        value.unwrap_or_default().to_string()
    };
    let notes: Notes = Arc::default();
    support::serve(move || {
        axum::Router::new()
            .route(
                "/notes",
                post(
                    move |State(notes): State<Notes>,
                          headers: HeaderMap,
                          axum::Json(note): axum::Json<Value>| async move {
                        notes.lock().unwrap().push((user(&headers), note));
                        axum::http::StatusCode::CREATED
                    },
                ),
            )
            .route(
                "/feed",
                get(
                    move |State(notes): State<Notes>, headers: HeaderMap| async move {
                        let caller = user(&headers);
                        let notes = notes.lock().unwrap();
                        let shown: Vec<&Value> = (notes.iter())
                            .filter(|(author, _)| lost_filter || *author == caller)
                            .map(|(_, note)| note)
                            .collect();
                        axum::Json(serde_json::json!({ "items": shown }))
                    },
                ),
            )
            .with_state(notes)
    })
}

#[test]
fn one_scenario_files_patients_seeing_anothers_data_is_a_leak() {
    let files = [
        (
            "1-write.toml",
            "[actors.author]\ncount = 3\nauth = { header = { name = \"x-user\", value = \"u-{{canary}}\" } }\n\n[[steps]]\nname = \"write a note\"\nactor = \"author\"\nrequest = \"POST /notes\"\nbody = { text = \"{{canary}}: diary\" }\nexpect = { status = 201 }\n",
        ),
        (
            "2-read.toml",
            "[actors.reader]\ncount = 3\nauth = { header = { name = \"x-user\", value = \"u-{{canary}}\" } }\n\n[[steps]]\nname = \"read the feed\"\nactor = \"reader\"\nrequest = \"GET /feed\"\nexpect = { status = 200 }\n",
        ),
    ];
    for (lost_filter, want) in [(false, 0), (true, 1)] {
        let dir = tempdir("two-files");
        let suite_dir = dir.join("suite");
        std::fs::create_dir_all(&suite_dir).unwrap();
        for (name, text) in files {
            suite(&suite_dir, name, text);
        }
        let target = feed(lost_filter);
        let suite_dir = suite_dir.display().to_string();
        let (code, report) = run_report(&dir, &[&suite_dir, "--target", &target, "--seed", "1"]);
        assert_eq!(code, Some(want), "{:?}", buckets(&report));
        if lost_filter {
            let leak = (findings(&dir).into_iter())
                .find(|f| f["kind"] == "leak")
                .unwrap();
            assert_eq!(leak["scenario"], "2-read");
            assert!(
                leak["observer"].as_str().unwrap().starts_with("reader#"),
                "{leak}"
            );
            // Another scenario file's instance, named with its file.
            let victim = leak["victim"].as_str().unwrap();
            assert!(victim.starts_with("1-write/author#"), "{leak}");
            let summary = leak["summary"].as_str().unwrap();
            assert!(
                summary.contains(&format!("received {victim}'s")),
                "{summary}"
            );
        }
    }
}

/// A directory that lists every member's full name: a look-alike pair's
/// shared name is theirs together.
fn directory() -> String {
    use axum::extract::State;
    use axum::routing::post;
    use std::sync::{Arc, Mutex};
    type Names = Arc<Mutex<Vec<String>>>;
    let names: Names = Arc::default();
    support::serve(move || {
        axum::Router::new()
            .route(
                "/people",
                post(
                    |State(names): State<Names>, axum::Json(person): axum::Json<Value>| async move {
                        let name = person["name"].as_str().unwrap_or_default().to_string();
                        names.lock().unwrap().push(name);
                        axum::http::StatusCode::CREATED
                    },
                )
                .get(|State(names): State<Names>| async move {
                    let listed: Vec<Value> = (names.lock().unwrap().iter())
                        .map(|n| serde_json::json!({ "fullName": n }))
                        .collect();
                    axum::Json(listed)
                }),
            )
            .with_state(names)
    })
}

#[test]
fn a_look_alike_pairs_shared_name_is_theirs_together_and_anyone_elses_sight_of_it_a_leak() {
    let dir = tempdir("twins");
    let file = suite(
        &dir,
        "twins.toml",
        "[actors.member]\ncount = 3\n\n[[steps]]\nname = \"join\"\nactor = \"member\"\nrequest = \"POST /people\"\nbody = { name = \"{{twin.name}}\" }\nexpect = { status = 201 }\n\n[[steps]]\nname = \"list everyone\"\nactor = \"member\"\nrequest = \"GET /people\"\nexpect = { status = 200 }\n",
    );
    let target = directory();
    let (code, report) = run_report(&dir, &[&file, "--target", &target, "--seed", "9"]);
    assert_eq!(code, Some(1), "{:?}", buckets(&report));
    let seen: Vec<(String, String)> = (findings(&dir).into_iter())
        .filter(|f| f["kind"] == "leak")
        .map(|f| {
            (
                f["observer"].as_str().unwrap().into(),
                f["victim"].as_str().unwrap().into(),
            )
        })
        .collect();
    // member#0 and member#1 are a pair; member#2 has no twin.
    assert!(
        seen.contains(&("member#2".into(), "member#0".into())),
        "{seen:?}"
    );
    for (observer, victim) in &seen {
        let pair = ["member#0", "member#1"];
        assert!(
            !(pair.contains(&observer.as_str()) && pair.contains(&victim.as_str())),
            "a twin's own shared name is no leak: {seen:?}"
        );
    }
}

#[test]
fn fuzz_findings_and_candidates_name_two_instances_alike_in_their_words_and_fields() {
    let dir = tempdir("fuzz-labels");
    let db = dir.join("clinic.db");
    // A cached profile served to the next caller: leaks across programs of a
    // target that keeps its data, and within each.
    let target = support::serve(move || {
        let config = Config {
            db: Some(db),
            faults: Faults::none().with(Fault::ProfileCache),
            sessions: Sessions::Bearer,
        };
        Clinic::new(config).unwrap().router()
    });
    let out = support::command(env!("CARGO_BIN_EXE_crosstalk"))
        .args([
            "fuzz",
            "--target",
            &target,
            "--programs",
            "60",
            "--seed",
            "3",
        ])
        .arg(root().join("scenarios"))
        .arg("--corpus")
        .arg(dir.join("corpus"))
        .arg("--findings")
        .arg(dir.join("found"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", support::text(&out.stderr));
    let mut leaks = 0;
    for file in ["candidates.jsonl", "findings.jsonl"] {
        let text = std::fs::read_to_string(dir.join("found").join(file)).unwrap();
        for line in text.lines() {
            let finding: Value = serde_json::from_str(line).unwrap();
            if finding["kind"] != "leak" {
                continue;
            }
            leaks += 1;
            let (observer, victim) = (
                finding["observer"].as_str().unwrap(),
                finding["victim"].as_str().unwrap(),
            );
            assert_ne!(observer, victim, "{file}: {line}");
            let summary = finding["summary"].as_str().unwrap();
            assert!(
                summary.starts_with(&format!("{observer} received {victim}'s")),
                "{file}: {summary}"
            );
        }
    }
    assert!(leaks > 0);
}
