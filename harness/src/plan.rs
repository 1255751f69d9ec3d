//! The plan: a scenario checked and resolved, ready to execute.
//!
//! Everything that can be wrong with a scenario is found here, before any
//! request is sent: unknown actors and variables, templates that do not
//! parse, bad methods, JSONPaths or status codes. Steps of the plan are the
//! vocabulary that both the scripted run and the fuzzer draw from.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;
use serde_json_path::JsonPath;

use crate::scenario::{Capture, Located, Scenario, ScenarioError, StatusSpec, Step};
use crate::template::{Expr, Template};

/// Built-in variables every instance has (see [`crate::template`]).
pub const BUILTINS: &[&str] = &[
    "canary",
    "run_id",
    "instance",
    "index",
    "number",
    "unique_time",
    "name",
    "date_of_birth",
    "twin.name",
    "twin.date_of_birth",
    "twin.email",
];

/// What the command line may change in a scenario.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--var NAME=VALUE`: replaces or adds a scenario variable.
    pub vars: BTreeMap<String, String>,
    /// `--patients N`: the count of every population actor.
    pub population: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: String,
    /// The seed the scenario file asks for, if any.
    pub seed: Option<u64>,
    pub vars: BTreeMap<String, Value>,
    pub roles: Vec<Role>,
    pub steps: Vec<PlanStep>,
    pub teardown: Vec<PlanStep>,
}

#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub count: usize,
    pub auth: AuthPlan,
    pub shared: HashSet<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AuthPlan {
    /// Header name and value template, e.g. `authorization` / `Bearer {{token}}`.
    pub header: Option<(String, Template)>,
    pub cookies: bool,
}

#[derive(Debug, Clone)]
pub struct PlanStep {
    pub name: String,
    pub role: usize,
    pub method: http::Method,
    pub path: Template,
    pub headers: Vec<(String, Template)>,
    pub body: Option<Body>,
    pub expect: ExpectPlan,
    pub captures: Vec<CapturePlan>,
    pub grant_to: Option<Template>,
    /// Only this instance of the actor sends it.
    pub instance: Option<usize>,
    pub credentials: Credentials,
    /// Runs at the same moment as the previous step.
    pub concurrent: bool,
    /// `file:line:column` of the step, for messages.
    pub location: String,
    /// The step as written, to write reproductions back out.
    pub source: Step,
}

impl PlanStep {
    /// `METHOD /path/{holes}`: how findings name the endpoint.
    pub fn endpoint(&self) -> String {
        format!("{} {}", self.method, self.path.pattern())
    }
}

/// Whose credentials a step is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// The sender's own.
    Own,
    /// None at all.
    Anonymous,
    /// Another instance's: (role, index).
    Of(usize, usize),
}

/// A JSON body with templates in its strings.
#[derive(Debug, Clone)]
pub enum Body {
    Object(Vec<(String, Body)>),
    Array(Vec<Body>),
    Text(Template),
    Literal(Value),
}

#[derive(Debug, Clone, Default)]
pub struct ExpectPlan {
    pub status: Option<Vec<u16>>,
    pub json: Vec<(String, JsonPath, Value)>,
}

#[derive(Debug, Clone)]
pub struct CapturePlan {
    pub var: String,
    pub source: CaptureSource,
    pub secret: bool,
    pub shared: bool,
}

#[derive(Debug, Clone)]
pub enum CaptureSource {
    Json { text: String, path: JsonPath },
    Header(String),
    Cookie(String),
}

