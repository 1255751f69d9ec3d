//! Expectations planned: each place a step looks at (its status, a JSONPath,
//! a header, the whole body) gets a [`Check`], a list of tests that must
//! all hold. Expected values are body templates, so `"{{user_id}}"` is
//! rendered for the instance and compared with its type.

use serde_json::Value;
use serde_json_path::JsonPath;

use super::build::build_body;
use super::{Body, toml_to_json};
use crate::scenario::{Located, Matcher, ScenarioError, Step};
use crate::template::Template;

#[derive(Debug, Clone, Default)]
pub struct ExpectPlan {
    pub status: Option<Check>,
    pub json: Vec<(String, JsonPath, Check)>,
    pub headers: Vec<(String, Check)>,
    pub body: Option<Check>,
}

impl ExpectPlan {
    /// Whether `status` is one the step expects (any, when it says none).
    pub fn status_ok(&self, status: u16) -> bool {
        self.status.as_ref().is_none_or(|check| {
            check
                .failure(
                    Some(&Value::from(status)),
                    &mut |b| Ok(b.literal()),
                    &|_| false,
                )
                .is_none()
        })
    }

    /// Every template the expectations hold.
    pub fn templates(&self) -> Vec<&Template> {
        let mut out = Vec::new();
        let checks = self.json.iter().map(|(_, _, c)| c);
        for check in checks.chain(self.headers.iter().map(|(_, c)| c)) {
            for test in &check.tests {
                match test {
                    Test::Equals(b) | Test::Not(b) => b.templates(&mut out),
                    Test::OneOf(bs) => bs.iter().for_each(|b| b.templates(&mut out)),
                    _ => {}
                }
            }
        }
        out
    }
}

/// Tests on one value, and how they were written (for messages).
#[derive(Debug, Clone)]
pub struct Check {
    pub tests: Vec<Test>,
    pub written: String,
}

#[derive(Debug, Clone)]
pub enum Test {
    Equals(Body),
    Not(Body),
    OneOf(Vec<Body>),
    Absent,
    Present,
    Matches(regex::Regex),
    Length(u64),
    OnlyMyCanaries,
}

/// Renders an expected value for the instance being judged.
pub type Render<'a> = dyn FnMut(&Body) -> Result<Value, crate::template::Unresolved> + 'a;

impl Check {
    /// Why `actual` (`None`: not there) fails the check, if it does.
    /// `foreign` says whether a value holds another instance's canary.
    pub fn failure(
        &self,
        actual: Option<&Value>,
        render: &mut Render<'_>,
        foreign: &dyn Fn(&Value) -> bool,
    ) -> Option<String> {
        let present = actual.filter(|v| !v.is_null());
        let shown = || present.map_or("nothing".to_string(), Value::to_string);
        let text = || present.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
        for test in &self.tests {
            let failed = match test {
                Test::Equals(body) => match render(body) {
                    Ok(want) if actual == Some(&want) => None,
                    Ok(want) => Some(format!("expected {want}, got {}", shown())),
                    Err(err) => Some(format!("the expected value has no value: {err}")),
                },
                Test::Not(body) => match render(body) {
                    Ok(want) if actual == Some(&want) => {
                        Some(format!("expected anything but {want}"))
                    }
                    Ok(_) => None,
                    Err(err) => Some(format!("the unwanted value has no value: {err}")),
                },
                Test::OneOf(bodies) => {
                    let wants: Result<Vec<Value>, _> = bodies.iter().map(&mut *render).collect();
                    match wants {
                        Ok(wants) if actual.is_some_and(|a| wants.contains(a)) => None,
                        Ok(wants) => Some(format!(
                            "expected one of {}, got {}",
                            Value::Array(wants),
                            shown()
                        )),
                        Err(err) => Some(format!("an expected value has no value: {err}")),
                    }
                }
                Test::Absent => present.map(|v| format!("expected nothing, got {v}")),
                Test::Present => present
                    .is_none()
                    .then(|| "expected a value, got nothing".into()),
                Test::Matches(re) => match text() {
                    Some(t) if re.is_match(&t) => None,
                    _ => Some(format!("expected a match for /{re}/, got {}", shown())),
                },
                Test::Length(n) => match present.and_then(length) {
                    Some(len) if len == *n => None,
                    Some(len) => Some(format!("expected length {n}, got length {len}")),
                    None => Some(format!("expected length {n}, got {}", shown())),
                },
                Test::OnlyMyCanaries => present
                    .filter(|v| foreign(v))
                    .map(|_| "expected no canary but the sender's own, got another's".into()),
            };
            if failed.is_some() {
                return failed;
            }
        }
        None
    }
}

fn length(value: &Value) -> Option<u64> {
    Some(match value {
        Value::Array(items) => items.len() as u64,
        Value::Object(map) => map.len() as u64,
        Value::String(text) => text.chars().count() as u64,
        _ => return None,
    })
}

