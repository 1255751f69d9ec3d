//! The witness at work: the executor reads a victim before a foreign write,
//! after its batch, and once more at the end of the flow, and records what
//! the [witness](crate::witness) concludes. Its requests go out through
//! [`Executor::resend`], each logged in the run's order as `witness before:
//! <step>`, `witness after: <step>` or `witness login …`, so a
//! reproduction replays them too. The witness itself sends nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;

use crate::executor::Executor;
use crate::findings::{FindingKind, Witnessed};
use crate::judge::{self, Exchange, Flag};
use crate::plan::StepRef;
use crate::transport::Response;
use crate::witness::{self, Baseline, Change, ForeignWrite, Snapshot, WriteVerdict, step_stem};
use crate::world::InstanceId;

/// Cleared writes kept for the end of the flow at most.
const MAX_PENDING: usize = 1_000;

/// A cleared 2xx write, to look at once more at the end of the flow.
pub struct Pending {
    victim: InstanceId,
    baseline: Arc<Baseline>,
    write: Aimed,
}

/// A write that named other instances' data and went out.
pub struct Aimed {
    pub exchange: Exchange,
    /// The identity the server acted as; `None`: no credential went out.
    pub writer: Option<InstanceId>,
    /// Whose data it named that the writer may not see.
    pub victims: Vec<InstanceId>,
}

/// What the witness saw of one victim after a batch.
struct Seen {
    changes: Vec<(StepRef, Change)>,
    /// The login step and the status it answered, when it stopped working.
    lockout: Option<(StepRef, u16)>,
    /// The owner or someone it granted wrote since the baseline.
    ambiguous: bool,
}

impl Seen {
    fn anything(&self) -> bool {
        !self.changes.is_empty() || self.lockout.is_some()
    }
}

/// Before a write naming `victims` goes out: each victim's state, once per
/// batch (the first write aimed at it reads it; the others wait for that).
pub async fn before_write(ex: &Executor, victims: &[InstanceId]) {
    for &victim in victims {
        let Some(turn) = ex.witness().turn(victim) else {
            continue;
        };
        let _turn = turn.lock().await;
        let batch = ex.batch_number();
        if ex
            .witness()
            .baseline(victim)
            .is_some_and(|b| b.batch == batch)
        {
            continue;
        }
        let baseline = read_baseline(ex, victim, batch).await;
        ex.witness().set_baseline(victim, baseline);
    }
}

/// Whether the victim's login works (tried first: a fresh session it
/// hands back is what the reads go out with, before and after), then its
/// own reads, each twice (what differs between the two is volatile). A
/// read the owner cannot make now (not 2xx) protects nothing and is left
/// out.
async fn read_baseline(ex: &Executor, victim: InstanceId, batch: u64) -> Baseline {
    let witness = ex.witness();
    let touched = witness.touched(victim);
    let (steps, login) = witness.reads_of(victim);
    let login = match login {
        Some(step) => ex
            .resend(victim, step, "witness login before")
            .await
            .map(|answer| (step, login_works(ex, victim, step, &answer))),
        None => None,
    };
    let mut reads = Vec::new();
    for step in steps {
        let Some(first) = ex.resend(victim, step, "witness before").await else {
            continue;
        };
        let Some(second) = ex.resend(victim, step, "witness before").await else {
            continue;
        };
        let (first, second) = (Snapshot::of(&first), Snapshot::of(&second));
        if witness.touched(victim) == touched {
            witness.learn(ex.world().plan().step(step), &first, &second);
        }
        if ok(first.status) && ok(second.status) {
            reads.push((step, second));
        }
    }
    Baseline {
        batch,
        touched,
        reads,
        login,
    }
}

pub(super) fn ok(status: u16) -> bool {
    (200..300).contains(&status)
}

/// Whether the victim's login worked: a 2xx that also meets what the
/// login step expects (an API may answer a failed login `200
/// {"status":"fail"}`; the step's `json` says what success looks like).
fn login_works(ex: &Executor, victim: InstanceId, step: StepRef, answer: &Response) -> bool {
    if !ok(answer.status) {
        return false;
    }
    let world = ex.world();
    let expect = &world.plan().step(step).expect;
    let vars = world.state(victim).vars.clone();
    let resolver = crate::resolver::Resolver::new(world, victim, step.key(), &vars);
    let mut render = |body: &_| crate::request::render_body(body, &resolver);
    let json = answer.json();
    judge::expect::failures(expect, answer, json.as_ref(), &mut render, &|_| false).is_empty()
}

