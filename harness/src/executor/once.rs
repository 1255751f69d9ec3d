//! Steps sent once per scenario, by no instance: `[[setup]]` before the
//! flow (resetting a staging database, creating a shared fixture) and
//! `[[teardown]]` steps that name no actor after everything else, also
//! after a Ctrl-C. What they capture every instance may use.
//!
//! A setup step that fails stops the scenario before its flow: a flow run
//! on a target that was not set up would test nothing, and say so cleanly.

use std::sync::atomic::Ordering;

use serde_json::Value;

use super::Executor;
use crate::findings::FindingKind;
use crate::judge::{self, Flag, capture::captured, expect::failures};
use crate::plan::PlanStep;
use crate::request;
use crate::resolver::Once;

impl Executor {
    /// Sends the setup steps in order; `false` when one failed (recorded
    /// as a finding, the flow not sent).
    pub(super) async fn setup(&self) -> bool {
        let steps = &self.plan().setup;
        for (i, step) in steps.iter().enumerate() {
            if !self.once(step).await {
                let rest = steps.len() - i - 1;
                let why = format!(
                    "setup step `{}` failed: the flow was not run ({rest} later setup steps neither)",
                    step.name
                );
                let flag = Flag::new(FindingKind::Skipped, "setup", why);
                self.sink
                    .record(judge::about_once(&self.context(), step, None, flag));
                return false;
            }
        }
        true
    }

    /// Sends the steps sent once after the teardown, each whatever the
    /// others did.
    pub(super) async fn cleanup(&self) {
        for step in &self.plan().cleanup {
            self.once(step).await;
        }
    }

    /// Sends one step once; whether it answered as expected.
    async fn once(&self, step: &PlanStep) -> bool {
        let cx = self.context();
        let fail = |request: Option<&_>, kind, location: &str, why: String| {
            let flag = Flag::new(
                kind,
                location,
                format!("step `{}` (sent once) {why}", step.name),
            );
            self.sink
                .record(judge::about_once(&cx, step, request, flag));
            false
        };
        let request = match request::build_once(step, &Once(&self.world)) {
            Ok(request) => request,
            Err(err) => {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                return fail(
                    None,
                    FindingKind::Skipped,
                    "request",
                    format!("could not be sent: {err}"),
                );
            }
        };
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let result = self.transport.send(&request).await;
        let status = result.as_ref().ok().map(|r| r.status);
        let issued = self.issued_as(seq, "once".into(), step.name.clone(), &request, status);
        self.log_issued(vec![issued], false);
        let response = match result {
            Ok(response) => response,
            Err(err) => {
                self.transport_errors.fetch_add(1, Ordering::Relaxed);
                return fail(
                    Some(&request),
                    FindingKind::TransportError,
                    "transport",
                    format!("got no answer: {err}"),
                );
            }
        };
        let json: Option<Value> = response.json();
        let mut render = |body: &_| request::render_body(body, &Once(&self.world));
        let wrong = failures(&step.expect, &response, json.as_ref(), &mut render, &|_| {
            false
        });
        if let Some((location, what)) = wrong.into_iter().next() {
            return fail(
                Some(&request),
                FindingKind::Expectation,
                &location,
                format!("expected {what}"),
            );
        }
        for capture in &step.captures {
            match captured(&response, json.as_ref(), &capture.source) {
                Some(value) => {
                    if capture.secret {
                        self.redactor.add(&judge::text_of(&value));
                    }
                    self.world.set_fixture(capture.var.clone(), value);
                }
                None if capture.optional => {}
                None => {
                    let why = format!(
                        "could not capture `{}`: the response has no such value",
                        capture.var
                    );
                    return fail(Some(&request), FindingKind::Expectation, "capture", why);
                }
            }
        }
        true
    }
}
