//! Trace: one line per answered step in the observer's story, so that a
//! finding shows what its observer did before it (credentials redacted when
//! the line is written out).

use super::{Context, Exchange, Verdict};
use crate::world::{Told, TracedStep};

pub fn judge(exchange: &Exchange, cx: &Context<'_>, _: &mut Verdict) {
    let told = Told::Answered {
        step: TracedStep::of(exchange.step),
        path: exchange.request.path.as_str().into(),
        status: exchange.response.status,
    };
    cx.world.tell(exchange.observer, told);
}
