//! The executor: runs a plan's instances against a transport.
//!
//! Steps run in file order. Each step is sent by every instance of its actor
//! concurrently (bounded in flight), and the next step starts when all have
//! answered: the lockstep makes runs reproducible while still putting many
//! identical requests in flight at once, which is where races live. Every
//! response goes through the oracle; captures feed the ledger; grants follow
//! what the API was actually asked to do. Teardown steps run for every
//! instance at the end, also after a Ctrl-C.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::canary::{self, mix};
use crate::findings::{Exchange, Finding, FindingKind, FindingSink};
use crate::ledger::{Instance, InstanceId, Kind, Ledger};
use crate::oracle::{Evidence, Marker, Oracle, siblings_at};
use crate::plan::{Body, CaptureSource, Credentials, Plan, PlanStep};
use crate::safety::{REDACTED, Redactor, is_credential_header};
use crate::template::{Expr, Resolve, Unresolved};
use crate::transport::{Request, Response, Transport};

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
    pub cancel: CancellationToken,
    /// Counts requests for a progress line.
    pub progress: Option<indicatif::ProgressBar>,
    /// Keep each request's headers, body and captures in the order log
    /// (for reproduction scripts; credentials included, so never written as is).
    pub record: bool,
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
            cancel: CancellationToken::new(),
            progress: None,
            record: false,
        }
    }
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
#[derive(Debug, Default, Clone, Serialize)]
pub struct RunStats {
    pub scenario: String,
    pub instances: usize,
    pub requests: u64,
    /// Step runs skipped because a value they needed was never captured.
    pub skipped: u64,
    pub transport_errors: u64,
    pub elapsed: Duration,
    pub interrupted: bool,
    #[serde(skip)]
    pub order: Vec<Issued>,
}

#[derive(Default)]
struct InstanceState {
    vars: HashMap<String, Value>,
    cookies: BTreeMap<String, String>,
    trace: Vec<String>,
}

/// A plan bound to a target, its ledger and its findings.
pub struct Executor {
    plan: Arc<Plan>,
    transport: Arc<dyn Transport>,
    ledger: Arc<Ledger>,
    oracle: Oracle,
    sink: Arc<FindingSink>,
    redactor: Arc<Redactor>,
    options: RunOptions,
    states: Vec<Mutex<InstanceState>>,
    role_offsets: Vec<usize>,
    seq: AtomicU64,
    requests: AtomicU64,
    skipped: AtomicU64,
    transport_errors: AtomicU64,
    order: Mutex<Vec<Issued>>,
    semaphore: Semaphore,
    contracts: crate::contract::Observed,
}

/// First names and surnames for generated identities.
const FIRST: &[&str] = &[
    "Ada", "Ben", "Chloe", "Dev", "Elif", "Femi", "Grace", "Hugo", "Iris", "Jonas", "Kofi", "Lena",
    "Mo", "Nia", "Omar", "Priya",
];
const LAST: &[&str] = &[
    "Adeyemi", "Brown", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jensen",
    "Khan", "Lopez", "Murphy", "Novak", "Okoro", "Patel",
];