pub(super) fn expectations(located: &Located<Step>) -> Result<ExpectPlan, ScenarioError> {
    let expect = &located.value.expect;
    let status = match &expect.status {
        None => None,
        Some(value) => Some(status_check(located, value)?),
    };
    let mut json = Vec::new();
    for (path, value) in &expect.json {
        let parsed = JsonPath::parse(path)
            .map_err(|err| located.error_at(path, format!("`{path}` is not a JSONPath: {err}")))?;
        json.push((path.clone(), parsed, check(located, path, value)?));
    }
    let mut headers = Vec::new();
    for (name, value) in &expect.headers {
        super::build::check_header_name(located, name)?;
        headers.push((name.to_ascii_lowercase(), check(located, name, value)?));
    }
    let body = match &expect.body {
        Some(matcher) => Some(matcher_check(located, "body", matcher)?),
        None => None,
    };
    Ok(ExpectPlan {
        status,
        json,
        headers,
        body,
    })
}

/// A value to compare with, or a matcher table.
fn check(located: &Located<Step>, at: &str, value: &toml::Value) -> Result<Check, ScenarioError> {
    let toml::Value::Table(table) = value else {
        return Ok(Check {
            tests: vec![Test::Equals(expected(located, value)?)],
            written: value.to_string(),
        });
    };
    let matcher: Matcher = toml::Value::Table(table.clone()).try_into().map_err(|err| {
        located
            .error_at(at, format!("expectation of `{at}`: {}", first_line(&err)))
            .with_help("a table is a matcher: equals, not, one_of, absent, present, matches, length, only_my_canaries; compare with an object by `{ equals = { … } }`")
    })?;
    matcher_check(located, at, &matcher)
}

fn first_line(err: &impl std::fmt::Display) -> String {
    let text = err.to_string();
    text.lines().last().unwrap_or_default().trim().to_string()
}

fn matcher_check(located: &Located<Step>, at: &str, m: &Matcher) -> Result<Check, ScenarioError> {
    let mut tests = Vec::new();
    let mut written = Vec::new();
    let mut add = |name: &str, shown: String, test: Test| {
        written.push(format!("{name} = {shown}"));
        tests.push(test);
    };
    if let Some(v) = &m.equals {
        add("equals", v.to_string(), Test::Equals(expected(located, v)?));
    }
    if let Some(v) = &m.not {
        add("not", v.to_string(), Test::Not(expected(located, v)?));
    }
    if let Some(vs) = &m.one_of {
        let bodies = vs
            .iter()
            .map(|v| expected(located, v))
            .collect::<Result<_, _>>()?;
        let shown = toml::Value::Array(vs.clone()).to_string();
        add("one_of", shown, Test::OneOf(bodies));
    }
    for (name, flag, yes, no) in [
        ("absent", m.absent, Test::Absent, Test::Present),
        ("present", m.present, Test::Present, Test::Absent),
    ] {
        if let Some(flag) = flag {
            add(name, flag.to_string(), if flag { yes } else { no });
        }
    }
    if let Some(pattern) = &m.matches {
        let re = regex::Regex::new(pattern).map_err(|err| {
            located.error_at(
                pattern,
                format!(
                    "`{pattern}` is not a regular expression: {}",
                    first_line(&err)
                ),
            )
        })?;
        add("matches", format!("{pattern:?}"), Test::Matches(re));
    }
    if let Some(n) = m.length {
        add("length", n.to_string(), Test::Length(n));
    }
    if m.only_my_canaries == Some(true) {
        add("only_my_canaries", "true".into(), Test::OnlyMyCanaries);
    }
    if tests.is_empty() {
        return Err(located.error_at(at, format!("the expectation of `{at}` tests nothing")));
    }
    Ok(Check {
        tests,
        written: format!("{{ {} }}", written.join(", ")),
    })
}

/// An expected value: a body template, so holes render typed.
fn expected(located: &Located<Step>, value: &toml::Value) -> Result<Body, ScenarioError> {
    build_body(located, value, &mut Vec::new())
}

