//! Contract: records the response's shape (status, content type, JSON keys
//! and types, never values) under its step; the session compares the shapes
//! with the contract snapshots once the scenario has run. A run that
//! compares none (`--no-snapshots`, fuzz programs) records none.

use super::{Context, Exchange, Verdict};

pub fn judge(exchange: &Exchange, cx: &Context<'_>, _: &mut Verdict) {
    let Some(contracts) = cx.contracts else {
        return;
    };
    let step = cx.step(exchange);
    let response = &exchange.response;
    contracts.record(
        &step.name,
        &step.endpoint(),
        response.status,
        response.header("content-type").as_deref(),
        exchange.json(),
    );
}