impl Plan {
    pub fn build(scenario: &Scenario, overrides: &Overrides) -> Result<Plan, ScenarioError> {
        let mut vars = BTreeMap::new();
        for (name, value) in &scenario.vars {
            vars.insert(name.clone(), toml_to_json(&value.value));
        }
        for (name, value) in &overrides.vars {
            vars.insert(name.clone(), Value::String(value.clone()));
        }

        let mut roles = Vec::new();
        for (name, actor) in &scenario.actors {
            let a = &actor.value;
            let count = match (a.population, overrides.population) {
                (true, Some(n)) => n,
                _ => a.count,
            };
            if count == 0 {
                return Err(actor.error_at(
                    "count",
                    format!("actor `{name}` needs a count of at least 1"),
                ));
            }
            let mut auth = AuthPlan::default();
            if let Some(spec) = &a.auth {
                let chosen = [spec.bearer.is_some(), spec.header.is_some()]
                    .iter()
                    .filter(|x| **x)
                    .count();
                if chosen > 1 {
                    return Err(
                        actor.error_at("auth", "choose one of `bearer` and `header` for auth")
                    );
                }
                if let Some(bearer) = &spec.bearer {
                    let t = parse_template(actor, bearer)?;
                    let t = Template::parse(&format!("Bearer {}", t.source()))
                        .expect("a parsed template stays valid");
                    auth.header = Some(("authorization".into(), t));
                }
                if let Some(header) = &spec.header {
                    check_header_name(actor, &header.name)?;
                    auth.header = Some((
                        header.name.to_ascii_lowercase(),
                        parse_template(actor, &header.value)?,
                    ));
                }
                auth.cookies = spec.cookies;
            }
            roles.push(Role {
                name: name.clone(),
                count,
                auth,
                shared: a.shared.iter().cloned().collect(),
            });
        }
        if roles.is_empty() {
            return Err(ScenarioError::file(
                &scenario.path,
                "the scenario declares no actors ([actors.NAME])",
            ));
        }

        let mut known = Known::new(&roles, &vars);
        let mut names = HashSet::new();
        let mut steps = Vec::new();
        for step in &scenario.steps {
            if !names.insert(step.value.name.clone()) {
                return Err(step.error_at(
                    &step.value.name,
                    format!("a step named `{}` already exists", step.value.name),
                ));
            }
            steps.push(build_step(step, &roles, &mut known)?);
        }
        let mut teardown = Vec::new();
        for step in &scenario.teardown {
            teardown.push(build_step(step, &roles, &mut known)?);
        }
        // Auth templates may only use variables some step captures.
        for (role, actor) in roles.iter().zip(scenario.actors.values()) {
            if let Some((_, template)) = &role.auth.header {
                for expr in template.exprs() {
                    known.check(
                        actor,
                        expr,
                        role_index(&roles, &role.name),
                        template.source(),
                        true,
                    )?;
                }
            }
        }
        Ok(Plan {
            scenario: scenario.name.clone(),
            seed: scenario.seed,
            vars,
            roles,
            steps,
            teardown,
        })
    }

    /// Loads and plans scenario files; a directory stands for the scenario
    /// files directly in it, and no paths for `scenarios/`.
    pub fn load_all(
        paths: &[std::path::PathBuf],
        overrides: &Overrides,
    ) -> Result<Vec<Plan>, ScenarioError> {
        crate::scenario::files(paths)?
            .iter()
            .map(|file| Plan::build(&Scenario::load(file)?, overrides))
            .collect()
    }

    pub fn role(&self, name: &str) -> Option<usize> {
        role_index(&self.roles, name)
    }

    /// How many instances the plan creates in all.
    pub fn instances(&self) -> usize {
        self.roles.iter().map(|r| r.count).sum()
    }
}

fn role_index(roles: &[Role], name: &str) -> Option<usize> {
    roles.iter().position(|r| r.name == name)
}

/// Which variables exist so far, per role, as steps are checked in order.
struct Known<'a> {
    roles: &'a [Role],
    scenario_vars: &'a BTreeMap<String, Value>,
    captured: Vec<BTreeSet<String>>,
    /// Captured by any step of the role, earlier or later (for auth headers).
    captured_anywhere: Vec<BTreeSet<String>>,
}

impl<'a> Known<'a> {
    fn new(roles: &'a [Role], scenario_vars: &'a BTreeMap<String, Value>) -> Self {
        Self {
            roles,
            scenario_vars,
            captured: vec![BTreeSet::new(); roles.len()],
            captured_anywhere: vec![BTreeSet::new(); roles.len()],
        }
    }

