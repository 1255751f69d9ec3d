//! Contract: records the response's shape (status, content type, JSON keys
//! and types, never values) under its step; the session compares the shapes
//! with the contract snapshots once the scenario has run.

use super::{Context, Exchange, Verdict};

pub fn judge(exchange: &Exchange, cx: &Context<'_>, _: &mut Verdict) {
    let step = cx.step(exchange);
    let response = &exchange.response;
    cx.contracts.record(
        &step.name,
        &step.endpoint(),
        response.status,
        response.header("content-type"),
        exchange.json(),
    );
}
