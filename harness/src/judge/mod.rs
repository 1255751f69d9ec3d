//! Judges: what happens to an answered request.
//!
//! The executor only sends. Each answered request becomes an [`Exchange`]
//! (request, response, who sent it, whose credentials went out, what the
//! response may be attributed to) and passes through small judges, one
//! module each, in this order:
//!
//! 1. [`handover`]: a credential the server issued to another account
//!    before, handed out again (a session mix-up);
//! 2. [`session`]: cookies the server set, for the identity it authenticated;
//! 3. [`capture`]: values the scenario captures, secrets taught to the
//!    redactor before anything is written;
//! 4. [`grant`]: who may now see the observer's data;
//! 5. [`status`]: server errors;
//! 6. [`body`]: an answer cut at the body limit, judged on its start only;
//! 7. [`expect`]: the scenario's expectations;
//! 8. [`stop`]: an instance left with no credential after a failed step
//!    stops its flow (one finding, not a cascade of 401s);
//! 9. [`contract`]: the response's shape, for the contract snapshots;
//! 10. [`taint`]: canaries the request carried for someone else;
//! 11. [`trace`]: the observer's story, which later findings quote;
//! 12. [`leak`]: the oracle;
//! 13. [`access`]: a probe answered 2xx naming another's record;
//! 14. [`witness`]: the observer's own reads (those that showed no one
//!     else's data) and login, which the
//!     [integrity witness](crate::witness) re-reads around foreign writes.
//!
//! Judges 1–11 ([`ON_ANSWER`]) run as each answer arrives, while the rest of
//! its batch (the steps sent at one moment) is still in flight. Judges
//! 12–14 ([`ON_BATCH`]) run once the whole batch (or [wave]) has answered,
//! in issue order: what the oracle may count as evidence depends on what every
//! request of the batch did, so a grant or a taint from a request sent at
//! the same moment counts, and so does what [`public`] concludes first
//! from the batch as a whole (a value every instance read alike from one
//! step is nobody's). Adding a check means adding a module and one
//! line in one of the two lists. The witness's own verdict (`tamper`)
//! needs requests of its own, so the executor asks it after each batch.
//!
//! [wave]: crate::executor::WAVE

pub mod access;
pub mod body;
pub mod capture;
pub mod contract;
pub mod expect;
pub mod grant;
pub mod handover;
pub mod leak;
pub mod public;
pub mod session;
pub mod status;
pub mod stop;
pub mod taint;
pub mod trace;
pub mod witness;

use std::sync::OnceLock;

use serde_json::Value;

use crate::findings::{Finding, FindingKind, FindingSink, RedactedExchange, Witnessed};
use crate::oracle::{Evidence, Oracle};
use crate::plan::{PlanStep, StepRef};
use crate::safety::{REDACTED, Redactor, is_credential_header};
use crate::transport::{Request, Response};
use crate::world::{InstanceId, World};

