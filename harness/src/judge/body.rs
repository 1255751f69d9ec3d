//! Body: an answer longer than the body limit was read, and is judged, up
//! to the limit only. The rest went unjudged, so it is a finding of the
//! kind that says the run did not do all its work.

use super::{Context, Exchange, Flag, Verdict};
use crate::findings::FindingKind;

pub fn judge(exchange: &Exchange, cx: &Context<'_>, verdict: &mut Verdict) {
    if !exchange.response.truncated {
        return;
    }
    let step = cx.step(exchange);
    let summary = format!(
        "{} answered {} at step `{}` with a body longer than {} bytes: only that much was read and judged",
        step.endpoint(),
        cx.world.label(exchange.observer),
        step.name,
        exchange.response.body.len()
    );
    verdict
        .flags
        .push(Flag::new(FindingKind::TransportError, "body", summary));
}