/// Once the batch has answered: each victim's state again, compared with
/// its baseline; a change the owner did not make is a `tamper` finding.
/// `accepted` counts the batch's writes answered 2xx, aimed at anyone.
pub async fn after_batch(ex: &Executor, aimed: &[Aimed], accepted: usize) {
    // Each victim with the writes aimed at it, in one pass (a lockstep
    // batch aims thousands of writes at thousands of victims).
    let mut victims: BTreeMap<InstanceId, Vec<&Aimed>> = BTreeMap::new();
    for write in aimed {
        for victim in &write.victims {
            victims.entry(*victim).or_default().push(write);
        }
    }
    // Victims are read at the same time, as many as the run keeps in
    // flight (one at a time, the target and the harness mostly waited on
    // each other); each victim's own reads stay in order. Filled by hand:
    // `buffered` over a mapped iterator of futures is not `Send` enough
    // for the fuzzer's tasks.
    let batch = ex.batch_number();
    let mut victims = victims.into_iter();
    let mut looking = FuturesOrdered::new();
    loop {
        while looking.len() < ex.concurrency()
            && let Some((victim, writes)) = victims.next()
        {
            looking.push_back(look_after(ex, victim, writes, batch));
        }
        let Some((victim, writes, looked)) = looking.next().await else {
            break;
        };
        ex.witness().watching(writes.len());
        let Some((baseline, seen)) = looked else {
            let reason = "the witness knows no read of the owner's own to compare";
            conclude(ex, victim, &writes, WriteVerdict::Unconfirmed, reason);
            continue;
        };
        if !seen.anything() {
            conclude(
                ex,
                victim,
                &writes,
                WriteVerdict::Cleared,
                "the owner's reads show no change",
            );
            wait_for_late(ex, victim, baseline, &writes);
        } else if seen.ambiguous {
            let reason = "the owner, or someone it granted, wrote at the same moment";
            conclude(ex, victim, &writes, WriteVerdict::Unconfirmed, reason);
        } else {
            blame(ex, victim, &writes, &seen, accepted);
        }
    }
}

/// The owner's data changed and neither it nor anyone it granted wrote:
/// the witness says which writes to blame (see [`witness::blame`]).
fn blame(ex: &Executor, victim: InstanceId, writes: &[&Aimed], seen: &Seen, accepted: usize) {
    let answered: Vec<(InstanceId, u16)> = (writes.iter())
        .map(|w| (w.exchange.sender, w.exchange.response.status))
        .collect();
    let blamed = witness::blame(&answered, accepted);
    let culprits: Vec<&Aimed> = blamed.culprits.iter().map(|i| writes[*i]).collect();
    if culprits.is_empty() {
        conclude(ex, victim, writes, blamed.verdict, blamed.reason);
        return;
    }
    conclude(ex, victim, &culprits, blamed.verdict, blamed.reason);
    tampered(ex, victim, &culprits, writes.len(), seen);
}

/// The victim's baseline of this batch, and what the witness sees against
/// it; `None` when there is nothing to compare with.
async fn look_after<'a>(
    ex: &Executor,
    victim: InstanceId,
    writes: Vec<&'a Aimed>,
    batch: u64,
) -> (InstanceId, Vec<&'a Aimed>, Option<(Arc<Baseline>, Seen)>) {
    let baseline = (ex.witness().baseline(victim))
        .filter(|b| b.batch == batch && (!b.reads.is_empty() || b.login.is_some()));
    let Some(baseline) = baseline else {
        return (victim, writes, None);
    };
    let seen = look(ex, victim, &baseline).await;
    (victim, writes, Some((baseline, seen)))
}

