//! The JSON Schema editors check scenario files with
//! (`docs/scenario.schema.json`): it is what `crosstalk schema` prints, it
//! accepts every shipped, example and test scenario file that `run`
//! accepts, and it refuses a key `run` refuses.

mod support;

use std::path::{Path, PathBuf};

use crosstalk::plan::{Overrides, Plan, toml_to_json};
use crosstalk::scenario::Scenario;
use serde_json::Value;
use support::{command, root, walk};

fn shipped_schema() -> Value {
    let text = std::fs::read_to_string(root().join("docs/scenario.schema.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn as_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    toml_to_json(&toml::from_str::<toml::Value>(&text).unwrap())
}

/// Every scenario file that loads and plans: the shipped suite, the
/// reference's examples, and the test fixtures that are meant to be valid.
fn valid_files() -> Vec<PathBuf> {
    let dirs = ["scenarios", "docs/examples", "harness/tests/fixtures"];
    let mut files: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|d| walk(&root().join(d)))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter(|p| Scenario::load(p).is_ok_and(|s| Plan::build(&s, &Overrides::default()).is_ok()))
        .collect();
    // Included files hold only part of a scenario: still valid to the schema.
    files.extend(
        walk(&root().join("scenarios"))
            .into_iter()
            .filter(|p| p.components().any(|c| c.as_os_str() == "lib")),
    );
    files.sort();
    files.dedup();
    files
}

#[test]
fn the_shipped_schema_is_the_one_the_binary_prints() {
    let out = command(env!("CARGO_BIN_EXE_crosstalk"))
        .arg("schema")
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        printed == shipped_schema(),
        "docs/scenario.schema.json is stale: regenerate it with `cargo run -q -- schema > docs/scenario.schema.json`"
    );
}

#[test]
fn every_valid_scenario_file_validates() {
    let validator = jsonschema::validator_for(&shipped_schema()).unwrap();
    let files = valid_files();
    assert!(files.len() >= 10, "{files:?}");
    for file in &files {
        let errors: Vec<String> = validator
            .iter_errors(&as_json(file))
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
    }
}

#[test]
fn a_file_with_an_unknown_key_is_refused_by_the_schema_as_by_run() {
    let validator = jsonschema::validator_for(&shipped_schema()).unwrap();
    let good = r#"
[actors.patient]
count = 2
[[steps]]
name = "read"
actor = "patient"
request = "GET /me"
expect = { status = 200, json = { "$.id" = { present = true } } }
"#;
    let parse = |text: &str| toml_to_json(&toml::from_str::<toml::Value>(text).unwrap());
    assert!(validator.is_valid(&parse(good)));
    for (bad, key) in [
        (
            good.replace("request =", "requets = \"x\"\nrequest ="),
            "requets",
        ),
        (
            good.replace("count = 2", "count = 2\ncolour = \"red\""),
            "colour",
        ),
        (good.replace("present = true", "presnt = true"), "presnt"),
        (format!("sede = 1\n{good}"), "sede"),
    ] {
        assert!(
            !validator.is_valid(&parse(&bad)),
            "the schema accepts `{key}`"
        );
        let err = Scenario::from_str("bad", &bad)
            .map_err(|e| e.to_string())
            .and_then(|s| Plan::build(&s, &Overrides::default()).map_err(|e| e.to_string()))
            .err()
            .unwrap_or_else(|| panic!("run accepts `{key}`"));
        assert!(err.contains(key), "{err}");
    }
}
