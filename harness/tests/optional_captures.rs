//! `optional = true` captures: a value that may be absent is no finding,
//! and the step that needs it does not apply to that instance; without
//! `optional`, the same absence is a finding and the step is skipped (the
//! run is not clean).

mod support;

use axum::Json;
use axum::extract::Query;
use axum::routing::get;
use serde_json::{Value, json};

use support::tempdir;

/// A list whose first page has a cursor only for some callers: the odd
/// `user` values get a second page.
fn api() -> axum::Router {
    async fn page(Query(q): Query<std::collections::HashMap<String, String>>) -> Json<Value> {
        let user: u64 = q.get("user").and_then(|u| u.parse().ok()).unwrap_or(0);
        match q.get("after") {
            Some(_) => Json(json!({"items": ["b"]})),
            None if user % 2 == 1 => Json(json!({"items": ["a"], "next": "cursor-1"})),
            None if user % 4 == 0 => Json(json!({"items": ["a"], "next": null})),
            None => Json(json!({"items": ["a"]})),
        }
    }
    axum::Router::new().route("/items", get(page))
}

fn suite(optional: bool) -> String {
    let capture = if optional {
        r#"{ json = "$.next", optional = true }"#
    } else {
        r#""$.next""#
    };
    format!(
        r#"
[actors.user]
count = 6
population = true

[[steps]]
name = "first page"
actor = "user"
request = "GET /items?user={{{{index}}}}"
expect = {{ status = 200 }}
capture = {{ next = {capture} }}

[[steps]]
name = "next page"
actor = "user"
request = "GET /items?user={{{{index}}}}&after={{{{next}}}}"
expect = {{ status = 200 }}
"#
    )
}

fn run(optional: bool) -> (Option<i32>, Value) {
    let dir = tempdir("optional");
    let file = dir.join("pages.toml");
    std::fs::write(&file, suite(optional)).unwrap();
    let url = support::serve(api);
    let args = ["--seed", "1", "--target", &url, file.to_str().unwrap()];
    support::run_report(&dir, &args)
}

#[test]
fn an_optional_capture_that_is_absent_is_no_finding_and_its_step_does_not_apply() {
    let (code, report) = run(true);
    assert_eq!(code, Some(0), "{:#}", report["buckets"]);
    let stats = &report["scenarios"][0];
    // Users 1, 3, 5 have a second page; 0, 2, 4 do not (absent or null).
    assert_eq!(stats["not_applicable"], 3, "{stats:#}");
    assert_eq!(stats["skipped"], 0);
    // Nine of the flow's own; the rest are probes of the cursor it names.
    let probes = stats["probes"].as_u64().unwrap();
    assert_eq!(stats["requests"].as_u64().unwrap() - probes, 9);
}

#[test]
fn the_same_absence_without_optional_is_a_finding_and_a_skipped_step() {
    let (code, report) = run(false);
    assert_eq!(code, Some(1));
    let kinds: Vec<&Value> = report["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["first"]["kind"])
        .collect();
    assert!(kinds.contains(&&json!("expectation")), "{kinds:?}");
    assert_eq!(report["scenarios"][0]["not_applicable"], 0);
}
