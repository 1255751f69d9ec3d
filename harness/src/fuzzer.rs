//! The fuzzer: programs over a scenario's vocabulary, built from bytes.
//!
//! A program is a sequence of operations, each one step of the scenario sent
//! by one instance, drawn from `arbitrary` bytes so the same bytes always give
//! the same program. The bytes mostly walk each instance through its own flow
//! in a chosen interleaving, and mutate it the ways that break authorization:
//! borrow another instance's captured value, drop or swap credentials, repeat
//! or reorder a step, skip a precondition, run two steps at once, switch an
//! enum value (audio/video). A program is written out as an ordinary scenario
//! file (one step per operation, pinned to its instance) and run by the same
//! executor and oracle as `crosstalk run`, so a shrunk program *is* its
//! reproduction. [`fuzz_one`] is the body both fronts share: `crosstalk fuzz`
//! on stable Rust and the cargo-fuzz targets.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arbitrary::Unstructured;
use serde::Serialize;

use crate::canary::mix;
use crate::executor::{Executor, Issued, RunOptions};
use crate::findings::{Finding, FindingKind, FindingSink};
use crate::plan::{BUILTINS, Overrides, Plan};
use crate::safety::Redactor;
use crate::scenario::{Actor, Expect, Scenario, ScenarioError, Step};
use crate::template::{Expr, Template};
use crate::transport::Transport;

/// At most this many operations a program.
pub const MAX_OPS: usize = 80;
/// Bytes each operation reads.
pub const OP_BYTES: usize = 11;
/// Instances of each population actor in a program (others keep at most 2).
pub const POPULATION: usize = 3;

/// What the fuzzer may do with one scenario.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    pub scenario: String,
    vars: BTreeMap<String, toml::Value>,
    /// Actor name, its definition with the fuzzing count.
    actors: Vec<(String, Actor)>,
    steps: Vec<StepInfo>,
    teardown: Vec<Step>,
    /// Body field → the literal values the scenario gives it (`mode`: audio, video).
    enums: BTreeMap<String, Vec<toml::Value>>,
}

#[derive(Debug, Clone)]
struct StepInfo {
    step: Step,
    role: usize,
    /// The sender's own captured variables the step uses.
    own_vars: BTreeSet<String>,
    /// (role, var) the step picks from other instances.
    picks: BTreeSet<(usize, String)>,
    captures: BTreeSet<String>,
}

