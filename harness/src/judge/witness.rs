//! Witness: what the integrity witness may re-read of the observer later.
//! A read the observer sent with its own credentials, naming no one else's
//! values, that answered 2xx is one of its *own reads*; a step that gave it
//! its credential (a secret captured, a session cookie set for it) is its
//! *login*. The [witness](crate::witness) re-sends them around a foreign
//! write to see whether the observer's data changed under it. It runs
//! after the leak judge: a read that showed someone else's data is no
//! read of the observer's own.

use super::{Attribution, Context, Exchange, Verdict};
use crate::plan::StepRef;
use crate::witness::{targets, writes};

pub fn judge(exchange: &Exchange, cx: &Context<'_>, verdict: &mut Verdict) {
    let me = exchange.sender;
    let answered_ok = (200..300).contains(&exchange.response.status);
    // A probe renders another's values: nothing it answers is the prober's own.
    let own = exchange.attribution == Attribution::Full
        && exchange.observer == me
        && exchange.probe_of.is_none();
    if !answered_ok || !own || !matches!(exchange.step, StepRef::Flow(_)) {
        return;
    }
    let request = &exchange.request;
    if !writes(&request.method) {
        let carried = exchange.carried(cx.oracle);
        // An answer that showed someone else's data is not the owner's
        // own: it changes whenever they change theirs.
        let own_only = verdict.leaked.is_empty();
        if own_only && targets(cx.world, carried, request).iter().all(|t| *t == me) {
            cx.witness.own_read(me, exchange.step);
        }
        return;
    }
    let step = cx.step(exchange);
    let secret = step
        .captures
        .iter()
        .filter(|c| c.secret)
        .any(|c| verdict.captured.iter().any(|(var, ..)| *var == c.var));
    let role = &cx.world.plan().roles[cx.world.instance(me).role];
    let cookie = role.auth.cookies && crate::identity::live_session(&exchange.response);
    // A login names the account (a refresh grant or token exchange does
    // not, and still works after a password change): it is what the
    // witness tries to tell a lockout.
    let login = crate::identity::step_names_account(step) || !cx.witness.has_login(me);
    if (secret || cookie) && login && exchange.authenticated(cx.oracle, cx.world) == Some(me) {
        cx.witness.logged_in(me, exchange.step);
    }
}
