//! Programs: sequences of operations over a vocabulary, built from bytes,
//! and written back out as ordinary scenario files.

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::Unstructured;
use serde::Serialize;

use crate::plan::{BUILTINS, Overrides, Plan};
use crate::scenario::{Actor, Expect, Scenario, ScenarioError, Step};
use crate::template::{Expr, Template};

use super::vocabulary::{StepInfo, Vocabulary, query_pairs, template_strings};
use super::{MAX_OPS, OP_BYTES};

/// The description of a program run, not written out.
const PROGRAM: &str = "fuzz program";

/// Whose credentials an operation sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Identity {
    Own,
    Anonymous,
    /// Another instance of the sender's actor.
    Other(usize),
    /// Another instance's JWT claims, unsigned (`alg: none`).
    Unsigned(usize),
}

impl Identity {
    /// The other instance whose credential is sent, if any.
    fn of(self) -> Option<usize> {
        match self {
            Identity::Other(i) | Identity::Unsigned(i) => Some(i),
            Identity::Own | Identity::Anonymous => None,
        }
    }
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
    /// Borrow only this one of them, the rest the sender's own: a nested
    /// path's child id under the sender's own parent id, which a server
    /// that checks only the parent lets through.
    pub borrow_alone: Option<String>,
    /// A body field or query parameter set to another of its values.
    pub flip: Option<Flip>,
    /// A body field set (or added) to another instance's captured value of
    /// its kind: a shared slot, an owner's id (mass assignment).
    pub set: Option<Setting>,
    /// The e-mail the step sends made another instance's, its case
    /// changed (a sign-up or login as someone else's address).
    pub alias: Option<usize>,
    /// Sent at the same moment as the previous operation.
    pub concurrent: bool,
}

/// A field given another of the values the scenario gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flip {
    pub field: String,
    pub value: String,
    /// A query parameter sent twice, the scenario's value then this one,
    /// rather than replaced.
    pub repeat: bool,
}

/// A body field set to what instance `from` of actor `role` captured in `var`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    pub field: String,
    pub role: usize,
    pub from: usize,
    pub var: String,
}

/// A sequence of operations over one vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Program {
    pub ops: Vec<Op>,
}

impl Op {
    /// Whether everything the operation sends has been captured, per
    /// actor: its step's inputs and the value a setting takes.
    fn ready(&self, vocab: &Vocabulary, captured: &[BTreeSet<String>]) -> bool {
        vocab.steps[self.step].ready(captured)
            && (self.set.as_ref()).is_none_or(|set| captured[set.role].contains(&set.var))
    }

    /// Step `step` sent by `instance`, mutated as bytes 3.. of its record
    /// say: borrowed values, another identity, a flip, a field set, an
    /// e-mail aliased, sent at once with the operation before.
    fn mutated(
        vocab: &Vocabulary,
        step: usize,
        instance: usize,
        captured: &[BTreeSet<String>],
        record: &[u8; OP_BYTES],
        first: bool,
    ) -> Op {
        let [
            _,
            _,
            _,
            borrow,
            borrow_of,
            identity,
            identity_of,
            flip,
            flip_field,
            flip_value,
            concurrent,
            set,
            set_field,
            set_from,
            alias,
            alias_of,
        ] = *record;
        let info = &vocab.steps[step];
        let others: Vec<usize> = (0..vocab.count(info.role))
            .filter(|i| *i != instance)
            .collect();
        let other = |byte: u8| others[byte as usize % others.len()];
        let borrowing = !others.is_empty() && !info.borrowable.is_empty() && borrow % 5 == 0;
        let borrow_alone = borrowing.then(|| alone(info, borrow / 5)).flatten();
        let borrow = borrowing.then(|| other(borrow_of));
        let identity = match identity % 16 {
            0 => Identity::Anonymous,
            1 | 2 if !others.is_empty() => Identity::Other(other(identity_of)),
            3 if !others.is_empty() => Identity::Unsigned(other(identity_of)),
            _ => Identity::Own,
        };
        let set = (set % 6 == 0)
            .then(|| setting_of(vocab, info, captured, set_field, set_from))
            .flatten();
        let alias =
            (alias % 8 == 0 && !others.is_empty() && sends_email(info)).then(|| other(alias_of));
        Op {
            step,
            instance,
            identity,
            borrow,
            borrow_alone,
            flip: flip_of(vocab, info, flip, flip_field, flip_value),
            set,
            alias,
            concurrent: !first && concurrent % 4 == 0,
        }
    }
}