impl Vocabulary {
    pub fn new(scenario: &Scenario) -> Result<Vocabulary, ScenarioError> {
        // The scenario must plan on its own first: the fuzzer trusts its names.
        Plan::build(scenario, &Overrides::default())?;
        let actors: Vec<(String, Actor)> = scenario
            .actors
            .iter()
            .map(|(name, actor)| {
                let mut actor = actor.value.clone();
                actor.count = if actor.population {
                    POPULATION
                } else {
                    actor.count.min(2)
                };
                (name.clone(), actor)
            })
            .collect();
        let role_of = |name: &str| actors.iter().position(|(n, _)| n == name);
        let vars: BTreeMap<String, toml::Value> = scenario
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect();
        let mut enums: BTreeMap<String, Vec<toml::Value>> = BTreeMap::new();
        let mut steps = Vec::new();
        for located in &scenario.steps {
            let step = located.value.clone();
            let role = role_of(&step.actor).expect("planned scenarios name known actors");
            let mut info = StepInfo {
                step,
                role,
                own_vars: BTreeSet::new(),
                picks: BTreeSet::new(),
                captures: BTreeSet::new(),
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
            info.captures = info.step.capture.keys().cloned().collect();
            // A grant may name what its own step captures.
            if let Some(grant) = &info.step.grant_to
                && let Ok(template) = Template::parse(grant)
            {
                for expr in template.exprs() {
                    if let Expr::Var(name) = expr
                        && info.captures.contains(name)
                        && !template_strings(&info.step)
                            .iter()
                            .filter(|t| *t != grant)
                            .any(|t| t.contains(name.as_str()))
                    {
                        info.own_vars.remove(name);
                    }
                }
            }
            if let Some(toml::Value::Table(body)) = &info.step.body {
                for (field, value) in body {
                    if let toml::Value::String(text) = value
                        && !text.contains("{{")
                    {
                        let values = enums.entry(field.clone()).or_default();
                        if !values.contains(value) {
                            values.push(value.clone());
                        }
                    }
                }
            }
            steps.push(info);
        }
        enums.retain(|_, values| values.len() > 1);
        Ok(Vocabulary {
            scenario: scenario.name.clone(),
            vars,
            actors,
            steps,
            teardown: scenario.teardown.iter().map(|s| s.value.clone()).collect(),
            enums,
        })
    }

    fn count(&self, role: usize) -> usize {
        self.actors[role].1.count
    }

    fn instances(&self) -> Vec<(usize, usize)> {
        (0..self.actors.len())
            .flat_map(|r| (0..self.count(r)).map(move |i| (r, i)))
            .collect()
    }

    /// The actor that sends `op`.
    pub fn role_of(&self, op: &Op) -> usize {
        self.steps[op.step].role
    }

    /// Step indices of `role`, in flow order.
    fn flow(&self, role: usize) -> Vec<usize> {
        (0..self.steps.len())
            .filter(|i| self.steps[*i].role == role)
            .collect()
    }
}

impl StepInfo {
    /// Whether everything the step uses has been captured, per actor.
    fn ready(&self, captured: &[BTreeSet<String>]) -> bool {
        self.own_vars
            .iter()
            .all(|v| captured[self.role].contains(v))
            && self.picks.iter().all(|(r, v)| captured[*r].contains(v))
    }
}

/// Every string of a step that may hold `{{ }}` holes.
fn template_strings(step: &Step) -> Vec<String> {
    let mut out = vec![step.request.clone()];
    out.extend(step.headers.values().cloned());
    out.extend(step.grant_to.clone());
    if let Some(body) = &step.body {
        collect_strings(body, &mut out);
    }
    out
}

fn collect_strings(value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::String(s) => out.push(s.clone()),
        toml::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        toml::Value::Table(table) => table.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// Whose credentials an operation sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Identity {
    Own,
    Anonymous,
    /// Another instance of the sender's actor.
    Other(usize),
}

/// One step sent by one instance, possibly mutated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Op {
    /// Index into the vocabulary's steps.
    pub step: usize,
    pub instance: usize,
    pub identity: Identity,
    /// Use this instance's captured values instead of the sender's own.
    pub borrow: Option<usize>,
    /// A body field set to another of its values.
    pub flip: Option<(String, String)>,
    /// Sent at the same moment as the previous operation.
    pub concurrent: bool,
}

/// A sequence of operations over one vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Program {
    pub ops: Vec<Op>,
}

