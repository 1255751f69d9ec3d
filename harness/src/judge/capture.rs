//! Capture: the values a step captures from its response (a JSONPath, a
//! header or a cookie). Secrets go to the redactor, before any judge after
//! this one writes a finding; other values become the observer's variables
//! and, with their kind, its owned values in the ledger. A value from a
//! response to borrowed or missing credentials is used for this exchange
//! only (its grant), never stored: whose it is cannot be told. A secret
//! (a token) belongs to the identity the server authenticated, whoever
//! sent the request, and tells the ledger which account that is.

use std::sync::Arc;

use serde_json::Value;

use super::{Attribution, Context, Exchange, Flag, Verdict, text_of};
use crate::findings::FindingKind;
use crate::oracle::siblings_at;
use crate::plan::{CapturePlan, CaptureSource};
use crate::transport::Response;
use crate::world::Kind;

pub fn judge(exchange: &Exchange, cx: &Context<'_>, verdict: &mut Verdict) {
    let step = cx.step(exchange);
    if step.captures.is_empty() {
        return;
    }
    let mut stored = Vec::new();
    // A request carrying another instance's own words (a sign-up with its
    // e-mail) may be answered about that instance: what it captures is
    // nobody's to own.
    let about_another = exchange
        .carried(cx.oracle)
        .iter()
        .any(|id| *id != exchange.observer);
    let attributed = exchange.attribution == Attribution::Full && !about_another;
    for capture in &step.captures {
        // An optional value that is absent or null is simply not there.
        let found = find(exchange, capture).filter(|(v, ..)| !(capture.optional && v.is_null()));
        if found.is_none() && capture.optional {
            continue;
        }
        let Some((value, key, siblings)) = found else {
            // A failed status is the finding; a missing capture follows from it.
            if step.expect.status_ok(exchange.response.status) {
                let summary = format!(
                    "step `{}` could not capture `{}`: the response has no such value",
                    step.name, capture.var
                );
                let location = format!("capture {}", capture.var);
                verdict
                    .flags
                    .push(Flag::new(FindingKind::Expectation, location, summary));
            }
            continue;
        };
        let text = text_of(&value);
        if capture.secret {
            cx.redactor.add(&text);
        } else if attributed && !text.is_empty() {
            let kind = Kind {
                var: capture.var.clone(),
                key,
                siblings,
                generated: false,
            };
            let ledger = cx.world.ledger();
            if ledger.capture(exchange.observer, text.clone(), kind, capture.shared) {
                verdict.owned.push((capture.var.clone(), text));
            }
        }
        let path = match &capture.source {
            CaptureSource::Json { text, .. } => Some(text.clone()),
            _ => None,
        };
        if capture.secret {
            keep_secret(exchange, cx, &capture.var, &value);
        } else if attributed {
            stored.push((capture.var.clone(), value.clone()));
        }
        verdict.captured.push((capture.var.clone(), value, path));
    }
    if !stored.is_empty() {
        Arc::make_mut(&mut cx.world.state(exchange.observer).vars).extend(stored);
    }
}

/// A token goes to whoever the server authenticated (see
/// [`identity`](crate::identity)): a login with one instance's e-mail sent
/// with another's session is the first one's; a refresh grant is the
/// refresh token's owner's. When it cannot be told, nobody keeps it.
fn keep_secret(exchange: &Exchange, cx: &Context<'_>, var: &str, value: &Value) {
    let identities = cx.world.ledger().identities();
    let Some(owner) = exchange.authenticated(cx.oracle, cx.world) else {
        identities.unattributed();
        return;
    };
    identities.logged_in(owner, &exchange.request);
    identities.issued(&format!("capture {var}"), &text_of(value), owner);
    // A new credential: what the owner reads may change.
    cx.witness.touch(owner);
    let mut state = cx.world.state(owner);
    state.session += 1;
    Arc::make_mut(&mut state.vars).insert(var.to_string(), value.clone());
}

/// The captured value, the JSON key it sat under and its sibling keys.
fn find(
    exchange: &Exchange,
    capture: &CapturePlan,
) -> Option<(Value, Option<String>, Vec<String>)> {
    let response = &exchange.response;
    match &capture.source {
        CaptureSource::Json { path, .. } => exchange.json().and_then(|j| {
            path.query_located(j).first().map(|node| {
                let pointer = node.location().to_json_pointer();
                let (key, siblings) = siblings_at(j, &pointer);
                (node.node().clone(), key, siblings)
            })
        }),
        other => captured(response, None, other).map(|v| (v, None, Vec::new())),
    }
}

/// The value `source` names in `response` (whose body parses as `json`).
pub(crate) fn captured(
    response: &Response,
    json: Option<&Value>,
    source: &CaptureSource,
) -> Option<Value> {
    match source {
        CaptureSource::Json { path, .. } => json.and_then(|j| path.query(j).first().cloned()),
        CaptureSource::Header(name) => response.header(name).map(|v| Value::String(v.into())),
        CaptureSource::Cookie(name) => (response.set_cookies())
            .find(|c| c.name() == name)
            .map(|c| Value::String(c.value().to_string())),
    }
}