impl Program {
    /// The program these bytes stand for. Total: any bytes give a program.
    pub fn from_bytes(vocab: &Vocabulary, bytes: &[u8]) -> Program {
        let mut u = Unstructured::new(bytes);
        let instances = vocab.instances();
        let flows: Vec<Vec<usize>> = (0..vocab.actors.len()).map(|r| vocab.flow(r)).collect();
        let anytime: Vec<Vec<usize>> = (0..vocab.actors.len()).map(|r| vocab.any_step(r)).collect();
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
            let [pick, action, any_step, ..] = record;
            let pick = pick as usize % instances.len();
            let (role, instance) = instances[pick];
            let flow = &flows[role];
            let step = match action % 20 {
                // Skip a precondition: this instance's next step never happens.
                0 => {
                    cursors[pick] += 1;
                    continue;
                }
                // Any step of the actor, its teardown too: a repeat, a
                // reordering, or a stale credential used after it.
                1 | 2 if !flow.is_empty() => {
                    let any = &anytime[role];
                    any[any_step as usize % any.len()]
                }
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
            let first = ops.is_empty();
            ops.push(Op::mutated(
                vocab, step, instance, &captured, &record, first,
            ));
            captured[role].extend(info.captures.iter().cloned());
        }
        Program { ops }
    }

    /// This program, then `later` with instances of their own, in that
    /// order: an earlier program whose records a leak needed, followed by
    /// the program that saw them (each instance of `later` numbered after
    /// this program's instances of its actor).
    pub fn then(&self, vocab: &Vocabulary, later: &Program) -> Program {
        let offsets = self.instance_counts(vocab, 0);
        let shift = |role: usize, i: usize| i + offsets[role];
        let mut ops = self.ops.clone();
        for (n, op) in later.ops.iter().enumerate() {
            let role = vocab.role_of(op);
            let mut op = op.clone();
            op.instance = shift(role, op.instance);
            op.borrow = op.borrow.map(|i| shift(role, i));
            op.alias = op.alias.map(|i| shift(role, i));
            op.identity = match op.identity {
                Identity::Other(i) => Identity::Other(shift(role, i)),
                Identity::Unsigned(i) => Identity::Unsigned(shift(role, i)),
                other => other,
            };
            if let Some(set) = &mut op.set {
                set.from = shift(set.role, set.from);
            }
            // The later program starts once the earlier one is done.
            op.concurrent &= n > 0;
            ops.push(op);
        }
        Program { ops }
    }

    /// The same operations, each sent once the one before has answered.
    pub fn sequential(&self) -> Program {
        let ops = self.ops.iter().map(|op| Op {
            concurrent: false,
            ..op.clone()
        });
        Program { ops: ops.collect() }
    }

    /// Instances of each actor the operations name (at least `least`).
    fn instance_counts(&self, vocab: &Vocabulary, least: usize) -> Vec<usize> {
        let mut counts = vec![least; vocab.actors.len()];
        for op in &self.ops {
            let role = vocab.role_of(op);
            let other = match op.identity {
                Identity::Other(i) | Identity::Unsigned(i) => i,
                _ => 0,
            };
            let highest = op
                .instance
                .max(op.borrow.unwrap_or(0))
                .max(op.alias.unwrap_or(0))
                .max(other);
            counts[role] = counts[role].max(highest + 1);
            if let Some(set) = &op.set {
                counts[set.role] = counts[set.role].max(set.from + 1);
            }
        }
        counts
    }

    /// The program as a scenario file: one step per operation.
    pub fn to_toml(&self, vocab: &Vocabulary, description: &str) -> String {
        self.render(vocab, description, &vocab.vars)
    }

    /// The program as a reproduction to hand out: as [`Program::to_toml`],
    /// without the values of secret variables (a replay takes them from
    /// `--var` or the environment).
    pub fn to_reproduction(&self, vocab: &Vocabulary, description: &str) -> String {
        let public: BTreeMap<String, toml::Value> = vocab
            .vars
            .iter()
            .filter(|(name, _)| !vocab.secrets.contains(*name))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut text = String::new();
        for name in &vocab.secrets {
            text.push_str(&format!(
                "# needs the secret variable `{name}`: --var {name}=… or CROSSTALK_VAR_{name}\n"
            ));
        }
        text + &self.render(vocab, description, &public)
    }