impl Executor {
    pub fn new(
        plan: Arc<Plan>,
        transport: Arc<dyn Transport>,
        sink: Arc<FindingSink>,
        redactor: Arc<Redactor>,
        options: RunOptions,
    ) -> Arc<Self> {
        let mut instances = Vec::new();
        let mut role_offsets = Vec::new();
        for (r, role) in plan.roles.iter().enumerate() {
            role_offsets.push(instances.len());
            for index in 0..role.count {
                let global = instances.len() as u64;
                instances.push(Instance {
                    role: r,
                    index,
                    label: format!("{}#{index}", role.name),
                    canary: canary::canary(&options.run_id, options.nonce, global),
                });
            }
        }
        let ledger = Arc::new(Ledger::new(instances));
        let oracle = Oracle::new(&ledger);
        let states = (0..ledger.instances().len())
            .map(|_| Mutex::default())
            .collect();
        Arc::new(Self {
            semaphore: Semaphore::new(options.concurrency.max(1)),
            plan,
            transport,
            ledger,
            oracle,
            sink,
            redactor,
            options,
            states,
            role_offsets,
            seq: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            transport_errors: AtomicU64::new(0),
            order: Mutex::default(),
            contracts: crate::contract::Observed::default(),
        })
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The response contracts seen so far, per step.
    pub fn contracts(&self) -> &crate::contract::Observed {
        &self.contracts
    }

    /// Runs every step for every instance, then the teardown.
    pub async fn run(self: &Arc<Self>) -> RunStats {
        let started = Instant::now();
        let mut interrupted = false;
        let flow: Vec<StepRef> = (0..self.plan.steps.len()).map(StepRef::Flow).collect();
        for batch in self.batches(&flow) {
            if self.options.cancel.is_cancelled() {
                interrupted = true;
                break;
            }
            self.run_batch(batch).await;
        }
        interrupted |= self.options.cancel.is_cancelled();
        let teardown: Vec<StepRef> = (0..self.plan.teardown.len())
            .map(StepRef::Teardown)
            .collect();
        for batch in self.batches(&teardown) {
            self.run_batch(batch).await;
        }
        RunStats {
            scenario: self.plan.scenario.clone(),
            instances: self.ledger.instances().len(),
            requests: self.requests.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            transport_errors: self.transport_errors.load(Ordering::Relaxed),
            elapsed: started.elapsed(),
            interrupted,
            order: std::mem::take(&mut *self.order.lock().unwrap_or_else(|p| p.into_inner())),
        }
    }

    /// Steps grouped so that each `concurrent` step joins the one before it.
    fn batches(&self, steps: &[StepRef]) -> Vec<Vec<StepRef>> {
        let mut batches: Vec<Vec<StepRef>> = Vec::new();
        for step in steps {
            match batches.last_mut() {
                Some(batch) if self.step(*step).concurrent => batch.push(*step),
                _ => batches.push(vec![*step]),
            }
        }
        batches
    }

    /// Sends every step of the batch, for each of its instances, at once.
    async fn run_batch(self: &Arc<Self>, batch: Vec<StepRef>) {
        let mut tasks = tokio::task::JoinSet::new();
        for step in batch {
            let plan_step = self.step(step);
            let first = self.role_offsets[plan_step.role];
            let senders: Vec<InstanceId> = match plan_step.instance {
                Some(index) => vec![first + index],
                None => (first..first + self.plan.roles[plan_step.role].count).collect(),
            };
            for instance in senders {
                let this = Arc::clone(self);
                tasks.spawn(async move {
                    let _permit = this
                        .semaphore
                        .acquire()
                        .await
                        .expect("the semaphore is never closed");
                    // Teardown runs even after a Ctrl-C; the flow stops.
                    if matches!(step, StepRef::Flow(_)) && this.options.cancel.is_cancelled() {
                        return None;
                    }
                    this.execute(instance, step).await
                });
            }
        }
        let mut answered = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok(Some(sent)) = joined {
                answered.push(sent);
            }
        }
        for sent in &answered {
            self.check_leaks(sent);
        }
    }

    fn step(&self, step: StepRef) -> &PlanStep {
        match step {
            StepRef::Flow(i) => &self.plan.steps[i],
            StepRef::Teardown(i) => &self.plan.teardown[i],
        }
    }

