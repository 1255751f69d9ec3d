//! The vocabulary: what the fuzzer may do with one scenario. Its steps,
//! which actor sends each, what each needs captured first and captures, the
//! literal values a field takes anywhere in the scenario (an enum to flip:
//! bodies, queries, expected answers), and which captured variables hold a
//! value of each field (a body field `slot` may take another instance's
//! captured `slot`; a field `id`, any value captured from an `id`).

use std::collections::{BTreeMap, BTreeSet};

use crate::plan::{BUILTINS, Overrides, PickOf, Plan};
use crate::scenario::{Actor, ContentSpec, PartSpec, Scenario, ScenarioError, Step};
use crate::template::{Expr, Template};

use super::{Op, POPULATION};

/// What the fuzzer may do with one scenario.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    pub scenario: String,
    pub(crate) vars: BTreeMap<String, toml::Value>,
    /// The variables whose values are secret.
    pub(crate) secrets: BTreeSet<String>,
    /// Actor name, its definition with the fuzzing count.
    pub(crate) actors: Vec<(String, Actor)>,
    pub(crate) steps: Vec<StepInfo>,
    pub(crate) teardown: Vec<Step>,
    /// Sent once before each program.
    pub(crate) setup: Vec<Step>,
    /// Field → the literal values the scenario gives it (`mode`: audio,
    /// video), in bodies, queries and expected answers.
    pub(crate) enums: BTreeMap<String, Vec<String>>,
    /// Field → the (actor, variable) pairs captured from a field of that
    /// name, or named after it: what a body field may be set to.
    pub(crate) fields: BTreeMap<String, BTreeSet<(usize, String)>>,
}

#[derive(Debug, Clone)]
pub(crate) struct StepInfo {
    pub(crate) step: Step,
    pub(crate) role: usize,
    /// The sender's own captured variables the step uses.
    pub(crate) own_vars: BTreeSet<String>,
    /// Those a program may take from another instance: all but the
    /// secret ones. Another's credential is sent as that identity
    /// ([`super::Identity::Other`]), which the judges know to be its.
    pub(crate) borrowable: BTreeSet<String>,
    /// (role, var) the step picks from other instances.
    pub(crate) picks: BTreeSet<(usize, String)>,
    pub(crate) captures: BTreeSet<String>,
    /// A teardown step (an account deleted, a session ended): never part
    /// of the flow an instance walks, but sent out of turn its later
    /// operations go out with a stale credential.
    pub(crate) late: bool,
}

impl Vocabulary {
    /// What the fuzzer may do with `scenario`, with the command line's
    /// `--var` values and `--patients` (instances of population actors in
    /// each program; [`POPULATION`] by default).
    pub fn new(scenario: &Scenario, overrides: &Overrides) -> Result<Vocabulary, ScenarioError> {
        // The scenario must plan on its own first: the fuzzer trusts its names.
        let plan = Plan::build(scenario, overrides)?;
        let population = overrides.population.unwrap_or(POPULATION);
        let actors: Vec<(String, Actor)> = scenario
            .actors
            .iter()
            .map(|(name, actor)| {
                let mut actor = actor.value.clone();
                // A program's steps are renamed, and a 401 is what it explores.
                actor.reauth = None;
                actor.count = if actor.population {
                    population
                } else {
                    actor.count.min(2)
                };
                (name.clone(), actor)
            })
            .collect();
        let role_of = |name: &str| actors.iter().position(|(n, _)| n == name);
        let mut vars: BTreeMap<String, toml::Value> = scenario
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect();
        for (name, value) in &overrides.vars {
            vars.insert(name.clone(), toml::Value::String(value.clone()));
        }
        // Steps sent once (setup, clean-up) go into every program as written.
        let per_instance = scenario
            .teardown
            .iter()
            .filter(|s| !s.value.actor.is_empty());
        let mut steps: Vec<StepInfo> = scenario
            .steps
            .iter()
            .map(|s| (s, false))
            .chain(per_instance.map(|s| (s, true)))
            .map(|(located, late)| {
                let mut step = located.value.clone();
                let role = role_of(&step.actor).expect("planned scenarios name known actors");
                declare_picks(&mut step, &plan.picks, &actors);
                // A pick stands for an instance of the role it picks from.
                let role_of = |name: &str| {
                    role_of(name).or_else(|| match plan.pick(name).map(|p| plan.picks[p].1) {
                        Some(PickOf::Peer) => Some(role),
                        Some(PickOf::Role(r)) => Some(r),
                        None => None,
                    })
                };
                StepInfo {
                    late,
                    ..StepInfo::new(step, role, &vars, &role_of)
                }
            })
            .collect();
        let secret = secret_captures(&steps, &plan.secrets);
        for info in &mut steps {
            info.borrowable = info.own_vars.difference(&secret).cloned().collect();
        }
        let enums = enums(&steps);
        let fields = fields(&steps, &plan.secrets);
        Ok(Vocabulary {
            scenario: scenario.name.clone(),
            vars,
            secrets: plan.secrets,
            actors,
            steps,
            setup: scenario.setup.iter().map(|s| s.value.clone()).collect(),
            teardown: scenario.teardown.iter().map(|s| s.value.clone()).collect(),
            enums,
            fields,
        })
    }

