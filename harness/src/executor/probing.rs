//! The executor's side of [probes](crate::probe): the steps a batch's
//! instances send naming their own data go out again as other identities,
//! all at once, as a batch of their own. A write is probed *before* its
//! owner sends it, while what it acts on is still there to change (a live
//! call to end, a phone number not yet set to the value the step sets); a
//! read *after*, once the owner has been answered 2xx. Each probe is logged
//! as `probe: <step> as <prober>` and judged for what it shows (the leak
//! oracle), what it was granted (access) and, for a write, what it changed
//! (the witness reads the owner before and after). A step naming several
//! of the owner's values is probed with all of them and with each alone
//! (`probe: <step> (<var> of <owner>) as <prober>`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Executor;
use super::sending::{Recipient, Sent, attribution};
use crate::plan::{Credentials, StepRef};
use crate::probe;
use crate::request;
use crate::resolver::Resolver;
use crate::witness;
use crate::world::InstanceId;

/// One probe to send: the owner's step, by whom (`None`: no credentials),
/// seen by `observer`, with the owner's values of `borrowed`.
struct Planned {
    owner: InstanceId,
    step: StepRef,
    prober: Option<InstanceId>,
    observer: InstanceId,
    borrowed: Vec<String>,
    /// Only some of the owner's values borrowed, the rest the prober's.
    alone: bool,
}

impl Executor {
    /// Probes the writes of a batch about to be sent: `(sender, step)`.
    pub(super) async fn probe_writes(self: &Arc<Self>, sends: &[(StepRef, InstanceId)]) {
        let writes = (sends.iter())
            .filter(|(step, _)| witness::writes(&self.plan().step(*step).method))
            .map(|(step, owner)| (*owner, *step));
        self.probe(writes.collect()).await;
    }

    /// Probes the reads of a batch that were answered: `(sender, step, status)`.
    pub(super) async fn probe_reads(self: &Arc<Self>, answered: Vec<(InstanceId, StepRef, u16)>) {
        let reads = (answered.into_iter())
            .filter(|(_, step, _)| !witness::writes(&self.plan().step(*step).method))
            .filter(|(_, _, status)| (200..300).contains(status))
            .map(|(owner, step, _)| (owner, step));
        self.probe(reads.collect()).await;
    }

    /// Sends the probes of these owners' steps as one batch.
    async fn probe(self: &Arc<Self>, steps: Vec<(InstanceId, StepRef)>) {
        let planned = self.plan_probes(steps);
        if planned.is_empty() || self.options.cancel.is_cancelled() {
            return;
        }
        self.batch.fetch_add(1, Ordering::Relaxed);
        let mut tasks = tokio::task::JoinSet::new();
        for one in planned {
            let this = Arc::clone(self);
            tasks.spawn(async move {
                let _permit = this.semaphore.acquire().await.expect("never closed");
                this.send_probe(one).await
            });
        }
        let sent = super::gathered(tasks).await;
        self.probes.fetch_add(sent.len() as u64, Ordering::Relaxed);
        self.judge_batch(sent).await;
    }

    /// Which probes these owners' steps call for.
    fn plan_probes(&self, steps: Vec<(InstanceId, StepRef)>) -> Vec<Planned> {
        let world = &self.world;
        let mut planned = Vec::new();
        for (owner, step_ref) in steps {
            let step = self.plan().step(step_ref);
            let eligible = self.options.probes
                && step.probe
                && step.credentials == Credentials::Own
                && matches!(step_ref, StepRef::Flow(_))
                && world.state(owner).stopped.is_none()
                && probe::sampled(world, step_ref, owner);
            if !eligible {
                continue;
            }
            let borrowed = probe::owned_vars(world, step, owner);
            if borrowed.is_empty() {
                continue;
            }
            self.probe_counts.owner(world.instance(owner).role);
            let probers = probe::probers(world, step_ref, owner);
            // With no credentials, the answer is judged as seen by the first
            // prober: someone who may not see the owner.
            let anonymous_observer = probers.iter().flatten().next().copied();
            for prober in probers {
                let Some(observer) = prober.or(anonymous_observer) else {
                    continue;
                };
                // With no credentials there is no own value to mix in.
                let sets = match prober {
                    Some(_) => probe::borrowings(&borrowed),
                    None => vec![borrowed.clone()],
                };
                let alone = sets.len() > 1;
                planned.extend(sets.into_iter().enumerate().map(|(i, set)| Planned {
                    owner,
                    step: step_ref,
                    prober,
                    observer,
                    alone: alone && i > 0,
                    borrowed: set,
                }));
            }
        }
        planned
    }

    /// Renders and sends one probe; `None` when it cannot be rendered for
    /// the prober (a value of its own it never captured) or names nothing
    /// of the owner's.
    async fn send_probe(&self, one: Planned) -> Option<Sent> {
        let world = &self.world;
        let step = self.plan().step(one.step);
        let vars = probe::vars(world, one.prober, one.owner, &one.borrowed)?;
        let renderer = one.prober.unwrap_or(one.owner);
        let resolver = Resolver::new(world, renderer, one.step.key(), &vars);
        let identity = one.prober;
        let built = request::build(world, &self.redactor, step, &resolver, identity).ok()?;
        let sent_credential = built.credential_of.is_some();
        let to = Recipient {
            sender: one.observer,
            observer: one.observer,
            attribution: match sent_credential {
                true => attribution(Credentials::Own, true),
                false => attribution(Credentials::Anonymous, false),
            },
            step: one.step,
            redirect: None,
        };
        let who = one.prober.map_or("nobody".into(), |p| world.label(p));
        let name = match one.alone {
            true => format!(
                "probe: {} ({} of {}) as {who}",
                step.name,
                one.borrowed.join(", "),
                world.label(one.owner)
            ),
            false => format!("probe: {} as {who}", step.name),
        };
        // Rebuilt with the prober's session of the moment, its values
        // borrowed as before.
        let rebuild = || {
            let vars = probe::vars(world, one.prober, one.owner, &one.borrowed)?;
            let resolver = Resolver::new(world, renderer, one.step.key(), &vars);
            request::build(world, &self.redactor, step, &resolver, identity)
                .ok()
                .map(|b| b.request)
        };
        let sent = self.transmit(&to, built.request, &rebuild, name).await?;
        let role = |id: InstanceId| world.instance(id).role;
        let answered = sent.result.is_ok();
        (self.probe_counts).sent(one.prober.map(role), role(one.owner), answered);
        Some(self.receive(&to, sent, Some(one.owner)))
    }
}
