//! Grant: a step's `grant_to` names who may see the observer's data from
//! now on (a clinician, once a patient booked with them). It follows what
//! the server did: a successful request made as the observer, whether its
//! own or sent with its borrowed credential; never an anonymous one.

use std::collections::HashMap;

use super::{Attribution, Context, Exchange, Verdict};
use crate::resolver::Resolver;

pub fn judge(exchange: &Exchange, cx: &Context<'_>, verdict: &mut Verdict) {
    let step = cx.step(exchange);
    let Some(template) = &step.grant_to else {
        return;
    };
    if exchange.attribution == Attribution::None || !(200..300).contains(&exchange.response.status)
    {
        return;
    }
    let world = cx.world;
    let observer = exchange.observer;
    // Rendered with this response's captures: a grant often names one.
    let mut vars: HashMap<_, _> = world.state(observer).vars.as_ref().clone();
    vars.extend(
        verdict
            .captured
            .iter()
            .map(|(var, value, _)| (var.clone(), value.clone())),
    );
    let resolver = Resolver::new(world, observer, exchange.step.key(), &vars);
    if let Ok(value) = template.render(&resolver)
        && let Some(viewer) = world.ledger().first_capturer(&value)
        && viewer != observer
    {
        world.ledger().grant(viewer, observer);
    }
}