/// One judge: reads an exchange, updates the world through the context,
/// and adds what it finds to the verdict.
pub type Judge = fn(&Exchange, &Context<'_>, &mut Verdict);

/// The judges each answer goes through as it arrives, in order.
pub const ON_ANSWER: &[(&str, Judge)] = &[
    ("handover", handover::judge),
    ("session", session::judge),
    ("capture", capture::judge),
    ("grant", grant::judge),
    ("status", status::judge),
    ("body", body::judge),
    ("expect", expect::judge),
    ("stop", stop::judge),
    ("contract", contract::judge),
    ("taint", taint::judge),
    ("trace", trace::judge),
];

/// The judges a batch goes through once all of it has answered.
pub const ON_BATCH: &[(&str, Judge)] = &[
    ("leak", leak::judge),
    ("access", access::judge),
    ("witness", witness::judge),
];

/// The judges a [self-test](crate::self_test)'s planted answer goes
/// through: those that name whose data an answer shows. Nothing is
/// recorded, captured or granted: the instance goes on with its real answer.
pub const SHADOW: &[(&str, Judge)] = &[("handover", handover::judge), ("leak", leak::judge)];

/// The judges a [probe](crate::probe)'s answer goes through as it arrives:
/// nothing it answers is captured, granted, expected or traced.
pub const ON_PROBE: &[(&str, Judge)] = &[
    ("status", status::judge),
    ("body", body::judge),
    ("taint", taint::judge),
];

/// An answered request, as the judges see it.
pub struct Exchange {
    /// The instance that sent it.
    pub sender: InstanceId,
    /// Whoever's credential went out: the identity the server answered.
    pub observer: InstanceId,
    pub attribution: Attribution,
    pub step: StepRef,
    pub request: Request,
    pub response: Response,
    /// A [probe](crate::probe) of this owner's step: judged for what it
    /// shows and what it was granted, nothing else.
    pub probe_of: Option<InstanceId>,
    json: OnceLock<Option<Value>>,
    carried: OnceLock<Vec<InstanceId>>,
}

impl Exchange {
    pub fn new(
        sender: InstanceId,
        observer: InstanceId,
        attribution: Attribution,
        step: StepRef,
        request: Request,
        response: Response,
    ) -> Exchange {
        Exchange {
            sender,
            observer,
            attribution,
            step,
            request,
            response,
            probe_of: None,
            json: OnceLock::new(),
            carried: OnceLock::new(),
        }
    }

    /// The identity the server authenticated, when it can be told (see
    /// [`identity`](crate::identity)): the one instance whose canary the
    /// request carried; else the sender, when the request spoke for it
    /// alone (its own step, its own values, its own credential or none);
    /// else the instance whose claimed account name it named (a login with
    /// another's e-mail, in any case, whatever credential went with it),
    /// or whose issued credential it presented in its body (a refresh
    /// grant); else the observer, when it sent its own credential. A
    /// session or token handed back belongs to it.
    pub fn authenticated(&self, oracle: &Oracle, world: &World) -> Option<InstanceId> {
        if let [one] = self.carried(oracle) {
            return Some(*one);
        }
        let own = self.probe_of.is_none()
            && self.sender == self.observer
            && self.attribution != Attribution::GrantsOnly
            && crate::identity::speaks_for_sender(world.plan().step(self.step));
        if own {
            return Some(self.sender);
        }
        let identities = world.ledger().identities();
        let ids = world.ids();
        if let Some(named) = identities.named(&self.request, &ids) {
            return Some(named);
        }
        if let Some(owner) = identities
            .presented(&self.request)
            .filter(|o| ids.contains(o))
        {
            return Some(owner);
        }
        (self.attribution == Attribution::Full).then_some(self.observer)
    }

    /// The canaries the request carried, already found (by the witness,
    /// before a write went out): not searched for again.
    /// This exchange as a probe of `owner`'s step.
    pub fn probing(self, owner: InstanceId) -> Self {
        Exchange {
            probe_of: Some(owner),
            ..self
        }
    }

    pub fn with_carried(self, carried: Option<Vec<InstanceId>>) -> Self {
        if let Some(carried) = carried {
            let _ = self.carried.set(carried);
        }
        self
    }

    /// Whose canaries the request carried (its own words: an e-mail, a
    /// reason), found once for all judges.
    pub fn carried(&self, oracle: &Oracle) -> &[InstanceId] {
        self.carried.get_or_init(|| {
            let request = &self.request;
            oracle.canaries_in(&request.path, &request.body)
        })
    }

    /// The response body as JSON, parsed once for all judges.
    pub fn json(&self) -> Option<&Value> {
        self.json.get_or_init(|| self.response.json()).as_ref()
    }

    /// Frees the parsed body; the bytes stay, and parse again if asked. A
    /// batch keeps every answer until all have arrived, and parsed they
    /// took most of a large run's memory (a tree is several times its text).
    pub fn forget_json(&mut self) {
        self.json.take();
    }
}

/// What a response may be attributed to its observer for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribution {
    /// The observer's own request: captures and grants.
    Full,
    /// Sent with another's credential: the server acted as that identity
    /// (grants follow), but captured values may belong to the body's owner.
    GrantsOnly,
    /// Anonymous: nothing follows.
    None,
}

/// What the judges read and update.
pub struct Context<'a> {
    pub world: &'a World,
    pub oracle: &'a Oracle,
    pub redactor: &'a Redactor,
    /// Where response shapes are recorded, when they are.
    pub contracts: Option<&'a crate::contract::Observed>,
    pub sink: &'a FindingSink,
    pub witness: &'a crate::witness::Witness,
    /// Whether an instance left without a credential stops its flow
    /// (scripted runs); a fuzz program sends every operation regardless.
    pub stop_without_credential: bool,
    /// Whether generated names are owned, and so evidence (scripted runs).
    pub own_names: bool,
}

