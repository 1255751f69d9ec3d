//! Status: a 5xx answer is a finding whatever the scenario expects: the
//! server failed where it should have said no.

use super::{Context, Exchange, Flag, Verdict};
use crate::findings::FindingKind;

pub fn judge(exchange: &Exchange, cx: &Context<'_>, verdict: &mut Verdict) {
    let status = exchange.response.status;
    if status < 500 {
        return;
    }
    let step = cx.step(exchange);
    let summary = format!(
        "{} answered {status} to {} at step `{}`",
        step.endpoint(),
        cx.world.label(exchange.observer),
        step.name
    );
    verdict
        .flags
        .push(Flag::new(FindingKind::ServerError, "status", summary));
}
