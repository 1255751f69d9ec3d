//! The executor: drives a plan's instances against a transport, and only
//! that.
//!
//! Steps run in file order. Each step is sent by every instance of its actor
//! concurrently (bounded in flight), and the next step starts when all have
//! answered: the lockstep makes runs reproducible while still putting many
//! identical requests in flight at once, which is where races live. A step
//! marked `concurrent` joins the batch of the one before it. Each answer goes
//! through the [judges](crate::judge) as it arrives; the oracle reads the
//! whole batch once all of it has answered (a large batch goes out in
//! [waves](WAVE), each read whole before the next is sent). Teardown
//! steps run for every instance at the end, also after a Ctrl-C. Steps sent
//! once, by no instance, come before and after everything ([`once`]).
//! [`sending`] sends one request and reads its answer; [`probing`] sends a
//! batch's steps again as identities that may not see what they name;
//! [`witnessing`] is the integrity witness's side.
//!
//! A target that stops answering (a service deadlocked by the requests in
//! flight) would otherwise cost a timeout per request for the rest of the
//! run: when most of the latest requests got no answer and none got one
//! for two timeouts, the run gives up ([`sending::Silence`]). Its flow stops
//! as after a time limit, the teardown is still tried, and the run is
//! incomplete, not interrupted: what was not done is counted as not sent.

mod once;
mod planting;
mod probing;
mod sending;
mod witnessing;

use sending::Sent;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::canary;
use crate::contract::Observed;
use crate::findings::{FindingSink, JsonLines};
use crate::judge::{self, Context, Exchange, Judged, Verdict, text_of};
use crate::oracle::Oracle;
use crate::plan::{Plan, StepRef};
use crate::request;
use crate::safety::Redactor;
use crate::transport::Transport;
use crate::witness::{self, Witness};
use crate::world::{InstanceId, Ledger, World};
use witnessing::{Aimed, Pending};

/// How to run.
#[derive(Clone)]
pub struct RunOptions {
    /// Drives every seeded choice (picks, names, times).
    pub seed: u64,
    /// Makes canaries unique to this run.
    pub nonce: u64,
    /// The run id carried by everything created.
    pub run_id: String,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Requests of a batch sent before any of them is judged, at most
    /// ([`WAVE`]).
    pub wave: usize,
    pub cancel: CancellationToken,
    /// Counts requests for a progress line.
    pub progress: Option<indicatif::ProgressBar>,
    /// Keep every request issued, in order, for the caller ([`RunStats::order`]):
    /// a large run that needs no coverage or script keeps none.
    pub keep_order: bool,
    /// Keep each request's headers, body and captures in the order log
    /// (for reproduction scripts; credentials included, so never written as is).
    pub record: bool,
    /// Where each request is appended the moment it is answered (or fails).
    pub requests: Option<Arc<JsonLines>>,
    /// An instance left with no credential after a failed step of its own
    /// stops its flow. Fuzz programs turn this off: they send every
    /// operation, anonymous ones included.
    pub stop_without_credential: bool,
    /// Send each batch's requests in reverse order: a race (requests sent
    /// at the same moment) explored the other way round.
    pub reversed: bool,
    /// The ledger of a run that spans several worlds (a fuzz run against a
    /// target that keeps its data); `None`: this run's world alone.
    pub ledger: Option<Arc<Ledger>>,
    /// This world's name in that ledger (a scenario's, a program's): other
    /// worlds' findings name its instances with it.
    pub world_name: Option<String>,
    /// Where this world's `serial` numbers start (after the instances of
    /// the run's earlier scenario files).
    pub serial_base: u64,
    /// Send [probes](crate::probe) after each batch. Fuzz programs turn
    /// this off: they choose their own identities.
    pub probes: bool,
    /// Record each step's response shapes ([`Executor::contracts`]). Off
    /// where no snapshot is compared: building shapes is work.
    pub contracts: bool,
    /// Generated names are their instances' own, and evidence. Fuzz
    /// programs turn this off: thousands of programs' patients against
    /// one server share names by chance, where canaries never collide.
    pub own_names: bool,
    /// Plant defects in the run's traffic and see whether the judges name
    /// them ([`self_test`](crate::self_test)); shared by the run's files.
    pub self_test: Option<Arc<crate::self_test::SelfTest>>,
}

