//! Sending one request and reading its answer: a step built for an
//! instance (with a re-login on a 401 when its actor says how), sent
//! through the transport with the witness's baseline first for a write,
//! counted and logged, and its answer put through the judges.

use std::sync::atomic::Ordering;

use super::{Executor, Issued};
use crate::findings::FindingKind;
use crate::judge::{self, Attribution, Exchange, Flag, Verdict};
use crate::plan::{Credentials, StepRef};
use crate::request;
use crate::resolver::Resolver;
use crate::transport::Request;
use crate::witness::Aim;
use crate::world::InstanceId;

/// Who a request goes out as, and how its answer is read.
pub(super) struct Recipient {
    pub(super) sender: InstanceId,
    /// Whose credential went out (the sender when none did).
    pub(super) observer: InstanceId,
    pub(super) attribution: Attribution,
    pub(super) step: StepRef,
}

/// A request sent, before its answer is judged.
pub(super) struct Transmitted {
    pub(super) issued: Issued,
    pub(super) request: Request,
    pub(super) result: Result<crate::transport::Response, crate::transport::TransportError>,
    pub(super) aimed: Option<(Aim, Vec<InstanceId>)>,
}

/// What sending one step as one instance gave.
pub(super) struct Sent {
    pub(super) issued: Issued,
    /// `None` when the target did not answer.
    pub(super) judged: Option<(Exchange, Verdict)>,
    /// A write: whose data it named.
    pub(super) aimed: Option<Aim>,
}

impl Executor {
    /// Sends `step` as `sender`: builds the request, sends it and counts it.
    pub(super) async fn send(&self, sender: InstanceId, step_ref: StepRef) -> Option<Sent> {
        self.attempt(sender, step_ref, true).await
    }

    /// One try at sending `step`; on a 401 to its own credentials, when
    /// `may_reauth` and its actor says how, it logs in again and retries once.
    async fn attempt(
        &self,
        sender: InstanceId,
        step_ref: StepRef,
        may_reauth: bool,
    ) -> Option<Sent> {
        let step = self.plan().step(step_ref);
        let identity = request::identity(&self.world, step, sender);
        let built = match self.build(sender, step_ref, identity) {
            Ok(built) => built,
            // A value the scenario says may be absent: the step does not
            // apply to this instance.
            Err(err) if err.missing_var().is_some_and(|v| self.plan().optional(v)) => {
                self.not_applicable.fetch_add(1, Ordering::Relaxed);
                let line = format!("{}: not applicable ({err})", step.name);
                self.world.trace(sender, line);
                return None;
            }
            Err(err) => {
                self.skipped(sender, step_ref, &err.to_string());
                return None;
            }
        };
        // The response is seen by whoever's credential went out; a borrowed
        // identity with no credential yet leaves the sender anonymous.
        let observer = built.credential_of.unwrap_or(sender);
        let attribution = attribution(step.credentials, built.credential_of.is_some());
        let to = Recipient {
            sender,
            observer,
            attribution,
            step: step_ref,
        };
        let rebuild = || {
            self.build(sender, step_ref, identity)
                .ok()
                .map(|b| b.request)
        };
        let sent = (self.transmit(&to, built.request, &rebuild, step.name.clone())).await?;
        let status = sent.result.as_ref().ok().map(|r| r.status);
        if may_reauth && let Some(login) = self.reauth_step(sender, step_ref, status) {
            self.log_issued(vec![sent.issued], false);
            let line = format!("{}: answered 401, logging in again", step.name);
            self.world.trace(sender, line);
            if let Some(sent) = Box::pin(self.attempt(sender, login, false)).await {
                self.judge(vec![sent]);
            }
            return Box::pin(self.attempt(sender, step_ref, false)).await;
        }
        Some(self.receive(&to, sent, None))
    }

    /// `step` rendered as `sender`, with `identity`'s credentials. The
    /// sender's variables are let go of before the answer's captures extend
    /// them (held, they would be copied).
    pub(super) fn build(
        &self,
        sender: InstanceId,
        step: StepRef,
        identity: Option<InstanceId>,
    ) -> Result<request::Built, request::Unsent> {
        let vars = self.world.state(sender).vars.clone();
        let resolver = Resolver::new(&self.world, sender, step.key(), &vars);
        let plan_step = self.plan().step(step);
        request::build(&self.world, &self.redactor, plan_step, &resolver, identity)
    }

