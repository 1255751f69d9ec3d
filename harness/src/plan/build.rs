//! Checking a scenario's steps as they are planned: every hole names a
//! variable that exists by then, every method, header, JSONPath and status
//! is valid, and errors point at the file, line and column.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use serde_json_path::JsonPath;

use super::*;
use crate::scenario::{Capture, Located, ScenarioError, Step};
use crate::template::{Expr, Template};

/// Which variables exist so far, per role, as steps are checked in order.
pub(super) struct Known<'a> {
    roles: &'a [Role],
    scenario_vars: &'a BTreeMap<String, Value>,
    captured: Vec<BTreeSet<String>>,
    /// Captured by any step of the role, earlier or later (for auth headers).
    captured_anywhere: Vec<BTreeSet<String>>,
    /// Picks named so far, in order.
    picks: Vec<(String, PickOf)>,
    /// Captured by a step sent once (`[[setup]]`): every step may use them.
    fixtures: BTreeSet<String>,
}

impl<'a> Known<'a> {
    pub(super) fn new(roles: &'a [Role], scenario_vars: &'a BTreeMap<String, Value>) -> Self {
        Self {
            roles,
            scenario_vars,
            captured: vec![BTreeSet::new(); roles.len()],
            captured_anywhere: vec![BTreeSet::new(); roles.len()],
            picks: Vec::new(),
            fixtures: BTreeSet::new(),
        }
    }

    pub(super) fn into_picks(self) -> Vec<(String, PickOf)> {
        self.picks
    }

    /// The role a pick names for a sender of `role`.
    fn picked_role(&self, name: &str, role: Option<usize>) -> Option<usize> {
        let (_, of) = self.picks.iter().find(|(n, _)| n == name)?;
        match of {
            PickOf::Peer => role,
            PickOf::Role(r) => Some(*r),
        }
    }

    /// Records a step's picks. A pick names the same instance wherever it
    /// is used, so it may be declared again alike (fuzz programs repeat
    /// and reorder steps), never differently, and never as an actor's name.
    pub(super) fn add_picks(&mut self, located: &Located<Step>) -> Result<(), ScenarioError> {
        let Ok(role) = actor_role(located, self.roles) else {
            return Ok(()); // reported when the step is planned
        };
        for (name, of) in &located.value.pick {
            let taken = role_index(self.roles, name).is_some()
                || ["peer", "env", "twin"].contains(&name.as_str());
            let plain = (name.chars()).all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if taken || !plain {
                return Err(located.error_at(
                    name,
                    format!("`{name}` cannot name a pick: it is an actor, `peer`, `env`, `twin`, or not a plain name"),
                ));
            }
            let of = match of.as_str() {
                "peer" if self.roles[role].count < 2 => {
                    return Err(located.error_at(
                        of,
                        format!(
                            "actor `{}` has one instance: it has no peer to pick",
                            self.roles[role].name
                        ),
                    ));
                }
                "peer" => PickOf::Peer,
                actor => PickOf::Role(role_index(self.roles, actor).ok_or_else(|| {
                    let names: Vec<&str> = self.roles.iter().map(|r| r.name.as_str()).collect();
                    located
                        .error_at(
                            of,
                            format!("`pick` takes `peer` or an actor, not `{actor}`"),
                        )
                        .with_help(format!("actors: {}", names.join(", ")))
                })?),
            };
            match self.picks.iter().find(|(n, _)| n == name) {
                None => self.picks.push((name.clone(), of)),
                Some((_, earlier)) if *earlier == of => {}
                Some(_) => {
                    return Err(located.error_at(
                        name,
                        format!("`{name}` is picked differently by an earlier step"),
                    ));
                }
            }
        }
        Ok(())
    }

    pub(super) fn check<T>(
        &self,
        at: &Located<T>,
        expr: &Expr,
        role: Option<usize>,
        template: &str,
        anywhere: bool,
    ) -> Result<(), ScenarioError> {
        let Some((message, help)) = self.problem(expr, role, anywhere) else {
            return Ok(());
        };
        // Point at the hole itself, inside its template.
        let error = at.error_within(template, &expr.to_string(), message);
        Err(match help {
            Some(help) => error.with_help(help),
            None => error,
        })
    }

