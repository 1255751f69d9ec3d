//! Leak: the oracle's verdict on one response. One finding per victim per
//! response, at its most telling location; the other locations go along.
//! Nothing at a place the step declares `public` counts.

use std::collections::BTreeMap;

use super::{Context, Exchange, Flag, Verdict};
use crate::findings::FindingKind;
use crate::oracle::{Evidence, Marker, located, within};
use crate::world::InstanceId;

pub fn judge(exchange: &Exchange, cx: &Context<'_>, verdict: &mut Verdict) {
    let world = cx.world;
    let mut by_victim: BTreeMap<InstanceId, Vec<Evidence>> = BTreeMap::new();
    let found = cx.oracle.inspect_parsed(
        world.ledger(),
        exchange.observer,
        &exchange.request,
        &exchange.response,
        exchange.json(),
    );
    // What the step declares public is nobody's secret (`public = [...]`).
    let public = match exchange.json() {
        Some(json) => located(json, &cx.step(exchange).public),
        None => Vec::new(),
    };
    let is_public = |e: &Evidence| {
        let path = e.location.strip_prefix("body ").unwrap_or(&e.location);
        public.iter().any(|p| within(path, p))
    };
    // An instance every shard drives may have been granted another
    // shard's instance there: not judged here (see `shard`).
    let unjudged =
        |e: &Evidence| world.ledger().driven_everywhere(exchange.observer) && !world.here(e.victim);
    for evidence in found.into_iter().filter(|e| !is_public(e) && !unjudged(e)) {
        by_victim.entry(evidence.victim).or_default().push(evidence);
    }
    for (_, mut evidence) in by_victim {
        evidence.sort_by_key(Evidence::rank);
        let primary = evidence.remove(0);
        let also = evidence.into_iter().map(|e| e.location).collect();
        verdict.flags.push(flag(exchange, cx, primary, also));
    }
}

fn flag(exchange: &Exchange, cx: &Context<'_>, evidence: Evidence, also: Vec<String>) -> Flag {
    let step = cx.step(exchange);
    let what = match &evidence.what {
        Marker::Canary { encoding } => format!("canary ({})", encoding.as_str()),
        Marker::Identifier { var } => format!("`{var}`"),
    };
    let summary = format!(
        "{} received {}'s {what} in {} of {} at step `{}`",
        cx.world.label(exchange.observer),
        cx.world.label(evidence.victim),
        evidence.location,
        step.endpoint(),
        step.name
    );
    Flag {
        kind: FindingKind::Leak,
        location: evidence.location.clone(),
        summary,
        evidence: Some((evidence, also)),
        tampered: None,
    }
}
