//! The scenario reference (`docs/scenarios.md`) holds only working
//! examples, and misses no key and no built-in: each TOML block plans as a
//! complete scenario and validates against the schema; every key the
//! schema knows and every built-in is named in it.

mod support;

use crosstalk::plan::{BUILTINS, Overrides, Plan, toml_to_json};
use crosstalk::scenario::{Scenario, schema};
use serde_json::Value;
use support::root;

fn reference() -> String {
    std::fs::read_to_string(root().join("docs/scenarios.md")).unwrap()
}

/// Each ```toml block of the reference.
fn examples(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```toml\n") {
        let body = &rest[start + 8..];
        let end = body.find("```").expect("a closed block");
        out.push(body[..end].to_string());
        rest = &body[end + 3..];
    }
    out
}

#[test]
fn every_example_plans_and_validates_against_the_schema() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let examples = examples(&reference());
    assert!(examples.len() >= 8, "{} examples", examples.len());
    for (n, example) in examples.iter().enumerate() {
        let scenario = Scenario::from_str(&format!("example-{n}"), example)
            .unwrap_or_else(|e| panic!("example {n}: {e}\n{example}"));
        Plan::build(&scenario, &Overrides::default())
            .unwrap_or_else(|e| panic!("example {n}: {e}\n{example}"));
        let json = toml_to_json(&toml::from_str(example).unwrap());
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "example {n}: {errors:?}");
    }
}

#[test]
fn every_key_and_built_in_is_documented() {
    let text = reference();
    let mut keys = Vec::new();
    let schema = schema();
    let mut tables = vec![&schema];
    tables.extend(schema["$defs"].as_object().unwrap().values());
    for table in tables {
        if let Some(Value::Object(properties)) = table.get("properties") {
            keys.extend(properties.keys().cloned());
        }
    }
    assert!(keys.len() > 40, "{keys:?}");
    for key in keys
        .iter()
        .map(String::as_str)
        .chain(BUILTINS.iter().copied())
    {
        assert!(
            text.contains(&format!("`{key}`")),
            "`{key}` is not in docs/scenarios.md"
        );
    }
}
