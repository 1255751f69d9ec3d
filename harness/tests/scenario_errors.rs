//! Bad scenario files: each error names file, line and column and what was
//! expected, with the offending text underlined. Snapshots live in the
//! top-level snapshots/ directory.

use std::path::Path;

use crosstalk::plan::{Overrides, Plan};
use crosstalk::scenario::{Scenario, ScenarioError};

fn error_for(name: &str) -> ScenarioError {
    let path = Path::new("tests/fixtures/bad").join(format!("{name}.toml"));
    match Scenario::load(&path).and_then(|s| Plan::build(&s, &Overrides::default())) {
        Ok(_) => panic!("{name}.toml was accepted"),
        Err(err) => err,
    }
}

fn render(err: ScenarioError) -> String {
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .render_report(&mut out, &err)
        .unwrap();
    out
}

macro_rules! bad_input {
    ($test:ident, $file:literal, $location:literal) => {
        #[test]
        fn $test() {
            let err = error_for($file);
            assert_eq!(err.location(), $location, "{err}");
            insta::with_settings!({ snapshot_path => "../../snapshots/scenario-errors", prepend_module_to_snapshot => false }, {
                insta::assert_snapshot!($file, render(err));
            });
        }
    };
}

bad_input!(toml_syntax, "syntax", "tests/fixtures/bad/syntax.toml:7:29");
bad_input!(
    unknown_field,
    "unknown-field",
    "tests/fixtures/bad/unknown-field.toml:8:1"
);
bad_input!(
    unknown_actor,
    "unknown-actor",
    "tests/fixtures/bad/unknown-actor.toml:6:9"
);
bad_input!(
    unknown_variable,
    "unknown-variable",
    "tests/fixtures/bad/unknown-variable.toml:7:35"
);
bad_input!(
    unknown_pick,
    "unknown-pick",
    "tests/fixtures/bad/unknown-pick.toml:11:28"
);
bad_input!(
    broken_template,
    "broken-template",
    "tests/fixtures/bad/broken-template.toml:8:18"
);
bad_input!(
    bad_method,
    "bad-method",
    "tests/fixtures/bad/bad-method.toml:7:12"
);
bad_input!(
    bad_jsonpath,
    "bad-jsonpath",
    "tests/fixtures/bad/bad-jsonpath.toml:8:27"
);
bad_input!(
    missing_include,
    "missing-include",
    "tests/fixtures/bad/missing-include.toml:1:12"
);
bad_input!(
    wrong_type,
    "wrong-type",
    "tests/fixtures/bad/wrong-type.toml:2:9"
);

#[test]
fn a_missing_file_is_an_error_not_a_panic() {
    let err = Scenario::load(Path::new("tests/fixtures/bad/no-such-file.toml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("tests/fixtures/bad/no-such-file.toml: cannot read scenario file"),
        "{err}"
    );
}

#[test]
fn every_shipped_scenario_plans() {
    let plans = Plan::load_all(
        &[Path::new("../scenarios").to_path_buf()],
        &Overrides::default(),
    )
    .unwrap();
    assert!(plans.len() >= 3);
    for plan in &plans {
        assert!(
            plan.instances() >= 50,
            "{} has {} instances",
            plan.scenario,
            plan.instances()
        );
    }
}

/// A scenario made in memory (a fuzz program) has no text to point into:
/// its errors still say what is wrong, at the start of its name.
#[test]
fn a_scenario_made_in_memory_says_what_is_wrong_without_text_to_point_into() {
    use crosstalk::scenario::{Actor, Step};

    let step = Step {
        name: "read".into(),
        actor: "patient".into(),
        request: "GET /v1/patients/{{patient_id}}".into(),
        ..Default::default()
    };
    let actor: Actor = toml::from_str("count = 1").unwrap();
    let scenario = Scenario::generated(
        "made",
        "in memory",
        Default::default(),
        [("patient".to_string(), actor)],
        [vec![], vec![step], vec![]],
    );
    let err = Plan::build(&scenario, &Overrides::default()).unwrap_err();
    assert_eq!(err.location(), "made.toml:1:1", "{err}");
    assert!(err.message().contains("`patient_id`"), "{err}");
}
