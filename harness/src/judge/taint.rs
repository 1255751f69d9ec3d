//! Taint: a canary sent under someone else's identity (a borrowed value,
//! another's credential) may now be stored in their records, where anyone
//! they share with legitimately sees it: from now on it proves nothing.

use super::{Context, Exchange, Verdict};

pub fn judge(exchange: &Exchange, cx: &Context<'_>, _: &mut Verdict) {
    let request = &exchange.request;
    for victim in cx.oracle.canaries_in(&request.path, &request.body) {
        if victim != exchange.observer {
            cx.world.ledger().expose(victim);
        }
    }
}