impl RunOptions {
    /// Options for a run: canaries from `nonce`, choices from `seed`, 64
    /// requests in flight, no progress line, nothing recorded.
    pub fn new(seed: u64, nonce: u64) -> Self {
        Self {
            seed,
            nonce,
            run_id: canary::run_id(nonce),
            concurrency: 64,
            wave: WAVE,
            cancel: CancellationToken::new(),
            progress: None,
            keep_order: true,
            record: false,
            requests: None,
            stop_without_credential: true,
            reversed: false,
            ledger: None,
            world_name: None,
            serial_base: 0,
            probes: true,
            contracts: true,
            own_names: true,
            self_test: None,
        }
    }
}

/// The requests issued so far and the batch number the next one starts.
#[derive(Default)]
struct Order {
    issued: Vec<Issued>,
    next_batch: u64,
}

/// One request as issued, in order.
#[derive(Debug, Clone, Serialize)]
pub struct Issued {
    pub seq: u64,
    pub scenario: String,
    pub instance: String,
    pub step: String,
    pub method: String,
    pub path: String,
    pub status: Option<u16>,
    /// Requests of one batch were sent at once (known once it is judged).
    #[serde(skip)]
    pub batch: u64,
    /// Filled only when recording.
    #[serde(skip)]
    pub exchange: Option<Recorded>,
}

/// A request in full and what was captured from its response.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// (variable, captured text, JSONPath when captured from the body).
    pub captures: Vec<(String, String, Option<String>)>,
    /// Which instance the captures went to.
    pub captured_by: String,
}

/// What a run did.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RunStats {
    pub scenario: String,
    pub instances: usize,
    pub requests: u64,
    /// Step runs that could not be sent (each one a `skipped` finding).
    pub skipped: u64,
    /// Requests that got no answer (each one a `transport-error` finding).
    pub transport_errors: u64,
    /// Instances that stopped their flow, left with no credential.
    pub stopped: u64,
    /// Step runs not sent because their instance had stopped.
    pub not_sent: u64,
    /// Step runs that did not apply: a value captured as `optional` was
    /// absent for that instance.
    pub not_applicable: u64,
    /// Requests sent as [probes](crate::probe).
    pub probes: u64,
    /// Requests sent a second time, on a fresh connection, because the
    /// first try met a kept-alive connection the server had closed (counted
    /// by the transport while this run ran; each is one request above).
    pub retried: u64,
    /// Why the run stopped its flow early: the target stopped answering.
    pub gave_up: Option<String>,
    pub elapsed: Duration,
    pub interrupted: bool,
    /// Writes that named another instance's data and answered 2xx (or
    /// changed it), each with the witness's verdict.
    pub foreign_writes: Vec<witness::ForeignWrite>,
    /// Whether the judges could see.
    pub health: crate::health::Health,
    #[serde(skip)]
    pub order: Vec<Issued>,
}

/// A plan bound to a target, its world and its findings.
pub struct Executor {
    transport: Arc<dyn Transport>,
    world: World,
    oracle: Oracle,
    sink: Arc<FindingSink>,
    redactor: Arc<Redactor>,
    options: RunOptions,
    seq: AtomicU64,
    requests: AtomicU64,
    skipped: AtomicU64,
    transport_errors: AtomicU64,
    not_sent: AtomicU64,
    not_applicable: AtomicU64,
    /// Probe requests sent.
    probes: AtomicU64,
    /// The transport's retries before this run began.
    retried_before: u64,
    /// Stops the flow: the run's cancel (a signal, a time limit) or this
    /// run giving up on a target that stopped answering.
    stop: CancellationToken,
    /// Stops the teardown: a target given up on that still does not answer.
    stop_teardown: CancellationToken,
    /// Whether the target still answers.
    silence: Mutex<sending::Silence>,
    /// Why this run gave up, once it has.
    gave_up: OnceLock<String>,
    order: Mutex<Order>,
    /// The witness's requests, not yet in `order`.
    witnessed: Mutex<Vec<Issued>>,
    /// Which batch is running (the witness reads a victim once per batch).
    batch: AtomicU64,
    semaphore: Semaphore,
    contracts: Observed,
    witness: Witness,
    /// Cleared writes the witness looks at again at the end of the flow.
    pending: Mutex<Vec<Pending>>,
    /// Probes by actor pair, for the run's detection health.
    probe_counts: crate::health::ProbeCounts,
    /// Credentials credited to nobody before this run began (the ledger
    /// may be the run's, shared with earlier worlds).
    unattributed_before: u64,
}

