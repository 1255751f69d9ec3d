//! The integrity witness: writes to another instance's data that no
//! response echoes. Each of the clinic's write faults is found by the
//! shipped suite as a `tamper` finding that names the writer, the victim,
//! the request and what changed, and the clean clinic gives none; the same
//! holds against a clinic over HTTP whose database outlives the run, and
//! against a small API of another shape (cookie sessions, integer ids, a
//! view counter that changes on every read, a field the scenario declares
//! volatile, a server that applies a write late).

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use clinic::{Clinic, Config, Faults};
use serde_json::{Value, json};

use support::tempdir;

use support::run_report as run;

/// The shipped suite.
fn suite() -> String {
    support::root().join("scenarios").display().to_string()
}

/// The first finding of each tamper bucket.
fn tampering(report: &Value) -> Vec<&Value> {
    report["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["first"])
        .filter(|f| f["kind"] == "tamper")
        .collect()
}

fn foreign_writes(report: &Value, verdict: &str) -> usize {
    report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["foreign_writes"].as_array().unwrap())
        .filter(|w| w["verdict"] == verdict)
        .count()
}

/// fault → the endpoint of the write and what the witness saw change.
const FAULTS: &[(&str, &str, &str)] = &[
    (
        "appointment-write-idor",
        "/v1/appointments/{peer.appointment_id}",
        "$.status",
    ),
    (
        "end-by-stranger",
        "POST /v1/consultations/{peer.consultation_id}/end",
        "$.",
    ),
    (
        "profile-update-idor",
        "PATCH /v1/patients/{peer.patient_id}",
        "$.phone",
    ),
    ("password-change-idor", "POST /v1/me/password", "lockout"),
    (
        "recording-delete-idor",
        "DELETE /v1/recordings/{peer.recording_id}",
        "status",
    ),
    (
        "document-write-idor",
        "PATCH /v1/patients/{patient_id}/documents/{document_id}",
        "$.text",
    ),
];

#[test]
fn each_write_fault_is_a_tamper_naming_writer_victim_request_and_change() {
    for (fault, endpoint, changed) in FAULTS {
        let dir = tempdir("tamper-fault");
        let args = ["--fault", fault, "--patients", "6", "--seed", "3", &suite()];
        let (code, report) = run(&dir, &args);
        assert_eq!(code, Some(1), "{fault}");
        let found = tampering(&report);
        let hit = found
            .iter()
            .find(|f| f["endpoint"].as_str().unwrap().contains(endpoint))
            .unwrap_or_else(|| panic!("{fault}: no tamper at {endpoint}: {found:#?}"));
        let (writer, victim) = (hit["observer"].as_str().unwrap(), &hit["victim"]);
        assert!(writer.starts_with("patient#"), "{hit:#}");
        assert!(victim.as_str().is_some_and(|v| v != writer), "{hit:#}");
        let summary = hit["summary"].as_str().unwrap();
        assert!(summary.contains(writer) && summary.contains(victim.as_str().unwrap()));
        let witnessed = &hit["witnessed"];
        match *changed {
            "lockout" => assert_eq!(witnessed["type"], "lockout", "{hit:#}"),
            path => assert!(
                witnessed["path"].as_str().unwrap().starts_with(path),
                "{fault}: {hit:#}"
            ),
        }
        assert!(foreign_writes(&report, "confirmed") > 0, "{fault}");
    }
}

#[test]
fn the_clean_clinic_gives_no_tamper_over_several_seeds() {
    for seed in ["1", "2", "3"] {
        let dir = tempdir("tamper-clean");
        let (code, report) = run(&dir, &["--patients", "8", "--seed", seed, &suite()]);
        assert_eq!(code, Some(0), "seed {seed}: {:#}", report["buckets"]);
        // The write probes went out and were refused: nothing to confirm.
        assert_eq!(foreign_writes(&report, "confirmed"), 0);
    }
}

/// A clinic over HTTP with its database in a file: the second run meets
/// the first run's patients and appointments, whose integer ids its own
/// repeat. Clean stays clean; the fault is found both times.
#[test]
fn a_persistent_clinic_over_http_is_clean_twice_and_its_fault_found_twice() {
    let dir = tempdir("tamper-persistent");
    for (faults, expected) in [
        (Faults::none(), 0),
        (Faults::parse_list("appointment-write-idor").unwrap(), 1),
    ] {
        let db = dir.join(format!("clinic-{expected}.db"));
        let url = support::serve(move || {
            let config = Config {
                db: Some(db),
                faults,
                ..Config::default()
            };
            Clinic::new(config).unwrap().router()
        });
        for _ in 0..2 {
            let scenario = support::root().join("scenarios/booking.toml");
            let args = ["--target", &url, "--patients", "5", "--seed", "3"];
            let (code, report) = run(&dir, &[&args[..], &[scenario.to_str().unwrap()]].concat());
            assert_eq!(code, Some(expected), "{:#}", report["buckets"]);
            assert_eq!(tampering(&report).is_empty(), expected == 0);
        }
    }
}

