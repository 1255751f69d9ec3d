//! The resolver: what a template hole means for one instance at one step.
//!
//! Holes name the instance's own captures and the scenario's variables,
//! values captured by other instances (`ROLE.VAR`, `peer.VAR`, `ROLE#N.VAR`),
//! the environment, and built-ins (canary, generated names and times). Every
//! choice is drawn from the run's seed, so the same seed sends the same
//! requests.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use crate::canary::mix;
use crate::plan::{BUILTINS, PickOf, PlanStep};
use crate::template::{Expr, Resolve, Unresolved};
use crate::world::{InstanceId, World};

/// First names and surnames for generated identities.
const FIRST: &[&str] = &[
    "Ada", "Ben", "Chloe", "Dev", "Elif", "Femi", "Grace", "Hugo", "Iris", "Jonas", "Kofi", "Lena",
    "Mo", "Nia", "Omar", "Priya",
];
const LAST: &[&str] = &[
    "Adeyemi", "Brown", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jensen",
    "Khan", "Lopez", "Murphy", "Novak", "Okoro", "Patel",
];

/// Resolves holes as `instance` at the step keyed `step_key`.
pub struct Resolver<'a> {
    world: &'a World,
    instance: InstanceId,
    step_key: u64,
    vars: &'a HashMap<String, Value>,
    /// One pick per role per step, so `peer.a` and `peer.b` come from the same peer.
    picks: Mutex<HashMap<usize, InstanceId>>,
}

impl<'a> Resolver<'a> {
    /// `vars` are the instance's variables as the step sees them.
    pub fn new(
        world: &'a World,
        instance: InstanceId,
        step_key: u64,
        vars: &'a HashMap<String, Value>,
    ) -> Self {
        Self {
            world,
            instance,
            step_key,
            vars,
            picks: Mutex::default(),
        }
    }

    pub fn step_key(&self) -> u64 {
        self.step_key
    }

    fn picked(&self, role: usize, var: &str, exclude_self: bool) -> Result<Value, Unresolved> {
        let world = self.world;
        let cached = self
            .picks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&role)
            .copied();
        if let Some(id) = cached
            && let Some(value) = self.value_of(id, var)
        {
            return Ok(value);
        }
        let chosen = self
            .pick(role, var, exclude_self)
            .ok_or_else(|| Unresolved {
                expr: var.to_string(),
                reason: format!(
                    "no {}instance of `{}` has captured it",
                    if exclude_self { "other " } else { "" },
                    world.plan().roles[role].name
                ),
            })?;
        self.picks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(role)
            .or_insert(chosen);
        Ok(self
            .value_of(chosen, var)
            .expect("the pick has the variable"))
    }

    /// What instance `id` captured in `var`, or its built-in of that name
    /// (`patient#2.canary`, `peer.email` when `email` is captured).
    fn value_of(&self, id: InstanceId, var: &str) -> Option<Value> {
        self.world.var(id, var).or_else(|| self.builtin(id, var))
    }

    /// The instance of `role` that this step picks, among those that have
    /// `var`; never the instance itself when `exclude_self`.
    fn pick(&self, role: usize, var: &str, exclude_self: bool) -> Option<InstanceId> {
        let world = self.world;
        let candidates = world.of_role(role);
        let count = candidates.len();
        let start = (mix(
            world.seed,
            &[world.local(self.instance), self.step_key, role as u64],
        ) % count as u64) as usize;
        (0..count)
            .map(|i| candidates.start + (start + i) % count)
            .filter(|candidate| !(exclude_self && *candidate == self.instance))
            .find(|candidate| {
                BUILTINS.contains(&var) || world.state(*candidate).vars.contains_key(var)
            })
    }

    /// Built-in `name` of instance `of`.
    fn builtin(&self, of: InstanceId, name: &str) -> Option<Value> {
        let world = self.world;
        let me = world.instance(of);
        let role = &world.plan().roles[me.role].name;
        // Names never repeat between runs or programs (a target that keeps
        // its data would pair them up); twins share theirs within one.
        let person = |who: u64| person(mix(world.seed, &[world.nonce]), me.role as u64, who);
        let twin = 1_000_000 + me.index as u64 / 2;
        let value = match name {
            "canary" => Value::String(me.canary.clone()),
            "run_id" => Value::String(world.run_id.clone()),
            "instance" => Value::String(format!("{role}-{}", me.index)),
            "index" => Value::from(me.index),
            "number" => Value::from(me.index + 1),
            "serial" => Value::from(world.serial_base + world.local(of) + 1),
            "name" => Value::String(person(me.index as u64).0),
            "date_of_birth" => Value::String(person(me.index as u64).1),
            "twin.name" => Value::String(person(twin).0),
            "twin.date_of_birth" => Value::String(person(twin).1),
            "twin.email" => {
                // The world's nonce too: every program of a fuzz run (one
                // run id) signs up twins of its own.
                let world_tag = mix(world.nonce, &[0x7e1]) & 0xff_ffff;
                let local = format!(
                    "twin-{}-{world_tag:06x}-{role}-{}",
                    world.run_id,
                    me.index / 2
                );
                // Twins' emails differ only in case.
                let local = if me.index % 2 == 1 {
                    local.to_ascii_uppercase()
                } else {
                    local
                };
                Value::String(format!("{local}@example.test"))
            }
            "unique_time" => {
                Value::String(unique_time(world.nonce, world.local(of), self.step_key))
            }
            _ => return None,
        };
        Some(value)
    }
}