impl Program {
    /// The program these bytes stand for. Total: any bytes give a program.
    pub fn from_bytes(vocab: &Vocabulary, bytes: &[u8]) -> Program {
        let mut u = Unstructured::new(bytes);
        let instances = vocab.instances();
        let flows: Vec<Vec<usize>> = (0..vocab.actors.len()).map(|r| vocab.flow(r)).collect();
        let mut cursors = vec![0usize; instances.len()];
        let mut captured: Vec<BTreeSet<String>> = vec![BTreeSet::new(); vocab.actors.len()];
        let mut ops = Vec::new();
        // Every operation reads the same fixed-size record, so inputs are
        // easy to write by hand (see `seed_inputs`) and mutations stay local.
        while ops.len() < MAX_OPS && u.len() >= OP_BYTES {
            let mut record = [0u8; OP_BYTES];
            for byte in &mut record {
                *byte = u.arbitrary().unwrap_or(0);
            }
            let [
                pick,
                action,
                any_step,
                borrow,
                borrow_of,
                identity,
                identity_of,
                flip,
                flip_field,
                flip_value,
                concurrent,
            ] = record;
            let pick = pick as usize % instances.len();
            let (role, instance) = instances[pick];
            let flow = &flows[role];
            let step = match action % 20 {
                // Skip a precondition: this instance's next step never happens.
                0 => {
                    cursors[pick] += 1;
                    continue;
                }
                // Any step of the actor: a repeat or a reordering.
                1 | 2 if !flow.is_empty() => flow[any_step as usize % flow.len()],
                _ => match flow.get(cursors[pick]) {
                    Some(step) => {
                        cursors[pick] += 1;
                        *step
                    }
                    None => continue,
                },
            };
            let info = &vocab.steps[step];
            if !info.ready(&captured) {
                continue;
            }
            let others: Vec<usize> = (0..vocab.count(role)).filter(|i| *i != instance).collect();
            let other = |byte: u8| others[byte as usize % others.len()];
            let borrow = (!others.is_empty() && !info.own_vars.is_empty() && borrow % 5 == 0)
                .then(|| other(borrow_of));
            let identity = match identity % 16 {
                0 => Identity::Anonymous,
                1 | 2 if !others.is_empty() => Identity::Other(other(identity_of)),
                _ => Identity::Own,
            };
            let flip = match &info.step.body {
                Some(toml::Value::Table(body)) if flip % 4 == 0 => {
                    let fields: Vec<(&String, &Vec<toml::Value>)> = vocab
                        .enums
                        .iter()
                        .filter(|(field, _)| body.contains_key(*field))
                        .collect();
                    fields
                        .get(flip_field as usize % fields.len().max(1))
                        .and_then(|(field, values)| {
                            let value = &values[flip_value as usize % values.len()];
                            value.as_str().map(|v| ((*field).clone(), v.to_string()))
                        })
                }
                _ => None,
            };
            let concurrent = !ops.is_empty() && concurrent % 4 == 0;
            captured[role].extend(info.captures.iter().cloned());
            ops.push(Op {
                step,
                instance,
                identity,
                borrow,
                flip,
                concurrent,
            });
        }
        Program { ops }
    }

    /// The program as a scenario file: one step per operation.
    pub fn to_toml(&self, vocab: &Vocabulary, description: &str) -> String {
        #[derive(Serialize)]
        struct File<'a> {
            description: &'a str,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            vars: &'a BTreeMap<String, toml::Value>,
            actors: BTreeMap<&'a str, &'a Actor>,
            steps: Vec<Step>,
            #[serde(skip_serializing_if = "<[Step]>::is_empty")]
            teardown: &'a [Step],
        }
        let mut captured: Vec<BTreeSet<String>> = vec![BTreeSet::new(); vocab.actors.len()];
        let mut steps = Vec::new();
        for (n, op) in self.ops.iter().enumerate() {
            let info = &vocab.steps[op.step];
            // Operations whose inputs were never captured cannot be sent.
            if !info.ready(&captured) {
                continue;
            }
            captured[info.role].extend(info.captures.iter().cloned());
            steps.push(materialize(vocab, info, op, n));
        }
        // As many instances of each actor as the operations name.
        let mut counts = vec![1usize; vocab.actors.len()];
        for op in &self.ops {
            let role = vocab.role_of(op);
            let other = match op.identity {
                Identity::Other(i) => i,
                _ => 0,
            };
            let highest = op.instance.max(op.borrow.unwrap_or(0)).max(other);
            counts[role] = counts[role].max(highest + 1);
        }
        // An actor whose credential no operation captures sends none.
        let actors: Vec<(&str, Actor)> = vocab
            .actors
            .iter()
            .enumerate()
            .map(|(role, (name, actor))| {
                let mut actor = Actor {
                    count: counts[role],
                    ..actor.clone()
                };
                let auth_vars: Vec<String> = actor
                    .auth
                    .iter()
                    .flat_map(|auth| {
                        auth.bearer
                            .iter()
                            .chain(auth.header.as_ref().map(|h| &h.value))
                    })
                    .filter_map(|text| Template::parse(text).ok())
                    .flat_map(|t| t.exprs().cloned().collect::<Vec<_>>())
                    .filter_map(|expr| match expr {
                        Expr::Var(name)
                            if !BUILTINS.contains(&name.as_str())
                                && !vocab.vars.contains_key(&name) =>
                        {
                            Some(name)
                        }
                        _ => None,
                    })
                    .collect();
                if auth_vars.iter().any(|v| !captured[role].contains(v))
                    && let Some(auth) = &mut actor.auth
                {
                    auth.bearer = None;
                    auth.header = None;
                }
                (name.as_str(), actor)
            })
            .collect();
        let file = File {
            description,
            vars: &vocab.vars,
            actors: actors.iter().map(|(n, a)| (*n, a)).collect(),
            steps,
            teardown: &vocab.teardown,
        };
        toml::to_string(&file).expect("scenario files serialize")
    }

    /// The program planned: ready to execute. An error here is a bug in
    /// the generator, never in the target.
    pub fn to_plan(&self, vocab: &Vocabulary) -> Result<Plan, ScenarioError> {
        let text = self.to_toml(vocab, "fuzz program");
        let scenario = Scenario::from_str(&vocab.scenario, &text)?;
        Plan::build(&scenario, &Overrides::default())
    }
}

