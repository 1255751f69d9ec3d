//! Session: the account names an instance's own accepted request claims,
//! and the cookies a response sets, for the identity the server
//! authenticated (see [`identity`](crate::identity)). A session answering
//! someone else's credential with nothing to say whose it is (a login by a
//! fixed e-mail sent with another's cookie) is kept by nobody, and counted:
//! a wrong guess would show one identity another's data, a false leak.
//! A cleared cookie (a logout) is removed from the jar and is no login.
//! Cookie values are credentials: the redactor learns them at once.

use super::{Attribution, Context, Exchange, Verdict};
use crate::identity;

pub fn judge(exchange: &Exchange, cx: &Context<'_>, _: &mut Verdict) {
    claim(exchange, cx);
    let cookies: Vec<cookie::Cookie<'_>> = exchange.response.set_cookies().collect();
    for cookie in &cookies {
        cx.redactor.add(cookie.value());
    }
    // Whose session it is costs a scan of the request: only when one was set.
    if cookies.is_empty() {
        return;
    }
    let world = cx.world;
    let live = cookies.iter().any(identity::live);
    let Some(owner) = exchange.authenticated(cx.oracle, world) else {
        if live {
            world.ledger().identities().unattributed();
        }
        return;
    };
    if !world.plan().roles[world.instance(owner).role].auth.cookies {
        return;
    }
    if live {
        let identities = world.ledger().identities();
        identities.logged_in(owner, &exchange.request);
        cookies
            .iter()
            .filter(|c| identity::live(c))
            .for_each(|c| identities.issued(&format!("cookie {}", c.name()), c.value(), owner));
        // A new session: what the owner reads may change (the witness knows).
        cx.witness.touch(owner);
    }
    let mut state = world.state(owner);
    state.session += u64::from(live);
    for cookie in cookies {
        if identity::live(&cookie) {
            state
                .cookies
                .insert(cookie.name().to_string(), cookie.value().to_string());
        } else {
            state.cookies.remove(cookie.name());
        }
    }
}

/// An instance's own request that the server accepted claims the account
/// names it sent, when the step rendered them from its own values.
fn claim(exchange: &Exchange, cx: &Context<'_>) {
    let step = cx.step(exchange);
    let own = exchange.probe_of.is_none()
        && exchange.sender == exchange.observer
        && exchange.attribution != Attribution::GrantsOnly;
    if !own || !(200..300).contains(&exchange.response.status) || step.body.is_none() {
        return;
    }
    // What the plan says first: most steps send neither (no scan of the
    // request for them).
    let names = identity::step_names_account(step);
    let personal = cx.own_names && !crate::resolver::personal_builtins(step).is_empty();
    // Nothing of another instance's in it: not its canary, not its values.
    let alone = (names || personal)
        && identity::speaks_for_sender(step)
        && (exchange.carried(cx.oracle).iter()).all(|id| *id == exchange.sender);
    if !alone {
        return;
    }
    if names {
        (cx.world.ledger().identities()).claim(exchange.sender, &exchange.request);
    }
    if personal {
        crate::resolver::own_generated(cx.world, exchange.sender, step);
    }
}