    /// What is wrong with a hole, with a hint, if anything.
    fn problem(
        &self,
        expr: &Expr,
        role: Option<usize>,
        anywhere: bool,
    ) -> Option<(String, Option<String>)> {
        if role.is_none() {
            return self.once_problem(expr);
        }
        let captured = |r: usize| {
            if anywhere {
                &self.captured_anywhere[r]
            } else {
                &self.captured[r]
            }
        };
        match expr {
            Expr::Var(name) => {
                let ok = BUILTINS.contains(&name.as_str())
                    || self.scenario_vars.contains_key(name)
                    || self.fixtures.contains(name)
                    || role.is_some_and(|r| captured(r).contains(name));
                let role_name = role.map(|r| self.roles[r].name.as_str()).unwrap_or("?");
                let help = format!(
                    "a variable is a built-in ({}), a [vars] entry, a --var, or captured by an earlier step of actor `{role_name}`",
                    BUILTINS.join(", ")
                );
                (!ok).then(|| (format!("unknown variable `{name}`"), Some(help)))
            }
            Expr::Env(name) => std::env::var_os(name)
                .is_none()
                .then(|| (format!("environment variable `{name}` is not set"), None)),
            Expr::Peer(var) => {
                let r = role.expect("peer is only checked inside steps");
                let name = &self.roles[r].name;
                (!captured(r).contains(var) && !BUILTINS.contains(&var.as_str())).then(|| {
                    let message =
                        format!("`peer.{var}`: no earlier step of actor `{name}` captures `{var}`");
                    (message, None)
                })
            }
            Expr::Pick { role: name, var } if self.picked_role(name, role).is_some() => {
                let picked = self.picked_role(name, role).expect("checked just above");
                let actor = &self.roles[picked].name;
                (!captured(picked).contains(var) && !BUILTINS.contains(&var.as_str())).then(|| {
                    let message = format!(
                        "`{name}.{var}`: `{name}` picks an instance of `{actor}`, and no earlier step of `{actor}` captures `{var}`"
                    );
                    (message, None)
                })
            }
            Expr::Pick { role: other, var }
            | Expr::Of {
                role: other, var, ..
            } => self.other_actor_problem(expr, other, var, captured),
        }
    }

    /// What is wrong with a hole of a step sent once, by no instance.
    fn once_problem(&self, expr: &Expr) -> Option<(String, Option<String>)> {
        let help = || {
            Some("a step sent once may use [vars], --var, env.NAME, run_id and what earlier steps sent once captured".to_string())
        };
        match expr {
            Expr::Var(name)
                if name == "run_id"
                    || self.scenario_vars.contains_key(name)
                    || self.fixtures.contains(name) =>
            {
                None
            }
            Expr::Env(_) => self.problem(expr, Some(0), false),
            other => Some((
                format!("`{other}`: a step sent once belongs to no instance"),
                help(),
            )),
        }
    }

    /// What is wrong with `ROLE.VAR` or `ROLE#N.VAR`, if anything.
    fn other_actor_problem<'c>(
        &self,
        expr: &Expr,
        other: &str,
        var: &str,
        captured: impl Fn(usize) -> &'c BTreeSet<String>,
    ) -> Option<(String, Option<String>)> {
        let hole = expr.to_string();
        let Some(o) = role_index(self.roles, other) else {
            let names: Vec<&str> = self.roles.iter().map(|r| r.name.as_str()).collect();
            return Some((
                format!("unknown actor `{other}` in `{other}.{var}`"),
                Some(format!("actors: {}", names.join(", "))),
            ));
        };
        if !captured(o).contains(var) && !BUILTINS.contains(&var) {
            let message = format!("`{hole}`: no earlier step of actor `{other}` captures `{var}`");
            return Some((message, None));
        }
        let count = self.roles[o].count;
        match expr {
            Expr::Of { index, .. } if *index >= count => Some((
                format!("`{hole}`: actor `{other}` has {count} instances, numbered from 0"),
                None,
            )),
            _ => None,
        }
    }
}

pub(super) fn parse_template<T>(at: &Located<T>, text: &str) -> Result<Template, ScenarioError> {
    Template::parse(text).map_err(|err| {
        let hole = text.get(err.offset..err.offset + err.len).unwrap_or(text);
        at.error_at(hole, err.message)
    })
}

pub(super) fn check_header_name<T>(at: &Located<T>, name: &str) -> Result<(), ScenarioError> {
    http::HeaderName::from_bytes(name.as_bytes())
        .map(|_| ())
        .map_err(|_| at.error_at(name, format!("`{name}` is not a valid header name")))
}

/// What a header value says literally must be valid HTTP: a line break or
/// another control character would be refused at every send (a rendered
/// value is checked again then).
fn check_header_value<T>(at: &Located<T>, value: &str) -> Result<(), ScenarioError> {
    let literal: String = value
        .split("{{")
        .map(|part| part.split_once("}}").map_or(part, |(_, after)| after))
        .collect();
    match literal.chars().find(|c| c.is_control() && *c != '\t') {
        Some(c) => Err(at.error_at(
            value,
            format!(
                "a header value must not hold {}: HTTP refuses it",
                c.escape_default()
            ),
        )),
        None => Ok(()),
    }
}

