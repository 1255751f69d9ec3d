//! Taint: a canary sent under someone else's identity (a borrowed value,
//! another's credential) may now be stored in their records, where anyone
//! they share with legitimately sees it: from now on it proves nothing. So
//! may every canary sent together with another instance's words (a sign-up
//! with another's e-mail stores the sender's phone in that account), and
//! so may the sender's generated name and birth date that went with them.
//!
//! Likewise an owned value of another's that an accepted write put in the
//! writer's own record (a note filed with another's id) comes back to the
//! writer as an echo of its own words, not a leak.

use super::{Context, Exchange, Verdict};

pub fn judge(exchange: &Exchange, cx: &Context<'_>, _: &mut Verdict) {
    echoes(exchange, cx);
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

/// Another's owned values an accepted write sent in its body: the writer's
/// own words from now on.
fn echoes(exchange: &Exchange, cx: &Context<'_>) {
    let accepted = (200..300).contains(&exchange.response.status);
    if !accepted
        || exchange.request.body.is_empty()
        || !crate::witness::writes(&exchange.request.method)
    {
        return;
    }
    let ledger = cx.world.ledger();
    let owned = ledger.owned_values();
    for (_, value) in crate::identity::body_fields(&exchange.request) {
        let others = owned
            .of(&value)
            .iter()
            .any(|o| o.owner != exchange.observer);
        if others {
            ledger.wrote(exchange.observer, value);
        }
    }
}
