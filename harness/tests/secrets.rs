//! Credentials never reach an artifact: findings on the very steps that
//! carry them (sign-up with a password, login answering a token), a target
//! URL with a password in it, a secret variable, and a fuzz reproduction;
//! then every file and stream the runs wrote is searched for each value.

use std::path::Path;

use clinic::{Clinic, Fault, Faults};

mod support;

use support::{tempdir, text, walk};

const CROSSTALK: &str = env!("CARGO_BIN_EXE_crosstalk");
const PASSWORD: &str = "correct horse battery staple";
const SECRET_VAR: &str = "s3cr3t-note-value";
const USERINFO_PASSWORD: &str = "hunter2-userinfo";
const ENV_TOKEN: &str = "env-api-token-value";

/// Accounts whose sign-up and login both "fail" their expectations, so the
/// findings sit on the requests and answers that carry the credentials.
fn scenario(dir: &Path) -> String {
    let text = format!(
        r#"
[vars]
password = "{PASSWORD}"
note = {{ value = "{SECRET_VAR}", secret = true }}

[actors.patient]
count = 2
auth = {{ bearer = "{{{{token}}}}" }}

[[steps]]
name = "sign up"
actor = "patient"
request = "POST /v1/patients"
body = {{ name = "{{{{name}}}}", email = "{{{{canary}}}}@patients.test", date_of_birth = "{{{{date_of_birth}}}}", phone = "+44 7700 900000", password = "{{{{password}}}}" }}
expect = {{ status = 201 }}

[[steps]]
name = "log in"
actor = "patient"
request = "POST /v1/auth/login"
body = {{ email = "{{{{canary}}}}@patients.test", password = "{{{{password}}}}" }}
expect = {{ status = 201 }}
capture = {{ token = {{ json = "$.token", secret = true }} }}

[[steps]]
name = "sign up again"
actor = "patient"
request = "POST /v1/patients"
body = {{ name = "{{{{name}}}}", email = "{{{{canary}}}}@patients.test", date_of_birth = "{{{{date_of_birth}}}}", phone = "+44 7700 900000", password = "{{{{password}}}}" }}
expect = {{ status = 201 }}

[[steps]]
name = "read with a note"
actor = "patient"
request = "GET /v1/me"
headers = {{ x-note = "{{{{note}}}}", x-api = "{{{{env.CROSSTALK_TEST_API_TOKEN}}}}" }}
expect = {{ status = 299 }}
"#
    );
    let file = dir.join("secrets.toml");
    std::fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_string()
}

/// Fails if any credential value is in `haystack`; the clinic's tokens
/// are 64 hex digits.
fn assert_clean(what: &str, haystack: &str) {
    for value in [PASSWORD, SECRET_VAR, USERINFO_PASSWORD, ENV_TOKEN] {
        assert!(!haystack.contains(value), "{what} holds `{value}`");
    }
    let encoded = PASSWORD.replace(' ', "+");
    assert!(
        !haystack.contains(&encoded),
        "{what} holds the password form-encoded"
    );
    let token = haystack
        .split(|c: char| !c.is_ascii_hexdigit())
        .find(|run| run.len() >= 64);
    assert!(token.is_none(), "{what} holds a token: {token:?}");
}

fn all_files(dir: &Path) -> String {
    walk(dir)
        .iter()
        .map(|p| {
            format!(
                "== {}\n{}",
                p.display(),
                std::fs::read_to_string(p).unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn no_credential_reaches_any_report_log_snapshot_or_reproduction() {
    let served = support::serve(|| {
        Clinic::in_memory(Faults::none().with(Fault::AppointmentIdor))
            .unwrap()
            .router()
    });
    let target = served.replace("http://", &format!("http://admin:{USERINFO_PASSWORD}@"));
    // The scenario itself holds the secrets: it lives apart from the output.
    let file = scenario(&tempdir("secrets-input"));
    let dir = tempdir("secrets");
    let summary = dir.join("step-summary.md");
    let run = support::command(CROSSTALK)
        .args(["run", &file, "--target", &target])
        .arg("--findings")
        .arg(dir.join("findings"))
        .arg("--snapshots")
        .arg(dir.join("snapshots"))
        .arg("--json")
        .arg(dir.join("report.json"))
        .arg("--junit")
        .arg(dir.join("junit.xml"))
        .arg("--markdown")
        .arg(dir.join("summary.md"))
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("CROSSTALK_TEST_API_TOKEN", ENV_TOKEN)
        .output()
        .unwrap();
    let stdout = text(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&run.stderr)
    );
    // The findings are on the steps that carry the credentials.
    for step in ["log in", "sign up again", "read with a note"] {
        assert!(
            stdout.contains(&format!("step `{step}` expected status")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("[redacted]"), "{stdout}");

    let fuzz = support::command(CROSSTALK)
        .args(["fuzz", support::root().join("scenarios").to_str().unwrap()])
        .args([
            "--target",
            &target,
            "--programs",
            "20000",
            "--time",
            "1h",
            "--shrink-time",
            "10m",
            "--max-findings",
            "1",
            "--seed",
            "2",
        ])
        .arg("--corpus")
        .arg(dir.join("corpus"))
        .arg("--findings")
        .arg(dir.join("fuzz"))
        .output()
        .unwrap();
    assert_eq!(fuzz.status.code(), Some(1), "{}", text(&fuzz.stderr));
    let script = walk(&dir.join("fuzz"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "sh"))
        .expect("a reproduction script");
    let script = std::fs::read_to_string(script).unwrap();
    assert!(
        script.contains(r#"[ -n "${PASSWORD:-}" ] || cannot"#),
        "{script}"
    );

    assert_clean("run stdout", &stdout);
    assert_clean("run stderr", &text(&run.stderr));
    assert_clean("fuzz stdout", &text(&fuzz.stdout));
    assert_clean("fuzz stderr", &text(&fuzz.stderr));
    assert_clean("the files written", &all_files(&dir));
}