impl Context<'_> {
    pub fn step(&self, exchange: &Exchange) -> &PlanStep {
        self.world.plan().step(exchange.step)
    }
}

/// What the judges found in one exchange.
#[derive(Default)]
pub struct Verdict {
    /// Findings not yet recorded; the pipeline records them after each judge.
    pub flags: Vec<Flag>,
    /// Values captured from the response: (variable, value, JSONPath).
    pub captured: Vec<(String, Value, Option<String>)>,
    /// An expectation (status, value or capture) failed.
    pub failed: bool,
    /// Whose data it leaked (the leak judge's victims).
    pub leaked: Vec<InstanceId>,
    /// Values this answer made the observer an owner of: (variable, value).
    pub owned: Vec<(String, String)>,
}

/// A finding as a judge states it; the pipeline adds who, where and the
/// redacted exchange.
pub struct Flag {
    pub kind: FindingKind,
    /// Where in the exchange: `status`, `body $.x`, `capture token`.
    pub location: String,
    pub summary: String,
    /// A leak's evidence and the other places the victim's data appeared.
    pub evidence: Option<(Evidence, Vec<String>)>,
    /// Tampering: whose data changed and what the witness saw.
    pub tampered: Option<(InstanceId, Witnessed)>,
}

impl Flag {
    /// A finding with no leak evidence.
    pub fn new(kind: FindingKind, location: impl Into<String>, summary: String) -> Flag {
        Flag {
            kind,
            location: location.into(),
            summary,
            evidence: None,
            tampered: None,
        }
    }
}

/// Runs the [`ON_ANSWER`] judges over one exchange; findings are recorded
/// as soon as each judge states them.
pub fn on_answer(cx: &Context<'_>, exchange: &Exchange) -> Verdict {
    let mut verdict = Verdict::default();
    let judges = match exchange.probe_of {
        Some(_) => ON_PROBE,
        None => ON_ANSWER,
    };
    for (_, judge) in judges {
        apply(cx, *judge, exchange, &mut verdict);
    }
    verdict
}

/// An answered exchange and its verdict so far, as a batch holds it until
/// all of it has answered. Boxed: a batch of 100,000 is moved about by
/// pointer, never copied into vectors of its own.
pub type Judged = Box<(Exchange, Verdict)>;

/// Runs the [`ON_BATCH`] judges over a whole batch, in the order given.
pub fn on_batch(cx: &Context<'_>, batch: &mut [Judged]) {
    public::judge(cx, batch);
    for (_, judge) in ON_BATCH {
        for judged in batch.iter_mut() {
            let (exchange, verdict) = &mut **judged;
            apply(cx, *judge, exchange, verdict);
            // One parsed body at a time.
            exchange.forget_json();
        }
    }
}

fn apply(cx: &Context<'_>, judge: Judge, exchange: &Exchange, verdict: &mut Verdict) {
    judge(exchange, cx, verdict);
    for flag in std::mem::take(&mut verdict.flags) {
        verdict.failed |= flag.kind == FindingKind::Expectation;
        if let Some((evidence, _)) = &flag.evidence {
            verdict.leaked.push(evidence.victim);
        }
        cx.sink.record(finding(cx, exchange, flag));
    }
}

/// The finding a flag stands for: who saw it, where, the redacted exchange
/// and the observer's recent trace.
pub fn finding(cx: &Context<'_>, exchange: &Exchange, flag: Flag) -> Finding {
    let mut common = common(cx, exchange.observer, exchange.step, &flag);
    if exchange.probe_of.is_some() {
        // Probes of a step share a bucket, apart from the step's own findings.
        common.step = format!("probe: {}", common.step);
    }
    let curl = crate::request::curl(&exchange.request, cx.redactor);
    let Some((evidence, also)) = flag.evidence else {
        let excerpt = body_excerpt(cx.redactor, &exchange.response.body);
        return Finding {
            exchange: redacted(cx.redactor, exchange, &excerpt),
            curl,
            ..common
        };
    };
    Finding {
        victim: Some(cx.world.label(evidence.victim).to_string()),
        marker: Some(evidence.what),
        location: evidence.location,
        location_pattern: evidence.location_pattern,
        also,
        exchange: redacted(cx.redactor, exchange, &evidence.excerpt),
        curl,
        ..common
    }
}

