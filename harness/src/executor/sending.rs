//! Sending one request and reading its answer: a step built for an
//! instance (with a re-login on a 401 when its actor says how), sent
//! through the transport with the witness's baseline first for a write,
//! counted and logged, and its answer put through the judges. Whether it
//! got an answer at all is noted too: the run gives up on a target that
//! stopped answering ([`Silence`]).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{Executor, Issued};
use crate::findings::FindingKind;
use crate::judge::{self, Attribution, Exchange, Flag, Judged};
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
    /// A self-test's write redirected to another's record.
    pub(super) redirect: Option<super::planting::Redirect>,
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
    /// `None` when the target did not answer. Boxed: a batch of 100,000
    /// holds its `Sent`s and, while the batch judges read them, the
    /// exchanges moved out of them; unboxed, both at full size at once.
    pub(super) judged: Option<Judged>,
    /// A write: whose data it named.
    pub(super) aimed: Option<Aim>,
}

impl Executor {
    /// Sends `step` as `sender`: builds the request, sends it and counts it.
    pub(super) async fn send(&self, sender: InstanceId, step_ref: StepRef) -> Option<Sent> {
        self.attempt(sender, step_ref, true, None).await
    }

    /// Sends `step` as `sender`, redirected to another instance's record
    /// when it can be (a [self-test](crate::self_test)'s planted defect).
    pub(super) async fn send_redirected(
        &self,
        sender: InstanceId,
        step_ref: StepRef,
        victim: InstanceId,
    ) -> Option<Sent> {
        self.attempt(sender, step_ref, true, Some(victim)).await
    }

