//! A persistent, cookie-session API over HTTP: the reference clinic in
//! cookie mode with its database in a file, driven by the shipped cookie
//! suite (`scenarios/cookie/`). Clean stays clean, in `run` and in `fuzz`
//! (where logins sent with someone else's cookie must not hand one
//! identity another's session); a fault is found.

use std::path::Path;
use std::process::Output;

use clinic::auth::Sessions;
use clinic::{Clinic, Config, Fault, Faults};

mod support;

use support::{tempdir, text};

const CROSSTALK: &str = env!("CARGO_BIN_EXE_crosstalk");

/// A cookie-mode clinic keeping its data in `dir/clinic.db`.
fn serve(dir: &Path, faults: Faults) -> String {
    let db = dir.join("clinic.db");
    support::serve(move || {
        let config = Config {
            db: Some(db),
            faults,
            sessions: Sessions::Cookie,
        };
        Clinic::new(config).unwrap().router()
    })
}

fn crosstalk(dir: &Path, args: &[&str]) -> Output {
    support::command(CROSSTALK)
        .args(args)
        .arg(support::root().join("scenarios/cookie"))
        .arg("--findings")
        .arg(dir.join("findings"))
        .output()
        .unwrap()
}

#[test]
fn the_cookie_suite_is_clean_against_a_clean_cookie_clinic_and_finds_a_fault() {
    let dir = tempdir("cookie-run");
    let clean = serve(&dir, Faults::none());
    let out = crosstalk(
        &dir,
        &[
            "run",
            "--target",
            &clean,
            "--no-snapshots",
            "--patients",
            "6",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    let dir = tempdir("cookie-fault");
    let faulty = serve(&dir, Faults::none().with(Fault::AppointmentIdor));
    let out = crosstalk(
        &dir,
        &[
            "run",
            "--target",
            &faulty,
            "--no-snapshots",
            "--patients",
            "6",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("[leak]"), "{stdout}");
}

#[test]
fn fuzzing_a_persistent_cookie_clinic_raises_no_false_leak() {
    let dir = tempdir("cookie-fuzz");
    let clean = serve(&dir, Faults::none());
    let mut args = vec![
        "fuzz",
        "--target",
        &clean,
        "--programs",
        "400",
        "--seed",
        "5",
    ];
    let corpus = dir.join("corpus");
    args.extend(["--corpus", corpus.to_str().unwrap()]);
    let out = crosstalk(&dir, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}