/// Another shape of API: cookie sessions, integer ids for users and notes
/// alike, a profile whose `views` grows with every read and whose
/// `last_write` moves with any write anyone attempts.
#[derive(Default)]
struct Notes {
    /// Skip the owner check on note edits and e-mail changes.
    bug: bool,
    /// Apply a note edit only when the next e-mail change arrives.
    late: bool,
    state: Mutex<Store>,
    last_write: AtomicU64,
}

#[derive(Default)]
struct Store {
    users: Vec<(String, String, String, u64)>,
    sessions: HashMap<String, usize>,
    notes: Vec<(usize, String)>,
    queued: Vec<(usize, String)>,
}

type Shared = Arc<Notes>;

impl Notes {
    fn caller(&self, headers: &HeaderMap) -> Option<usize> {
        let cookie = headers.get("cookie")?.to_str().ok()?;
        let sid = cookie.split("; ").find_map(|c| c.strip_prefix("sid="))?;
        self.state.lock().unwrap().sessions.get(sid).copied()
    }

    /// Every write attempt moves `last_write`.
    fn wrote(&self) {
        self.last_write.fetch_add(1, Ordering::SeqCst);
    }
}

fn router(notes: Notes) -> Router {
    async fn signup(State(s): State<Shared>, Json(b): Json<Value>) -> (StatusCode, Json<Value>) {
        s.wrote();
        let mut store = s.state.lock().unwrap();
        let name = b["username"].as_str().unwrap_or_default().to_string();
        let password = b["password"].as_str().unwrap_or_default().to_string();
        store
            .users
            .push((name.clone(), password, format!("{name}@notes.test"), 0));
        (
            StatusCode::CREATED,
            Json(json!({"user": store.users.len() - 1})),
        )
    }
    async fn login(State(s): State<Shared>, Json(b): Json<Value>) -> (StatusCode, HeaderMap) {
        let mut store = s.state.lock().unwrap();
        let found = store
            .users
            .iter()
            .position(|(n, p, ..)| b["username"] == n.as_str() && b["password"] == p.as_str());
        let mut headers = HeaderMap::new();
        let Some(user) = found else {
            return (StatusCode::UNAUTHORIZED, headers);
        };
        let sid = uuid::Uuid::new_v4().simple().to_string();
        store.sessions.insert(sid.clone(), user);
        headers.insert("set-cookie", format!("sid={sid}; Path=/").parse().unwrap());
        (StatusCode::OK, headers)
    }
    async fn me(State(s): State<Shared>, h: HeaderMap) -> Result<Json<Value>, StatusCode> {
        let me = s.caller(&h).ok_or(StatusCode::UNAUTHORIZED)?;
        let mut store = s.state.lock().unwrap();
        let user = &mut store.users[me];
        user.3 += 1;
        let last_write = s.last_write.load(Ordering::SeqCst);
        Ok(Json(
            json!({"id": me, "username": user.0, "email": user.2, "views": user.3, "last_write": last_write}),
        ))
    }
    async fn create(
        State(s): State<Shared>,
        h: HeaderMap,
        Json(b): Json<Value>,
    ) -> Result<(StatusCode, Json<Value>), StatusCode> {
        let me = s.caller(&h).ok_or(StatusCode::UNAUTHORIZED)?;
        s.wrote();
        let mut store = s.state.lock().unwrap();
        let text = b["text"].as_str().unwrap_or_default().to_string();
        store.notes.push((me, text.clone()));
        let id = store.notes.len() - 1;
        Ok((StatusCode::CREATED, Json(json!({"id": id, "text": text}))))
    }
    async fn read(
        State(s): State<Shared>,
        h: HeaderMap,
        UrlPath(id): UrlPath<usize>,
    ) -> Result<Json<Value>, StatusCode> {
        let me = s.caller(&h).ok_or(StatusCode::UNAUTHORIZED)?;
        let store = s.state.lock().unwrap();
        match store.notes.get(id) {
            Some((owner, text)) if *owner == me => Ok(Json(json!({"id": id, "text": text}))),
            _ => Err(StatusCode::NOT_FOUND),
        }
    }
    async fn edit(
        State(s): State<Shared>,
        h: HeaderMap,
        UrlPath(id): UrlPath<usize>,
        Json(b): Json<Value>,
    ) -> StatusCode {
        let Some(me) = s.caller(&h) else {
            return StatusCode::UNAUTHORIZED;
        };
        s.wrote();
        let mut store = s.state.lock().unwrap();
        let owner = store.notes.get(id).map(|n| n.0);
        if owner.is_none() || (owner != Some(me) && !s.bug) {
            return StatusCode::NOT_FOUND;
        }
        let text = b["text"].as_str().unwrap_or_default().to_string();
        if s.late {
            store.queued.push((id, text));
        } else {
            store.notes[id].1 = text;
        }
        StatusCode::NO_CONTENT
    }
    async fn email(
        State(s): State<Shared>,
        h: HeaderMap,
        UrlPath(id): UrlPath<usize>,
        Json(b): Json<Value>,
    ) -> StatusCode {
        let Some(me) = s.caller(&h) else {
            return StatusCode::UNAUTHORIZED;
        };
        s.wrote();
        let mut store = s.state.lock().unwrap();
        // Late note edits land now.
        for (note, text) in std::mem::take(&mut store.queued) {
            store.notes[note].1 = text;
        }
        if id >= store.users.len() || (id != me && !s.bug) {
            return StatusCode::NOT_FOUND;
        }
        store.users[id].2 = b["email"].as_str().unwrap_or_default().to_string();
        StatusCode::NO_CONTENT
    }
    Router::new()
        .route("/signup", post(signup))
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/notes", post(create))
        .route("/notes/{id}", get(read).put(edit))
        .route("/users/{id}/email", put(email))
        .with_state(Arc::new(notes))
}