    /// One try at sending `step`; on a 401 to its own credentials, when
    /// `may_reauth` and its actor says how, it logs in again and retries once.
    async fn attempt(
        &self,
        sender: InstanceId,
        step_ref: StepRef,
        may_reauth: bool,
        redirect: Option<InstanceId>,
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
        let planted = redirect.and_then(|victim| self.redirect(sender, step_ref, &built, victim));
        let (request, redirect) = match planted {
            Some((judged, redirect)) => (judged, Some(redirect)),
            None => (built.request, None),
        };
        let to = Recipient {
            sender,
            observer,
            attribution,
            step: step_ref,
            redirect,
        };
        let rebuild = || {
            self.build(sender, step_ref, identity)
                .ok()
                .map(|b| b.request)
        };
        let Some(sent) = (self.transmit(&to, request, &rebuild, step.name.clone())).await else {
            self.unsent();
            return None;
        };
        let status = sent.result.as_ref().ok().map(|r| r.status);
        if may_reauth && let Some(login) = self.reauth_step(sender, step_ref, status) {
            self.log_issued(vec![sent.issued], false);
            let line = format!("{}: answered 401, logging in again", step.name);
            self.world.trace(sender, line);
            if let Some(sent) = Box::pin(self.attempt(sender, login, false, None)).await {
                self.judge(vec![sent]);
            }
            return Box::pin(self.attempt(sender, step_ref, false, None)).await;
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
        let halt = self.halt(to.step);
        if halt.is_cancelled() {
            return None;
        }
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
        // A stop cancels the flow's requests in flight; teardown finishes,
        // unless the target was given up on and still does not answer.
        let wire = to.redirect.as_ref().map_or(&request, |r| &r.wire);
        let mut result = tokio::select! {
            biased;
            () = halt.cancelled() => return None,
            result = self.transport.send(wire) => result,
        };
        self.heard(to.step, result.is_ok());
        let status = result.as_ref().ok().map(|r| r.status);
        if to.redirect.is_some() {
            result = result.map(super::planting::unset_cookies);
            let victims = aimed.as_ref().map(|(aim, _)| aim.victims.as_slice());
            self.redirected(to, status, victims.unwrap_or_default());
        }
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
                let mut exchange = match probe_of {
                    Some(owner) => exchange.probing(owner),
                    None => exchange,
                };
                let verdict = judge::on_answer(&self.context(), &exchange);
                // The batch keeps it until all of it has answered.
                exchange.forget_json();
                Some(Box::new((exchange, verdict)))
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

    /// What stops `step` in flight: the flow's stop, or the teardown's.
    pub(super) fn halt(&self, step: StepRef) -> &CancellationToken {
        match step {
            StepRef::Flow(_) => &self.stop,
            StepRef::Teardown(_) => &self.stop_teardown,
        }
    }

    /// A step run a give-up cancelled: work not done, counted as not sent
    /// (a signal's or a time limit's are told as an interruption instead).
    pub(super) fn unsent(&self) {
        if self.gave_up.get().is_some() {
            self.not_sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The step runs of `batches`, never started because the run gave up.
    pub(super) fn left_unsent(&self, batches: &[Vec<StepRef>]) {
        if self.gave_up.get().is_none() {
            return;
        }
        let runs = (batches.iter().flatten())
            .map(|step| self.world.senders(self.plan().step(*step)).count())
            .sum::<usize>();
        self.not_sent.fetch_add(runs as u64, Ordering::Relaxed);
    }

    /// Notes whether a request to `step` got an answer: gives up on a
    /// target that stopped answering, and on the teardown too when it
    /// still does not answer after that. Never in process: no timeout.
    fn heard(&self, step: StepRef, answered: bool) {
        let Some(timeout) = self.transport.timeout() else {
            return;
        };
        let mut silence = self.silence.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if silence.note(answered, now, 2 * timeout) && self.gave_up.get().is_none() {
            self.give_up(&silence, now, timeout, step);
        }
        let teardown = matches!(step, StepRef::Teardown(_));
        if teardown
            && !answered
            && self.gave_up.get().is_some()
            && !self.stop_teardown.is_cancelled()
        {
            self.stop_teardown.cancel();
            self.tell("the target still does not answer: the rest of the teardown is not sent");
        }
    }

    /// Stops the flow of a run whose target stopped answering, saying why;
    /// `step` is the one that went unanswered last.
    fn give_up(&self, silence: &Silence, now: Instant, timeout: Duration, step: StepRef) {
        let reason = format!(
            "the target stopped answering: {} of the last {} requests got no answer (the last {} in a row) and none has answered in {:.1}s, over twice --timeout ({timeout:?}); if it stalls with many requests in flight, run with a lower --concurrency (this run: {})",
            silence.unanswered(),
            silence.recent.len(),
            silence.in_row,
            now.duration_since(silence.last_answer).as_secs_f64(),
            self.concurrency(),
        );
        let _ = self.gave_up.set(reason.clone());
        self.stop.cancel();
        let rest = match step {
            StepRef::Flow(_) => " The rest of its flow is not sent; its teardown is still tried.",
            StepRef::Teardown(_) => "",
        };
        let scenario = &self.plan().scenario;
        self.tell(&format!(
            "giving up on scenario `{scenario}`: {reason}.{rest}"
        ));
    }

    /// A line on stderr, clear of the progress line.
    fn tell(&self, line: &str) {
        let say = || eprintln!("crosstalk: {line}");
        match &self.options.progress {
            Some(bar) => bar.suspend(say),
            None => say(),
        }
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

/// How many of the latest [`WINDOW`] requests got no answer when a run
/// gives up, none having answered for two timeouts either: a target that
/// answers slowly, or now and then, is never given up on.
const UNANSWERED: usize = 20;

/// How many of the latest requests [`Silence`] remembers.
const WINDOW: usize = 25;

/// Whether the target still answers: which of the latest requests got an
/// answer (any HTTP answer, an error status too), and when the last did.
pub(super) struct Silence {
    /// Oldest first, at most [`WINDOW`]: `true` for an answer.
    recent: VecDeque<bool>,
    /// Requests with no answer since the last that got one.
    in_row: u64,
    last_answer: Instant,
}

impl Silence {
    /// As if the target had answered at `now`, the run's start.
    pub(super) fn new(now: Instant) -> Self {
        Silence {
            recent: VecDeque::with_capacity(WINDOW),
            in_row: 0,
            last_answer: now,
        }
    }

    /// Notes a request's outcome at `now`; whether the target has stopped
    /// answering: most of the latest requests got no answer, and none has
    /// answered for `quiet`.
    pub(super) fn note(&mut self, answered: bool, now: Instant, quiet: Duration) -> bool {
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(answered);
        if answered {
            self.in_row = 0;
            self.last_answer = now;
            return false;
        }
        self.in_row += 1;
        self.unanswered() >= UNANSWERED && now.duration_since(self.last_answer) >= quiet
    }

    /// Of the latest requests, those with no answer.
    fn unanswered(&self) -> usize {
        self.recent.iter().filter(|answered| !**answered).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET: Duration = Duration::from_secs(2);

    /// Notes `n` outcomes alike at `at`; whether the last one gave up.
    fn note_all(silence: &mut Silence, n: usize, answered: bool, at: Instant) -> bool {
        (0..n).fold(false, |_, _| silence.note(answered, at, QUIET))
    }

    #[test]
    fn gives_up_when_most_requests_fail_and_none_answered_for_a_while() {
        let start = Instant::now();
        let mut silence = Silence::new(start);
        assert!(!note_all(&mut silence, 19, false, start + QUIET));
        assert!(silence.note(false, start + QUIET, QUIET));
        assert_eq!(silence.in_row, 20);
    }

    #[test]
    fn a_recent_answer_keeps_the_run_going() {
        let start = Instant::now();
        let mut silence = Silence::new(start);
        // Thirty failures, but within `QUIET` of the start.
        assert!(!note_all(&mut silence, 30, false, start + QUIET / 2));
        assert!(!silence.note(true, start + QUIET, QUIET));
        // Twenty-four failures within `QUIET` of that answer, then one after.
        assert!(!note_all(
            &mut silence,
            24,
            false,
            start + QUIET + QUIET / 2
        ));
        assert!(silence.note(false, start + 2 * QUIET, QUIET));
    }

    #[test]
    fn one_answer_in_four_keeps_the_run_going() {
        let start = Instant::now();
        let mut silence = Silence::new(start);
        // Each answer is long past when the next failures come: only their
        // share (at most 19 of 25) keeps the run going.
        for round in 0..40 {
            let at = start + QUIET * 10 * round;
            assert!(!silence.note(true, at, QUIET));
            assert!(
                !note_all(&mut silence, 3, false, at + QUIET * 5),
                "round {round}"
            );
        }
        assert!(silence.unanswered() < UNANSWERED);
    }
}
