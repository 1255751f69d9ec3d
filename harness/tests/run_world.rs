//! One world per fuzz run: worlds that share a ledger (the programs of a run
//! against a target that keeps its data) know each other's identities, and
//! instances that log in to one account are one identity.

use std::sync::Arc;

use crosstalk::canary::{canary, run_id};
use crosstalk::oracle::Oracle;
use crosstalk::transport::{Request, Response};
use crosstalk::world::{Instance, Ledger};

/// A patient and a clinician, as one program of run `run` makes them.
fn program(run: &str, nonce: u64) -> Vec<Instance> {
    ["patient", "clinician"]
        .iter()
        .enumerate()
        .map(|(i, role)| Instance {
            world: "".into(),
            role: i,
            index: 0,
            label: format!("{role}#0"),
            canary: canary(run, nonce, i as u64),
        })
        .collect()
}

fn get(path: &str) -> Request {
    Request {
        method: http::Method::GET,
        path: path.to_string(),
        headers: vec![],
        body: bytes::Bytes::new(),
    }
}

fn answer(body: String) -> Response {
    Response {
        status: 200,
        headers: http::HeaderMap::from_iter([(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        )]),
        body: body.into(),
        truncated: false,
    }
}

struct Run {
    ledger: Arc<Ledger>,
    run: String,
}

impl Run {
    fn new() -> Run {
        Run {
            ledger: Arc::default(),
            run: run_id(7),
        }
    }

    /// Adds a program's instances; its first id and its oracle.
    fn program(&self, nonce: u64) -> (usize, Oracle) {
        let base = self.ledger.register(program(&self.run, nonce));
        let oracle =
            Oracle::new(&self.ledger, base..base + 2).with_others(self.ledger.clone(), &self.run);
        (base, oracle)
    }
}

#[test]
fn an_earlier_programs_patient_seen_by_a_later_programs_patient_is_a_leak() {
    let run = Run::new();
    let (first, _) = run.program(1);
    let (second, oracle) = run.program(2);
    let earlier = run.ledger.instance(first).canary.to_uppercase();
    let body = format!(r#"[{{"reason":"{earlier}: migraines"}}]"#);
    let seen = || {
        oracle.inspect(
            &run.ledger,
            second,
            &get("/v1/appointments"),
            &answer(body.clone()),
        )
    };
    assert!(
        seen().is_empty(),
        "while program 1 runs, a grant of its may still be on its way"
    );
    run.ledger.settle(first..first + 2);
    let found = seen();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].victim, first);
    assert_eq!(found[0].location, "body $[0].reason");

    let own = run.ledger.instance(second).canary.clone();
    let body = format!(r#"[{{"reason":"{own}: migraines"}}]"#);
    let clean = oracle.inspect(&run.ledger, second, &get("/v1/appointments"), &answer(body));
    assert!(clean.is_empty(), "its own data is no leak: {clean:?}");
}

#[test]
fn a_world_alone_does_not_know_another_programs_canaries() {
    let run = Run::new();
    let (first, _) = run.program(1);
    let (second, _) = run.program(2);
    let alone = Oracle::new(&run.ledger, second..second + 2);
    let earlier = run.ledger.instance(first).canary.clone();
    let body = format!(r#"{{"reason":"{earlier}"}}"#);
    let found = alone.inspect(&run.ledger, second, &get("/x"), &answer(body));
    assert!(found.is_empty(), "{found:?}");
}

fn login(body: &str) -> Request {
    Request {
        method: http::Method::POST,
        path: "/v1/auth/login".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: bytes::Bytes::from(body.to_string()),
    }
}

#[test]
fn instances_that_log_in_to_the_same_account_name_are_one_account_for_what_they_may_see() {
    let run = Run::new();
    let (first, _) = run.program(1);
    let (second, oracle) = run.program(2);
    run.ledger.settle(first..first + 2);
    let (patient, clinician, later_clinician) = (first, first + 1, second + 1);
    let identities = run.ledger.identities();
    // The patient booked with the seeded clinician in program 1; program 2's
    // clinician logs in to the same account and lists its bookings.
    let seeded = r#"{"email":"dr-2@clinic.test","password":"p"}"#;
    identities.logged_in(clinician, &login(seeded));
    run.ledger.grant(clinician, patient);
    let canary = run.ledger.instance(patient).canary.clone();
    let listing = || answer(format!(r#"[{{"reason":"{canary}"}}]"#));
    let seen = |observer| {
        oracle.inspect(
            &run.ledger,
            observer,
            &get("/v1/clinician/appointments"),
            &listing(),
        )
    };
    assert_eq!(
        seen(later_clinician).len(),
        1,
        "a different account may not see the patient"
    );
    // The same account name in another case, with a field more.
    let again = r#"{"email":"DR-2@clinic.test","password":"p","user_id":"u-17"}"#;
    identities.logged_in(later_clinician, &login(again));
    assert!(seen(later_clinician).is_empty(), "the same account may");
    identities.logged_in(
        second,
        &login(r#"{"email":"dr-3@clinic.test","password":"p"}"#),
    );
    assert_eq!(seen(second).len(), 1, "another login is another account");
    let merges = identities.merges();
    assert_eq!(merges.len(), 1, "{merges:?}");
    assert_eq!((merges[0].id, merges[0].into), (later_clinician, clinician));
}

#[test]
fn a_request_that_names_no_account_is_no_evidence_of_one() {
    let run = Run::new();
    let (first, _) = run.program(1);
    let identities = run.ledger.identities();
    // Two logouts (same method, path and empty body), two refresh grants
    // that send different tokens: none of them names an account.
    let logout = Request {
        method: http::Method::POST,
        path: "/api/logout".into(),
        headers: vec![],
        body: bytes::Bytes::new(),
    };
    identities.logged_in(first, &logout);
    identities.logged_in(first + 1, &logout);
    let refresh = |token: &str| Request {
        method: http::Method::POST,
        path: "/oauth/token".into(),
        headers: vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body: bytes::Bytes::from(format!("grant_type=refresh_token&refresh_token={token}")),
    };
    identities.logged_in(first, &refresh("rt_aaaaaaaaaaaa"));
    identities.logged_in(first + 1, &refresh("rt_bbbbbbbbbbbb"));
    assert!(identities.merges().is_empty(), "{:?}", identities.merges());
    assert!(!run.ledger.visible(first, first + 1));
    // A form login by user name does name one.
    let form = |user: &str| Request {
        body: bytes::Bytes::from(format!("grant_type=password&username={user}&password=x")),
        ..refresh("")
    };
    identities.logged_in(first, &form("ava"));
    identities.logged_in(first + 1, &form("Ava"));
    assert!(
        run.ledger.visible(first, first + 1),
        "one user name, any case"
    );
}
