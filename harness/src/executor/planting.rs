//! The executor's side of the [self-test](crate::self_test): the defects
//! planted in a run's real traffic. Answers get their shadows once their
//! batch is judged (a swapped answer, a foreign item, another's login);
//! a write is redirected before it goes out. Only an instance's own
//! scripted steps plant, never a probe or the witness's reads.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Executor;
use super::sending::Recipient;
use crate::findings::{Finding, FindingSink};
use crate::judge::{self, Attribution, Context, Exchange, Judged, Verdict};
use crate::plan::{Credentials, StepRef};
use crate::probe;
use crate::request::{self, Built};
use crate::resolver::Resolver;
use crate::self_test::plant::{self, PER_STEP, REDIRECTS_PER_STEP};
use crate::self_test::{Defect, Outcome, Plant, SelfTest};
use crate::transport::{Request, Response};
use crate::witness;
use crate::world::InstanceId;

/// A write redirected to another instance's record.
pub(super) struct Redirect {
    /// What goes on the wire: the victim's credential.
    pub(super) wire: Request,
    pub(super) victim: InstanceId,
    pub(super) index: usize,
}

impl Executor {
    fn self_test(&self) -> Option<&SelfTest> {
        self.options.self_test.as_deref()
    }

    /// Whether `exchange` is an instance's own scripted, accepted step.
    fn plantable(&self, exchange: &Exchange) -> bool {
        exchange.probe_of.is_none()
            && matches!(exchange.step, StepRef::Flow(_))
            && exchange.sender == exchange.observer
            && exchange.attribution == Attribution::Full
            && self.plan().step(exchange.step).credentials == Credentials::Own
            && (200..300).contains(&exchange.response.status)
    }

    /// Plants shadow defects into a judged batch's answers.
    pub(super) fn plant_shadows(&self, answered: &[Judged]) {
        let Some(test) = self.self_test() else {
            return;
        };
        let mut eligible: Vec<&Exchange> = (answered.iter().map(|judged| &judged.0))
            .filter(|e| self.plantable(e))
            .collect();
        eligible.sort_by_key(|e| e.sender);
        let scenario = &self.plan().scenario;
        // Donors first: an answer given at the same moment may be swapped in.
        for exchange in &eligible {
            test.with_donors(scenario, exchange.step.key(), |donors| {
                donors.keep(exchange.sender, &exchange.response)
            });
        }
        for exchange in eligible {
            for defect in self.shadow_defects(exchange) {
                self.plant_shadow(test, exchange, *defect);
            }
        }
    }

