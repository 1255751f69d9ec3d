//! Handover: a login or refresh that hands one identity a credential the
//! server issued to another account before. The server then acts as that
//! other account for whoever holds it (the session mix-up of a shared
//! cache or a token lookup by the wrong key), so the credential itself is
//! the leak, whatever the answer's body says. Runs before [`session`] and
//! [`capture`](super::capture) record who now holds it. A place that has
//! handed every login one constant value is no session: never judged.
//!
//! [`session`]: super::session

use super::{Context, Exchange, Flag, Verdict, text_of};
use crate::findings::FindingKind;
use crate::oracle::{Evidence, Marker};
use crate::safety::REDACTED;
use crate::world::InstanceId;

pub fn judge(exchange: &Exchange, cx: &Context<'_>, verdict: &mut Verdict) {
    if !(200..300).contains(&exchange.response.status) {
        return;
    }
    let issued = issued(exchange, cx);
    if issued.is_empty() {
        return;
    }
    let Some(owner) = exchange.authenticated(cx.oracle, cx.world) else {
        return;
    };
    let identities = cx.world.ledger().identities();
    for (name, value) in issued {
        if let Some(before) = identities.issued_before(&name, &value, owner) {
            verdict.flags.push(flag(exchange, cx, owner, before, &name));
        }
    }
}

/// The credentials an answer hands out: (where, value). Live cookies when
/// the actor's sessions are cookies, and the step's secret captures.
fn issued(exchange: &Exchange, cx: &Context<'_>) -> Vec<(String, String)> {
    let step = cx.step(exchange);
    let mut out = Vec::new();
    let cookies = cx.world.plan().roles[step.role].auth.cookies;
    if cookies {
        let live = (exchange.response.set_cookies()).filter(crate::identity::live);
        out.extend(live.map(|c| (format!("cookie {}", c.name()), c.value().to_string())));
    }
    for capture in step.captures.iter().filter(|c| c.secret) {
        let json = exchange.json();
        if let Some(value) = super::capture::captured(&exchange.response, json, &capture.source) {
            out.push((format!("capture {}", capture.var), text_of(&value)));
        }
    }
    out
}

fn flag(
    exchange: &Exchange,
    cx: &Context<'_>,
    owner: InstanceId,
    before: InstanceId,
    location: &str,
) -> Flag {
    let world = cx.world;
    let step = cx.step(exchange);
    let summary = format!(
        "{} was handed {}'s credential ({location}, issued to {} before) at step `{}` ({})",
        world.label(owner),
        world.label(before),
        world.label(before),
        step.name,
        step.endpoint()
    );
    let evidence = Evidence {
        victim: before,
        what: Marker::Identifier {
            var: location.to_string(),
        },
        location: location.to_string(),
        location_pattern: location.to_string(),
        excerpt: REDACTED.to_string(),
    };
    Flag {
        kind: FindingKind::Leak,
        location: location.to_string(),
        summary,
        evidence: Some((evidence, Vec::new())),
        tampered: None,
    }
}