const NOTES_SUITE: &str = r#"
description = "Notes: each user edits their own, and no one else's"
# Moves with any write anyone attempts: not the owner's data.
volatile = ["$.last_write"]

[vars]
password = "a password & more"

[actors.user]
count = 6
population = true
auth = { cookies = true }

[[steps]]
name = "sign up"
actor = "user"
request = "POST /signup"
body = { username = "{{canary}}", password = "{{password}}" }
expect = { status = 201 }
capture = { user_id = "$.user" }

[[steps]]
name = "log in"
actor = "user"
request = "POST /login"
body = { username = "{{canary}}", password = "{{password}}" }
expect = { status = 200 }

[[steps]]
name = "write a note"
actor = "user"
request = "POST /notes"
body = { text = "{{canary}} private" }
expect = { status = 201 }
capture = { note_id = "$.id" }

[[steps]]
name = "read own note"
actor = "user"
request = "GET /notes/{{note_id}}"
expect = { status = 200 }

[[steps]]
name = "read own profile"
actor = "user"
request = "GET /me"
expect = { status = 200 }

# One user probes: a write that goes through may change its sender's data
# too, so the others, who send nothing meanwhile, are the ones vouched for.
[[steps]]
name = "edit another's note"
actor = "user"
instance = 0
request = "PUT /notes/{{peer.note_id}}"
body = { text = "defaced" }

[[steps]]
name = "set another's e-mail"
actor = "user"
instance = 0
request = "PUT /users/{{peer.user_id}}/email"
body = { email = "someone@elsewhere.test" }
"#;

fn notes_run(notes: Notes) -> (Option<i32>, Value) {
    let dir = tempdir("tamper-notes");
    let scenario = dir.join("notes.toml");
    std::fs::write(&scenario, NOTES_SUITE).unwrap();
    let url = support::serve(move || router(notes));
    run(
        &dir,
        &["--target", &url, "--seed", "3", scenario.to_str().unwrap()],
    )
}

#[test]
fn another_shape_of_api_is_clean_and_its_two_write_bugs_found() {
    let (code, report) = notes_run(Notes::default());
    assert_eq!(code, Some(0), "{:#}", report["buckets"]);
    let (code, report) = notes_run(Notes {
        bug: true,
        ..Notes::default()
    });
    assert_eq!(code, Some(1));
    let found = tampering(&report);
    let at = |endpoint: &str, path: &str| {
        found.iter().any(|f| {
            f["endpoint"].as_str().unwrap().contains(endpoint) && f["witnessed"]["path"] == path
        })
    };
    assert!(at("PUT /notes/", "$.text"), "{found:#?}");
    assert!(at("PUT /users/", "$.email"), "{found:#?}");
    // Views and the declared `last_write` change too: never the evidence.
    let paths: Vec<&Value> = found.iter().map(|f| &f["witnessed"]["path"]).collect();
    assert!(
        !paths
            .iter()
            .any(|p| *p == "$.views" || *p == "$.last_write")
    );
}

#[test]
fn a_write_the_server_applies_late_is_seen_at_the_end_of_the_flow() {
    let (code, report) = notes_run(Notes {
        bug: true,
        late: true,
        ..Notes::default()
    });
    assert_eq!(code, Some(1));
    let late = tampering(&report).into_iter().find(|f| {
        f["endpoint"].as_str().unwrap().contains("PUT /notes/")
            && f["summary"].as_str().unwrap().contains("end of the flow")
    });
    assert!(late.is_some(), "{:#}", report["buckets"]);
}

