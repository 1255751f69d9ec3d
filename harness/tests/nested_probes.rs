//! Nested resources: a server that checks the caller is the path's patient
//! but loads the encounter by its id alone is caught by the probe that
//! mixes owners (`/patients/{own id}/encounters/{another's id}`), for a
//! read (a leak) and for a write (tampering); the clean server is clean.

mod support;

use support::nested_api::{self, Faults, NestedApi};
use support::{run_report, tempdir};

const SUITE: &str = r#"
description = "Nested encounters"

[vars]
password = "correct horse battery staple"

[actors.patient]
count = 4
population = true
auth = { bearer = "{{access}}" }

[[steps]]
name = "register"
actor = "patient"
request = "POST /api/v2/register"
body = { email = "{{canary}}@patients.test", password = "{{password}}", fullName = "{{twin.name}}" }
expect = { status = 201 }
capture = { patient_id = "$.id" }

[[steps]]
name = "log in"
actor = "patient"
request = "POST /api/v2/token"
form = { grant_type = "password", username = "{{canary}}@patients.test", password = "{{password}}" }
expect = { status = 200 }
capture = { access = { json = "$.access_token", secret = true } }

[[steps]]
name = "open an encounter"
actor = "patient"
request = "POST /api/v2/patients/{{patient_id}}/encounters"
body = { reason = "{{canary}}: follow-up" }
expect = { status = 201 }
capture = { encounter_id = "$.data.id" }

[[steps]]
name = "read the encounter"
actor = "patient"
request = "GET /api/v2/patients/{{patient_id}}/encounters/{{encounter_id}}"
expect = { status = 200 }

[[steps]]
name = "amend the encounter"
actor = "patient"
request = "PATCH /api/v2/patients/{{patient_id}}/encounters/{{encounter_id}}"
body = { reason = "{{canary}}: follow-up, amended" }
expect = { status = 204 }
"#;

/// The suite against the nested API with `faults`: exit code and report.
fn run(name: &str, faults: Faults) -> (Option<i32>, serde_json::Value) {
    let dir = tempdir(name);
    let suite = dir.join("nested.toml");
    std::fs::write(&suite, SUITE).unwrap();
    let target = support::serve(move || nested_api::router(NestedApi::new(faults)));
    let args = [suite.to_str().unwrap(), "--target", &target, "--seed", "5"];
    run_report(&dir, &args)
}

/// The kinds of the report's buckets found by probes.
fn probe_kinds(report: &serde_json::Value) -> Vec<String> {
    (report["buckets"].as_array().unwrap().iter())
        .filter(|b| b["first"]["step"].as_str().unwrap().starts_with("probe: "))
        .map(|b| b["first"]["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_clean_nested_api_is_clean() {
    let (code, report) = run("nested-clean", Faults::default());
    assert_eq!(code, Some(0), "{report:#}");
}

#[test]
fn an_encounter_read_by_its_id_alone_leaks_to_a_probe_that_mixes_owners() {
    let faults = Faults {
        nested_read: true,
        ..Faults::default()
    };
    let (code, report) = run("nested-read", faults);
    assert_eq!(code, Some(1), "{report:#}");
    let kinds = probe_kinds(&report);
    assert!(
        kinds.iter().any(|k| k == "leak" || k == "access"),
        "{report:#}"
    );
    assert!(!kinds.iter().any(|k| k == "tamper"), "{report:#}");
}

#[test]
fn an_encounter_written_by_its_id_alone_is_tampering_seen_by_the_witness() {
    let faults = Faults {
        nested_write: true,
        ..Faults::default()
    };
    let (code, report) = run("nested-write", faults);
    assert_eq!(code, Some(1), "{report:#}");
    assert!(
        probe_kinds(&report).iter().any(|k| k == "tamper"),
        "{report:#}"
    );
}

/// The suite `init` writes, unedited, from the nested API's FastAPI-style
/// document (`422`s, `anyOf` nulls, an OAuth2 password grant with a form
/// body and a relative `tokenUrl` that takes the refresh grant too,
/// camelCase, an envelope, integer and ULID-like ids): every operation
/// reached, clean on the clean server over seeds 1 to 5, both faults caught.
#[test]
fn init_links_the_nested_document_and_its_suite_catches_both_faults() {
    let doc = support::root().join("harness/tests/fixtures/nested-openapi.json");
    let dir = tempdir("nested-init");
    let out = support::command(env!("CARGO_BIN_EXE_crosstalk"))
        .args(["init", "--openapi", doc.to_str().unwrap(), "--out"])
        .arg(dir.join("suite"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    let suite = dir.join("suite/nested-encounters.toml");
    let text = std::fs::read_to_string(&suite).unwrap();
    assert!(
        text.contains(r#"capture = { patient_id = "$.id" }"#),
        "{text}"
    );
    assert!(
        text.contains(r#"username = "{{canary}}@example.test""#),
        "{text}"
    );
    assert!(text.contains(r#"grant_type = "password""#), "{text}");
    // The token endpoint takes the refresh grant too: a step sends it.
    assert!(
        text.contains(
            r#"form = { grant_type = "refresh_token", refresh_token = "{{refresh_token}}" }"#
        ),
        "{text}"
    );
    let run = |name: &str, faults: Faults, seed: &str| {
        let dir = tempdir(name);
        let target = support::serve(move || nested_api::router(NestedApi::new(faults)));
        let args = [
            suite.to_str().unwrap(),
            "--target",
            &target,
            "--seed",
            seed,
            "--openapi",
            doc.to_str().unwrap(),
            "--require-coverage",
        ];
        run_report(&dir, &args)
    };
    for seed in ["1", "2", "3", "4", "5"] {
        let (code, report) = run("nested-init-clean", Faults::default(), seed);
        assert_eq!(code, Some(0), "seed {seed}: {report:#}");
    }
    let read = Faults {
        nested_read: true,
        ..Faults::default()
    };
    let (code, report) = run("nested-init-read", read, "1");
    assert_eq!(code, Some(1), "{report:#}");
    assert!(
        probe_kinds(&report)
            .iter()
            .any(|k| k == "leak" || k == "access"),
        "{report:#}"
    );
    let write = Faults {
        nested_write: true,
        ..Faults::default()
    };
    let (code, report) = run("nested-init-write", write, "1");
    assert_eq!(code, Some(1), "{report:#}");
    assert!(
        probe_kinds(&report).iter().any(|k| k == "tamper"),
        "{report:#}"
    );
}