    /// Sends `step` as `instance`, judges the response and records captures;
    /// returns the exchange for the oracle, if there was one.
    async fn execute(&self, instance: InstanceId, step_ref: StepRef) -> Option<Sent> {
        let step = self.step(step_ref);
        let vars = self.lock(instance).vars.clone();
        let resolver = InstanceResolver::new(self, instance, step_ref.key(), &vars);
        // Whose credentials go out: that identity is who the server answers.
        let identity = match step.credentials {
            Credentials::Own => Some(instance),
            Credentials::Anonymous => None,
            Credentials::Of(role, index) => Some(self.role_offsets[role] + index),
        };
        let (request, credential_sent) = match self.build_request(step, &resolver, identity) {
            Ok(built) => built,
            Err(_) => {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        // The response is seen by whoever's credential went out; a borrowed
        // identity with no credential yet leaves the sender anonymous.
        let observer = match identity {
            Some(id) if credential_sent => id,
            _ => instance,
        };
        // What a response to borrowed or missing credentials holds cannot be
        // attributed (a login answers for the body's account, not the
        // header's): nothing from it is captured or granted.
        let attribution = match step.credentials {
            Credentials::Own => Attribution::Full,
            Credentials::Of(..) if credential_sent => Attribution::GrantsOnly,
            _ => Attribution::None,
        };
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let result = self.transport.send(request.clone()).await;
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(progress) = &self.options.progress {
            progress.inc(1);
        }
        let (status, captures) = match &result {
            Ok(response) => (
                Some(response.status),
                self.judge(observer, step_ref, &request, response, attribution),
            ),
            Err(err) => {
                self.transport_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("{} {}: {err}", request.method, request.path);
                let line = format!(
                    "{}: {} {} → no response",
                    step.name, request.method, request.path
                );
                self.lock(observer).trace.push(line);
                (None, Vec::new())
            }
        };
        let exchange = self.options.record.then(|| Recorded {
            headers: request.headers.clone(),
            body: String::from_utf8_lossy(&request.body).into_owned(),
            captures,
            captured_by: self.ledger.instance(observer).label.clone(),
        });
        self.order
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Issued {
                seq,
                scenario: self.plan.scenario.clone(),
                instance: self.ledger.instance(instance).label.clone(),
                step: step.name.clone(),
                method: request.method.to_string(),
                path: self.redactor.redact(&request.path),
                status,
                exchange,
            });
        result.ok().map(|response| Sent {
            observer,
            step: step_ref,
            request,
            response,
        })
    }

    fn lock(&self, instance: InstanceId) -> std::sync::MutexGuard<'_, InstanceState> {
        self.states[instance]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn build_request(
        &self,
        step: &PlanStep,
        resolver: &InstanceResolver<'_>,
        identity: Option<InstanceId>,
    ) -> Result<(Request, bool), Unresolved> {
        let path = step.path.render(resolver)?;
        let mut headers = Vec::new();
        let Some(identity) = identity else {
            return Ok((self.finish_request(step, resolver, path, headers)?, false));
        };
        let role = &self.plan.roles[self.ledger.instance(identity).role];
        if let Some((name, template)) = &role.auth.header {
            let vars = self.lock(identity).vars.clone();
            let as_identity = InstanceResolver::new(self, identity, resolver.step_key, &vars);
            // Before the credential is captured (sign-up, login) there is none to send.
            if let Ok(value) = template.render(&as_identity) {
                self.redactor
                    .add(value.strip_prefix("Bearer ").unwrap_or(&value));
                headers.push((name.clone(), value));
            }
        }
        if role.auth.cookies {
            let state = self.lock(identity);
            if !state.cookies.is_empty() {
                let jar: Vec<String> = state
                    .cookies
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                headers.push(("cookie".into(), jar.join("; ")));
            }
        }
        let credential_sent = !headers.is_empty();
        Ok((
            self.finish_request(step, resolver, path, headers)?,
            credential_sent,
        ))
    }

    /// Adds the step's own headers and body.
    fn finish_request(
        &self,
        step: &PlanStep,
        resolver: &InstanceResolver<'_>,
        path: String,
        mut headers: Vec<(String, String)>,
    ) -> Result<Request, Unresolved> {
        for (name, template) in &step.headers {
            headers.push((name.clone(), template.render(resolver)?));
        }
        let body = match &step.body {
            Some(body) => {
                headers.push(("content-type".into(), "application/json".into()));
                Bytes::from(
                    serde_json::to_vec(&render_body(body, resolver)?)
                        .expect("JSON values serialize"),
                )
            }
            None => Bytes::new(),
        };
        Ok(Request {
            method: step.method.clone(),
            path,
            headers,
            body,
        })
    }

    fn judge(
        &self,
        instance: InstanceId,
        step_ref: StepRef,
        request: &Request,
        response: &Response,
        attribution: Attribution,
    ) -> Vec<(String, String, Option<String>)> {
        let step = self.step(step_ref);
        let seen = Seen {
            observer: instance,
            step,
            request,
            response,
        };
        self.contracts.record(
            &step.name,
            &step.endpoint(),
            response.status,
            response.header("content-type"),
            &response.body,
        );
        let role = &self.plan.roles[self.ledger.instance(instance).role];
        // A canary sent under someone else's identity may now be stored in
        // their records, where anyone they share with sees it: it no longer
        // proves anything.
        for victim in self.oracle.canaries_in(&request.path, &request.body) {
            if victim != instance {
                self.ledger.expose(victim);
            }
        }
        if role.auth.cookies {
            let mut state = self.lock(instance);
            for (name, value) in &response.headers {
                if name.eq_ignore_ascii_case("set-cookie")
                    && let Ok(cookie) = cookie::Cookie::parse(value.as_str())
                {
                    self.redactor.add(cookie.value());
                    let expired = cookie
                        .max_age()
                        .is_some_and(|age| age.is_zero() || age.is_negative());
                    if expired || cookie.value().is_empty() {
                        state.cookies.remove(cookie.name());
                    } else {
                        state
                            .cookies
                            .insert(cookie.name().to_string(), cookie.value().to_string());
                    }
                }
            }
        }

        if response.status >= 500 {
            let summary = format!(
                "{} answered {} to {} at step `{}`",
                step.endpoint(),
                response.status,
                self.ledger.instance(instance).label,
                step.name
            );
            self.flag(&seen, FindingKind::ServerError, "status", summary);
        }

        let json = response.json();
        let mut status_ok = true;
        if let Some(expected) = &step.expect.status
            && !expected.contains(&response.status)
        {
            status_ok = false;
            let want = expected
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or ");
            let summary = format!(
                "step `{}` expected status {want}, got {}",
                step.name, response.status
            );
            self.flag(&seen, FindingKind::Expectation, "status", summary);
        }
        if status_ok {
            for (text, path, expected) in &step.expect.json {
                let actual = json.as_ref().and_then(|j| path.query(j).first().cloned());
                if actual.as_ref() != Some(expected) {
                    let got = actual.map_or("nothing".to_string(), |v| v.to_string());
                    let summary = format!(
                        "step `{}` expected {text} to be {expected}, got {got}",
                        step.name
                    );
                    self.flag(
                        &seen,
                        FindingKind::Expectation,
                        &format!("body {text}"),
                        summary,
                    );
                }
            }
        }

        let mut captured = Vec::new();
        let mut recorded = Vec::new();
        for capture in &step.captures {
            let found = match &capture.source {
                CaptureSource::Json { path, .. } => json.as_ref().and_then(|j| {
                    path.query_located(j).first().map(|node| {
                        let pointer = node.location().to_json_pointer();
                        let (key, siblings) = siblings_at(j, &pointer);
                        (node.node().clone(), key, siblings)
                    })
                }),
                CaptureSource::Header(name) => response
                    .header(name)
                    .map(|v| (Value::String(v.to_string()), None, Vec::new())),
                CaptureSource::Cookie(name) => response
                    .headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
                    .filter_map(|(_, v)| cookie::Cookie::parse(v.as_str()).ok())
                    .find(|c| c.name() == name)
                    .map(|c| (Value::String(c.value().to_string()), None, Vec::new())),
            };
            match found {
                Some((value, key, siblings)) => {
                    let text = text_of(&value);
                    // A value from a borrowed identity's response is not
                    // stored: whose it is cannot be told.
                    if capture.secret {
                        self.redactor.add(&text);
                    } else if attribution == Attribution::Full && !text.is_empty() {
                        let kind = Kind {
                            var: capture.var.clone(),
                            key,
                            siblings,
                        };
                        self.ledger.capture(instance, text, kind, capture.shared);
                    }
                    let path = match &capture.source {
                        CaptureSource::Json { text, .. } => Some(text.clone()),
                        _ => None,
                    };
                    recorded.push((capture.var.clone(), text_of(&value), path));
                    captured.push((capture.var.clone(), value));
                }
                None if status_ok => {
                    let summary = format!(
                        "step `{}` could not capture `{}`: the response has no such value",
                        step.name, capture.var
                    );
                    let location = format!("capture {}", capture.var);
                    self.flag(&seen, FindingKind::Expectation, &location, summary);
                }
                None => {}
            }
        }

        let mut vars = self.lock(instance).vars.clone();
        vars.extend(captured.iter().cloned());
        if attribution == Attribution::Full {
            self.lock(instance).vars.extend(captured);
        }
        // A grant is rendered after the captures: it often names one of them.
        // It follows what the server did: it acted as the credential's owner.
        if let Some(template) = &step.grant_to
            && attribution != Attribution::None
            && (200..300).contains(&response.status)
        {
            let resolver = InstanceResolver::new(self, instance, step_ref.key(), &vars);
            if let Ok(value) = template.render(&resolver)
                && let Some(viewer) = self.ledger.first_capturer(&value)
                && viewer != instance
            {
                self.ledger.grant(viewer, instance);
            }
        }

        let mut state = self.lock(instance);
        let trace_line = format!(
            "{}: {} {} → {}",
            step.name,
            request.method,
            self.redactor.redact(&request.path),
            response.status
        );
        state.trace.push(trace_line);
        recorded
    }

    /// The oracle's verdict on one response. Runs once the whole batch the
    /// request was sent in has answered, so that a grant made by a request
    /// sent at the same moment (a booking while the clinician lists) counts.
    fn check_leaks(&self, sent: &Sent) {
        let (instance, request, response) = (sent.observer, &sent.request, &sent.response);
        let seen = Seen {
            observer: instance,
            step: self.step(sent.step),
            request,
            response,
        };
        // One finding per victim per response, at its most telling location.
        let mut by_victim: BTreeMap<InstanceId, Vec<Evidence>> = BTreeMap::new();
        for evidence in self
            .oracle
            .inspect(&self.ledger, instance, request, response)
        {
            by_victim.entry(evidence.victim).or_default().push(evidence);
        }
        for (_, mut evidence) in by_victim {
            evidence.sort_by_key(Evidence::rank);
            let primary = evidence.remove(0);
            let also = evidence.into_iter().map(|e| e.location).collect();
            self.report_leak(&seen, primary, also);
        }
    }

    fn report_leak(&self, seen: &Seen<'_>, evidence: Evidence, also: Vec<String>) {
        let (observer, step) = (seen.observer, seen.step);
        let victim = self.ledger.instance(evidence.victim).label.clone();
        let what = match &evidence.what {
            Marker::Canary { encoding } => format!(
                "canary ({})",
                serde_json::to_value(encoding)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            ),
            Marker::Identifier { var } => format!("`{var}`"),
        };
        let summary = format!(
            "{} received {victim}'s {what} in {} of {} at step `{}`",
            self.ledger.instance(observer).label,
            evidence.location,
            step.endpoint(),
            step.name
        );
        let location = evidence.location.clone();
        self.report(
            seen,
            FindingKind::Leak,
            Some((evidence, also)),
            &location,
            summary,
        );
    }

    /// A finding without leak evidence: a 5xx or an unmet expectation.
    fn flag(&self, seen: &Seen<'_>, kind: FindingKind, location: &str, summary: String) {
        self.report(seen, kind, None, location, summary);
    }

    fn report(
        &self,
        seen: &Seen<'_>,
        kind: FindingKind,
        evidence: Option<(Evidence, Vec<String>)>,
        location: &str,
        summary: String,
    ) {
        let Seen {
            observer,
            step,
            request,
            response,
        } = *seen;
        let victim = evidence
            .as_ref()
            .map(|(e, _)| self.ledger.instance(e.victim).label.clone());
        let redact = |text: &str| self.redactor.redact(text);
        let excerpt = match &evidence {
            Some((e, _)) => e.excerpt.clone(),
            None => truncate(&String::from_utf8_lossy(&response.body), 500),
        };
        let (location, location_pattern, marker, also) = match evidence {
            Some((e, also)) => (e.location, e.location_pattern, Some(e.what), also),
            None => (location.to_string(), location.to_string(), None, Vec::new()),
        };
        let trace = self
            .lock(observer)
            .trace
            .iter()
            .rev()
            .take(20)
            .rev()
            .cloned()
            .collect();
        let finding = Finding {
            kind,
            run_id: self.options.run_id.clone(),
            seed: self.options.seed,
            scenario: self.plan.scenario.clone(),
            step: step.name.clone(),
            endpoint: step.endpoint(),
            observer: self.ledger.instance(observer).label.clone(),
            victim,
            marker,
            location,
            also,
            location_pattern,
            summary: redact(&summary),
            exchange: Exchange {
                method: request.method.to_string(),
                path: redact(&request.path),
                request_body: redact(&truncate(&String::from_utf8_lossy(&request.body), 500)),
                status: response.status,
                response_headers: response
                    .headers
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.clone(),
                            if is_credential_header(n) {
                                REDACTED.to_string()
                            } else {
                                redact(v)
                            },
                        )
                    })
                    .collect(),
                response_excerpt: redact(&excerpt),
            },
            trace,
        };
        self.sink.record(finding);
    }

    /// The instance of `role` that a step of `instance` picks, among those
    /// that have `var`; never `instance` itself when `exclude_self`.
    fn pick(
        &self,
        instance: InstanceId,
        step_key: u64,
        role: usize,
        var: &str,
        exclude_self: bool,
    ) -> Option<InstanceId> {
        let count = self.plan.roles[role].count;
        let first = self.role_offsets[role];
        let start = (mix(self.options.seed, &[instance as u64, step_key, role as u64])
            % count as u64) as usize;
        (0..count)
            .map(|i| first + (start + i) % count)
            .filter(|candidate| !(exclude_self && *candidate == instance))
            .find(|candidate| self.lock(*candidate).vars.contains_key(var))
    }

    fn builtin(&self, instance: InstanceId, step_key: u64, name: &str) -> Option<Value> {
        let me = self.ledger.instance(instance);
        let seed = self.options.seed;
        let person = |who: u64| {
            let h = mix(seed, &[0x9e, me.role as u64, who]);
            let name = format!(
                "{} {}",
                FIRST[(h % 16) as usize],
                LAST[((h >> 8) % 16) as usize]
            );
            let day =
                jiff::civil::date(1940, 1, 1) + jiff::Span::new().days(((h >> 16) % 25_000) as i64);
            (name, day.to_string())
        };
        let value = match name {
            "canary" => Value::String(me.canary.clone()),
            "run_id" => Value::String(self.options.run_id.clone()),
            "instance" => Value::String(format!("{}-{}", self.plan.roles[me.role].name, me.index)),
            "index" => Value::from(me.index),
            "number" => Value::from(me.index + 1),
            "name" => Value::String(person(me.index as u64).0),
            "date_of_birth" => Value::String(person(me.index as u64).1),
            "twin.name" => Value::String(person(1_000_000 + me.index as u64 / 2).0),
            "twin.date_of_birth" => Value::String(person(1_000_000 + me.index as u64 / 2).1),
            "twin.email" => {
                let local = format!(
                    "twin-{}-{}-{}",
                    self.options.run_id,
                    self.plan.roles[me.role].name,
                    me.index / 2
                );
                let local = if me.index % 2 == 1 {
                    local.to_ascii_uppercase()
                } else {
                    local
                };
                Value::String(format!("{local}@example.test"))
            }
            "unique_time" => {
                // Distinct per instance and step, on a 5-minute grid, years ahead.
                let base = jiff::Timestamp::from_second(1_924_992_000)
                    .expect("2031-01-01 is a valid time")
                    + jiff::SignedDuration::from_hours(
                        24 * (mix(self.options.nonce, &[0x71]) % 3650) as i64,
                    );
                let slot = instance as i64 * 64 + step_key as i64 % 64;
                Value::String((base + jiff::SignedDuration::from_mins(5 * slot)).to_string())
            }
            _ => return None,
        };
        Some(value)
    }
}