/// Plans a step: sent by each instance of its actor, or `once` by none.
pub(super) fn build_step(
    located: &Located<Step>,
    roles: &[Role],
    known: &mut Known<'_>,
    once: bool,
) -> Result<PlanStep, ScenarioError> {
    let step = &located.value;
    let sender = match once {
        true => {
            sent_once(located)?;
            None
        }
        false => Some(actor_role(located, roles)?),
    };
    // A step sent once is planned as if by the first role, which it never uses.
    let role = sender.unwrap_or(0);
    let (method, path) = request_line(located)?;
    let mut templates = vec![path.clone()];
    let mut refs = Vec::new();
    let mut headers = Vec::new();
    for (name, value) in &step.headers {
        check_header_name(located, name)?;
        check_header_value(located, value)?;
        let t = parse_template(located, value)?;
        templates.push(t.clone());
        headers.push((name.to_ascii_lowercase(), t));
    }
    let query = payload::pairs(located, &step.query)?;
    query.iter().for_each(|(_, b)| b.templates(&mut refs));
    let body = payload::payload(located)?;
    if let Some(body) = &body {
        body.templates(&mut refs);
    }
    let expect = expect::expectations(located)?;
    refs.extend(expect.templates());
    templates.extend(refs.into_iter().cloned());
    for template in &templates {
        for expr in template.exprs() {
            known.check(located, expr, sender, template.source(), false)?;
        }
    }
    let captures = captures(located, roles, role)?;
    for capture in &captures {
        let var = capture.var.clone();
        match sender {
            Some(role) => {
                known.captured[role].insert(var.clone());
                known.captured_anywhere[role].insert(var);
            }
            None => {
                known.fixtures.insert(var);
            }
        }
    }
    // A grant may name a value this very step captured.
    let grant_to = match &step.grant_to {
        Some(text) => {
            let t = parse_template(located, text)?;
            for expr in t.exprs() {
                known.check(located, expr, sender, t.source(), false)?;
            }
            Some(t)
        }
        None => None,
    };
    let credentials = credentials(located, roles, role, &known.picks)?;
    let volatile = json_paths(located, &step.volatile)?;
    let public = json_paths(located, &step.public)?;
    let (line, col) = located.file.line_col(located.span.start);
    Ok(PlanStep {
        name: step.name.clone(),
        role,
        method,
        path,
        query,
        headers,
        body,
        expect,
        captures,
        grant_to,
        instance: step.instance,
        credentials,
        concurrent: step.concurrent,
        probe: step.probe.unwrap_or(true),
        volatile,
        public,
        location: format!("{}:{line}:{col}", located.file.path.display()),
        source: step.clone(),
    })
}

/// Each of `paths` parsed as a JSONPath, as written beside it.
fn json_paths(
    located: &Located<Step>,
    paths: &[String],
) -> Result<Vec<(String, JsonPath)>, ScenarioError> {
    paths
        .iter()
        .map(|path| {
            JsonPath::parse(path)
                .map(|parsed| (path.clone(), parsed))
                .map_err(|err| located.error_at(path, format!("`{path}` is not a JSONPath: {err}")))
        })
        .collect()
}

/// A step sent once names no actor, instance, credentials, pick or grant.
fn sent_once(located: &Located<Step>) -> Result<(), ScenarioError> {
    let step = &located.value;
    let keys = [
        ("actor", !step.actor.is_empty()),
        ("instance", step.instance.is_some()),
        ("credentials", step.credentials.is_some()),
        ("pick", !step.pick.is_empty()),
        ("grant_to", step.grant_to.is_some()),
    ];
    match keys.iter().find(|(_, set)| *set) {
        Some((key, _)) => Err(located.error_at(
            key,
            format!("`{key}`: a [[setup]] step is sent once, by no instance"),
        )),
        None => Ok(()),
    }
}

/// The step's actor, by its index among the roles.
fn actor_role(located: &Located<Step>, roles: &[Role]) -> Result<usize, ScenarioError> {
    let actor = &located.value.actor;
    if actor.is_empty() {
        return Err(located
            .error_at(
                "[[",
                "a step needs `actor`: the actor whose instances send it",
            )
            .with_help("only [[setup]] steps, and [[teardown]] steps sent once, name no actor"));
    }
    role_index(roles, actor).ok_or_else(|| {
        let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
        located
            .error_at(&format!("\"{actor}\""), format!("unknown actor `{actor}`"))
            .with_help(format!("actors: {}", names.join(", ")))
    })
}

