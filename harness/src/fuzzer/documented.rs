//! Documented operations as vocabulary (`crosstalk fuzz --openapi DOC`):
//! the operations of an API's OpenAPI document that a suite never sends
//! join its vocabulary, so a program can call them with the values the
//! run captures (the profile update a suite of bookings never makes, sent
//! with another patient's id). The steps are the ones `init` writes for
//! them ([`crate::init::unsent`]), each placed in its actor's flow right
//! after the step that captures the last value it needs, so walking a
//! flow reaches them without a detour. A step that does not plan with the
//! suite is left out and named, never a program that fails to plan.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::coverage::Operations;
use crate::init::unsent::{self, Actor};
use crate::plan::{Overrides, Plan};
use crate::scenario::{Located, Scenario, SourceFile, Step};
use crate::template::{Expr, Template};

use super::vocabulary::template_strings;

/// What the document added to a scenario.
#[derive(Debug, Default)]
pub struct Added {
    /// The steps added, by name.
    pub steps: Vec<String>,
    /// Operations left out, each with why.
    pub left_out: Vec<String>,
}

/// Adds to `scenario` a step for every operation of the document `text`
/// that its steps never send.
pub fn extend(scenario: &mut Scenario, text: &str, overrides: &Overrides) -> Result<Added, String> {
    let operations = Operations::parse(text)?;
    let sent: BTreeSet<String> = (scenario.setup.iter())
        .chain(&scenario.steps)
        .chain(&scenario.teardown)
        .filter_map(|step| {
            let (method, path) = step.value.request.split_once(' ')?;
            operations.operation_of(method, &without_holes(path))
        })
        .collect();
    let mut actors: Vec<(bool, Actor)> = (scenario.actors.iter())
        .map(|(name, actor)| {
            let known = known(scenario, name);
            (
                !actor.value.population,
                Actor {
                    name: name.clone(),
                    known,
                    password: password(scenario, name),
                },
            )
        })
        .collect();
    // Population actors first: theirs is the data at stake.
    actors.sort_by_key(|(later, _)| *later);
    let actors: Vec<Actor> = actors.into_iter().map(|(_, a)| a).collect();
    let written = unsent::steps(text, &sent, &actors)?;
    let file = Arc::new(SourceFile::new(
        format!("{} (from --openapi)", scenario.name).into(),
        String::new(),
    ));
    let mut added = Added {
        left_out: written.unplaced,
        ..Added::default()
    };
    for step in written.steps {
        let at = place(scenario, &step);
        scenario.steps.insert(at, Located::at_start(&file, step));
        keep_if_planned(scenario, overrides, &mut added, |s| &mut s.steps, at);
    }
    for step in written.teardown {
        scenario.teardown.push(Located::at_start(&file, step));
        let at = scenario.teardown.len() - 1;
        keep_if_planned(scenario, overrides, &mut added, |s| &mut s.teardown, at);
    }
    Ok(added)
}

/// Keeps the step just put at `at` in `list` if the scenario still plans.
fn keep_if_planned(
    scenario: &mut Scenario,
    overrides: &Overrides,
    added: &mut Added,
    list: fn(&mut Scenario) -> &mut Vec<Located<Step>>,
    at: usize,
) {
    match Plan::build(scenario, overrides) {
        Ok(_) => added.steps.push(list(scenario)[at].value.name.clone()),
        Err(err) => {
            let step = list(scenario).remove(at).value;
            added.left_out.push(format!("{}: {err}", step.request));
        }
    }
}

/// Where a step of `step.actor` goes: right after the last step of that
/// actor that captures a value it sends or its credential, after the steps
/// added there before it; else after the actor's last step.
fn place(scenario: &Scenario, step: &Step) -> usize {
    let mut uses = own_vars(&template_strings(step));
    if let Some(auth) = (scenario.actors.get(&step.actor)).and_then(|a| a.value.auth.as_ref()) {
        let header = auth.header.as_ref().map(|h| h.value.clone());
        uses.extend(own_vars(
            &auth
                .bearer
                .iter()
                .cloned()
                .chain(header)
                .collect::<Vec<_>>(),
        ));
    }
    let steps = &scenario.steps;
    let ours = |i: &usize| steps[*i].value.actor == step.actor;
    let feeds = |i: &usize| steps[*i].value.capture.keys().any(|k| uses.contains(k));
    let anchor = (0..steps.len()).filter(ours).rfind(feeds);
    let Some(anchor) = anchor.or_else(|| (0..steps.len()).rfind(ours)) else {
        return steps.len();
    };
    // Past the documented steps already added after the same anchor.
    let documented = |i: &usize| {
        steps[*i]
            .value
            .name
            .starts_with(&format!("{}: ", step.actor))
    };
    (anchor + 1..steps.len())
        .find(|i| !documented(i))
        .unwrap_or(steps.len())
}

