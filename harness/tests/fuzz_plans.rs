//! The fuzzer never generates a program that does not plan: every shipped
//! and example scenario (forms, multipart and raw bodies, picks, setup,
//! cookies with a CSRF header, teardowns that need a capture) is fuzzed for a fixed number of programs
//! with a fixed seed (fresh bytes, the scripted flows, mutations of both,
//! each with operations removed as the shrinker does, and each after
//! another program as confirmation runs them), and every program must plan.

mod support;

use std::path::PathBuf;

use crosstalk::fuzzer::{self, Program, Vocabulary, mutate, random_bytes, seed_inputs};
use crosstalk::plan::Overrides;

/// Programs made from each vocabulary.
const PROGRAMS: u64 = 200;

/// A cookie suite whose sign-in hands out a CSRF token every write sends.
const CSRF: &str = r#"
[vars]
password = "pw-{{canary}}"

[actors.patient]
count = 3
population = true
auth = { cookies = true, header = { name = "x-csrf-token", value = "{{csrf}}" } }

[[steps]]
name = "create account"
actor = "patient"
request = "POST /accounts"
body = { login = "user-{{serial}}", password = "{{password}}", email = "{{canary}}@x.test" }
capture = { user_id = "$.id" }

[[steps]]
name = "sign in"
actor = "patient"
request = "POST /auth/session"
form = { login = "user-{{serial}}", password = "{{password}}" }
capture = { csrf = { json = "$.csrfToken", secret = true } }

[[steps]]
name = "write a note"
actor = "patient"
request = "POST /notes"
headers = { x-csrf-token = "{{csrf}}" }
body = { text = "{{canary}}", owner = "{{user_id}}" }
capture = { note_id = "$.id" }

[[steps]]
name = "upload"
actor = "patient"
request = "POST /notes/{{note_id}}/files"
multipart = { note = "{{canary}}", scan = { file = "scan.png", content_type = "image/png", size = 64 } }

[[steps]]
name = "raw"
actor = "patient"
request = "PUT /notes/{{note_id}}/raw"
raw = { text = "{{canary}} raw", content_type = "text/plain" }

[[steps]]
name = "read a peer's note"
actor = "patient"
pick = { other = "peer" }
request = "GET /notes/{{other.note_id}}"

[[teardown]]
name = "sign out"
actor = "patient"
request = "POST /auth/logout"
headers = { x-csrf-token = "{{csrf}}" }

[[teardown]]
name = "delete the note"
actor = "patient"
request = "DELETE /notes/{{note_id}}"
"#;

/// Every directory of scenario files under `scenarios/` (their `lib/`
/// holds includes, `flows/` the flows other files include) and the
/// documented examples.
fn suites() -> Vec<PathBuf> {
    fn dirs(dir: PathBuf, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        if entries
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "toml"))
        {
            out.push(dir.clone());
        }
        for sub in entries.into_iter().filter(|p| p.is_dir()) {
            let name = sub.file_name().unwrap().to_string_lossy().into_owned();
            if !["lib", "snapshots", "flows"].contains(&name.as_str()) {
                dirs(sub, out);
            }
        }
    }
    let mut out = Vec::new();
    dirs(support::root().join("scenarios"), &mut out);
    out.push(support::root().join("docs/examples"));
    out
}

fn vocabularies() -> Vec<Vocabulary> {
    let dir = support::tempdir("fuzz-plans");
    std::fs::write(dir.join("csrf.toml"), CSRF).unwrap();
    let overrides = Overrides {
        vars: [("admin_key".to_string(), "k".to_string())].into(),
        ..Default::default()
    };
    let mut paths = suites();
    paths.push(dir.join("csrf.toml"));
    let vocabs = fuzzer::vocabularies(&paths, &overrides).unwrap();
    assert!(vocabs.len() >= 20, "only {} scenarios", vocabs.len());
    vocabs
}

fn assert_plans(vocab: &Vocabulary, program: &Program, what: &str) {
    if let Err(err) = program.to_plan(vocab) {
        panic!(
            "{}: {what} does not plan: {err}\n{}",
            vocab.scenario,
            program.to_toml(vocab, "x")
        );
    }
}

#[test]
fn no_generated_program_fails_to_plan() {
    let vocabs = vocabularies();
    let seeds = seed_inputs(&vocabs);
    let mut planned = 0;
    for (v, vocab) in vocabs.iter().enumerate() {
        let mut parent = seeds[v].clone();
        for i in 0..PROGRAMS {
            let input = match i % 3 {
                0 => [
                    &[v as u8][..],
                    &random_bytes(7, i, 16 + (i as usize * 13) % 1300),
                ]
                .concat(),
                _ => mutate(7, i, &parent),
            };
            let program = Program::from_bytes(vocab, &input[1..]);
            assert_plans(vocab, &program, &format!("program {i}"));
            if i % 25 == 0 {
                for k in 0..program.ops.len() {
                    let mut ops = program.ops.clone();
                    ops.remove(k);
                    assert_plans(vocab, &Program { ops }, &format!("program {i} without {k}"));
                }
            }
            // A victim's program followed by an observer's, as a leak of
            // an earlier program's data is confirmed.
            let earlier = Program::from_bytes(vocab, &random_bytes(8, i, 400));
            assert_plans(
                vocab,
                &earlier.then(vocab, &program),
                &format!("{i} after another"),
            );
            parent = input;
            planned += 1;
        }
    }
    assert_eq!(planned, vocabs.len() as u64 * PROGRAMS);
}