/// `METHOD /path`.
fn request_line(located: &Located<Step>) -> Result<(http::Method, Template), ScenarioError> {
    let request = &located.value.request;
    let (method, path) = request.trim().split_once(' ').ok_or_else(|| {
        located.error_at(
            request,
            "`request` must be `METHOD /path`, e.g. `GET /v1/me`",
        )
    })?;
    let method = http::Method::from_bytes(method.as_bytes())
        .ok()
        .filter(|m| method.chars().all(|c| c.is_ascii_uppercase()) && !m.as_str().is_empty())
        .ok_or_else(|| {
            located.error_at(
                method,
                format!("`{method}` is not an HTTP method (GET, POST, ...)"),
            )
        })?;
    let path = path.trim();
    if !path.starts_with('/') && !path.starts_with("{{") {
        return Err(located.error_at(path, "the path must start with `/`"));
    }
    // What is written literally must stay on the target (a rendered value
    // is checked again before it is sent).
    let literal = path.split("{{").next().unwrap_or_default();
    if path.starts_with("//") || literal.contains('\\') {
        return Err(located.error_at(
            path,
            "the path must not start with `//` or hold `\\`: that names another host",
        ));
    }
    if literal.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(located.error_at(
            path,
            "the path must not hold spaces or control characters (percent-encode them)",
        ));
    }
    Ok((method, parse_template(located, path)?))
}

fn captures(
    located: &Located<Step>,
    roles: &[Role],
    role: usize,
) -> Result<Vec<CapturePlan>, ScenarioError> {
    let mut captures = Vec::new();
    for (var, capture) in &located.value.capture {
        if BUILTINS.contains(&var.as_str()) {
            return Err(located.error_at(
                var,
                format!("`{var}` is a built-in variable and cannot be captured"),
            ));
        }
        let spec = match capture {
            Capture::Json(path) => crate::scenario::CaptureSpec {
                json: Some(path.clone()),
                ..Default::default()
            },
            Capture::Full(spec) => spec.clone(),
        };
        let source = match (&spec.json, &spec.header, &spec.cookie) {
            (Some(text), None, None) => CaptureSource::Json {
                path: JsonPath::parse(text).map_err(|err| {
                    located.error_at(text, format!("`{text}` is not a JSONPath: {err}"))
                })?,
                text: text.clone(),
            },
            (None, Some(header), None) => CaptureSource::Header(header.to_ascii_lowercase()),
            (None, None, Some(cookie)) => CaptureSource::Cookie(cookie.clone()),
            _ => {
                return Err(located.error_at(
                    var,
                    format!("capture `{var}` needs exactly one of `json`, `header` and `cookie`"),
                ));
            }
        };
        captures.push(CapturePlan {
            var: var.clone(),
            source,
            secret: spec.secret,
            shared: spec.shared || roles[role].shared.contains(var),
            optional: spec.optional,
        });
    }
    Ok(captures)
}

/// Which instance sends the step and whose credentials it carries.
fn credentials(
    located: &Located<Step>,
    roles: &[Role],
    role: usize,
    picks: &[(String, PickOf)],
) -> Result<Credentials, ScenarioError> {
    let step = &located.value;
    if let Some(index) = step.instance
        && index >= roles[role].count
    {
        return Err(located.error_at(
            "instance",
            format!(
                "actor `{}` has {} instances, numbered from 0",
                step.actor, roles[role].count
            ),
        ));
    }
    let Some(who) = step.credentials.as_deref() else {
        return Ok(Credentials::Own);
    };
    if who == "none" {
        return Ok(Credentials::Anonymous);
    }
    if let Some(pick) = picks.iter().position(|(name, _)| name == who) {
        return Ok(Credentials::Picked(pick));
    }
    let (unsigned, instance) = match who.strip_prefix("unsigned ") {
        Some(rest) => (true, rest.trim()),
        None => (false, who),
    };
    let parsed = instance
        .split_once('#')
        .and_then(|(r, i)| Some((role_index(roles, r)?, i.parse::<usize>().ok()?)));
    match parsed {
        Some((r, i)) if i < roles[r].count && unsigned => Ok(Credentials::Unsigned(r, i)),
        Some((r, i)) if i < roles[r].count => Ok(Credentials::Of(r, i)),
        _ => Err(located.error_at(
            who,
            format!(
                "credentials must be `none`, an instance such as `{0}#0`, a name an earlier `pick` gave, or `unsigned {0}#0`, not `{who}`",
                step.actor
            ),
        )),
    }
}

pub(super) fn build_body(
    at: &Located<Step>,
    value: &toml::Value,
    templates: &mut Vec<Template>,
) -> Result<Body, ScenarioError> {
    Ok(match value {
        toml::Value::String(text) => {
            let t = parse_template(at, text)?;
            templates.push(t.clone());
            Body::Text(t)
        }
        toml::Value::Table(table) => Body::Object(
            table
                .iter()
                .map(|(k, v)| Ok((k.clone(), build_body(at, v, templates)?)))
                .collect::<Result<_, ScenarioError>>()?,
        ),
        toml::Value::Array(items) => Body::Array(
            items
                .iter()
                .map(|v| build_body(at, v, templates))
                .collect::<Result<_, _>>()?,
        ),
        other => Body::Literal(toml_to_json(other)),
    })
}
