//! Expect: the status, JSON values, headers and body the scenario expects.
//! Values are checked only when the status is as expected: a wrong status
//! is the one finding, not the first of many.
//!
//! Expected values are rendered for the sender, so `"{{user_id}}"` compares
//! with the value it captured, typed. A JSONPath that matches several
//! values is compared as the list of them; one that matches none is absent.

use serde_json::Value;

use super::{Context, Exchange, Flag, Verdict};
use crate::findings::FindingKind;
use crate::plan::{Check, ExpectPlan, Render};
use crate::resolver::Resolver;
use crate::transport::Response;

pub fn judge(exchange: &Exchange, cx: &Context<'_>, verdict: &mut Verdict) {
    let step = cx.step(exchange);
    // The sender's variables are read only when an expected value needs them.
    let vars = std::cell::OnceCell::new();
    let mut render = |body: &_| {
        let vars = vars.get_or_init(|| cx.world.state(exchange.sender).vars.clone());
        let resolver = Resolver::new(cx.world, exchange.sender, exchange.step.key(), vars);
        crate::request::render_body(body, &resolver)
    };
    let foreign = |value: &Value| {
        let text = match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        (cx.oracle.canaries_in("", text.as_bytes()).iter()).any(|id| *id != exchange.observer)
    };
    let response = &exchange.response;
    for (location, what) in failures(
        &step.expect,
        response,
        exchange.json(),
        &mut render,
        &foreign,
    ) {
        let summary = format!("step `{}` expected {what}", step.name);
        let flag = Flag::new(FindingKind::Expectation, location, summary);
        verdict.flags.push(flag);
    }
}

/// Where `response` fails `expect` and how: the status alone when it is
/// not as expected, else every value that fails.
pub(crate) fn failures(
    expect: &ExpectPlan,
    response: &Response,
    json: Option<&Value>,
    render: &mut Render<'_>,
    foreign: &dyn Fn(&Value) -> bool,
) -> Vec<(String, String)> {
    let status = response.status;
    if let Some(check) = &expect.status
        && !expect.status_ok(status)
    {
        return vec![(
            "status".into(),
            format!("status {}: got {status}", check.written),
        )];
    }
    let mut out = Vec::new();
    let mut test = |location: String, what: &str, check: &Check, actual: Option<Value>| {
        if let Some(why) = check.failure(actual.as_ref(), render, foreign) {
            out.push((location, format!("{what} {}: {why}", check.written)));
        }
    };
    for (text, path, check) in &expect.json {
        let actual = json.and_then(|json| match path.query(json).all().as_slice() {
            [] => None,
            [one] => Some((*one).clone()),
            many => Some(Value::Array(many.iter().map(|v| (*v).clone()).collect())),
        });
        test(format!("body {text}"), text, check, actual);
    }
    for (name, check) in &expect.headers {
        let actual = response.header(name).map(|v| Value::String(v.into()));
        test(
            format!("header {name}"),
            &format!("header {name}"),
            check,
            actual,
        );
    }
    if let Some(check) = &expect.body {
        let text = String::from_utf8_lossy(&response.body).into_owned();
        let actual = (!text.is_empty()).then_some(Value::String(text));
        test("body".into(), "the body", check, actual);
    }
    out
}
