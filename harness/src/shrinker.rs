//! The shrinker: reduces a leaking program to a small one that still leaks
//! the same bucket, and writes it out as a scenario file crosstalk can run
//! (`crosstalk replay`) plus a curl script anyone can run.
//!
//! Delta debugging over operations (drop chunks, halving the chunk size
//! when nothing can go), then over mutations (each borrowed value, swapped
//! credential, flipped enum, set field and concurrent flag is dropped if the leak stays
//! without it), then over instances (each is folded into a lower-numbered one
//! of its actor). Every candidate runs from scratch, with fresh identities
//! in a ledger of its own against a fresh target (embedded) or new accounts
//! (remote), so the program kept holds every step it needs; a candidate
//! with concurrent operations must leak in three runs out of three, since
//! races are not certain. If even the original does not leak from scratch,
//! there is nothing to shrink: the finding is not confirmed.
//!
//! The program kept must also show the bucket the way `crosstalk replay`
//! will run it (from its file, with replay's number of attempts): a
//! shrunk race can race differently from the one confirmed, so the
//! smallest program that passes that check is kept, going back through
//! the ones shrinking accepted, down to the original.

use crate::fuzzer::{Identity, Program, Runner, Vocabulary, bucket};

/// Whether `program`, run from scratch, shows the bucket `key`. A program
/// with concurrent operations (a race) must show it three times out of
/// three in one of the two orders its simultaneous requests can go out in,
/// so that a reproduction of a race does not depend on luck.
pub async fn reproduces(runner: &Runner, vocab: &Vocabulary, program: &Program, key: &str) -> bool {
    if !program.ops.iter().any(|op| op.concurrent) {
        return shows(runner, vocab, program, key, false).await;
    }
    for reversed in [false, true] {
        let mut every = true;
        for _ in 0..3 {
            if !shows(runner, vocab, program, key, reversed).await {
                every = false;
                break;
            }
        }
        if every {
            return true;
        }
    }
    false
}

async fn shows(
    runner: &Runner,
    vocab: &Vocabulary,
    program: &Program,
    key: &str,
    reversed: bool,
) -> bool {
    let outcome = runner.run_alone(vocab, program, false, reversed).await;
    outcome.findings.iter().any(|f| bucket(f) == key)
}

/// When to stop shrinking, and when to stop checking what shrinking kept.
pub struct Limits<'a> {
    pub shrink: &'a (dyn Fn() -> bool + Sync),
    pub check: &'a (dyn Fn() -> bool + Sync),
}

/// The smallest program found that still shows the bucket `key` from
/// scratch and under `replay`, shrinking until `limits.shrink` says so;
/// `None` when `program` itself does not show it from scratch. When the
/// check is cut short, the program as confirmed, unshrunk.
pub async fn shrink(
    runner: &Runner,
    vocab: &Vocabulary,
    program: &Program,
    key: &str,
    limits: Limits<'_>,
) -> Option<Program> {
    if !reproduces(runner, vocab, program, key).await {
        return None;
    }
    let accepted = reduce(runner, vocab, program.clone(), key, limits.shrink).await;
    // Kept: the smallest accepted program `replay` shows the bucket with.
    for candidate in accepted.iter().rev() {
        if (limits.check)() {
            break;
        }
        if runner.replays(vocab, candidate, key, limits.check).await {
            return Some(candidate.clone());
        }
    }
    Some(program.clone())
}