    fn render(
        &self,
        vocab: &Vocabulary,
        description: &str,
        vars: &BTreeMap<String, toml::Value>,
    ) -> String {
        #[derive(Serialize)]
        struct File<'a> {
            description: &'a str,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            vars: &'a BTreeMap<String, toml::Value>,
            actors: BTreeMap<&'a str, &'a Actor>,
            #[serde(skip_serializing_if = "<[Step]>::is_empty")]
            setup: &'a [Step],
            steps: Vec<Step>,
            #[serde(skip_serializing_if = "<[Step]>::is_empty")]
            teardown: &'a [Step],
        }
        let (actors, steps, teardown) = self.parts(vocab);
        let file = File {
            description,
            vars,
            actors: actors.iter().map(|(n, a)| (*n, a)).collect(),
            setup: &vocab.setup,
            steps,
            teardown: &teardown,
        };
        toml::to_string(&file).expect("scenario files serialize")
    }

    /// The program as a scenario, the same as its file would be read, but
    /// made without writing and parsing that file: running a program is
    /// the fuzzer's inner loop.
    pub fn to_scenario(&self, vocab: &Vocabulary) -> Scenario {
        let (actors, steps, teardown) = self.parts(vocab);
        Scenario::generated(
            &vocab.scenario,
            PROGRAM,
            vocab.vars.clone(),
            actors.into_iter().map(|(name, a)| (name.to_string(), a)),
            [vocab.setup.clone(), steps, teardown],
        )
    }

    /// The program's actors, steps (one per operation that can be sent)
    /// and teardown (an actor's teardown step only when the program
    /// captures what it sends: a sign-out needs the CSRF token a sign-in
    /// captured).
    fn parts<'v>(&self, vocab: &'v Vocabulary) -> (Vec<(&'v str, Actor)>, Vec<Step>, Vec<Step>) {
        let mut captured: Vec<BTreeSet<String>> = vec![BTreeSet::new(); vocab.actors.len()];
        // What the steps of the batch being built capture.
        let mut batch = Batch::default();
        let mut steps = Vec::new();
        for (n, op) in self.ops.iter().enumerate() {
            let info = &vocab.steps[op.step];
            // Operations whose inputs were never captured cannot be sent
            // (the shrinker removes the operations that capture them).
            if !op.ready(vocab, &captured) {
                continue;
            }
            let mut step = materialize(vocab, info, op, n);
            // A step sent at the same moment as another cannot use what
            // the other's answer gives: whether it came in time would be
            // luck. It waits for its batch instead, so every run of the
            // program (and its replay, and its script) sends the same.
            step.concurrent &= !batch.gives(vocab, &step, info.role, op);
            if !step.concurrent {
                batch = Batch::default();
            }
            batch.add(info, op);
            captured[info.role].extend(info.captures.iter().cloned());
            steps.push(step);
        }
        let teardown = vocab
            .teardown
            .iter()
            .filter(|step| {
                step.actor.is_empty()
                    || (vocab.steps.iter())
                        .any(|i| i.late && i.step.name == step.name && i.ready(&captured))
            })
            .cloned()
            .collect();
        (self.actors(vocab, &captured), steps, teardown)
    }

    /// Each actor with as many instances as the operations name; an actor
    /// whose credential no operation captures sends none.
    fn actors<'v>(
        &self,
        vocab: &'v Vocabulary,
        captured: &[BTreeSet<String>],
    ) -> Vec<(&'v str, Actor)> {
        let counts = self.instance_counts(vocab, 1);
        let mut actors = Vec::new();
        for (role, (name, actor)) in vocab.actors.iter().enumerate() {
            let mut actor = Actor {
                count: counts[role],
                ..actor.clone()
            };
            if auth_vars(vocab, role).any(|v| !captured[role].contains(&v))
                && let Some(auth) = &mut actor.auth
            {
                auth.bearer = None;
                auth.header = None;
            }
            actors.push((name.as_str(), actor));
        }
        actors
    }

    /// The program planned: ready to execute. An error here is a bug in
    /// the generator, never in the target.
    pub fn to_plan(&self, vocab: &Vocabulary) -> Result<Plan, ScenarioError> {
        Plan::build(&self.to_scenario(vocab), &Overrides::default()).or_else(|_| {
            // Planned again from its file, for an error that points into it.
            let text = self.to_toml(vocab, PROGRAM);
            Plan::build(
                &Scenario::from_str(&vocab.scenario, &text)?,
                &Overrides::default(),
            )
        })
    }
}

