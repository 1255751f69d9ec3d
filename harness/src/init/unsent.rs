//! The operations a suite never sends, written as steps of its actors:
//! what `crosstalk fuzz --openapi` adds to the fuzzer's vocabulary, so a
//! program can call any documented operation with the values the suite's
//! steps capture. A step here is the step `init` would write (the same
//! placing, filling and capturing), for the first actor whose variables
//! can fill it; the sign-up and login stay the suite's own, and an operation
//! that resets the whole database stays out. What no actor can fill is
//! listed with what it needs.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::scenario::Step;

use super::operation::{Op, is_logout, path_vars, take_all};
use super::{Generator, resets_everything};

/// An actor of the suite: its name and the variables its instances have
/// (what its steps capture, and the scenario's own).
pub struct Actor {
    pub name: String,
    pub known: BTreeSet<String>,
    /// The password its sign-up sets, when the suite has one: a step that
    /// sends the current password must send that one.
    pub password: Option<String>,
}

/// The steps written for the operations a suite never sends.
#[derive(Debug, Default)]
pub struct Unsent {
    /// In the order `init` places them, per actor.
    pub steps: Vec<Step>,
    /// Sent out of turn, as a teardown's: a logout, the account's deletion.
    pub teardown: Vec<Step>,
    /// Operations no actor could send, each with why.
    pub unplaced: Vec<String>,
}

#[derive(Deserialize)]
struct Written {
    #[serde(default)]
    steps: Vec<Step>,
    #[serde(default)]
    teardown: Vec<Step>,
}

/// The steps of every operation of the document `text` not in `sent`
/// (`METHOD /template`), each sent by the first of `actors` (population
/// actors first: whose data is at stake) whose variables fill it.
pub fn steps(text: &str, sent: &BTreeSet<String>, actors: &[Actor]) -> Result<Unsent, String> {
    let spec = crate::openapi::read(text)?;
    let all = || {
        spec.operations().map(|(path, method, operation)| Op {
            method: method.to_string(),
            path,
            operation: operation.clone(),
        })
    };
    let needed: BTreeSet<String> = all()
        .flat_map(|op| path_vars(&op))
        .map(|(_, v)| v)
        .collect();
    let mut unsent = Unsent::default();
    // Each operation once, by the first actor that can fill it.
    let mut taken = sent.clone();
    // Per operation: why the first actor could not send it.
    let mut refused: Vec<(String, String)> = Vec::new();
    for actor in actors {
        let mut generator = Generator::new(&spec);
        generator.actor = actor.name.clone();
        generator.known = actor.known.clone();
        generator.needed = needed.clone();
        if let Some(password) = &actor.password {
            generator.account_password.clone_from(password);
        }
        let mut ops: Vec<Op> = all()
            .filter(|op| !taken.contains(&op.name()) && !resets_everything(op))
            .filter(|op| !generator.is_signup(op) && !generator.is_login(op))
            .collect();
        let given: Vec<String> = ops.iter().map(Op::name).collect();
        // Ending the session or the account: out of turn, never in the flow.
        let late = take_all(&mut ops, |op| {
            is_logout(op) || (op.method == "DELETE" && !op.has_params())
        });
        generator.place_all(ops);
        generator
            .out
            .push_str(&std::mem::take(&mut generator.deferred));
        for op in late {
            if generator.placeable(&op) {
                generator.step(&op, "teardown");
            }
        }
        let unplaced = std::mem::take(&mut generator.unplaced);
        let op_of = |line: &String| {
            line.split_once(": ")
                .map_or(line.clone(), |(op, _)| op.into())
        };
        let not_placed: BTreeSet<String> = unplaced.iter().map(op_of).collect();
        taken.extend(given.into_iter().filter(|op| !not_placed.contains(op)));
        for line in unplaced {
            let op = op_of(&line);
            if !refused.iter().any(|(name, _)| *name == op) {
                refused.push((op, line));
            }
        }
        let written: Written = toml::from_str(&generator.out).map_err(|err| {
            format!(
                "a step written for {} does not read back: {err}",
                actor.name
            )
        })?;
        let named = |mut step: Step| {
            step.name = format!("{}: {}", actor.name, step.name);
            step
        };
        unsent.steps.extend(written.steps.into_iter().map(named));
        unsent
            .teardown
            .extend(written.teardown.into_iter().map(named));
    }
    unsent.unplaced = (refused.into_iter())
        .filter(|(op, _)| !taken.contains(op))
        .map(|(_, why)| why)
        .collect();
    Ok(unsent)
}
