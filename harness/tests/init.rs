//! `crosstalk init --openapi`: from the clinic's own document, a suite that
//! reaches every operation unedited, runs clean and catches faults by its
//! probes; from documents of other shapes (a cookie-session API with a form
//! login, an API with integer ids in a `data` envelope), suites that
//! `crosstalk check` accepts, with what could not be placed said.

mod support;

use std::path::{Path, PathBuf};

use support::{command, root, tempdir, text};

fn crosstalk() -> std::process::Command {
    command(env!("CARGO_BIN_EXE_crosstalk"))
}

/// `crosstalk init` of `document` into `dir`: its exit code and output.
fn init(document: &Path, dir: &Path, force: bool) -> (Option<i32>, String) {
    let mut cmd = crosstalk();
    cmd.args(["init", "--openapi"])
        .arg(document)
        .arg("--out")
        .arg(dir);
    if force {
        cmd.arg("--force");
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

fn written(dir: &Path) -> PathBuf {
    let files = support::walk(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn documents_of_other_shapes_give_suites_that_check() {
    for (fixture, recognised, unplaced) in [
        ("cookie-journal.yaml", "POST /register, POST /session", None),
        (
            "envelope-pharmacy.json",
            "POST /api/users, POST /api/auth/token",
            Some("GET /api/refills/{refill_id}: needs refill_id"),
        ),
    ] {
        let dir = tempdir("init-shapes");
        let document = root().join("harness/tests/fixtures/openapi").join(fixture);
        let (code, said) = init(&document, &dir, false);
        assert_eq!(code, Some(0), "{fixture}: {said}");
        assert!(said.contains(recognised), "{fixture}: {said}");
        if let Some(unplaced) = unplaced {
            assert!(
                said.contains(&format!("not placed: {unplaced}")),
                "{fixture}: {said}"
            );
        }
        let check = crosstalk()
            .arg("check")
            .arg(written(&dir))
            .output()
            .unwrap();
        assert!(check.status.success(), "{fixture}: {}", text(&check.stderr));
        let plan = text(&check.stdout);
        assert!(
            plan.contains("captures: token") || plan.contains("a cookie session"),
            "{plan}"
        );
    }
}

/// A suite generated from the clinic's own document, unedited: its
/// directory, the suite file and the document.
fn clinic_suite(name: &str) -> (PathBuf, String, String) {
    let dir = tempdir(name);
    let document = dir.join("openapi.json");
    std::fs::write(&document, clinic::openapi::document_json()).unwrap();
    let suite_dir = dir.join("suite");
    let (code, said) = init(&document, &suite_dir, false);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("sign-up and login: POST /v1/patients, POST /v1/auth/login"),
        "{said}"
    );
    let suite = written(&suite_dir).to_str().unwrap().to_string();
    (dir, suite, document.to_str().unwrap().to_string())
}

/// Clean over seeds 1 to 20, every operation of the document reached.
fn clean_over(seeds: std::ops::RangeInclusive<u32>) {
    let (dir, suite, document) = clinic_suite("init-clean");
    for seed in seeds {
        let seed = seed.to_string();
        let args = [
            "--seed",
            &seed,
            "--openapi",
            &document,
            "--require-coverage",
            &suite,
        ];
        let (code, report) = support::run_report(&dir.join(&seed), &args);
        assert_eq!(
            code,
            Some(0),
            "seed {seed}: {:#} {:#}",
            report["buckets"],
            report["coverage"]
        );
    }
}

#[test]
fn the_clinic_s_suite_unedited_reaches_every_operation_clean_seeds_1_to_10() {
    clean_over(1..=10);
}

#[test]
fn the_clinic_s_suite_unedited_reaches_every_operation_clean_seeds_11_to_20() {
    clean_over(11..=20);
}

#[test]
fn the_clinic_s_suite_unedited_catches_seven_original_faults_and_every_write_fault() {
    let (dir, suite, document) = clinic_suite("init-faults");
    // Each fault and the finding that shows it: a leak, a tamper or an
    // access, most of them by a probe. A misfiled recording shows in the
    // patient's list of recordings, on the first page or the next: which
    // depends on the order in which the clinic served the batch's switches.
    for (fault, findings) in [
        (
            "switch-owner",
            &["leak:list_mine", "leak:list_mine, next page"][..],
        ),
        ("appointment-idor", &["leak:probe: read_appointment"]),
        ("media-idor", &["access:probe: media"]),
        ("profile-cache", &["leak:me"]),
        ("status-filter", &["leak:list"]),
        ("cursor-pagination", &["leak:list_mine, next page"]),
        ("export-demographics", &["leak:export"]),
        ("appointment-write-idor", &["tamper:probe: reschedule"]),
        ("end-by-stranger", &["tamper:probe: end"]),
        ("profile-update-idor", &["tamper:probe: update_patient"]),
        ("password-change-idor", &["tamper:probe: change_password"]),
        ("recording-delete-idor", &["tamper:probe: delete"]),
    ] {
        let args = ["--seed", "1", "--fault", fault, &suite];
        let (code, report) = support::run_report(&dir.join(fault), &args);
        assert_eq!(code, Some(1), "{fault}");
        let found: Vec<String> = (report["buckets"].as_array().unwrap().iter())
            .map(|b| {
                format!(
                    "{}:{}",
                    b["first"]["kind"].as_str().unwrap(),
                    b["first"]["step"].as_str().unwrap()
                )
            })
            .collect();
        assert!(
            findings.iter().any(|f| found.contains(&f.to_string())),
            "{fault}: {found:?}"
        );
    }
    // Never over an existing suite, unless told.
    let suite_dir = Path::new(&suite).parent().unwrap().to_path_buf();
    let (code, said) = init(Path::new(&document), &suite_dir, false);
    assert_eq!(code, Some(2));
    assert!(said.contains("exists: pass --force"), "{said}");
    assert_eq!(init(Path::new(&document), &suite_dir, true).0, Some(0));
}

#[test]
fn what_is_not_an_openapi_document_is_refused_clearly() {
    let dir = tempdir("init-bad");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"openapi\": \"3.1.0\", \"paths\": 7}").unwrap();
    let (code, said) = init(&bad, &dir.join("out"), false);
    assert_eq!(code, Some(2));
    assert!(
        said.contains("is not an OpenAPI 3 document crosstalk can read"),
        "{said}"
    );
    assert!(!dir.join("out").exists());
}