/// Reads the victim again and compares: a change must show twice (a third
/// read drops what changes on its own).
async fn look(ex: &Executor, victim: InstanceId, baseline: &Baseline) -> Seen {
    let witness = ex.witness();
    let plan = ex.world().plan();
    let mut changes = Vec::new();
    for (step, before) in &baseline.reads {
        let Some(after) = read_again(ex, victim, *step, baseline).await else {
            continue;
        };
        let mut found = witness.evidence(plan.step(*step), before, &after);
        // A value tied to a session (a CSRF token, a session id) is a
        // credential, renewed at every login: never data to compare.
        let redactor = ex.redactor();
        found.retain(|c| {
            redactor.redact(&c.before) == c.before && redactor.redact(&c.after) == c.after
        });
        if found.is_empty() {
            continue;
        }
        let Some(again) = read_again(ex, victim, *step, baseline).await else {
            continue;
        };
        let settled = witness.evidence(plan.step(*step), before, &again);
        changes.extend(
            found
                .into_iter()
                .filter(|c| settled.contains(c))
                .map(|c| (*step, c)),
        );
    }
    // The most telling first: a status, then fields of one record before
    // those of a list, a value that changed before one that appeared, and
    // a list's length last.
    changes.sort_by_key(|(_, c)| {
        let appeared = c.before == "null" || c.before == "absent";
        (c.path.matches('[').count(), c.path == "$", appeared)
    });
    let ambiguous = witness.touched(victim) != baseline.touched;
    let lockout = match baseline.login {
        Some((step, true)) => ex
            .resend(victim, step, "witness login after")
            .await
            .filter(|answer| !login_works(ex, victim, step, answer))
            .map(|answer| (step, answer.status)),
        _ => None,
    };
    Seen {
        changes,
        lockout,
        ambiguous,
    }
}

/// One of the owner's reads, sent again. A read refused (401 or 403) says
/// the session lapsed or was revoked, not what the data is: the owner logs
/// in again and reads once more (a login that now fails is the lockout
/// check's to judge); a read still refused, or with no login to renew it,
/// is no evidence.
async fn read_again(
    ex: &Executor,
    victim: InstanceId,
    step: StepRef,
    baseline: &Baseline,
) -> Option<Snapshot> {
    let refused = |status: u16| matches!(status, 401 | 403);
    let answer = ex.resend(victim, step, "witness after").await?;
    if !refused(answer.status) {
        return Some(Snapshot::of(&answer));
    }
    let (login, true) = baseline.login? else {
        return None;
    };
    let renewed = ex.resend(victim, login, "witness login again").await?;
    if !login_works(ex, victim, login, &renewed) {
        return None;
    }
    let answer = ex.resend(victim, step, "witness after").await?;
    (!refused(answer.status)).then(|| Snapshot::of(&answer))
}

/// Records each write's verdict in the report (2xx writes, and any write
/// that changed the victim's data).
fn conclude(
    ex: &Executor,
    victim: InstanceId,
    writes: &[&Aimed],
    verdict: WriteVerdict,
    reason: &str,
) {
    let world = ex.world();
    for write in writes {
        let (request, response) = (&write.exchange.request, &write.exchange.response);
        if !ok(response.status) && verdict != WriteVerdict::Confirmed {
            continue;
        }
        ex.witness().record(ForeignWrite {
            scenario: world.plan().scenario.clone(),
            step: world.plan().step(write.exchange.step).name.clone(),
            writer: writer_label(ex, write),
            victim: world.label(victim).to_string(),
            request: format!("{} {}", request.method, ex.redactor().redact(&request.path)),
            status: response.status,
            verdict,
            reason: reason.to_string(),
        });
    }
}

fn writer_label(ex: &Executor, write: &Aimed) -> String {
    match write.writer {
        Some(writer) => ex.world().label(writer).to_string(),
        None => format!(
            "{} (no credentials)",
            ex.world().label(write.exchange.sender)
        ),
    }
}

/// The `tamper` finding, at the first of the `culprits` (the writes that
/// may have made the change), naming the others.
fn tampered(ex: &Executor, victim: InstanceId, culprits: &[&Aimed], aimed: usize, seen: &Seen) {
    let Some(culprit) = culprits.first() else {
        return;
    };
    let cx = ex.context();
    let mut flag = tamper_flag(ex, victim, culprit, aimed - 1, seen);
    let also: Vec<String> = (culprits[1..].iter())
        .filter(|w| w.exchange.sender != culprit.exchange.sender)
        .map(|w| writer_label(ex, w))
        .collect();
    if !also.is_empty() {
        flag.summary = format!(
            "{}; {} also wrote to it and was accepted: which write made the change is not confirmed",
            flag.summary,
            also.join(", ")
        );
    }
    cx.sink.record(judge::finding(&cx, &culprit.exchange, flag));
}