impl Executor {
    pub fn new(
        plan: Arc<Plan>,
        transport: Arc<dyn Transport>,
        sink: Arc<FindingSink>,
        redactor: Arc<Redactor>,
        options: RunOptions,
    ) -> Arc<Self> {
        // Secrets are known before the first request is built or reported.
        for name in &plan.secrets {
            if let Some(value) = plan.vars.get(name) {
                redactor.add_declared(&text_of(value));
            }
        }
        for value in plan.secret_env_values() {
            redactor.add_declared(&value);
        }
        redactor.add_fields(&plan.redact_fields);
        let (world, oracle) = Self::make_world(plan, &options);
        let witness = Witness::new(&world);
        let unattributed_before = world.ledger().identities().unattributed_count();
        Arc::new(Self {
            semaphore: Semaphore::new(options.concurrency.max(1)),
            retried_before: transport.retried(),
            stop: options.cancel.child_token(),
            stop_teardown: CancellationToken::new(),
            silence: Mutex::new(sending::Silence::new(Instant::now())),
            gave_up: OnceLock::new(),
            transport,
            world,
            oracle,
            sink,
            redactor,
            options,
            seq: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            transport_errors: AtomicU64::new(0),
            not_sent: AtomicU64::new(0),
            not_applicable: AtomicU64::new(0),
            probes: AtomicU64::new(0),
            order: Mutex::default(),
            witnessed: Mutex::default(),
            batch: AtomicU64::new(0),
            contracts: Observed::default(),
            unattributed_before,
            witness,
            probe_counts: Default::default(),
            pending: Mutex::default(),
        })
    }