/// The step that operation `n` sends. Its name keeps the scenario step's
/// name, which is how findings are bucketed across programs.
fn materialize(vocab: &Vocabulary, info: &StepInfo, op: &Op, n: usize) -> Step {
    let role = &vocab.actors[info.role].0;
    let mut step = info.step.clone();
    step.name = format!("{} [{n}]", info.step.name);
    step.instance = Some(op.instance);
    step.expect = Expect::default();
    step.concurrent = op.concurrent && n > 0;
    step.credentials = match op.identity {
        Identity::Own => None,
        Identity::Anonymous => Some("none".into()),
        Identity::Other(i) => Some(format!("{role}#{i}")),
    };
    if let Some(from) = op.borrow {
        let rewrite = |text: &str| borrow_holes(text, &info.own_vars, role, from);
        step.request = rewrite(&step.request);
        for value in step.headers.values_mut() {
            *value = rewrite(value);
        }
        if let Some(body) = &mut step.body {
            rewrite_strings(body, &rewrite);
        }
    }
    if let (Some((field, value)), Some(toml::Value::Table(body))) = (&op.flip, &mut step.body) {
        body.insert(field.clone(), toml::Value::String(value.clone()));
    }
    step
}

/// `{{var}}` → `{{role#from.var}}` for the sender's own variables.
fn borrow_holes(text: &str, own: &BTreeSet<String>, role: &str, from: usize) -> String {
    let Ok(template) = Template::parse(text) else {
        return text.to_string();
    };
    let mut out = text.to_string();
    for expr in template.exprs() {
        if let Expr::Var(name) = expr
            && own.contains(name)
        {
            for written in [format!("{{{{{name}}}}}"), format!("{{{{ {name} }}}}")] {
                out = out.replace(&written, &format!("{{{{{role}#{from}.{name}}}}}"));
            }
        }
    }
    out
}

fn rewrite_strings(value: &mut toml::Value, rewrite: &dyn Fn(&str) -> String) {
    match value {
        toml::Value::String(s) => *s = rewrite(s),
        toml::Value::Array(items) => items.iter_mut().for_each(|v| rewrite_strings(v, rewrite)),
        toml::Value::Table(table) => table
            .iter_mut()
            .for_each(|(_, v)| rewrite_strings(v, rewrite)),
        _ => {}
    }
}

/// A leak, bucketed the same way across programs: kind, scenario step and
/// location in the response.
pub fn bucket(finding: &Finding) -> String {
    let step = finding
        .step
        .rsplit_once(" [")
        .map_or(finding.step.as_str(), |(name, _)| name);
    format!(
        "{} at `{step}` in {}",
        finding.kind.as_str(),
        finding.location_pattern
    )
}

/// What one program run gave.
pub struct Outcome {
    /// Leak and server-error findings.
    pub findings: Vec<Finding>,
    /// (step, status) pairs seen: the novelty signal that grows the corpus.
    pub signature: BTreeSet<(String, u16)>,
    pub requests: u64,
    pub order: Vec<Issued>,
}