/// The variables of an actor's instances: what its steps capture, and the
/// scenario's own.
fn known(scenario: &Scenario, actor: &str) -> BTreeSet<String> {
    let steps = scenario.steps.iter().chain(&scenario.teardown);
    let captured =
        (steps.filter(|s| s.value.actor == actor)).flat_map(|s| s.value.capture.keys().cloned());
    scenario.vars.keys().cloned().chain(captured).collect()
}

/// The password `actor`'s accounts have: what its first step that sends a
/// password field (its sign-up or login) sends there.
fn password(scenario: &Scenario, actor: &str) -> Option<String> {
    let steps = scenario.setup.iter().chain(&scenario.steps);
    steps.filter(|s| s.value.actor == actor).find_map(|s| {
        let body = s.value.body.as_ref().and_then(toml::Value::as_table);
        let fields = body
            .into_iter()
            .flatten()
            .chain(s.value.form.iter().flatten());
        fields
            .filter(|(key, _)| crate::init::is_password(key))
            .find_map(|(_, value)| value.as_str().map(str::to_string))
    })
}

/// The plain variables the templates in `texts` use.
fn own_vars(texts: &[String]) -> BTreeSet<String> {
    let templates = texts.iter().filter_map(|t| Template::parse(t).ok());
    let exprs: Vec<Expr> = templates
        .flat_map(|t| t.exprs().cloned().collect::<Vec<_>>())
        .collect();
    (exprs.into_iter())
        .filter_map(|e| match e {
            Expr::Var(name) => Some(name),
            _ => None,
        })
        .collect()
}

/// A request path with each `{{ }}` hole made a plain segment value.
fn without_holes(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        out.push('x');
        rest = rest[start..]
            .find("}}")
            .map_or("", |end| &rest[start + end + 2..]);
    }
    out + rest
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITE: &str = r#"
[vars]
password = "pw"

[actors.patient]
count = 2
population = true
auth = { bearer = "{{token}}" }

[[steps]]
name = "sign up"
actor = "patient"
request = "POST /users"
body = { email = "{{canary}}@x.test", password = "{{password}}" }
capture = { user_id = "$.id" }

[[steps]]
name = "log in"
actor = "patient"
request = "POST /login"
body = { email = "{{canary}}@x.test", password = "{{password}}" }
capture = { token = { json = "$.token", secret = true } }

[[steps]]
name = "write a note"
actor = "patient"
request = "POST /notes"
body = { text = "{{canary}}" }
capture = { note_id = "$.id" }

[[steps]]
name = "list notes"
actor = "patient"
request = "GET /notes"
"#;

    const DOCUMENT: &str = r#"
openapi: 3.0.3
info: { title: Notes, version: "1" }
paths:
  /users:
    post:
      operationId: sign_up
      requestBody: { content: { application/json: { schema: { type: object, properties: { email: { type: string }, password: { type: string } } } } } }
      responses: { "201": { description: ok } }
  /login:
    post:
      operationId: log_in
      requestBody: { content: { application/json: { schema: { type: object, properties: { email: { type: string }, password: { type: string } } } } } }
      responses: { "200": { description: ok } }
  /notes:
    get: { operationId: list_notes, responses: { "200": { description: ok } } }
    post: { operationId: write_note, responses: { "201": { description: ok } } }
  /notes/{id}:
    get: { operationId: read_note, responses: { "200": { description: ok } } }
  /me:
    get: { operationId: me, responses: { "200": { description: ok } } }
  /things/{thing_id}:
    get: { operationId: thing, responses: { "200": { description: ok } } }
"#;

    fn names(scenario: &Scenario) -> Vec<&str> {
        (scenario.steps.iter())
            .map(|s| s.value.name.as_str())
            .collect()
    }

    /// Each operation the suite never sends, after the step that captures
    /// what it needs; what nothing fills, named; the suite's own kept.
    #[test]
    fn unsent_operations_join_the_flow_after_what_they_need() {
        let mut scenario = Scenario::from_str("notes", SUITE).unwrap();
        let added = extend(&mut scenario, DOCUMENT, &Overrides::default()).unwrap();
        assert_eq!(added.steps, ["patient: read_note", "patient: me"]);
        assert_eq!(
            names(&scenario),
            [
                "sign up",
                "log in",
                "patient: me",
                "write a note",
                "patient: read_note",
                "list notes"
            ]
        );
        let read = &scenario.steps[4].value;
        assert_eq!(read.request, "GET /notes/{{note_id}}");
        assert_eq!(added.left_out.len(), 1, "{:?}", added.left_out);
        assert!(added.left_out[0].starts_with("GET /things/{thing_id}: needs thing_id"));
        Plan::build(&scenario, &Overrides::default()).unwrap();
    }

    #[test]
    fn a_path_with_holes_reads_as_a_request_path() {
        assert_eq!(
            without_holes("/v1/appointments/{{peer.appointment_id}}/consultation?x={{a}}"),
            "/v1/appointments/x/consultation?x=x"
        );
        assert_eq!(without_holes("/v1/me"), "/v1/me");
    }
}