    /// Each secret variable and its value as text.
    pub fn secret_values(&self) -> Vec<(String, String)> {
        self.secrets
            .iter()
            .filter_map(|name| {
                let value = self.vars.get(name)?;
                let value = match value {
                    toml::Value::Table(t) => t.get("value")?,
                    other => other,
                };
                let text = match value {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                Some((name.clone(), text))
            })
            .collect()
    }

    pub(crate) fn count(&self, role: usize) -> usize {
        self.actors[role].1.count
    }

    pub(crate) fn instances(&self) -> Vec<(usize, usize)> {
        (0..self.actors.len())
            .flat_map(|r| (0..self.count(r)).map(move |i| (r, i)))
            .collect()
    }

    /// The actor that sends `op`.
    pub fn role_of(&self, op: &Op) -> usize {
        self.steps[op.step].role
    }

    /// Step indices of `role`'s flow, in order.
    pub(crate) fn flow(&self, role: usize) -> Vec<usize> {
        (0..self.steps.len())
            .filter(|i| self.steps[*i].role == role && !self.steps[*i].late)
            .collect()
    }

    /// Every step `role` may send out of turn: its flow and its teardown.
    pub(crate) fn any_step(&self, role: usize) -> Vec<usize> {
        (0..self.steps.len())
            .filter(|i| self.steps[*i].role == role)
            .collect()
    }
}

/// Fields given more than one literal value across the scenario: in a
/// body, a form, a query or an expected answer (`"$.status" = "cancelled"`). The
/// values a flip may switch between (`mode`: audio, video).
fn enums(steps: &[StepInfo]) -> BTreeMap<String, Vec<String>> {
    let mut enums: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |field: &str, value: &str| {
        if value.contains("{{") || value.is_empty() {
            return;
        }
        let values = enums.entry(field.to_string()).or_default();
        if !values.iter().any(|v| v == value) {
            values.push(value.to_string());
        }
    };
    for info in steps {
        if let Some(toml::Value::Table(body)) = &info.step.body {
            for (field, value) in body {
                if let toml::Value::String(text) = value {
                    add(field, text);
                }
            }
        }
        for (field, value) in info.step.form.iter().flatten() {
            if let toml::Value::String(text) = value {
                add(field, text);
            }
        }
        for (field, value) in query_pairs(&info.step.request) {
            add(&field, &value);
        }
        for (path, value) in &info.step.expect.json {
            if let (Some(key), toml::Value::String(text)) = (last_key(path), value) {
                add(key, text);
            }
        }
    }
    enums.retain(|_, values| values.len() > 1);
    enums
}

/// Field → the captured variables holding a value of it, secrets aside.
fn fields(
    steps: &[StepInfo],
    secrets: &BTreeSet<String>,
) -> BTreeMap<String, BTreeSet<(usize, String)>> {
    let mut fields: BTreeMap<String, BTreeSet<(usize, String)>> = BTreeMap::new();
    for info in steps {
        for (var, capture) in &info.step.capture {
            let Some(path) = capture.json_path() else {
                continue;
            };
            if capture.is_secret() || secrets.contains(var) {
                continue;
            }
            let pair = (info.role, var.clone());
            fields.entry(var.clone()).or_default().insert(pair.clone());
            if let Some(key) = last_key(path) {
                fields.entry(key.to_string()).or_default().insert(pair);
            }
        }
    }
    fields
}

/// The captured variables whose values are secret, and the secret
/// variables of the scenario.
fn secret_captures(steps: &[StepInfo], secrets: &BTreeSet<String>) -> BTreeSet<String> {
    let captures = steps.iter().flat_map(|info| &info.step.capture);
    let captured = captures.filter(|(_, capture)| capture.is_secret());
    (captured.map(|(var, _)| var.clone()))
        .chain(secrets.iter().cloned())
        .collect()
}

/// `$.items[0].status` → `status`.
fn last_key(path: &str) -> Option<&str> {
    let key = path.rsplit('.').next()?;
    let key = key.split('[').next()?;
    (!key.is_empty() && key != "$").then_some(key)
}

/// The literal `name=value` pairs of a request line's query.
pub(crate) fn query_pairs(request: &str) -> Vec<(String, String)> {
    let Some((_, query)) = request.split_once('?') else {
        return Vec::new();
    };
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Declares on `step` every pick its templates use: a program may send it
/// without the step that declared the pick in the scenario.
fn declare_picks(step: &mut Step, picks: &[(String, PickOf)], actors: &[(String, Actor)]) {
    for text in template_strings(step) {
        let Ok(template) = Template::parse(&text) else {
            continue;
        };
        for expr in template.exprs() {
            let Expr::Pick { role: name, .. } = expr else {
                continue;
            };
            if let Some((_, of)) = picks.iter().find(|(n, _)| n == name) {
                let target = match of {
                    PickOf::Peer => "peer".to_string(),
                    PickOf::Role(r) => actors[*r].0.clone(),
                };
                step.pick.insert(name.clone(), target);
            }
        }
    }
}

impl StepInfo {
    /// What `step`, sent by `role`, needs and captures.
    fn new(
        step: Step,
        role: usize,
        vars: &BTreeMap<String, toml::Value>,
        role_of: &dyn Fn(&str) -> Option<usize>,
    ) -> StepInfo {
        let mut info = StepInfo {
            captures: step.capture.keys().cloned().collect(),
            step,
            role,
            own_vars: BTreeSet::new(),
            borrowable: BTreeSet::new(),
            picks: BTreeSet::new(),
            late: false,
        };
        for text in template_strings(&info.step) {
            let Ok(template) = Template::parse(&text) else {
                continue;
            };
            for expr in template.exprs() {
                match expr {
                    Expr::Var(name)
                        if !BUILTINS.contains(&name.as_str()) && !vars.contains_key(name) =>
                    {
                        info.own_vars.insert(name.clone());
                    }
                    Expr::Pick { role, var } | Expr::Of { role, var, .. } => {
                        if let Some(r) = role_of(role) {
                            info.picks.insert((r, var.clone()));
                        }
                    }
                    Expr::Peer(var) => {
                        info.picks.insert((role, var.clone()));
                    }
                    _ => {}
                }
            }
        }
        info.drop_self_granted();
        info
    }

    /// A grant may name what its own step captures: that is no input.
    fn drop_self_granted(&mut self) {
        let Some(grant) = &self.step.grant_to else {
            return;
        };
        let Ok(template) = Template::parse(grant) else {
            return;
        };
        let others: Vec<String> = template_strings(&self.step)
            .into_iter()
            .filter(|t| t != grant)
            .collect();
        for expr in template.exprs() {
            if let Expr::Var(name) = expr
                && self.captures.contains(name)
                && !others.iter().any(|t| t.contains(name.as_str()))
            {
                self.own_vars.remove(name);
            }
        }
    }

    /// Whether everything the step uses has been captured, per actor.
    pub(crate) fn ready(&self, captured: &[BTreeSet<String>]) -> bool {
        self.own_vars
            .iter()
            .all(|v| captured[self.role].contains(v))
            && self.picks.iter().all(|(r, v)| captured[*r].contains(v))
    }
}

/// Every string of a step that may hold `{{ }}` holes.
pub(crate) fn template_strings(step: &Step) -> Vec<String> {
    let mut out = vec![step.request.clone()];
    out.extend(step.headers.values().cloned());
    out.extend(step.grant_to.clone());
    out.extend(step.credentials.clone());
    let tables = [Some(&step.query), step.form.as_ref()];
    for value in step
        .body
        .iter()
        .chain(tables.into_iter().flatten().flat_map(|t| t.values()))
    {
        collect_strings(value, &mut out);
    }
    let content = |c: &ContentSpec| c.file.iter().chain(&c.text).cloned().collect::<Vec<_>>();
    for part in step.multipart.iter().flat_map(|parts| parts.values()) {
        match part {
            PartSpec::Text(text) => out.push(text.clone()),
            PartSpec::File(spec) => out.extend(content(spec)),
        }
    }
    out.extend(step.raw.iter().flat_map(content));
    out
}

pub(crate) fn collect_strings(value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::String(s) => out.push(s.clone()),
        toml::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        toml::Value::Table(table) => table.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}