/// The flip an operation's bytes ask for: a body field or query parameter
/// the step sends set to another of the values the scenario gives it, or
/// a query parameter repeated with one.
fn flip_of(vocab: &Vocabulary, info: &StepInfo, flip: u8, field: u8, value: u8) -> Option<Flip> {
    if flip % 4 != 0 {
        return None;
    }
    let query = query_pairs(&info.step.request);
    let sent = |name: &str| body_sends(&info.step, name) || query.iter().any(|(k, _)| k == name);
    let fields: Vec<(&String, &Vec<String>)> =
        vocab.enums.iter().filter(|(name, _)| sent(name)).collect();
    let (name, values) = fields.get(field as usize % fields.len().max(1))?;
    Some(Flip {
        field: (*name).clone(),
        value: values[value as usize % values.len()].clone(),
        repeat: flip % 8 == 4 && query.iter().any(|(k, _)| k == *name),
    })
}

/// The setting an operation's bytes ask for: a field of a write's body
/// (one it sends, or any field a captured value came from) set to another
/// instance's value of that field, captured already.
fn setting_of(
    vocab: &Vocabulary,
    info: &StepInfo,
    captured: &[BTreeSet<String>],
    field: u8,
    from: u8,
) -> Option<Setting> {
    let method = info.step.request.split_whitespace().next().unwrap_or("");
    // A field goes into a JSON body or a form; never into a multipart or
    // raw body, nor beside a non-table body (a step sends one body).
    let table_body = matches!(info.step.body, None | Some(toml::Value::Table(_)));
    let other_body = info.step.multipart.is_some() || info.step.raw.is_some();
    if !matches!(method, "POST" | "PUT" | "PATCH") || !table_body || other_body {
        return None;
    }
    let choices: Vec<(&String, usize, &String)> = vocab
        .fields
        .iter()
        .flat_map(|(field, vars)| vars.iter().map(move |(role, var)| (field, *role, var)))
        .filter(|(_, role, var)| captured[*role].contains(*var))
        .collect();
    // Half the time, one of the fields the step sends (the slot of a
    // booking); else any field a captured value came from.
    let sent: Vec<_> = choices
        .iter()
        .filter(|(name, _, _)| body_sends(&info.step, name))
        .cloned()
        .collect();
    let pool = if field % 2 == 0 && !sent.is_empty() {
        &sent
    } else {
        &choices
    };
    let (field, role, var) = pool.get(field as usize / 2 % pool.len().max(1))?;
    Some(Setting {
        field: (*field).clone(),
        role: *role,
        from: from as usize % vocab.count(*role),
        var: (*var).clone(),
    })
}

/// What the steps of one batch capture: (actor, instance, variable).
#[derive(Default)]
struct Batch(BTreeSet<(usize, usize, String)>);

impl Batch {
    /// Operation `op`'s captures, kept by its sender and by the identity
    /// it sends as (a token goes to whoever the server authenticated).
    fn add(&mut self, info: &StepInfo, op: &Op) {
        for var in &info.captures {
            self.0.insert((info.role, op.instance, var.clone()));
            if let Some(of) = op.identity.of() {
                self.0.insert((info.role, of, var.clone()));
            }
        }
    }

    /// Whether `step`, operation `op` of actor `role` materialized, uses a
    /// value a step of this batch captures: its own variables, another
    /// instance's, and the credential it sends.
    fn gives(&self, vocab: &Vocabulary, step: &Step, role: usize, op: &Op) -> bool {
        let sender = Some(op.identity.of().unwrap_or(op.instance));
        let credential = (op.identity != Identity::Anonymous)
            .then(|| auth_vars(vocab, role).map(move |var| (role, sender, var)))
            .into_iter()
            .flatten();
        let role_of = |name: &str| vocab.actors.iter().position(|(n, _)| n == name);
        let exprs: Vec<Expr> = (template_strings(step).iter())
            .filter_map(|text| Template::parse(text).ok())
            .flat_map(|t| t.exprs().cloned().collect::<Vec<_>>())
            .collect();
        let used = exprs.into_iter().filter_map(|expr| match expr {
            Expr::Var(var) => Some((role, Some(op.instance), var)),
            Expr::Peer(var) => Some((role, None, var)),
            Expr::Pick { role: r, var } => role_of(&r).map(|r| (r, None, var)),
            Expr::Of {
                role: r,
                index,
                var,
            } => role_of(&r).map(|r| (r, Some(index), var)),
            Expr::Env(_) => None,
        });
        used.chain(credential).any(|(r, instance, var)| {
            (self.0.iter())
                .any(|(br, bi, bv)| *br == r && *bv == var && instance.is_none_or(|i| i == *bi))
        })
    }
}