/// One answered request, as findings describe it.
#[derive(Clone, Copy)]
struct Seen<'a> {
    observer: InstanceId,
    step: &'a PlanStep,
    request: &'a Request,
    response: &'a Response,
}

/// A request and its response, waiting for the oracle.
struct Sent {
    observer: InstanceId,
    step: StepRef,
    request: Request,
    response: Response,
}

/// What a response may be attributed to its observer for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attribution {
    /// The observer's own request: captures and grants.
    Full,
    /// Sent with another's credential: the server acted as that identity
    /// (grants follow), but captured values may belong to the body's owner.
    GrantsOnly,
    /// Anonymous: nothing follows.
    None,
}

/// Which step: of the flow, or of the teardown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepRef {
    Flow(usize),
    Teardown(usize),
}

impl StepRef {
    fn key(self) -> u64 {
        match self {
            StepRef::Flow(i) => i as u64,
            StepRef::Teardown(i) => 32 + i as u64,
        }
    }
}

struct InstanceResolver<'a> {
    executor: &'a Executor,
    instance: InstanceId,
    step_key: u64,
    vars: &'a HashMap<String, Value>,
    /// One pick per role per step, so `peer.a` and `peer.b` come from the same peer.
    picks: Mutex<HashMap<usize, InstanceId>>,
}

