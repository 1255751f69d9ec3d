//! Trace: one line per answered step in the observer's story, so that a
//! finding shows what its observer did before it (credentials redacted).

use super::{Context, Exchange, Verdict};

pub fn judge(exchange: &Exchange, cx: &Context<'_>, _: &mut Verdict) {
    let step = cx.step(exchange);
    let line = format!(
        "{}: {} {} → {}",
        step.name,
        exchange.request.method,
        cx.redactor.redact(&exchange.request.path),
        exchange.response.status
    );
    cx.world.trace(exchange.observer, line);
}