/// The variables actor `role`'s credential is made of (a bearer token's).
fn auth_vars(vocab: &Vocabulary, role: usize) -> impl Iterator<Item = String> + '_ {
    let own_var = |expr: Expr| match expr {
        Expr::Var(name)
            if !BUILTINS.contains(&name.as_str()) && !vocab.vars.contains_key(&name) =>
        {
            Some(name)
        }
        _ => None,
    };
    (vocab.actors[role].1.auth.iter())
        .flat_map(|auth| {
            auth.bearer
                .iter()
                .chain(auth.header.as_ref().map(|h| &h.value))
        })
        .filter_map(|text| Template::parse(text).ok())
        .flat_map(|t| t.exprs().cloned().collect::<Vec<_>>())
        .filter_map(own_var)
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
        Identity::Unsigned(i) => Some(format!("unsigned {role}#{i}")),
    };
    if let (Some(of), Some(body)) = (op.alias, &mut step.body) {
        rewrite_strings(body, &|text: &str| {
            if email_hole(text) {
                text.to_uppercase()
                    .replace("{{CANARY}}", &format!("{{{{{role}#{of}.canary}}}}"))
            } else {
                text.to_string()
            }
        });
    }
    if let Some(from) = op.borrow {
        let alone: BTreeSet<String> = op.borrow_alone.iter().cloned().collect();
        let borrowed = if alone.is_empty() {
            &info.borrowable
        } else {
            &alone
        };
        let rewrite = |text: &str| borrow_holes(text, borrowed, role, from);
        step.request = rewrite(&step.request);
        for value in step.headers.values_mut() {
            *value = rewrite(value);
        }
        if let Some(body) = &mut step.body {
            rewrite_strings(body, &rewrite);
        }
    }
    if let Some(flip) = &op.flip {
        apply_flip(&mut step, flip);
    }
    if let Some(set) = &op.set {
        let value = format!(
            "{{{{{}#{}.{}}}}}",
            vocab.actors[set.role].0, set.from, set.var
        );
        let value = toml::Value::String(value);
        if let Some(form) = &mut step.form {
            form.insert(set.field.clone(), value);
        } else if step.multipart.is_none() && step.raw.is_none() {
            let body = step
                .body
                .get_or_insert_with(|| toml::Value::Table(Default::default()));
            if let toml::Value::Table(body) = body {
                body.insert(set.field.clone(), value);
            }
        }
    }
    step
}

/// Whether the step's JSON body or form sends the field `name`.
fn body_sends(step: &Step, name: &str) -> bool {
    matches!(&step.body, Some(toml::Value::Table(body)) if body.contains_key(name))
        || step
            .form
            .as_ref()
            .is_some_and(|form| form.contains_key(name))
}

/// The flip in the body (replaced) or the query (replaced or repeated).
fn apply_flip(step: &mut Step, flip: &Flip) {
    let value = toml::Value::String(flip.value.clone());
    if let Some(toml::Value::Table(body)) = &mut step.body
        && body.contains_key(&flip.field)
    {
        body.insert(flip.field.clone(), value);
        return;
    }
    if let Some(form) = &mut step.form
        && form.contains_key(&flip.field)
    {
        form.insert(flip.field.clone(), value);
        return;
    }
    let Some((line, query)) = step.request.split_once('?') else {
        return;
    };
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k == flip.field.as_str() && !flip.repeat {
            out.append_pair(&k, &flip.value);
        } else {
            out.append_pair(&k, &v);
        }
    }
    if flip.repeat {
        out.append_pair(&flip.field, &flip.value);
    }
    step.request = format!("{line}?{}", out.finish());
}

/// Whether the step's body sends an e-mail made of the sender's canary.
fn sends_email(info: &StepInfo) -> bool {
    let mut strings = Vec::new();
    if let Some(body) = &info.step.body {
        super::vocabulary::collect_strings(body, &mut strings);
    }
    strings.iter().any(|s| email_hole(s))
}

/// `{{canary}}@patients.test`: an address whose only hole is the canary.
fn email_hole(text: &str) -> bool {
    text.contains('@')
        && Template::parse(text).is_ok_and(|t| {
            let mut exprs = t.exprs().peekable();
            exprs.peek().is_some() && exprs.all(|e| *e == Expr::Var("canary".into()))
        })
}

/// Which own variable a borrowing takes alone, as `choice` says: none
/// (all of them together) or one of them, when the step names two or more.
fn alone(info: &StepInfo, choice: u8) -> Option<String> {
    let vars = &info.borrowable;
    let pick = choice as usize % (vars.len() + 1);
    (vars.len() >= 2 && pick > 0).then(|| vars.iter().nth(pick - 1).cloned())?
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