/// Every program shrinking accepted, from the original to the smallest
/// (the last without the operations that sent nothing, when that still
/// shows the bucket).
async fn reduce(
    runner: &Runner,
    vocab: &Vocabulary,
    mut best: Program,
    key: &str,
    stop: &(dyn Fn() -> bool + Sync),
) -> Vec<Program> {
    let mut accepted = vec![best.clone()];
    let still =
        async |candidate: &Program| !stop() && reproduces(runner, vocab, candidate, key).await;

    // Operations: remove chunks, from halves down to single operations.
    let mut chunk = best.ops.len().div_ceil(2).max(1);
    loop {
        let mut removed_any = false;
        let mut start = 0;
        while start < best.ops.len() {
            let mut candidate = best.clone();
            let end = (start + chunk).min(candidate.ops.len());
            candidate.ops.drain(start..end);
            if !candidate.ops.is_empty() && still(&candidate).await {
                best = candidate;
                accepted.push(best.clone());
                removed_any = true;
            } else {
                start += chunk;
            }
        }
        if (chunk == 1 && !removed_any) || stop() {
            break;
        }
        if !removed_any {
            chunk = chunk.div_ceil(2);
        }
    }

    // Mutations: keep only those the leak needs.
    for i in 0..best.ops.len() {
        let simpler = [
            |op: &mut crate::fuzzer::Op| op.borrow = None,
            |op: &mut crate::fuzzer::Op| op.identity = Identity::Own,
            |op: &mut crate::fuzzer::Op| op.flip = None,
            |op: &mut crate::fuzzer::Op| op.set = None,
            |op: &mut crate::fuzzer::Op| op.alias = None,
            |op: &mut crate::fuzzer::Op| op.concurrent = false,
        ];
        for simplify in simpler {
            let mut candidate = best.clone();
            simplify(&mut candidate.ops[i]);
            if candidate != best && still(&candidate).await {
                best = candidate;
                accepted.push(best.clone());
            }
        }
    }

    // Instances: fold each into a lower-numbered one of the same actor.
    let mut used: Vec<(usize, usize)> = best
        .ops
        .iter()
        .map(|op| (vocab.role_of(op), op.instance))
        .collect();
    used.sort_unstable();
    used.dedup();
    for &(role, high) in used.iter().rev() {
        for low in 0..high {
            let candidate = renumber(vocab, &best, role, high, low);
            if candidate != best && still(&candidate).await {
                best = candidate;
                accepted.push(best.clone());
                break;
            }
        }
    }
    // Operations that sent nothing in a run from scratch (their inputs
    // never came) change nothing on the wire; a replay against a fixed
    // server would count them as steps it could not send. Without them a
    // concurrent operation may join another: kept only if it still shows.
    let sent = without_silent(runner, vocab, &best).await;
    if !sent.ops.is_empty() && sent != best && still(&sent).await {
        accepted.push(sent);
    }
    accepted
}

/// `program` without the operations that sent no request in a run of it.
async fn without_silent(runner: &Runner, vocab: &Vocabulary, program: &Program) -> Program {
    let run = runner.run_alone(vocab, program, false, false).await;
    let sent: std::collections::BTreeSet<usize> = run
        .order
        .iter()
        .filter_map(|issued| crate::fuzzer::op_index(&issued.step))
        .collect();
    let ops = program.ops.iter().enumerate();
    Program {
        ops: ops
            .filter(|(n, _)| sent.contains(n))
            .map(|(_, op)| op.clone())
            .collect(),
    }
}

/// The program with instance `from` of actor `role` replaced by `to`.
fn renumber(vocab: &Vocabulary, program: &Program, role: usize, from: usize, to: usize) -> Program {
    let swap = |i: usize| if i == from { to } else { i };
    let mut out = program.clone();
    for set in out.ops.iter_mut().filter_map(|op| op.set.as_mut()) {
        if set.role == role {
            set.from = swap(set.from);
        }
    }
    for op in out.ops.iter_mut().filter(|op| vocab.role_of(op) == role) {
        op.instance = swap(op.instance);
        op.borrow = op.borrow.map(swap).filter(|b| *b != op.instance);
        op.alias = op.alias.map(swap).filter(|a| *a != op.instance);
        op.identity = match op.identity {
            Identity::Other(i) | Identity::Unsigned(i) if swap(i) == op.instance => Identity::Own,
            Identity::Other(i) => Identity::Other(swap(i)),
            Identity::Unsigned(i) => Identity::Unsigned(swap(i)),
            own_or_none => own_or_none,
        };
    }
    out
}
