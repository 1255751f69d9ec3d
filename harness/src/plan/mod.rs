//! The plan: a scenario checked and resolved, ready to execute.
//!
//! Everything that can be wrong with a scenario is found here, before any
//! request is sent: unknown actors and variables, templates that do not
//! parse, bad methods, JSONPaths or status codes. Steps of the plan are the
//! vocabulary that both the scripted run and the fuzzer draw from.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;
use serde_json_path::JsonPath;

use crate::safety::is_secret_name;
use crate::scenario::{Located, Scenario, ScenarioError, Step, SuiteFile, limits};
use crate::template::Template;

mod build;
mod describe;
mod expect;
mod payload;

pub use expect::{Check, ExpectPlan, Render, Test};
pub use payload::{Body, Bytes, Content, Payload};

use build::{Known, build_step, check_header_name, parse_template};

/// Built-in variables every instance has (see [`crate::resolver`]).
pub const BUILTINS: &[&str] = &[
    "canary",
    "run_id",
    "instance",
    "index",
    "number",
    "serial",
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
    /// What the file reproduces, when it is a reproduction.
    pub reproduces: Option<crate::scenario::Reproduces>,
    pub vars: BTreeMap<String, Value>,
    /// The variables whose values are secret: declared `{ value = …,
    /// secret = true }`, or named like a password, token, secret or key.
    pub secrets: BTreeSet<String>,
    /// Body fields redacted in every artifact besides the well-known ones.
    pub redact_fields: Vec<String>,
    pub roles: Vec<Role>,
    /// Instances named once with `pick`: name and whom it picks.
    pub picks: Vec<(String, PickOf)>,
    /// Sent once, before the flow (`[[setup]]`).
    pub setup: Vec<PlanStep>,
    pub steps: Vec<PlanStep>,
    /// Sent by every instance of their actor after the flow.
    pub teardown: Vec<PlanStep>,
    /// Sent once after the teardown, also after a Ctrl-C (`[[teardown]]`
    /// steps that name no actor).
    pub cleanup: Vec<PlanStep>,
    /// The file it was planned from and its suite, when it came from one.
    pub file: Option<SuiteFile>,
}

#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub count: usize,
    pub auth: AuthPlan,
    pub shared: HashSet<String>,
    /// The flow step sent again when a request answers 401.
    pub reauth: Option<usize>,
    /// The scenario says every instance is one shared account.
    pub one_account: bool,
    /// `--patients N` sets its count; shards split it whatever its count.
    pub population: bool,
}

#[derive(Debug, Clone, Default)]
pub struct AuthPlan {
    /// Header name and value template, e.g. `authorization` / `Bearer {{token}}`.
    pub header: Option<(String, Template)>,
    pub cookies: bool,
}

impl AuthPlan {
    /// Whether the actor proves who it is at all (a header or cookies).
    pub fn authenticates(&self) -> bool {
        self.header.is_some() || self.cookies
    }
}

#[derive(Debug, Clone)]
pub struct PlanStep {
    pub name: String,
    pub role: usize,
    pub method: http::Method,
    pub path: Template,
    /// Query parameters, encoded onto the path.
    pub query: Vec<(String, Body)>,
    pub headers: Vec<(String, Template)>,
    pub body: Option<Payload>,
    pub expect: ExpectPlan,
    pub captures: Vec<CapturePlan>,
    pub grant_to: Option<Template>,
    /// Only this instance of the actor sends it.
    pub instance: Option<usize>,
    pub credentials: Credentials,
    /// Runs at the same moment as the previous step.
    pub concurrent: bool,
    /// May be [probed](crate::probe) (`probe = false` says not).
    pub probe: bool,
    /// Places in the answer that change on their own (as written, parsed).
    pub volatile: Vec<(String, serde_json_path::JsonPath)>,
    /// Places in the answer anyone may see: never leak evidence.
    pub public: Vec<(String, serde_json_path::JsonPath)>,
    /// `file:line:column` of the step, for messages.
    pub location: String,
    /// The step as written, to write reproductions back out.
    pub source: Step,
}

impl PlanStep {
    /// Every template of the step: path, query, headers, body, grant and
    /// expected values.
    pub fn templates(&self) -> Vec<&Template> {
        let mut out = vec![&self.path];
        self.query.iter().for_each(|(_, b)| b.templates(&mut out));
        out.extend(self.headers.iter().map(|(_, t)| t));
        if let Some(b) = &self.body {
            b.templates(&mut out);
        }
        out.extend(self.grant_to.iter());
        out.extend(self.expect.templates());
        out
    }

