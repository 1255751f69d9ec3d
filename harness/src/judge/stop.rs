//! Stop: an instance whose own step failed (a wrong status, a lost capture)
//! and that is left holding no credential (a sign-up or login that did not
//! work) stops its flow there. The failed step is the one finding; the
//! dozens of 401s its later steps would meet are not sent, and the run
//! reports how many step runs that left out.

use super::{Attribution, Context, Exchange, Verdict};
use crate::request;

pub fn judge(exchange: &Exchange, cx: &Context<'_>, verdict: &mut Verdict) {
    if !verdict.failed || exchange.attribution != Attribution::Full || !cx.stop_without_credential {
        return;
    }
    let world = cx.world;
    let observer = exchange.observer;
    let role = &world.plan().roles[world.instance(observer).role];
    if !role.auth.authenticates() || request::holds_credential(world, observer) {
        return;
    }
    let step = cx.step(exchange);
    world.state(observer).stopped = Some(step.name.clone());
}