fn tamper_flag(
    ex: &Executor,
    victim: InstanceId,
    write: &Aimed,
    others: usize,
    seen: &Seen,
) -> Flag {
    let world = ex.world();
    let plan = world.plan();
    let request = &write.exchange.request;
    let name = |step: StepRef| step_stem(&plan.step(step).name).to_string();
    let (location, witnessed, what) = match (&seen.lockout, seen.changes.first()) {
        (Some((login, status)), _) => (
            format!("login `{}`", name(*login)),
            Witnessed::Lockout {
                login: plan.step(*login).name.clone(),
                status: *status,
            },
            format!(
                "locked {} out: its login `{}` answered {status} where it worked just before",
                world.label(victim),
                name(*login)
            ),
        ),
        (None, Some((read, change))) => (
            format!("`{}` {}", name(*read), change.pattern),
            Witnessed::Change {
                read: plan.step(*read).name.clone(),
                path: change.path.clone(),
                before: change.before.clone(),
                after: change.after.clone(),
            },
            format!(
                "changed {}'s data: its `{}` read {} {} → {}",
                world.label(victim),
                name(*read),
                change.path,
                change.before,
                change.after
            ),
        ),
        (None, None) => unreachable!("a tamper finding needs something seen"),
    };
    let more = seen.changes.len().saturating_sub(1);
    let summary = format!(
        "{}'s {} {} (answered {}) {what}{}{}",
        writer_label(ex, write),
        request.method,
        ex.redactor().redact(&request.path),
        write.exchange.response.status,
        if more > 0 {
            format!(", and {more} more change(s)")
        } else {
            String::new()
        },
        if others > 0 {
            format!("; {others} other foreign write(s) to it at the same moment")
        } else {
            String::new()
        },
    );
    Flag {
        tampered: Some((victim, witnessed)),
        ..Flag::new(FindingKind::Tamper, location, summary)
    }
}

async fn look_again(ex: &Executor, pending: Pending) -> (Pending, Seen) {
    let seen = look(ex, pending.victim, &pending.baseline).await;
    (pending, seen)
}

/// At the end of the flow: victims of cleared writes read once more
/// against the same baseline, if nothing they or their grantees wrote
/// since (a server that applies writes late).
pub async fn end_of_flow(ex: &Executor) {
    let pending = std::mem::take(&mut *ex.pending.lock().unwrap_or_else(|p| p.into_inner()));
    let mut pending =
        (pending.into_iter()).filter(|p| ex.witness().touched(p.victim) == p.baseline.touched);
    let mut looking = FuturesOrdered::new();
    loop {
        while looking.len() < ex.concurrency()
            && let Some(one) = pending.next()
        {
            looking.push_back(look_again(ex, one));
        }
        let Some((pending, seen)) = looking.next().await else {
            break;
        };
        if seen.anything() && !seen.ambiguous {
            let cx = ex.context();
            let write = &pending.write;
            let flag = tamper_flag(ex, pending.victim, write, 0, &seen);
            let flag = Flag {
                summary: format!("{} (seen at the end of the flow)", flag.summary),
                ..flag
            };
            cx.sink.record(judge::finding(&cx, &write.exchange, flag));
        }
    }
}

/// A 2xx write aimed at `victim` changed nothing yet: look again at the
/// end of the flow.
fn wait_for_late(ex: &Executor, victim: InstanceId, baseline: Arc<Baseline>, writes: &[&Aimed]) {
    let Some(write) = writes.iter().find(|w| ok(w.exchange.response.status)) else {
        return;
    };
    let mut pending = ex.pending.lock().unwrap_or_else(|p| p.into_inner());
    if pending.len() >= MAX_PENDING {
        return;
    }
    let exchange = &write.exchange;
    let copy = Exchange::new(
        exchange.sender,
        exchange.observer,
        exchange.attribution,
        exchange.step,
        exchange.request.clone(),
        exchange.response.clone(),
    );
    pending.push(Pending {
        victim,
        baseline,
        write: Aimed {
            exchange: copy,
            writer: write.writer,
            victims: vec![victim],
        },
    });
}
