//! Session: the cookies a response sets belong to the identity the server
//! authenticated, for actors that keep a cookie session. That is whoever's
//! own words the request carried (a login with one instance's e-mail,
//! whatever cookie went with it); else the sender, when it sent its own
//! credential. A session answering someone else's credential with nothing
//! to say whose it is (a login by a fixed e-mail) is kept by nobody: a
//! wrong guess would show one identity another's data, a false leak.
//! Cookie values are credentials: the redactor learns them at once.

use super::{Context, Exchange, Verdict};

pub fn judge(exchange: &Exchange, cx: &Context<'_>, _: &mut Verdict) {
    let cookies: Vec<cookie::Cookie<'_>> = exchange.response.set_cookies().collect();
    for cookie in &cookies {
        cx.redactor.add(cookie.value());
    }
    // Whose session it is costs a scan of the request: only when one was set.
    if cookies.is_empty() {
        return;
    }
    let world = cx.world;
    let Some(owner) = exchange.authenticated(cx.oracle) else {
        return;
    };
    if !world.plan().roles[world.instance(owner).role].auth.cookies {
        return;
    }
    world.ledger().logged_in(owner, exchange.login_key());
    // A new session: what the owner reads may change (the witness knows).
    cx.witness.touch(owner);
    let mut state = world.state(owner);
    for cookie in cookies {
        let expired = cookie
            .max_age()
            .is_some_and(|age| age.is_zero() || age.is_negative());
        if expired || cookie.value().is_empty() {
            state.cookies.remove(cookie.name());
        } else {
            state
                .cookies
                .insert(cookie.name().to_string(), cookie.value().to_string());
        }
    }
}