    /// What an answer can be given: another's login, or another's read.
    fn shadow_defects(&self, exchange: &Exchange) -> &'static [Defect] {
        let step = self.plan().step(exchange.step);
        let cookies = self.plan().roles[step.role].auth.cookies
            && crate::identity::live_session(&exchange.response);
        if cookies || step.captures.iter().any(|c| c.secret) {
            &[Defect::SessionSwap]
        } else if !witness::writes(&step.method) {
            &[Defect::ResponseSwap, Defect::ForeignItem]
        } else {
            &[]
        }
    }

    fn plant_shadow(&self, test: &SelfTest, exchange: &Exchange, defect: Defect) {
        let (world, step) = (&self.world, self.plan().step(exchange.step));
        let observer = exchange.sender;
        let key = exchange.step.key();
        let (local, count) = (world.local(observer), world.of_role(step.role).len() as u64);
        if !plant::chosen(test.seed(), defect, key, local, count, PER_STEP) {
            return;
        }
        let scenario = &self.plan().scenario;
        let not_planted =
            |reason: &str| test.not_planted(scenario, &step.name, &step.endpoint(), reason);
        let donor = test.with_donors(scenario, key, |donors| {
            let candidates: Vec<InstanceId> = (donors.instances().into_iter())
                .filter(|v| *v != observer && world.ids().contains(v))
                // One account is no grant: planting there shows it blind.
                .filter(|v| {
                    !world.ledger().visible(observer, *v) || same_account(world, observer, *v)
                })
                .collect();
            let victim = plant::pick(test.seed(), defect, key, local, &candidates)?;
            Some((victim, donors.of(victim)?.clone()))
        });
        let Some((victim, donor)) = donor else {
            return not_planted(
                "never answered 2xx, with data, to two instances that may not see each other",
            );
        };
        let planted = match defect {
            Defect::ForeignItem => plant::foreign_item(&exchange.response, &donor),
            _ => Some(donor),
        };
        let Some(planted) = planted else {
            return not_planted("the answers hold no list another's item could join");
        };
        if planted.body == exchange.response.body {
            return not_planted("every instance is given the same answer");
        }
        let shadow = Exchange::new(
            observer,
            observer,
            Attribution::Full,
            exchange.step,
            exchange.request.clone(),
            planted,
        );
        let outcome = match self.shadow_judge(&shadow) {
            Some((judge, finding)) => Outcome::Detected {
                judge: judge.to_string(),
                finding: finding.summary,
            },
            None => Outcome::Missed {
                reason: self.missed(&shadow, victim, defect),
            },
        };
        test.judged(
            self.new_plant(defect, exchange.step, observer, victim),
            outcome,
        );
    }

    fn new_plant(
        &self,
        defect: Defect,
        step: StepRef,
        observer: InstanceId,
        victim: InstanceId,
    ) -> Plant {
        let step = self.plan().step(step);
        Plant {
            defect,
            scenario: self.plan().scenario.clone(),
            step: step.name.clone(),
            endpoint: step.endpoint(),
            observer: self.world.label(observer).to_string(),
            victim: self.world.label(victim).to_string(),
        }
    }

    /// The first judge that names a shadow answer, with its finding; the
    /// findings go to a sink of their own, never the run's.
    fn shadow_judge(&self, shadow: &Exchange) -> Option<(&'static str, Finding)> {
        let sink = FindingSink::new(None).ok()?;
        let cx = Context {
            sink: &sink,
            ..self.context()
        };
        judge::SHADOW.iter().find_map(|(name, judge)| {
            let mut verdict = Verdict::default();
            judge(shadow, &cx, &mut verdict);
            let flag = verdict.flags.into_iter().next()?;
            Some((*name, judge::finding(&cx, shadow, flag)))
        })
    }

    /// Why no judge named a shadow answer, as far as can be told.
    fn missed(&self, shadow: &Exchange, victim: InstanceId, defect: Defect) -> String {
        if same_account(&self.world, shadow.observer, victim) {
            return "observer and victim are one account".into();
        }
        let found = self.oracle.inspect_parsed(
            self.world.ledger(),
            shadow.observer,
            &shadow.request,
            &shadow.response,
            shadow.json(),
        );
        if !found.is_empty() {
            return "the step declares where the victim's data showed public".into();
        }
        match defect {
            Defect::SessionSwap => "the answer carries nothing of the victim's: no canary, no captured id, no credential the run captured".into(),
            _ => "the answer carries nothing owned: no canary, no captured id of the victim's".into(),
        }
    }

    /// Sends the writes of a batch about to go out that the self-test
    /// redirects, as a batch of their own just before it (as write probes
    /// go): the witness then tells the redirected write's change from the
    /// victim's own write of the same step. Which `(step, sender)` it sent.
    pub(super) async fn send_redirects(
        self: &Arc<Self>,
        sends: &[(StepRef, InstanceId)],
    ) -> Vec<(StepRef, InstanceId)> {
        let Some(test) = self.self_test() else {
            return Vec::new();
        };
        // Chosen in the batch's order, one after another: the same seed
        // pairs the same instances.
        let chosen: Vec<(StepRef, InstanceId, InstanceId)> = (sends.iter().copied())
            .filter(|(step, sender)| self.redirects(*step, *sender))
            .filter_map(|(step, sender)| Some((step, sender, self.victim(test, step, sender)?)))
            .collect();
        if chosen.is_empty() || self.options.cancel.is_cancelled() {
            return Vec::new();
        }
        self.batch.fetch_add(1, Ordering::Relaxed);
        let mut tasks = tokio::task::JoinSet::new();
        for (step, sender, victim) in chosen.iter().copied() {
            let this = Arc::clone(self);
            tasks.spawn(async move {
                let _permit = this.semaphore.acquire().await.expect("never closed");
                this.send_redirected(sender, step, victim).await
            });
        }
        let sent = super::gathered(tasks).await;
        self.judge_batch(sent).await;
        chosen
            .into_iter()
            .map(|(step, sender, _)| (step, sender))
            .collect()
    }

    /// Whether `sender`'s `step` is among the writes the self-test redirects.
    fn redirects(&self, step_ref: StepRef, sender: InstanceId) -> bool {
        let Some(test) = self.self_test() else {
            return false;
        };
        let (world, step) = (&self.world, self.plan().step(step_ref));
        let (local, count) = (world.local(sender), world.of_role(step.role).len() as u64);
        matches!(step_ref, StepRef::Flow(_))
            && step.credentials == Credentials::Own
            && witness::writes(&step.method)
            && world.state(sender).stopped.is_none()
            && plant::chosen(
                test.seed(),
                Defect::WriteRedirect,
                step_ref.key(),
                local,
                count,
                REDIRECTS_PER_STEP,
            )
    }

    /// A write to redirect to another instance's record: the request as
    /// the judges will see it (the writer's credential, the victim's
    /// values) and the one that goes out (the victim's credential).
    pub(super) fn redirect(
        &self,
        sender: InstanceId,
        step_ref: StepRef,
        built: &Built,
        victim: InstanceId,
    ) -> Option<(Request, Redirect)> {
        let test = self.self_test()?;
        let (world, step) = (&self.world, self.plan().step(step_ref));
        let borrowed = probe::owned_vars(world, step, sender);
        let vars = probe::vars(world, Some(sender), victim, &borrowed)?;
        if built.credential_of != Some(sender) {
            return None;
        }
        let resolver = Resolver::new(world, sender, step_ref.key(), &vars);
        let judged = request::build(world, &self.redactor, step, &resolver, Some(sender)).ok()?;
        let wire = request::build(world, &self.redactor, step, &resolver, Some(victim)).ok()?;
        let if_missed = match same_account(world, sender, victim) {
            true => "observer and victim are one account".to_string(),
            false => String::new(),
        };
        let plant = self.new_plant(Defect::WriteRedirect, step_ref, sender, victim);
        let index = test.redirected(plant, if_missed);
        let redirect = Redirect {
            wire: wire.request,
            victim,
            index,
        };
        Some((judged.request, redirect))
    }

    /// Whose record `sender`'s `step` is redirected to: a seeded other
    /// instance of its actor that holds values of the same variables and
    /// is in no other redirected write, nor is the sender.
    fn victim(&self, test: &SelfTest, step_ref: StepRef, sender: InstanceId) -> Option<InstanceId> {
        let (world, step) = (&self.world, self.plan().step(step_ref));
        let borrowed = probe::owned_vars(world, step, sender);
        if borrowed.is_empty() || test.involved(sender) {
            return None;
        }
        let role: Vec<InstanceId> = world.of_role(step.role).collect();
        let (local, key) = (world.local(sender), step_ref.key());
        let start = plant::pick(test.seed(), Defect::WriteRedirect, key, local, &role)?;
        let at = role.iter().position(|id| *id == start)?;
        let victim = (0..role.len())
            .map(|i| role[(at + i) % role.len()])
            .filter(|v| *v != sender && !world.ledger().visible(sender, *v) && !test.involved(*v))
            .filter(|v| request::holds_credential(world, *v))
            .find(|v| probe::vars(world, Some(sender), *v, &borrowed).is_some())?;
        test.involve([sender, victim]);
        Some(victim)
    }

    /// What a redirected write was answered, and whether the witness
    /// watches its victim.
    pub(super) fn redirected(&self, to: &Recipient, status: Option<u16>, victims: &[InstanceId]) {
        if let (Some(test), Some(redirect)) = (self.self_test(), &to.redirect) {
            test.answered(redirect.index, status, victims.contains(&redirect.victim));
        }
    }
}

/// A redirected write's answer as the judges see it: a session it set is
/// the victim's, so none is handed to the writer.
pub(super) fn unset_cookies(mut response: Response) -> Response {
    response.headers.remove(http::header::SET_COOKIE);
    response
}

/// Whether the run found `a` and `b` to be one account.
fn same_account(world: &crate::world::World, a: InstanceId, b: InstanceId) -> bool {
    let identities = world.ledger().identities();
    identities.account(a) == identities.account(b)
}
