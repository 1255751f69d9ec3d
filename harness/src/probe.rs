//! Probes: every step an instance sends that names data it owns is sent
//! again by identities that may not see that data, so a missing access
//! check shows without a hand-written step asking for it.
//!
//! A probe is the step rendered for the prober, with the owner's owned
//! values in place of the prober's: the owner's appointment id in the
//! path, the prober's own token, password and canary everywhere else. So a
//! password change names the owner's account but proves the prober's
//! current password, as a real attacker's request would.
//!
//! A step that names several owned values (a nested path,
//! `/patients/{patient_id}/encounters/{encounter_id}`) is probed with the
//! owner's values all together, and with each of them alone, the rest the
//! prober's own: a server that checks the caller is the path's patient but
//! loads the encounter by its id alone answers `403` to the first and shows
//! the owner's encounter to the second. At most [`ALONE_PER_STEP`] values
//! are probed alone.
//!
//! Who probes, for each owner and step: one other instance of the owner's
//! actor, one instance of every other actor, and no one (no credentials),
//! each drawn by seed among those the ledger does not let see the owner (a
//! clinician the patient booked with may read the booking). At most
//! [`OWNERS_PER_STEP`] owners of a step are probed, drawn by seed, so the
//! cost stays bounded at any instance count.

use std::collections::HashMap;

use serde_json::Value;

use crate::canary::mix;
use crate::plan::{Plan, PlanStep, StepRef};
use crate::template::Expr;
use crate::world::{InstanceId, World};

/// Owners probed per step at most: every instance below that count, a
/// seeded sample above it.
pub const OWNERS_PER_STEP: usize = 32;

/// Owned values of one step probed alone, at most.
pub const ALONE_PER_STEP: usize = 4;

/// The sets of `owned` variables a probe borrows from the owner: all of
/// them, then each alone when there are several (the rest the prober's).
pub fn borrowings(owned: &[String]) -> Vec<Vec<String>> {
    let mut out = vec![owned.to_vec()];
    if owned.len() > 1 {
        let alone = owned.iter().take(ALONE_PER_STEP);
        out.extend(alone.map(|var| vec![var.clone()]));
    }
    out
}

/// The variables of `step` that name `owner`'s own data: captured by it,
/// not secret, not shared, not a value every instance read alike (see
/// [`public`](crate::judge::public)), used by the request (path, query,
/// headers, body). Empty: the step names nothing of the owner's and is not
/// probed.
pub fn owned_vars(world: &World, step: &PlanStep, owner: InstanceId) -> Vec<String> {
    let plan = world.plan();
    let role = &plan.roles[step.role];
    let state = world.state(owner);
    let ledger = world.ledger();
    let mut names: Vec<String> = request_templates(step)
        .flat_map(|t| t.exprs())
        .filter_map(|expr| match expr {
            Expr::Var(name) => Some(name.clone()),
            _ => None,
        })
        .filter(|name| {
            state
                .vars
                .get(name)
                .is_some_and(|v| !v.is_null() && !ledger.is_public(&crate::judge::text_of(v)))
                && !plan.secrets.contains(name)
                && !role.shared.contains(name)
                && !secret_or_shared_capture(plan, name)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

fn request_templates(step: &PlanStep) -> impl Iterator<Item = &crate::template::Template> {
    let mut out = vec![&step.path];
    step.query.iter().for_each(|(_, b)| b.templates(&mut out));
    out.extend(step.headers.iter().map(|(_, t)| t));
    if let Some(body) = &step.body {
        body.templates(&mut out);
    }
    out.into_iter()
}

fn secret_capture(plan: &Plan, var: &str) -> bool {
    (plan.steps.iter().chain(&plan.teardown))
        .flat_map(|s| &s.captures)
        .any(|c| c.var == var && c.secret)
}

fn secret_or_shared_capture(plan: &Plan, var: &str) -> bool {
    (plan.steps.iter().chain(&plan.teardown))
        .flat_map(|s| &s.captures)
        .any(|c| c.var == var && (c.secret || c.shared))
}

/// Whether `owner`'s sending of `step` is among those probed.
pub fn sampled(world: &World, step: StepRef, owner: InstanceId) -> bool {
    let role = world.instance(owner).role;
    let count = world.plan().roles[role].count;
    let draw = mix(world.seed, &[0x9c0be, step.key(), world.local(owner)]) % count as u64;
    count <= OWNERS_PER_STEP || draw < OWNERS_PER_STEP as u64
}

/// Who probes `owner`'s `step`: for each actor one instance that may not
/// see the owner (not the owner itself), then `None` for no credentials
/// when the owner's actor authenticates at all.
pub fn probers(world: &World, step: StepRef, owner: InstanceId) -> Vec<Option<InstanceId>> {
    let plan = world.plan();
    let mut out = Vec::new();
    for role in 0..plan.roles.len() {
        let candidates = world.of_role(role);
        let count = candidates.len();
        let start = mix(
            world.seed,
            &[0x9c0be, step.key(), world.local(owner), role as u64],
        );
        let chosen = (0..count)
            .map(|i| candidates.start + (start as usize + i) % count)
            .find(|id| *id != owner && world.here(*id) && !world.ledger().visible(*id, owner));
        out.extend(chosen.map(Some));
    }
    if plan.roles[world.instance(owner).role].auth.authenticates() {
        out.push(None);
    }
    out
}

/// The variables a probe is rendered with: the prober's own, with the
/// owner's values of `borrowed`; with no prober, the owner's own (sent
/// without credentials). `None` when the prober holds the very same values
/// (the probe would name its own data).
pub fn vars(
    world: &World,
    prober: Option<InstanceId>,
    owner: InstanceId,
    borrowed: &[String],
) -> Option<HashMap<String, Value>> {
    let owner_vars = world.state(owner).vars.clone();
    let Some(prober) = prober else {
        // No credential goes out with nobody's request: not the owner's
        // token, nor a value tied to its session (a CSRF token).
        let plan = world.plan();
        let mut vars = owner_vars.as_ref().clone();
        vars.retain(|name, _| !secret_capture(plan, name));
        return Some(vars);
    };
    let mut vars = world.state(prober).vars.as_ref().clone();
    let mut differs = false;
    for name in borrowed {
        if let Some(value) = owner_vars.get(name) {
            differs |= vars.get(name) != Some(value);
            vars.insert(name.clone(), value.clone());
        }
    }
    differs.then_some(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_owned_values_are_borrowed_together_then_each_alone() {
        let owned = ["encounter_id".to_string(), "patient_id".to_string()];
        let sets = borrowings(&owned);
        assert_eq!(sets[0], owned.to_vec());
        assert_eq!(sets[1..], [vec![owned[0].clone()], vec![owned[1].clone()]]);
        assert_eq!(borrowings(&owned[..1]), vec![vec![owned[0].clone()]]);
        let many: Vec<String> = (0..9).map(|i| format!("v{i}")).collect();
        assert_eq!(borrowings(&many).len(), 1 + ALONE_PER_STEP);
    }
}
