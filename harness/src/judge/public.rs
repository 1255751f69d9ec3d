//! Public: a value that every instance sending a step captured alike from
//! its answer is nobody's. A directory answers every patient the same
//! list, so the clinician id each reads from it is no patient's own; were
//! it owned, another identity naming it (a probe of the clinician's page
//! sent with no credentials) would look like a look at the patient's data.
//! One instance alone reading a value proves nothing: it stays its own.
//!
//! It runs once a batch has answered, before the batch's judges
//! ([`ON_BATCH`](super::ON_BATCH)), since it needs every answer of the step
//! (of its [wave](crate::executor::WAVE), in a large batch: thousands of
//! instances reading alike are as telling as all).
//! Only what the batch's own captures made owned is given up: whoever owned
//! the value before (the instance that created it) still does, so a list
//! that shows everyone one patient's record is still that patient's leak.

use super::{Context, Judged};
use crate::plan::StepRef;
use crate::world::InstanceId;

pub fn judge(cx: &Context<'_>, batch: &[Judged]) {
    for ((step, var), reads) in reads_by_step(batch) {
        let senders = (batch.iter().map(|judged| &judged.0))
            .filter(|e| e.probe_of.is_none() && e.step == step)
            .count();
        let Some((first, _)) = reads.first() else {
            continue;
        };
        let alike = reads.iter().all(|(text, _)| text == first);
        let mut readers: Vec<InstanceId> = reads.iter().map(|(_, who)| *who).collect();
        readers.sort_unstable();
        readers.dedup();
        if readers.len() >= 2 && reads.len() == senders && alike {
            cx.world.ledger().publish(first, var, &readers);
        }
    }
}

/// What each sender of a step came to own from its answer into a
/// variable, and who: ((step, variable), [(value, sender)]).
type Reads<'a> = Vec<((StepRef, &'a str), Vec<(&'a String, InstanceId)>)>;

fn reads_by_step(batch: &[Judged]) -> Reads<'_> {
    let mut out: Reads<'_> = Vec::new();
    for (exchange, verdict) in batch.iter().map(|judged| &**judged) {
        if exchange.probe_of.is_some() {
            continue;
        }
        for (var, text) in &verdict.owned {
            let at = (exchange.step, var.as_str());
            let read = (text, exchange.observer);
            match out.iter_mut().find(|(key, _)| *key == at) {
                Some((_, reads)) => reads.push(read),
                None => out.push((at, vec![read])),
            }
        }
    }
    out
}
