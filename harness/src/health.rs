//! Detection health: whether the judges could see.
//!
//! A clean run says nothing was seen; it must also say that something could
//! have been. The judges go blind when the harness cannot tell identities
//! apart (a population that logged in as one account: what one may see,
//! all may) or when no identity ever asked for another's data (no probe by
//! another instance of the owner's actor was answered). Each scenario's
//! health is kept with its figures and told in every report; a scenario
//! whose judges could not see is *incomplete*, never clean, unless the
//! scenario declares it (`one_account = true` on an actor that really is
//! one shared account).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::world::World;

/// What a scenario's judges could see.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Health {
    /// Probes per (prober actor, owner actor): sent and answered.
    pub probes: Vec<ProbePair>,
    /// Instances found to be one account, and the evidence.
    pub merged: Vec<String>,
    /// Credentials the server issued that no identity could be credited
    /// with (their answers were judged as seen by nobody).
    pub unattributed: u64,
    /// Writes naming another identity's data that the witness watched.
    pub watched_writes: u64,
    /// Why the judges could not see, in plain words: the run is incomplete.
    pub blind: Vec<String>,
}

/// Probes of one actor's data by one other actor (`nobody`: no credentials).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbePair {
    pub prober: String,
    pub owner: String,
    pub sent: u64,
    pub answered: u64,
}

/// Probes of an owner actor by a prober actor (`None`: nobody): sent, answered.
type Pairs = BTreeMap<(Option<usize>, usize), (u64, u64)>;

/// What the executor counts as it probes.
#[derive(Debug, Default)]
pub struct ProbeCounts {
    pairs: Mutex<Pairs>,
    /// Owner roles with a step that named their data (one to probe).
    probed: Mutex<BTreeSet<usize>>,
}

impl ProbeCounts {
    /// A step of an instance of `owner` named its data.
    pub fn owner(&self, owner: usize) {
        self.probed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(owner);
    }

    /// A probe by `prober` of `owner`'s data went out; `answered`: it got
    /// an answer.
    pub fn sent(&self, prober: Option<usize>, owner: usize, answered: bool) {
        let mut pairs = self.pairs.lock().unwrap_or_else(|p| p.into_inner());
        let entry = pairs.entry((prober, owner)).or_default();
        entry.0 += 1;
        entry.1 += u64::from(answered);
    }
}

impl Health {
    /// The health of `world`'s run: probes counted, accounts merged (the
    /// ledger's, between this world's instances), credentials nobody was
    /// credited with, writes watched. `probing`: probes were to be sent.
    pub fn assess(
        world: &World,
        counts: &ProbeCounts,
        probing: bool,
        unattributed: u64,
        watched_writes: u64,
    ) -> Health {
        let plan = world.plan();
        let role_name = |r: Option<usize>| r.map_or("nobody", |r| plan.roles[r].name.as_str());
        let pairs = counts.pairs.lock().unwrap_or_else(|p| p.into_inner());
        let probes = (pairs.iter())
            .map(|((prober, owner), (sent, answered))| ProbePair {
                prober: role_name(*prober).to_string(),
                owner: role_name(Some(*owner)).to_string(),
                sent: *sent,
                answered: *answered,
            })
            .collect();
        let mut health = Health {
            probes,
            merged: Vec::new(),
            unattributed,
            watched_writes,
            blind: Vec::new(),
        };
        health.accounts(world);
        if probing {
            let probed = counts.probed.lock().unwrap_or_else(|p| p.into_inner());
            for owner in probed.iter().copied() {
                let by_peer = pairs.get(&(Some(owner), owner)).map_or(0, |p| p.1);
                let role = &plan.roles[owner];
                if role.count >= 2 && by_peer == 0 && !role.one_account {
                    health.blind.push(format!(
                        "no {0}'s data was asked for by another {0}: steps named {0}s' own data, but no probe by another {0} was answered (all of them may see each other's)",
                        role.name
                    ));
                }
            }
        }
        health
    }

    /// Instances of this world found to be one account: told, and blind
    /// unless their actor says it is one account.
    fn accounts(&mut self, world: &World) {
        let ids = world.ids();
        let mut by_role: BTreeMap<usize, (usize, String)> = BTreeMap::new();
        for merge in world.ledger().identities().merges() {
            if !ids.contains(&merge.id) || !ids.contains(&merge.into) {
                continue;
            }
            self.merged.push(format!(
                "{} is {}'s account: both logged in as `{}`",
                world.label(merge.id),
                world.label(merge.into),
                merge.name
            ));
            let role = world.instance(merge.id).role;
            let entry = by_role.entry(role).or_insert((0, merge.name.clone()));
            entry.0 += 1;
        }
        for (role, (merged, name)) in by_role {
            let role = &world.plan().roles[role];
            if role.one_account {
                continue;
            }
            self.blind.push(format!(
                "{merged} {0}(s) logged in to another {0}'s account (as `{name}`, …): the server says they are one account, so what one may see all may, and no leak between them can be seen; give each its own account, or say `one_account = true` on the actor",
                role.name
            ));
        }
    }

    /// The health in plain words, a line each.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.probes.is_empty() {
            let pairs: Vec<String> = (self.probes.iter())
                .map(|p| {
                    format!(
                        "{} → {}'s data {}/{}",
                        p.prober, p.owner, p.answered, p.sent
                    )
                })
                .collect();
            out.push(format!("probes answered/sent: {}", pairs.join(", ")));
        }
        match self.merged.len() {
            0 => out.push("accounts: every instance its own".into()),
            n => out.push(format!(
                "accounts: {n} instance(s) merged ({}{})",
                self.merged[..n.min(3)].join("; "),
                if n > 3 { "; …" } else { "" }
            )),
        }
        out.push(format!(
            "credentials credited to nobody: {}; foreign writes watched: {}",
            self.unattributed, self.watched_writes
        ));
        out.extend(self.blind.iter().map(|b| format!("BLIND: {b}")));
        out
    }

    /// Whether the judges could see everything they had to.
    pub fn sees(&self) -> bool {
        self.blind.is_empty()
    }
}