/// Runs `program` against `transport`.
pub async fn run_program(
    vocab: &Vocabulary,
    program: &Program,
    transport: Arc<dyn Transport>,
    seed: u64,
    record: bool,
) -> Outcome {
    let plan = match program.to_plan(vocab) {
        Ok(plan) => Arc::new(plan),
        Err(err) => {
            tracing::error!("a generated program does not plan (a fuzzer bug): {err}");
            return Outcome {
                findings: Vec::new(),
                signature: BTreeSet::new(),
                requests: 0,
                order: Vec::new(),
            };
        }
    };
    let sink = Arc::new(FindingSink::new(None).expect("an in-memory sink"));
    let nonce = mix(seed, &[program.ops.len() as u64, 0xf0]);
    let options = RunOptions {
        concurrency: 16,
        record,
        ..RunOptions::new(seed, nonce)
    };
    let executor = Executor::new(
        plan,
        transport,
        sink.clone(),
        Arc::new(Redactor::default()),
        options,
    );
    let stats = executor.run().await;
    let signature = stats
        .order
        .iter()
        .filter_map(|i| {
            i.status.map(|s| {
                (
                    i.step
                        .rsplit_once(" [")
                        .map_or(i.step.clone(), |(n, _)| n.to_string()),
                    s,
                )
            })
        })
        .collect();
    let mut findings: Vec<Finding> = Vec::new();
    for b in sink.buckets() {
        if b.first.kind != FindingKind::Expectation {
            findings.push(b.first);
        }
    }
    Outcome {
        findings,
        signature,
        requests: stats.requests,
        order: stats.order,
    }
}

/// Makes a fresh target for each program (a new in-process clinic), or
/// hands back the same remote one.
pub type TargetFactory = Arc<dyn Fn() -> Arc<dyn Transport> + Send + Sync>;

/// The shared body of both fuzzing fronts: runs the program `bytes` stand
/// for against a fresh target and returns its leaks (empty when clean).
pub fn fuzz_one(
    runtime: &tokio::runtime::Runtime,
    vocabularies: &[Vocabulary],
    target: &TargetFactory,
    bytes: &[u8],
) -> Vec<Finding> {
    let Some((&first, rest)) = bytes.split_first() else {
        return Vec::new();
    };
    let vocab = &vocabularies[first as usize % vocabularies.len()];
    let program = Program::from_bytes(vocab, rest);
    let outcome = runtime.block_on(run_program(vocab, &program, target(), 1, false));
    outcome
        .findings
        .into_iter()
        .filter(|f| f.kind == FindingKind::Leak)
        .collect()
}

/// The vocabularies of every scenario in `paths`.
pub fn vocabularies(paths: &[std::path::PathBuf]) -> Result<Vec<Vocabulary>, ScenarioError> {
    crate::scenario::files(paths)?
        .iter()
        .map(|f| Vocabulary::new(&Scenario::load(f)?))
        .collect()
}

/// One input per vocabulary that walks its scripted flow unmutated: every
/// step in file order, sent by each instance of its actor. The first byte
/// selects the vocabulary, as in [`fuzz_one`].
pub fn seed_inputs(vocabularies: &[Vocabulary]) -> Vec<Vec<u8>> {
    vocabularies
        .iter()
        .enumerate()
        .map(|(v, vocab)| {
            let mut bytes = vec![v as u8];
            let instances = vocab.instances();
            for info in &vocab.steps {
                for (pick, (role, _)) in instances.iter().enumerate() {
                    if *role == info.role {
                        bytes.extend([pick as u8, 19, 0, 1, 0, 15, 0, 1, 0, 0, 1]);
                    }
                }
            }
            bytes
        })
        .collect()
}

/// Seeded input bytes: the stable front's source of programs.
pub fn random_bytes(seed: u64, counter: u64, len: usize) -> Vec<u8> {
    (0..len.div_ceil(8))
        .flat_map(|i| mix(seed, &[counter, i as u64]).to_le_bytes())
        .take(len)
        .collect()
}

