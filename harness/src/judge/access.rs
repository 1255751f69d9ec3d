//! Access: a [probe](crate::probe) that reads a record of another
//! instance's, named by its path (`/recordings/17`, where 17 is the
//! owner's), and is answered 2xx, by an identity that may not see it, is a
//! finding whatever the body shows: the leak judge reports the owner's data
//! it found; this one reports the answer when there was none to find (an
//! empty record, a document the oracle cannot read). A value in the query
//! (a cursor, a filter) names no record, and proves nothing. A probe that
//! writes is the witness's to judge: it reads the owner before and after.

use super::{Context, Exchange, Flag, Verdict};
use crate::findings::FindingKind;
use crate::witness;

pub fn judge(exchange: &Exchange, cx: &Context<'_>, verdict: &mut Verdict) {
    let Some(owner) = exchange.probe_of else {
        return;
    };
    let status = exchange.response.status;
    let granted = !(200..300).contains(&status)
        || witness::writes(&exchange.request.method)
        || verdict.leaked.contains(&owner)
        || cx.world.ledger().visible(exchange.observer, owner);
    if granted || !names_in_path(exchange, cx, owner) {
        return;
    }
    let step = cx.step(exchange);
    let who = match exchange.attribution {
        super::Attribution::None => "a request with no credentials".to_string(),
        _ => cx.world.label(exchange.observer).to_string(),
    };
    let summary = format!(
        "{who} was answered {status} to {} {}, naming {}'s data (step `{}` sent as another identity), though it may not see it",
        exchange.request.method,
        cx.redactor.redact(&exchange.request.path),
        cx.world.label(owner),
        step.name
    );
    let flag = Flag::new(FindingKind::Access, "status", summary);
    verdict.flags.push(flag);
}

/// Whether a segment of the request's path is a value `owner` owns.
fn names_in_path(exchange: &Exchange, cx: &Context<'_>, owner: crate::world::InstanceId) -> bool {
    let path = exchange.request.path.split('?').next().unwrap_or_default();
    let owned = cx.world.ledger().owned_values();
    path.split('/').filter(|s| !s.is_empty()).any(|segment| {
        let segment = crate::oracle::percent_decode(segment);
        owned.of(&segment).iter().any(|o| o.owner == owner)
    })
}