    fn check<T>(
        &self,
        at: &Located<T>,
        expr: &Expr,
        role: Option<usize>,
        template: &str,
        anywhere: bool,
    ) -> Result<(), ScenarioError> {
        // Point at the hole itself, inside its template.
        let hole = expr.to_string();
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
                    || role.is_some_and(|r| captured(r).contains(name));
                if !ok {
                    let role_name = role.map(|r| self.roles[r].name.as_str()).unwrap_or("?");
                    return Err(at
                        .error_within(template, &hole, format!("unknown variable `{name}`"))
                        .with_help(format!(
                            "a variable is a built-in ({}), a [vars] entry, a --var, or captured by an earlier step of actor `{role_name}`",
                            BUILTINS.join(", ")
                        )));
                }
            }
            Expr::Env(name) => {
                if std::env::var_os(name).is_none() {
                    return Err(at.error_within(
                        template,
                        &hole,
                        format!("environment variable `{name}` is not set"),
                    ));
                }
            }
            Expr::Peer(var) => {
                let r = role.expect("peer is only checked inside steps");
                if !captured(r).contains(var) {
                    return Err(at.error_within(
                        template,
                        &hole,
                        format!(
                            "`peer.{var}`: no earlier step of actor `{}` captures `{var}`",
                            self.roles[r].name
                        ),
                    ));
                }
            }
            Expr::Pick { role: other, var }
            | Expr::Of {
                role: other, var, ..
            } => {
                let Some(o) = role_index(self.roles, other) else {
                    return Err(at
                        .error_within(
                            template,
                            &hole,
                            format!("unknown actor `{other}` in `{other}.{var}`"),
                        )
                        .with_help(format!(
                            "actors: {}",
                            self.roles
                                .iter()
                                .map(|r| r.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                };
                if !captured(o).contains(var) {
                    return Err(at.error_within(
                        template,
                        &hole,
                        format!("`{hole}`: no earlier step of actor `{other}` captures `{var}`"),
                    ));
                }
                if let Expr::Of { index, .. } = expr
                    && *index >= self.roles[o].count
                {
                    return Err(at.error_within(
                        template,
                        &hole,
                        format!(
                            "`{hole}`: actor `{other}` has {} instances, numbered from 0",
                            self.roles[o].count
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn parse_template<T>(at: &Located<T>, text: &str) -> Result<Template, ScenarioError> {
    Template::parse(text).map_err(|err| {
        let hole = text.get(err.offset..err.offset + err.len).unwrap_or(text);
        at.error_at(hole, err.message)
    })
}

fn check_header_name<T>(at: &Located<T>, name: &str) -> Result<(), ScenarioError> {
    http::HeaderName::from_bytes(name.as_bytes())
        .map(|_| ())
        .map_err(|_| at.error_at(name, format!("`{name}` is not a valid header name")))
}

fn build_step(
    located: &Located<Step>,
    roles: &[Role],
    known: &mut Known<'_>,
) -> Result<PlanStep, ScenarioError> {
    let step = &located.value;
    let role = role_index(roles, &step.actor).ok_or_else(|| {
        located
            .error_at(
                &format!("\"{}\"", step.actor),
                format!("unknown actor `{}`", step.actor),
            )
            .with_help(format!(
                "actors: {}",
                roles
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
    })?;
    let (method, path) = step.request.trim().split_once(' ').ok_or_else(|| {
        located.error_at(
            &step.request,
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
    let path_text = path.trim();
    if !path_text.starts_with('/') && !path_text.starts_with("{{") {
        return Err(located.error_at(path_text, "the path must start with `/`"));
    }
    let path = parse_template(located, path_text)?;
    let mut templates = vec![path.clone()];

    let mut headers = Vec::new();
    for (name, value) in &step.headers {
        check_header_name(located, name)?;
        let t = parse_template(located, value)?;
        templates.push(t.clone());
        headers.push((name.to_ascii_lowercase(), t));
    }
    let body = match &step.body {
        Some(value) => Some(build_body(located, value, &mut templates)?),
        None => None,
    };
    for template in &templates {
        for expr in template.exprs() {
            known.check(located, expr, Some(role), template.source(), false)?;
        }
    }

    let status = match &step.expect.status {
        None => None,
        Some(spec) => {
            let codes = match spec {
                StatusSpec::One(code) => vec![*code],
                StatusSpec::Any(codes) => codes.clone(),
            };
            let mut checked = Vec::new();
            for code in codes {
                if !(100..=599).contains(&code) {
                    return Err(located.error_at(
                        &code.to_string(),
                        format!("{code} is not an HTTP status code"),
                    ));
                }
                checked.push(code as u16);
            }
            Some(checked)
        }
    };
    let mut json = Vec::new();
    for (path, value) in &step.expect.json {
        let parsed = JsonPath::parse(path)
            .map_err(|err| located.error_at(path, format!("`{path}` is not a JSONPath: {err}")))?;
        json.push((path.clone(), parsed, toml_to_json(value)));
    }

    let mut captures = Vec::new();
    for (var, capture) in &step.capture {
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
        let shared = spec.shared || roles[role].shared.contains(var);
        captures.push(CapturePlan {
            var: var.clone(),
            source,
            secret: spec.secret,
            shared,
        });
        known.captured[role].insert(var.clone());
    }
    for capture in &captures {
        known.captured_anywhere[role].insert(capture.var.clone());
    }
    // A grant may name a value this very step captured.
    let grant_to = match &step.grant_to {
        Some(text) => {
            let t = parse_template(located, text)?;
            for expr in t.exprs() {
                known.check(located, expr, Some(role), t.source(), false)?;
            }
            Some(t)
        }
        None => None,
    };

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
    let credentials = match step.credentials.as_deref() {
        None => Credentials::Own,
        Some("none") => Credentials::Anonymous,
        Some(who) => {
            let parsed = who
                .split_once('#')
                .and_then(|(r, i)| Some((role_index(roles, r)?, i.parse::<usize>().ok()?)));
            match parsed {
                Some((r, i)) if i < roles[r].count => Credentials::Of(r, i),
                _ => {
                    return Err(located.error_at(
                        who,
                        format!(
                            "credentials must be `none` or an instance such as `{}#0`, not `{who}`",
                            step.actor
                        ),
                    ));
                }
            }
        }
    };
    let (line, col) = located.file.line_col(located.span.start);
    Ok(PlanStep {
        name: step.name.clone(),
        role,
        method,
        path,
        headers,
        body,
        expect: ExpectPlan { status, json },
        captures,
        grant_to,
        instance: step.instance,
        credentials,
        concurrent: step.concurrent,
        location: format!("{}:{line}:{col}", located.file.path.display()),
        source: step.clone(),
    })
}

fn build_body(
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

/// TOML to JSON: dates become their text.
pub fn toml_to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}