impl<'a> InstanceResolver<'a> {
    fn new(
        executor: &'a Executor,
        instance: InstanceId,
        step_key: u64,
        vars: &'a HashMap<String, Value>,
    ) -> Self {
        Self {
            executor,
            instance,
            step_key,
            vars,
            picks: Mutex::default(),
        }
    }

    fn picked(&self, role: usize, var: &str, exclude_self: bool) -> Result<Value, Unresolved> {
        let ex = self.executor;
        let cached = self
            .picks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&role)
            .copied();
        let from_cache = cached.and_then(|id| ex.lock(id).vars.get(var).cloned());
        if let Some(value) = from_cache {
            return Ok(value);
        }
        let chosen = ex
            .pick(self.instance, self.step_key, role, var, exclude_self)
            .ok_or_else(|| Unresolved {
                expr: var.to_string(),
                reason: format!(
                    "no {}instance of `{}` has captured it",
                    if exclude_self { "other " } else { "" },
                    ex.plan.roles[role].name
                ),
            })?;
        self.picks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(role)
            .or_insert(chosen);
        Ok(ex
            .lock(chosen)
            .vars
            .get(var)
            .cloned()
            .expect("the pick has the variable"))
    }
}

impl Resolve for InstanceResolver<'_> {
    fn resolve(&self, expr: &Expr) -> Result<Value, Unresolved> {
        let ex = self.executor;
        let missing = |reason: &str| Unresolved {
            expr: expr.to_string(),
            reason: reason.to_string(),
        };
        match expr {
            Expr::Var(name) => self
                .vars
                .get(name)
                .cloned()
                .or_else(|| ex.plan.vars.get(name).cloned())
                .or_else(|| ex.builtin(self.instance, self.step_key, name))
                .ok_or_else(|| missing("not captured by this instance")),
            Expr::Env(name) => std::env::var(name)
                .map(Value::String)
                .map_err(|_| missing("environment variable not set")),
            Expr::Pick { role, var } => {
                let role = ex.plan.role(role).ok_or_else(|| missing("unknown actor"))?;
                self.picked(role, var, false)
            }
            Expr::Peer(var) => {
                let role = ex.ledger.instance(self.instance).role;
                self.picked(role, var, true)
            }
            Expr::Of { role, index, var } => {
                let role = ex.plan.role(role).ok_or_else(|| missing("unknown actor"))?;
                let id = ex.role_offsets[role] + index;
                ex.lock(id)
                    .vars
                    .get(var)
                    .cloned()
                    .ok_or_else(|| missing("not captured by that instance"))
            }
        }
    }
}

fn render_body(body: &Body, resolver: &InstanceResolver<'_>) -> Result<Value, Unresolved> {
    Ok(match body {
        Body::Literal(value) => value.clone(),
        Body::Text(template) => match template.sole_expr() {
            Some(expr) => resolver.resolve(expr)?,
            None => Value::String(template.render(resolver)?),
        },
        Body::Array(items) => Value::Array(
            items
                .iter()
                .map(|b| render_body(b, resolver))
                .collect::<Result<_, _>>()?,
        ),
        Body::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, b)| Ok((k.clone(), render_body(b, resolver)?)))
                .collect::<Result<_, Unresolved>>()?,
        ),
    })
}

/// A JSON value as text: strings without quotes.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}…")
}
