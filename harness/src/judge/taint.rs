//! Taint: a canary sent under someone else's identity (a borrowed value,
//! another's credential) may now be stored in their records, where anyone
//! they share with legitimately sees it: from now on it proves nothing. So
//! may every canary sent together with another instance's words (a sign-up
//! with another's e-mail stores the sender's phone in that account), and
//! so may the sender's generated name and birth date that went with them.

use super::{Context, Exchange, Verdict};

pub fn judge(exchange: &Exchange, cx: &Context<'_>, _: &mut Verdict) {
    let sent = exchange.carried(cx.oracle);
    if sent.iter().any(|id| *id != exchange.observer) {
        for id in sent {
            cx.world.ledger().expose(*id);
        }
        if cx.world.ids().contains(&exchange.sender) {
            cx.world.ledger().expose(exchange.sender);
        }
    }
}