/// A mutation of a corpus entry that keeps its operation records aligned:
/// change a byte of one record, duplicate, drop or swap whole records, or
/// append fresh ones. The first byte (the vocabulary) stays.
pub fn mutate(seed: u64, counter: u64, input: &[u8]) -> Vec<u8> {
    let Some((&vocab, records)) = input.split_first() else {
        return random_bytes(seed, counter, 64);
    };
    let mut ops: Vec<Vec<u8>> = records.chunks(OP_BYTES).map(<[u8]>::to_vec).collect();
    let r = |k: u64| mix(seed, &[counter, 0x6d, k]);
    for k in 0..1 + r(0) % 4 {
        let h = r(k + 1);
        let at = |n: usize| (h >> 8) as usize % n.max(1);
        match h % 6 {
            0 | 1 if !ops.is_empty() => {
                let i = at(ops.len());
                let byte = (h >> 24) as usize % ops[i].len();
                ops[i][byte] = (h >> 40) as u8;
            }
            2 if !ops.is_empty() => {
                let i = at(ops.len());
                let copy = ops[i].clone();
                ops.insert(i, copy);
            }
            3 if ops.len() > 1 => {
                ops.remove(at(ops.len()));
            }
            4 if ops.len() > 1 => {
                let (i, j) = (at(ops.len()), (h >> 32) as usize % ops.len());
                ops.swap(i, j);
            }
            _ => ops.extend(
                random_bytes(seed, counter ^ h, OP_BYTES * 4)
                    .chunks(OP_BYTES)
                    .map(<[u8]>::to_vec),
            ),
        }
    }
    ops.truncate(MAX_OPS * 2);
    std::iter::once(vocab)
        .chain(ops.into_iter().flatten())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocabularies() -> Vec<Vocabulary> {
        super::vocabularies(&[std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scenarios"
        ))])
        .unwrap()
    }

    #[test]
    fn any_bytes_give_a_program_that_plans() {
        for vocab in vocabularies() {
            for i in 0..300 {
                let bytes = random_bytes(9, i, 16 + (i as usize * 7) % 1500);
                let program = Program::from_bytes(&vocab, &bytes);
                assert!(program.ops.len() <= MAX_OPS);
                if let Err(err) = program.to_plan(&vocab) {
                    panic!(
                        "{}: input {i} gives a program that does not plan: {err}\n{}",
                        vocab.scenario,
                        program.to_toml(&vocab, "x")
                    );
                }
            }
        }
    }

    #[test]
    fn seed_inputs_walk_the_scripted_flow() {
        let vocabs = vocabularies();
        for (vocab, seed) in vocabs.iter().zip(seed_inputs(&vocabs)) {
            let program = Program::from_bytes(vocab, &seed[1..]);
            let expected: usize = vocab.steps.iter().map(|s| vocab.count(s.role)).sum();
            assert_eq!(
                program.ops.len(),
                expected.min(MAX_OPS),
                "{}",
                vocab.scenario
            );
            assert!(program.ops.iter().all(|op| op.identity == Identity::Own
                && op.borrow.is_none()
                && op.flip.is_none()));
        }
    }

    #[test]
    fn the_same_bytes_give_the_same_program() {
        let vocab = &vocabularies()[0];
        let bytes = random_bytes(4, 4, 600);
        assert_eq!(
            Program::from_bytes(vocab, &bytes),
            Program::from_bytes(vocab, &bytes)
        );
        assert_ne!(
            Program::from_bytes(vocab, &bytes),
            Program::from_bytes(vocab, &random_bytes(4, 5, 600))
        );
    }

    #[test]
    fn programs_round_trip_through_their_scenario_file() {
        let vocab = &vocabularies()[1];
        let program = Program::from_bytes(vocab, &random_bytes(2, 2, 800));
        let text = program.to_toml(vocab, "round trip");
        let again = Scenario::from_str("again", &text).unwrap();
        let plan = Plan::build(&again, &Overrides::default()).unwrap();
        assert_eq!(plan.steps.len(), text.matches("[[steps]]").count());
        assert!(plan.steps.iter().all(|s| s.instance.is_some()));
    }
}