    /// The world of this run and its oracle: in the run's shared ledger,
    /// whose other identities the oracle finds too, or on its own.
    fn make_world(plan: Arc<Plan>, options: &RunOptions) -> (World, Oracle) {
        let (seed, nonce, run_id) = (options.seed, options.nonce, &options.run_id);
        let (mut world, oracle) = match &options.ledger {
            Some(ledger) => {
                let name = options.world_name.as_deref().unwrap_or_default();
                let world = World::in_ledger(plan, ledger.clone(), run_id, seed, nonce, name);
                let oracle = Oracle::new(ledger, world.ids()).with_others(ledger.clone(), run_id);
                (world, oracle)
            }
            None => {
                let world = World::new(plan, run_id, seed, nonce);
                let oracle = Oracle::new(world.ledger(), world.ids());
                (world, oracle)
            }
        };
        world.serial_base = options.serial_base;
        (world, oracle)
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    pub fn ledger(&self) -> &Ledger {
        self.world.ledger()
    }

    pub fn witness(&self) -> &Witness {
        &self.witness
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Requests in flight at most.
    pub fn concurrency(&self) -> usize {
        self.options.concurrency.max(1)
    }

    /// The batch running now.
    pub fn batch_number(&self) -> u64 {
        self.batch.load(Ordering::Relaxed)
    }

    /// The response contracts seen so far, per step.
    pub fn contracts(&self) -> &Observed {
        &self.contracts
    }

    fn plan(&self) -> &Plan {
        self.world.plan()
    }

    /// Runs every step for every instance, then the teardown.
    pub async fn run(self: &Arc<Self>) -> RunStats {
        let started = Instant::now();
        let flow: Vec<StepRef> = (0..self.plan().steps.len()).map(StepRef::Flow).collect();
        let set_up = self.setup().await;
        let batches = self.batches(&flow);
        let mut next = 0;
        while set_up && next < batches.len() && !self.stop.is_cancelled() {
            self.run_batch(batches[next].clone()).await;
            next += 1;
        }
        self.left_unsent(&batches[next..]);
        // A signal or a time limit; giving up is not an interruption.
        let interrupted = self.options.cancel.is_cancelled();
        if !self.stop.is_cancelled() && set_up {
            witnessing::end_of_flow(self).await;
            self.log_witnessed();
        }
        let teardown: Vec<StepRef> = (0..self.plan().teardown.len())
            .map(StepRef::Teardown)
            .collect();
        for batch in self.batches(&teardown) {
            self.run_batch(batch).await;
        }
        self.cleanup().await;
        RunStats {
            scenario: self.plan().scenario.clone(),
            instances: self.world.ids().filter(|id| self.world.here(*id)).count(),
            requests: self.requests.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            transport_errors: self.transport_errors.load(Ordering::Relaxed),
            stopped: self.world.stopped() as u64,
            not_sent: self.not_sent.load(Ordering::Relaxed),
            not_applicable: self.not_applicable.load(Ordering::Relaxed),
            probes: self.probes.load(Ordering::Relaxed),
            retried: self.transport.retried() - self.retried_before,
            gave_up: self.gave_up.get().cloned(),
            elapsed: started.elapsed(),
            interrupted,
            foreign_writes: self.witness.foreign_writes(),
            health: self.health(),
            order: std::mem::take(&mut self.order.lock().unwrap_or_else(|p| p.into_inner()).issued),
        }
    }

    /// What the judges could see in this run.
    fn health(&self) -> crate::health::Health {
        let unattributed =
            self.ledger().identities().unattributed_count() - self.unattributed_before;
        crate::health::Health::assess(
            &self.world,
            &self.probe_counts,
            self.options.probes,
            unattributed,
            self.witness.watched(),
        )
    }

    /// Steps grouped so that each `concurrent` step joins the one before it.
    fn batches(&self, steps: &[StepRef]) -> Vec<Vec<StepRef>> {
        let mut batches: Vec<Vec<StepRef>> = Vec::new();
        for step in steps {
            match batches.last_mut() {
                Some(batch) if self.plan().step(*step).concurrent => batch.push(*step),
                _ => batches.push(vec![*step]),
            }
        }
        batches
    }

    /// Sends every step of the batch, for each of its instances, at once
    /// (in [waves](WAVE), each judged whole); then the witness's check of
    /// the writes aimed at others, and the probes of the reads answered.
    async fn run_batch(self: &Arc<Self>, batch: Vec<StepRef>) {
        self.batch.fetch_add(1, Ordering::Relaxed);
        let mut sends: Vec<(StepRef, InstanceId)> = batch
            .iter()
            .flat_map(|step| {
                let senders = self.world.senders(self.plan().step(*step));
                senders.map(move |sender| (*step, sender))
            })
            .collect();
        if self.options.reversed {
            sends.reverse();
        }
        self.probe_writes(&sends).await;
        let redirected = self.send_redirects(&sends).await;
        let mut batch = Waves::default();
        for wave in waves(&sends, self.options.wave) {
            let sent = self.send_wave(wave, &redirected).await;
            batch.answered.extend(
                (sent.iter().filter_map(|s| s.judged.as_deref()))
                    .map(|(e, _)| (e.sender, e.step, e.response.status)),
            );
            batch.accepted += accepted(&sent);
            batch.aimed.extend(self.judge(sent));
        }
        self.witness_aimed(&batch.aimed, batch.accepted).await;
        self.probe_reads(batch.answered).await;
    }

    /// Sends a wave of a batch's requests, all at once, and waits for all.
    async fn send_wave(
        self: &Arc<Self>,
        sends: &[(StepRef, InstanceId)],
        redirected: &[(StepRef, InstanceId)],
    ) -> Vec<Sent> {
        let mut tasks = tokio::task::JoinSet::new();
        for &(step, sender) in sends {
            if redirected.contains(&(step, sender)) {
                continue;
            }
            if self.world.state(sender).stopped.is_some() {
                self.not_sent.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if matches!(step, StepRef::Teardown(_)) && !self.can_clean_up(sender) {
                continue;
            }
            let this = Arc::clone(self);
            tasks.spawn(async move {
                let _permit = this
                    .semaphore
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                // Teardown runs even after a Ctrl-C; the flow stops.
                if this.halt(step).is_cancelled() {
                    this.unsent();
                    return None;
                }
                this.send(sender, step).await
            });
        }
        gathered(tasks).await
    }

    /// The batch's judges over what was sent, then the witness's check of
    /// the writes aimed at others.
    async fn judge_batch(self: &Arc<Self>, sent: Vec<Sent>) {
        let accepted = accepted(&sent);
        let aimed = self.judge(sent);
        self.witness_aimed(&aimed, accepted).await;
    }

    /// The witness's check of a batch's writes aimed at others, `accepted`
    /// of its writes answered 2xx.
    async fn witness_aimed(self: &Arc<Self>, aimed: &[Aimed], accepted: usize) {
        if !aimed.is_empty() {
            witnessing::after_batch(self, aimed, accepted).await;
            self.log_witnessed();
        }
    }

    fn lock_witnessed(&self) -> std::sync::MutexGuard<'_, Vec<Issued>> {
        self.witnessed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds requests to the run's order: as one batch when they were sent
    /// at one moment (`together`), else one after another.
    fn log_issued(&self, mut issued: Vec<Issued>, together: bool) {
        issued.sort_by_key(|i| i.seq);
        let mut order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        let one_batch = together && !issued.is_empty();
        for mut one in issued {
            one.batch = order.next_batch;
            order.next_batch += u64::from(!together);
            if self.options.keep_order {
                order.issued.push(one);
            }
        }
        order.next_batch += u64::from(one_batch);
    }

    /// The witness's requests so far, into the run's order one by one.
    fn log_witnessed(&self) {
        let witnessed = std::mem::take(&mut *self.lock_witnessed());
        self.log_issued(witnessed, false);
    }

    /// The batch judges over the answered exchanges, in issue order; logs
    /// every request in that order (the witness's baseline reads first);
    /// the answered writes aimed at others, for the witness.
    fn judge(&self, mut sent: Vec<Sent>) -> Vec<Aimed> {
        // The answers stay in their boxes: a batch of 100,000 moved into
        // vectors of its own would hold both at once.
        let was_answered: Vec<bool> = sent.iter().map(|s| s.judged.is_some()).collect();
        let mut answered: Vec<Judged> = (sent.iter_mut()).filter_map(|s| s.judged.take()).collect();
        judge::on_batch(&self.context(), &mut answered);
        self.plant_shadows(&answered);
        self.log_witnessed();
        let mut judged = answered.into_iter();
        let mut logged = Vec::with_capacity(sent.len());
        let mut aimed = Vec::new();
        for (one, was_answered) in sent.into_iter().zip(was_answered) {
            let mut issued = one.issued;
            let Some(pair) = was_answered.then(|| judged.next()).flatten() else {
                logged.push(issued);
                continue;
            };
            let (exchange, verdict) = *pair;
            if self.options.record {
                issued.exchange = Some(self.recorded(&exchange, verdict));
            }
            logged.push(issued);
            if let Some(aim) = one.aimed.filter(|aim| !aim.victims.is_empty()) {
                aimed.push(Aimed {
                    exchange,
                    writer: aim.writer,
                    victims: aim.victims,
                });
            }
        }
        self.log_issued(logged, true);
        aimed
    }

    /// An instance of an actor that authenticates cleans up only once it
    /// holds a credential: one stopped by Ctrl-C before it signed up has
    /// created nothing to remove.
    fn can_clean_up(&self, id: InstanceId) -> bool {
        let role = &self.plan().roles[self.world.instance(id).role];
        !role.auth.authenticates() || request::holds_credential(&self.world, id)
    }

    pub(crate) fn context(&self) -> Context<'_> {
        Context {
            world: &self.world,
            oracle: &self.oracle,
            redactor: &self.redactor,
            contracts: self.options.contracts.then_some(&self.contracts),
            sink: &self.sink,
            witness: &self.witness,
            stop_without_credential: self.options.stop_without_credential,
            own_names: self.options.own_names,
        }
    }

    /// The request in full and its captures, for reproduction scripts.
    fn recorded(&self, exchange: &Exchange, verdict: Verdict) -> Recorded {
        // A token goes to whoever the server authenticated (a login with
        // another's e-mail logs that one in), as the capture judge did.
        let secret = self
            .plan()
            .step(exchange.step)
            .captures
            .iter()
            .any(|c| c.secret);
        let captured_by = match exchange.authenticated(&self.oracle, &self.world) {
            _ if !secret => self.world.label(exchange.observer),
            Some(owner) => self.world.label(owner),
            None => "nobody".into(),
        };
        Recorded {
            headers: exchange.request.headers.clone(),
            body: String::from_utf8_lossy(&exchange.request.body).into_owned(),
            captures: verdict
                .captured
                .into_iter()
                .map(|(var, value, path)| (var, text_of(&value), path))
                .collect(),
            captured_by: captured_by.to_string(),
        }
    }
}

/// What a batch sent in waves keeps for after its last: the reads to
/// probe, the writes aimed at others (for the witness) and how many writes
/// the server accepted.
#[derive(Default)]
struct Waves {
    answered: Vec<(InstanceId, StepRef, u16)>,
    aimed: Vec<Aimed>,
    accepted: usize,
}

/// Writes the server accepted: any of them may have made a change.
fn accepted(sent: &[Sent]) -> usize {
    (sent.iter().filter_map(|s| s.judged.as_deref()))
        .filter(|(e, _)| witness::writes(&e.request.method))
        .filter(|(e, _)| (200..300).contains(&e.response.status))
        .count()
}

/// Requests of a batch sent before any is judged, at most, unless a run
/// says otherwise ([`RunOptions::wave`]). A batch's answers are held until
/// all have arrived, since what the oracle counts as evidence depends on
/// what every request of it did; a batch of 100,000 instances held them
/// all (over 400 MB). Past this size it is sent in waves of consecutive
/// sends, each answered and judged whole before the next goes out. Nothing
/// is judged differently for it: an answer of one wave was given before a
/// request of a later one was sent, so it cannot show what that request
/// created. The witness still reads a victim once around the whole batch,
/// and the probes still go before and after it. The requests in flight at
/// once are far fewer (`--concurrency`), so the only race lost is between
/// the few in flight at a seam.
pub const WAVE: usize = 4096;

/// `sends` cut into waves of at most `most` (at least one), their sizes a
/// send apart: a last wave of a handful of instances would see too few to
/// tell what every instance reads alike ([`public`](crate::judge::public)).
fn waves<T>(sends: &[T], most: usize) -> impl Iterator<Item = &[T]> {
    let (len, count) = (sends.len(), sends.len().div_ceil(most.max(1)));
    (0..count).map(move |i| &sends[i * len / count..(i + 1) * len / count])
}

/// What a batch's tasks sent, in issue order whatever order the answers
/// came in; a task that panicked (a bug in a judge) panics here, never
/// passing as work done.
async fn gathered(mut tasks: tokio::task::JoinSet<Option<Sent>>) -> Vec<Sent> {
    // Sized once: a batch of 100,000 grown by doubling held a third more.
    let mut sent = Vec::with_capacity(tasks.len());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(one) => sent.extend(one),
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => {}
        }
    }
    // Keys first, then the values moved once each: a `Sent` is large.
    sent.sort_by_cached_key(|s| s.issued.seq);
    sent
}

#[cfg(test)]
mod tests {
    use super::waves;

    #[test]
    fn a_batch_is_cut_into_waves_a_send_apart_in_size_each_send_once_in_order() {
        for (len, most) in [
            (0, 4),
            (1, 4),
            (4, 4),
            (5, 4),
            (9, 4),
            (100_000, 4096),
            (7, 1),
        ] {
            let sends: Vec<usize> = (0..len).collect();
            let cut: Vec<&[usize]> = waves(&sends, most).collect();
            assert_eq!(cut.len(), len.div_ceil(most), "{len} in waves of {most}");
            let sizes: Vec<usize> = cut.iter().map(|w| w.len()).collect();
            let (least, largest) = (sizes.iter().min(), sizes.iter().max());
            assert!(
                largest.is_none_or(|l| *l <= most),
                "{len}/{most}: {sizes:?}"
            );
            assert!(
                least.zip(largest).is_none_or(|(s, l)| l - s <= 1),
                "{len}/{most}: {sizes:?}"
            );
            assert_eq!(cut.concat(), sends, "{len}/{most}");
        }
    }
}