/// The personal built-ins the harness owns for an instance: a look-alike
/// pair shares the `twin.` ones.
/// Birth dates are not among them: a few thousand days, they collide by
/// chance too often to be anyone's.
const PERSONAL: &[&str] = &["name", "twin.name"];

/// The personal built-ins `step`'s body sends (known from the plan alone).
pub fn personal_builtins(step: &PlanStep) -> Vec<&str> {
    let mut templates = Vec::new();
    if let Some(body) = &step.body {
        body.templates(&mut templates);
    }
    (templates.iter().flat_map(|t| t.exprs()))
        .filter_map(|e| match e {
            Expr::Var(name) if PERSONAL.contains(&name.as_str()) => Some(name.as_str()),
            _ => None,
        })
        .collect()
}

/// The personal values `step`'s body sent for `of` are `of`'s, and a
/// look-alike pair's shared ones the pair's together: the ledger learns
/// them, so that they showing to anyone else is a leak. Called for a
/// request the server accepted that spoke for `of` alone.
pub fn own_generated(world: &World, of: InstanceId, step: &PlanStep) {
    let used = personal_builtins(step);
    let vars = HashMap::new();
    let resolver = Resolver::new(world, of, 0, &vars);
    let me = world.instance(of);
    let twin = me.index ^ 1;
    for name in used {
        let Some(Value::String(text)) = resolver.builtin(of, name) else {
            continue;
        };
        let owners = match name.strip_prefix("twin.") {
            Some(_) if twin < world.plan().roles[me.role].count => {
                let mut both = vec![of, world.id(me.role, twin)];
                both.sort_unstable();
                both
            }
            _ => vec![of],
        };
        let kind = name.strip_prefix("twin.").unwrap_or(name);
        world.ledger().generated(&owners, text, kind);
    }
}

/// The instance pick number `pick` names for `sender`: drawn from the
/// seed, the sender's place in its actor and the pick's name, so it is the
/// same at every step of the scenario (and in a reproduction).
pub fn picked(world: &World, sender: InstanceId, pick: usize) -> InstanceId {
    let me = world.instance(sender);
    let (name, of) = &world.plan().picks[pick];
    let role = match of {
        PickOf::Peer => me.role,
        PickOf::Role(role) => *role,
    };
    let candidates = world.of_role(role);
    let others = candidates.len() - usize::from(candidates.contains(&sender));
    let name_key = name.bytes().fold(0u64, |h, b| mix(h, &[b as u64]));
    let at = (mix(
        world.seed,
        &[0x5e1ec7, me.role as u64, me.index as u64, name_key],
    ) % others.max(1) as u64) as usize;
    // The `at`-th candidate, the sender itself passed over.
    let chosen = candidates.start + at;
    let chosen = if candidates.contains(&sender) && chosen >= sender {
        (chosen + 1).min(candidates.end - 1)
    } else {
        chosen
    };
    // A shard picks among the instances it drives: the next one on.
    let len = candidates.len();
    (0..len)
        .map(|i| candidates.start + (chosen - candidates.start + i) % len)
        .find(|id| *id != sender && world.here(*id))
        .unwrap_or(chosen)
}