/// Grants apply to writes as to reads: every patient books clinician#1,
/// who adds notes to their calls and ends one; clinician#0, whom no one
/// booked, ends one too. Only clinician#0's hang-up, with the fault on, is
/// tampering.
const GRANTS_SUITE: &str = r#"
description = "A clinician writes to their own patients' calls, and another to someone else's"
include = ["ACCOUNTS"]

[[steps]]
name = "book"
actor = "patient"
request = "POST /v1/appointments"
body = { clinician_id = "{{clinician#1.id}}", slot = "{{unique_time}}", reason = "{{canary}}: a sore throat" }
expect = { status = 201 }
capture = { appointment_id = "$.id", clinician_id = { json = "$.clinician_id", shared = true } }
grant_to = "{{clinician_id}}"

[[steps]]
name = "join as audio"
actor = "patient"
request = "POST /v1/appointments/{{appointment_id}}/consultation"
body = { mode = "audio" }
expect = { status = 201 }
capture = { consultation_id = "$.id" }

[[steps]]
name = "read own consultation"
actor = "patient"
request = "GET /v1/consultations/{{consultation_id}}"
expect = { status = 200 }

[[steps]]
name = "their clinician adds a note"
actor = "clinician"
instance = 1
request = "POST /v1/consultations/{{patient#0.consultation_id}}/notes"
body = { body = "{{canary}}: reviewed" }
expect = { status = 201 }

[[steps]]
name = "their clinician ends the call"
actor = "clinician"
instance = 1
request = "POST /v1/consultations/{{patient#0.consultation_id}}/end"
expect = { status = 200 }

[[steps]]
name = "another clinician ends a call"
actor = "clinician"
instance = 0
request = "POST /v1/consultations/{{patient#1.consultation_id}}/end"
"#;

#[test]
fn grants_apply_a_clinician_writes_to_their_patients_and_not_to_others() {
    let accounts = support::root().join("scenarios/lib/accounts.toml");
    let suite = GRANTS_SUITE.replace("ACCOUNTS", accounts.to_str().unwrap());
    for (fault, expected) in [(None, 0), (Some("end-by-stranger"), 1)] {
        let dir = tempdir("tamper-grants");
        let scenario = dir.join("grants.toml");
        std::fs::write(&scenario, &suite).unwrap();
        let mut args = vec!["--patients", "3", "--seed", "3", scenario.to_str().unwrap()];
        args.extend(fault.iter().flat_map(|f| ["--fault", *f]));
        let (code, report) = run(&dir, &args);
        assert_eq!(code, Some(expected), "{fault:?}: {:#}", report["buckets"]);
        let found = tampering(&report);
        if expected == 0 {
            assert!(found.is_empty());
            continue;
        }
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0]["observer"], "clinician#0");
        assert_eq!(found[0]["victim"], "patient#1");
        assert_eq!(found[0]["step"], "another clinician ends a call");
    }
}

/// The fuzzer finds a write fault from the no-probe suite (which writes
/// nothing of anyone else's) by borrowing an id into a write; its
/// reproduction shows the tampering again, and not against the fixed
/// clinic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_finds_tampering_that_replay_reproduces_and_the_fixed_clinic_does_not() {
    use crosstalk::session::{Exit, Fuzz, Replay, TargetSpec};
    let dir = tempdir("tamper-fuzz");
    let account = support::root().join("scenarios/no-probes/account.toml");
    let fuzz = Fuzz {
        seed: Some(2),
        // Bounded by programs; the time is a ceiling for a loaded machine.
        programs: Some(20_000),
        time: std::time::Duration::from_secs(3600),
        shrink_time: std::time::Duration::from_secs(600),
        max_findings: Some(1),
        corpus: dir.join("corpus"),
        findings: dir.join("found"),
        ..Fuzz::new(
            vec![account],
            TargetSpec::embedded(&["profile-update-idor"]),
        )
    };
    let outcome = fuzz.execute().await.unwrap();
    assert_eq!(outcome.exit, Exit::Found);
    let repro = support::walk(&dir.join("found"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "toml"))
        .expect("a reproduction file");
    assert!(
        repro.to_string_lossy().contains("tamper"),
        "{}",
        repro.display()
    );
    let script = std::fs::read_to_string(repro.with_extension("sh")).unwrap();
    assert!(
        script.contains("witness before: read own profile"),
        "{script}"
    );
    let replay = |faults: &[&str]| Replay {
        attempts: Some(3),
        ..support::replay(&repro, faults, &dir)
    };
    let still = replay(&["profile-update-idor"]).execute().await.unwrap();
    assert_eq!(still.exit, Exit::Found, "{}", still.describe());
    assert!(still.found.iter().all(|b| b.first.kind.harm()));
    let fixed = replay(&[]).execute().await.unwrap();
    assert_eq!(fixed.exit, Exit::Clean, "{}", fixed.describe());
}