/// `status`: a code, a list of codes, or a matcher over the code.
fn status_check(located: &Located<Step>, value: &toml::Value) -> Result<Check, ScenarioError> {
    let check = match value {
        toml::Value::Array(codes) => {
            let shown = value.to_string();
            let bodies = codes
                .iter()
                .map(|c| Body::Literal(toml_to_json(c)))
                .collect();
            Check {
                tests: vec![Test::OneOf(bodies)],
                written: shown,
            }
        }
        other => check(located, "status", other)?,
    };
    let mut codes = Vec::new();
    for test in &check.tests {
        match test {
            Test::Equals(b) | Test::Not(b) => codes.push(b),
            Test::OneOf(bs) => codes.extend(bs),
            _ => {}
        }
    }
    for code in codes {
        let valid = matches!(code.literal(), Value::Number(n) if n.as_u64().is_some_and(|c| (100..=599).contains(&c)));
        if !valid {
            let (shown, message) = match code {
                Body::Text(t) => (
                    format!("\"{}\"", t.source()),
                    format!(
                        "\"{}\" is text: a status code is a number such as 200",
                        t.source()
                    ),
                ),
                other => {
                    let shown = other.literal().to_string();
                    (shown.clone(), format!("{shown} is not an HTTP status code"))
                }
            };
            return Err(located.error_at(&shown, message));
        }
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plan::{Overrides, Plan};
    use crate::scenario::Scenario;

    /// The checks of one step expecting `json = { EXPECT }`, by JSONPath.
    fn checks(expect: &str) -> Vec<(String, Check)> {
        let text = format!(
            "[actors.a]\ncount = 1\n[[steps]]\nname = \"s\"\nactor = \"a\"\nrequest = \"GET /x\"\nexpect.json = {{ {expect} }}\n"
        );
        let plan = Plan::build(
            &Scenario::from_str("t", &text).unwrap(),
            &Overrides::default(),
        )
        .unwrap();
        let step = plan.steps.into_iter().next().unwrap();
        step.expect
            .json
            .into_iter()
            .map(|(p, _, c)| (p, c))
            .collect()
    }

    /// Whether the one check of `expect` passes `actual`, with canary
    /// "theirs" foreign.
    fn passes(expect: &str, actual: Option<Value>) -> bool {
        let (_, check) = checks(expect).pop().unwrap();
        let foreign = |v: &Value| v.to_string().contains("theirs");
        check
            .failure(actual.as_ref(), &mut |b| Ok(b.literal()), &foreign)
            .is_none()
    }

    #[test]
    fn each_matcher_passes_and_fails() {
        let cases: &[(&str, Value, Value)] = &[
            (r#""$.a" = 3"#, json!(3), json!("3")),
            (
                r#""$.a" = { equals = { b = 1 } }"#,
                json!({"b": 1}),
                json!({"b": 2}),
            ),
            (r#""$.a" = { not = "x" }"#, json!("y"), json!("x")),
            (r#""$.a" = { one_of = [1, 2] }"#, json!(2), json!(3)),
            (r#""$.a" = { present = true }"#, json!(0), Value::Null),
            (r#""$.a" = { absent = true }"#, Value::Null, json!(0)),
            (
                r#""$.a" = { matches = "^ab+c$" }"#,
                json!("abbc"),
                json!("abd"),
            ),
            (r#""$.a" = { length = 2 }"#, json!([1, 2]), json!("abc")),
            (
                r#""$.a" = { only_my_canaries = true }"#,
                json!("mine"),
                json!(["theirs"]),
            ),
            (
                r#""$.a" = { present = true, matches = "^7" }"#,
                json!(71),
                json!(17),
            ),
        ];
        for (expect, good, bad) in cases {
            assert!(
                passes(expect, Some(good.clone())),
                "{expect} should pass {good}"
            );
            assert!(
                !passes(expect, Some(bad.clone())),
                "{expect} should fail {bad}"
            );
        }
        assert!(passes(r#""$.a" = { absent = true }"#, None));
        assert!(!passes(r#""$.a" = { present = true }"#, None));
        assert!(!passes(r#""$.a" = { length = 0 }"#, None));
    }

    #[test]
    fn a_failure_says_what_was_expected_and_what_came() {
        let (_, check) = checks(r#""$.a" = { one_of = [1, 2] }"#).pop().unwrap();
        let why = check
            .failure(Some(&json!(5)), &mut |b| Ok(b.literal()), &|_| false)
            .unwrap();
        assert_eq!(why, "expected one of [1,2], got 5");
    }

    #[test]
    fn bad_matchers_are_refused_where_they_are_written() {
        for (expect, says) in [
            (r#""$.a" = { absnet = true }"#, "unknown field `absnet`"),
            (
                r#""$.a" = { matches = "(" }"#,
                "is not a regular expression",
            ),
            (
                r#""$.a" = { absent = false, only_my_canaries = false }"#,
                "",
            ),
            (r#""$.a" = {}"#, "tests nothing"),
        ] {
            let text = format!(
                "[actors.a]\ncount = 1\n[[steps]]\nname = \"s\"\nactor = \"a\"\nrequest = \"GET /x\"\nexpect.json = {{ {expect} }}\n"
            );
            let result = Plan::build(
                &Scenario::from_str("t", &text).unwrap(),
                &Overrides::default(),
            );
            match (says, result) {
                ("", Ok(_)) => {}
                (says, Err(err)) if !says.is_empty() => {
                    assert!(err.message().contains(says), "{expect}: {}", err.message());
                    assert!(
                        err.location().starts_with("t.toml:7:"),
                        "{}",
                        err.location()
                    );
                }
                (_, other) => panic!(
                    "{expect}: {:?}",
                    other.map(|_| ()).map_err(|e| e.to_string())
                ),
            }
        }
    }
}
