//! Expect: the status and JSON values the scenario expects. Values are
//! checked only when the status is as expected: a wrong status is the one
//! finding, not the first of many.

use super::{Context, Exchange, Flag, Verdict};
use crate::findings::FindingKind;

pub fn judge(exchange: &Exchange, cx: &Context<'_>, verdict: &mut Verdict) {
    let step = cx.step(exchange);
    let status = exchange.response.status;
    if !step.expect.status_ok(status) {
        let want = step
            .expect
            .status
            .iter()
            .flatten()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" or ");
        let summary = format!("step `{}` expected status {want}, got {status}", step.name);
        verdict
            .flags
            .push(Flag::new(FindingKind::Expectation, "status", summary));
        return;
    }
    for (text, path, expected) in &step.expect.json {
        let actual = exchange.json().and_then(|j| path.query(j).first().cloned());
        if actual.as_ref() == Some(expected) {
            continue;
        }
        let got = actual.map_or("nothing".to_string(), |v| v.to_string());
        let summary = format!(
            "step `{}` expected {text} to be {expected}, got {got}",
            step.name
        );
        let location = format!("body {text}");
        verdict
            .flags
            .push(Flag::new(FindingKind::Expectation, location, summary));
    }
}