/// A generated name and date of birth, the same for the same seed, role and person.
fn person(seed: u64, role: u64, who: u64) -> (String, String) {
    let h = mix(seed, &[0x9e, role, who]);
    // Two middle initials and a double-barrelled surname: nearly three
    // million names, so that two people seldom share one by chance.
    let initial = |shift: u32| char::from(b'A' + ((h >> shift) % 26) as u8);
    let name = format!(
        "{} {}. {}. {}-{}",
        FIRST[(h % 16) as usize],
        initial(40),
        initial(52),
        LAST[((h >> 8) % 16) as usize],
        LAST[((h >> 44) % 16) as usize]
    );
    let day = jiff::civil::date(1940, 1, 1) + jiff::Span::new().days(((h >> 16) % 25_000) as i64);
    (name, day.to_string())
}

/// Distinct per instance and step, on a 5-minute grid, years ahead.
fn unique_time(nonce: u64, instance: u64, step_key: u64) -> String {
    let base = jiff::Timestamp::from_second(1_924_992_000).expect("2031-01-01 is a valid time")
        + jiff::SignedDuration::from_hours(24 * (mix(nonce, &[0x71]) % 3650) as i64);
    let slot = instance as i64 * 64 + step_key as i64 % 64;
    (base + jiff::SignedDuration::from_mins(5 * slot)).to_string()
}

impl Resolve for Resolver<'_> {
    fn resolve(&self, expr: &Expr) -> Result<Value, Unresolved> {
        let world = self.world;
        let missing = |reason: &str| Unresolved {
            expr: expr.to_string(),
            reason: reason.to_string(),
        };
        match expr {
            Expr::Var(name) => self
                .vars
                .get(name)
                .cloned()
                .or_else(|| world.fixture(name))
                .or_else(|| world.plan().vars.get(name).cloned())
                .or_else(|| self.builtin(self.instance, name))
                .ok_or_else(|| missing("not captured by this instance")),
            Expr::Env(name) => std::env::var(name)
                .map(Value::String)
                .map_err(|_| missing("environment variable not set")),
            Expr::Pick { role: name, var } if world.plan().pick(name).is_some() => {
                let pick = world.plan().pick(name).expect("checked just above");
                let picked = picked(world, self.instance, pick);
                self.value_of(picked, var)
                    .ok_or_else(|| missing("not captured by the picked instance"))
            }
            Expr::Pick { role, var } => {
                let role = world
                    .plan()
                    .role(role)
                    .ok_or_else(|| missing("unknown actor"))?;
                self.picked(role, var, false)
            }
            Expr::Peer(var) => {
                let role = world.instance(self.instance).role;
                self.picked(role, var, true)
            }
            Expr::Of { role, index, var } => {
                let role = world
                    .plan()
                    .role(role)
                    .ok_or_else(|| missing("unknown actor"))?;
                self.value_of(world.id(role, *index), var)
                    .ok_or_else(|| missing("not captured by that instance"))
            }
        }
    }
}

/// Resolves the holes of a step sent once, by no instance: the scenario's
/// variables, what earlier such steps captured, the environment, `run_id`.
pub struct Once<'a>(pub &'a World);

impl Resolve for Once<'_> {
    fn resolve(&self, expr: &Expr) -> Result<Value, Unresolved> {
        let world = self.0;
        let missing = |reason: &str| Unresolved {
            expr: expr.to_string(),
            reason: reason.to_string(),
        };
        match expr {
            Expr::Var(name) if name == "run_id" => Ok(Value::String(world.run_id.clone())),
            Expr::Var(name) => world
                .fixture(name)
                .or_else(|| world.plan().vars.get(name).cloned())
                .ok_or_else(|| missing("not captured by an earlier step sent once")),
            Expr::Env(name) => std::env::var(name)
                .map(Value::String)
                .map_err(|_| missing("environment variable not set")),
            _ => Err(missing("a step sent once belongs to no instance")),
        }
    }
}