/// A finding about a step with no response to judge: it was never sent
/// (skipped), or its request got no answer (transport error).
pub fn unanswered(
    cx: &Context<'_>,
    observer: InstanceId,
    step: StepRef,
    request: Option<&Request>,
    flag: Flag,
) -> Finding {
    with_request(cx, common(cx, observer, step, &flag), request)
}

/// A finding about a step sent once, by no instance (`[[setup]]`).
pub fn about_once(
    cx: &Context<'_>,
    step: &PlanStep,
    request: Option<&Request>,
    flag: Flag,
) -> Finding {
    let finding = base(cx, step, "the scenario's setup".into(), Vec::new(), &flag);
    with_request(cx, finding, request)
}

/// `common` with the request that was (or was to be) sent.
fn with_request(cx: &Context<'_>, common: Finding, request: Option<&Request>) -> Finding {
    let Some(request) = request else {
        return common;
    };
    Finding {
        exchange: RedactedExchange {
            method: request.method.to_string(),
            path: cx.redactor.redact(&request.path),
            request_body: body_excerpt(cx.redactor, &request.body),
            ..common.exchange.clone()
        },
        curl: crate::request::curl(request, cx.redactor),
        ..common
    }
}

/// What every finding says: the run, the step, who saw it, the flag's
/// summary (redacted) and location, and the observer's recent trace; the
/// step's endpoint as the exchange, with no evidence and no response.
fn common(cx: &Context<'_>, observer: InstanceId, step: StepRef, flag: &Flag) -> Finding {
    let world = cx.world;
    let (label, trace) = (
        world.label(observer),
        world.recent_trace(observer, cx.redactor),
    );
    base(cx, world.plan().step(step), label.to_string(), trace, flag)
}

fn base(
    cx: &Context<'_>,
    plan_step: &PlanStep,
    observer: String,
    trace: Vec<String>,
    flag: &Flag,
) -> Finding {
    let world = cx.world;
    Finding {
        kind: flag.kind,
        run_id: world.run_id.clone(),
        seed: world.seed,
        scenario: world.plan().scenario.clone(),
        step: plan_step.name.clone(),
        endpoint: plan_step.endpoint(),
        observer,
        victim: flag
            .tampered
            .as_ref()
            .map(|(v, _)| world.label(*v).to_string()),
        witnessed: flag.tampered.as_ref().map(|(_, w)| w.clone()),
        marker: None,
        location: flag.location.clone(),
        location_pattern: flag.location.clone(),
        also: Vec::new(),
        summary: cx.redactor.redact(&flag.summary),
        exchange: RedactedExchange {
            method: plan_step.method.to_string(),
            path: plan_step.path.pattern(),
            request_body: String::new(),
            status: 0,
            response_headers: Vec::new(),
            response_excerpt: String::new(),
        },
        trace,
        curl: String::new(),
    }
}

fn redacted(redactor: &Redactor, exchange: &Exchange, excerpt: &str) -> RedactedExchange {
    let (request, response) = (&exchange.request, &exchange.response);
    let redact = |text: &str| redactor.redact(text);
    RedactedExchange {
        method: request.method.to_string(),
        path: redact(&request.path),
        request_body: body_excerpt(redactor, &request.body),
        status: response.status,
        response_headers: response
            .header_pairs()
            .map(|(n, v)| {
                let value = if is_credential_header(n) {
                    REDACTED.to_string()
                } else {
                    redact(&v)
                };
                (n.to_string(), value)
            })
            .collect(),
        response_excerpt: redact(excerpt),
    }
}

/// The start of a body as findings show it: secrets and credential fields
/// redacted, at most 500 characters.
pub fn body_excerpt(redactor: &Redactor, body: &[u8]) -> String {
    let head = &body[..body.len().min(64 << 10)];
    truncate(&redactor.redact_body(&String::from_utf8_lossy(head)), 500)
}

/// At most `max` characters of `text`, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}…")
}

/// A JSON value as text: strings without quotes.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