    /// Sends a built request: a write's victims read by the witness first;
    /// counted and logged as `name`. `None` when a stop cancelled it.
    pub(super) async fn transmit(
        &self,
        to: &Recipient,
        mut request: Request,
        rebuild: &(dyn Fn() -> Option<Request> + Sync),
        name: String,
    ) -> Option<Transmitted> {
        let session = self.world.state(to.observer).session;
        let aimed = self.aim(&request, to.observer, to.attribution).await;
        // The witness may have logged the observer in again: a server that
        // rotates sessions (and their CSRF tokens) ended the one this
        // request was built with.
        if self.world.state(to.observer).session != session
            && let Some(fresh) = rebuild()
        {
            request = fresh;
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        // A stop cancels the flow's requests in flight; teardown finishes.
        let result = if matches!(to.step, StepRef::Flow(_)) {
            tokio::select! {
                result = self.transport.send(&request) => result,
                () = self.options.cancel.cancelled() => return None,
            }
        } else {
            self.transport.send(&request).await
        };
        let status = result.as_ref().ok().map(|r| r.status);
        let issued = self.issued(seq, to.sender, name, &request, status);
        Some(Transmitted {
            issued,
            request,
            result,
            aimed,
        })
    }

    /// What a transmitted request's answer gave, through the judges (the
    /// probe judges for a probe of `probe_of`'s step).
    pub(super) fn receive(
        &self,
        to: &Recipient,
        sent: Transmitted,
        probe_of: Option<InstanceId>,
    ) -> Sent {
        let Transmitted {
            issued,
            request,
            result,
            aimed,
        } = sent;
        if let (Ok(response), Some((aim, _))) = (&result, &aimed) {
            self.touch(aim, response.status);
        }
        let carried = aimed.as_ref().map(|(_, carried)| carried.clone());
        let judged = match result {
            Ok(response) => {
                let exchange = Exchange::new(
                    to.sender,
                    to.observer,
                    to.attribution,
                    to.step,
                    request,
                    response,
                )
                .with_carried(carried);
                let exchange = match probe_of {
                    Some(owner) => exchange.probing(owner),
                    None => exchange,
                };
                let verdict = judge::on_answer(&self.context(), &exchange);
                Some((exchange, verdict))
            }
            Err(err) => {
                self.no_answer(to.observer, to.step, &request, &err.to_string());
                None
            }
        };
        Sent {
            issued,
            judged,
            aimed: aimed.map(|(aim, _)| aim),
        }
    }

    /// The step to log `sender` in again with, when `step` answered 401 to
    /// its own credential and its actor has a `reauth` step (not this one).
    fn reauth_step(
        &self,
        sender: InstanceId,
        step: StepRef,
        status: Option<u16>,
    ) -> Option<StepRef> {
        let plan_step = self.plan().step(step);
        let login = self.plan().roles[plan_step.role]
            .reauth
            .map(StepRef::Flow)?;
        let own = plan_step.credentials == Credentials::Own;
        (status == Some(401)
            && own
            && login != step
            && request::holds_credential(&self.world, sender))
        .then_some(login)
    }

    /// A request sent: counted, on the progress line, appended to the
    /// request log, and what the run's order will hold of it.
    pub(super) fn issued(
        &self,
        seq: u64,
        sender: InstanceId,
        step: String,
        request: &Request,
        status: Option<u16>,
    ) -> Issued {
        let instance = self.world.label(sender).to_string();
        self.issued_as(seq, instance, step, request, status)
    }

    /// As [`Executor::issued`], for a sender by its label.
    pub(super) fn issued_as(
        &self,
        seq: u64,
        instance: String,
        step: String,
        request: &Request,
        status: Option<u16>,
    ) -> Issued {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(progress) = &self.options.progress {
            progress.inc(1);
        }
        let issued = Issued {
            seq,
            scenario: self.plan().scenario.clone(),
            instance,
            step,
            method: request.method.to_string(),
            path: self.redactor.redact(&request.path),
            status,
            batch: 0,
            exchange: None,
        };
        if let Some(log) = &self.options.requests
            && let Err(err) = log.write(&issued)
        {
            tracing::warn!("cannot append to the request log: {err}");
        }
        issued
    }

    /// A request that got no answer: a finding, and a line in the trace.
    fn no_answer(&self, observer: InstanceId, step: StepRef, request: &Request, err: &str) {
        self.transport_errors.fetch_add(1, Ordering::Relaxed);
        let name = &self.plan().step(step).name;
        let path = self.redactor.redact(&request.path);
        let summary = format!(
            "{} {path} sent by {} at step `{name}` got no answer: {err}",
            request.method,
            self.world.label(observer)
        );
        let flag = Flag::new(FindingKind::TransportError, "transport", summary);
        let finding = judge::unanswered(&self.context(), observer, step, Some(request), flag);
        self.sink.record(finding);
        let line = format!("{name}: {} {path} → no response", request.method);
        self.world.trace(observer, line);
    }

    /// A step that could not be sent: a finding of its own.
    fn skipped(&self, sender: InstanceId, step: StepRef, reason: &str) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
        let name = &self.plan().step(step).name;
        let summary = format!(
            "{} could not send step `{name}`: {reason}",
            self.world.label(sender)
        );
        let flag = Flag::new(FindingKind::Skipped, "request", summary);
        let finding = judge::unanswered(&self.context(), sender, step, None, flag);
        self.sink.record(finding);
    }
}

/// What a response to `credentials` may be attributed to its observer for:
/// a response to borrowed or missing credentials cannot be attributed (a
/// login answers for the body's account, not the header's).
pub(super) fn attribution(credentials: Credentials, credential_sent: bool) -> Attribution {
    match credentials {
        Credentials::Own => Attribution::Full,
        Credentials::Of(..) | Credentials::Picked(_) if credential_sent => Attribution::GrantsOnly,
        _ => Attribution::None,
    }
}
