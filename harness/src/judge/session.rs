//! Session: the cookies a response sets belong to the identity the server
//! authenticated (the observer), for actors that keep a cookie session.
//! Their values are credentials: the redactor learns them at once.

use super::{Context, Exchange, Verdict};

pub fn judge(exchange: &Exchange, cx: &Context<'_>, _: &mut Verdict) {
    let world = cx.world;
    let role = &world.plan().roles[world.instance(exchange.observer).role];
    if !role.auth.cookies {
        return;
    }
    let mut state = world.state(exchange.observer);
    for (name, value) in &exchange.response.headers {
        if !name.eq_ignore_ascii_case("set-cookie") {
            continue;
        }
        let Ok(cookie) = cookie::Cookie::parse(value.as_str()) else {
            continue;
        };
        cx.redactor.add(cookie.value());
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