    /// `METHOD /path/{holes}`: how findings name the endpoint.
    pub fn endpoint(&self) -> String {
        format!("{} {}", self.method, self.path.pattern())
    }
}

/// Which step of a plan: of the flow, or of the teardown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepRef {
    Flow(usize),
    Teardown(usize),
}

impl StepRef {
    /// A number for the step that seeded choices mix in.
    pub fn key(self) -> u64 {
        match self {
            StepRef::Flow(i) => i as u64,
            StepRef::Teardown(i) => 32 + i as u64,
        }
    }
}

/// Whom a named pick (`pick = { victim = "peer" }`) names for a sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickOf {
    /// Another instance of the sender's own actor.
    Peer,
    /// An instance of this role (the sender itself excluded).
    Role(usize),
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
    /// The instance a pick names for the sender (an index into the plan's picks).
    Picked(usize),
    /// Another instance's JWT re-signed with `alg: none` (no signature):
    /// its claims, as anyone could write them.
    Unsigned(usize, usize),
}

#[derive(Debug, Clone)]
pub struct CapturePlan {
    pub var: String,
    pub source: CaptureSource,
    pub secret: bool,
    pub shared: bool,
    /// May be absent or null.
    pub optional: bool,
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
        let mut secrets = BTreeSet::new();
        for (name, value) in &scenario.vars {
            let (value, secret) = var_value(value)?;
            if secret.unwrap_or_else(|| is_secret_name(name)) {
                secrets.insert(name.clone());
            }
            vars.insert(name.clone(), value);
        }
        for (name, value) in &overrides.vars {
            if is_secret_name(name) {
                secrets.insert(name.clone());
            }
            vars.insert(name.clone(), Value::String(value.clone()));
        }

        let steps = scenario.setup.len() + scenario.steps.len() + scenario.teardown.len();
        if steps > limits::STEPS {
            return Err(ScenarioError::file(
                &scenario.path,
                format!("{steps} steps: a scenario has at most {}", limits::STEPS),
            ));
        }
        let roles = roles(scenario, overrides)?;
        if roles.is_empty() {
            return Err(ScenarioError::file(
                &scenario.path,
                "the scenario declares no actors ([actors.NAME])",
            ));
        }

        let mut known = Known::new(&roles, &vars);
        let mut names = HashSet::new();
        let mut unique = |step: &Located<Step>| {
            let name = &step.value.name;
            match names.insert(name.clone()) {
                true => Ok(()),
                false => Err(step.error_at(name, format!("a step named `{name}` already exists"))),
            }
        };
        // Picks hold for the whole scenario, wherever they are declared.
        for step in scenario.steps.iter().chain(&scenario.teardown) {
            known.add_picks(step)?;
        }
        let (mut setup, mut steps, mut teardown, mut cleanup) = (vec![], vec![], vec![], vec![]);
        for step in &scenario.setup {
            unique(step)?;
            setup.push(build_step(step, &roles, &mut known, true)?);
        }
        for step in &scenario.steps {
            unique(step)?;
            steps.push(build_step(step, &roles, &mut known, false)?);
        }
        for step in &scenario.teardown {
            match step.value.actor.is_empty() {
                true => cleanup.push(build_step(step, &roles, &mut known, true)?),
                false => teardown.push(build_step(step, &roles, &mut known, false)?),
            }
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
        let picks = known.into_picks();
        let mut roles = roles;
        for (r, actor) in scenario.actors.values().enumerate() {
            roles[r].reauth = reauth_step(actor, r, &steps)?;
        }
        Ok(Plan {
            picks,
            scenario: scenario.name.clone(),
            seed: scenario.seed,
            reproduces: scenario.reproduces.clone(),
            vars,
            roles,
            setup,
            steps,
            teardown,
            cleanup,
            file: None,
            secrets,
            redact_fields: scenario.redact_fields.clone(),
        })
    }

    /// Whether some step captures `var` as optional (it may be absent).
    pub fn optional(&self, var: &str) -> bool {
        self.steps
            .iter()
            .chain(&self.teardown)
            .flat_map(|step| &step.captures)
            .any(|capture| capture.optional && capture.var == var)
    }

    /// Loads and plans scenario files; a directory stands for the scenario
    /// files directly in it, and no paths for `scenarios/`.
    pub fn load_all(
        paths: &[std::path::PathBuf],
        overrides: &Overrides,
    ) -> Result<Vec<Plan>, ScenarioError> {
        crate::scenario::suite_files(paths)?
            .into_iter()
            .map(|file| {
                let plan = Plan::build(&Scenario::load(&file.path)?, overrides)?;
                Ok(Plan {
                    file: Some(file),
                    ..plan
                })
            })
            .collect()
    }

    pub fn step(&self, step: StepRef) -> &PlanStep {
        match step {
            StepRef::Flow(i) => &self.steps[i],
            StepRef::Teardown(i) => &self.teardown[i],
        }
    }

    /// Every template of the plan: paths, headers, bodies, grants, auth.
    pub fn templates(&self) -> Vec<&Template> {
        let steps = self.setup.iter().chain(&self.steps).chain(&self.teardown);
        let steps = steps.chain(&self.cleanup);
        let mut out: Vec<&Template> = steps.flat_map(PlanStep::templates).collect();
        out.extend(
            self.roles
                .iter()
                .filter_map(|r| r.auth.header.as_ref().map(|(_, t)| t)),
        );
        out
    }

    /// The values of `env.NAME` holes whose names say they are secret.
    pub fn secret_env_values(&self) -> Vec<String> {
        self.templates()
            .into_iter()
            .flat_map(|t| t.exprs())
            .filter_map(|e| match e {
                crate::template::Expr::Env(name) if is_secret_name(name) => {
                    std::env::var(name).ok()
                }
                _ => None,
            })
            .collect()
    }

    /// The pick named `name`, by its index.
    pub fn pick(&self, name: &str) -> Option<usize> {
        self.picks.iter().position(|(n, _)| n == name)
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

/// The scenario's actors as roles, with their counts and auth.
fn roles(scenario: &Scenario, overrides: &Overrides) -> Result<Vec<Role>, ScenarioError> {
    let mut roles = Vec::new();
    for (name, actor) in &scenario.actors {
        let a = &actor.value;
        let count = match (a.population, overrides.population) {
            (true, Some(n)) => n,
            _ => a.count,
        };
        if count == 0 || count > limits::INSTANCES {
            return Err(actor.error_at(
                "count",
                format!(
                    "actor `{name}` needs a count from 1 to {}, not {count}",
                    limits::INSTANCES
                ),
            ));
        }
        let mut auth = AuthPlan::default();
        if let Some(spec) = &a.auth {
            let chosen = [spec.bearer.is_some(), spec.header.is_some()]
                .iter()
                .filter(|x| **x)
                .count();
            if chosen > 1 {
                return Err(actor.error_at("auth", "choose one of `bearer` and `header` for auth"));
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
            reauth: None,
            one_account: a.one_account,
            population: a.population,
        });
    }
    Ok(roles)
}

/// The flow step an actor's `reauth` names: one of its own.
fn reauth_step(
    actor: &Located<crate::scenario::Actor>,
    role: usize,
    steps: &[PlanStep],
) -> Result<Option<usize>, ScenarioError> {
    let Some(name) = &actor.value.reauth else {
        return Ok(None);
    };
    let found = steps.iter().position(|s| &s.name == name && s.role == role);
    found.map(Some).ok_or_else(|| {
        actor.error_at(
            name,
            format!("`reauth` names `{name}`, which is no step of this actor"),
        )
    })
}

/// A `[vars]` entry: a value, or `{ value = …, secret = true }`; whether
/// it says it is secret.
fn var_value(located: &Located<toml::Value>) -> Result<(Value, Option<bool>), ScenarioError> {
    let toml::Value::Table(table) = &located.value else {
        return Ok((toml_to_json(&located.value), None));
    };
    let (Some(value), secret) = (table.get("value"), table.get("secret")) else {
        return Ok((toml_to_json(&located.value), None));
    };
    if table.len() > 2 || (table.len() == 2 && secret.is_none()) {
        return Err(located.error_at(
            "value",
            "a variable with `value` takes only `secret = true|false` besides it",
        ));
    }
    let secret = match secret {
        None => None,
        Some(toml::Value::Boolean(b)) => Some(*b),
        Some(_) => return Err(located.error_at("secret", "`secret` is true or false")),
    };
    Ok((toml_to_json(value), secret))
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
