//! Shards: one run spread over N processes (a CI matrix), each sending the
//! requests of its slice of the instances, all of them one run.
//!
//! Every shard builds the whole run's instances from one run id: the same
//! canaries, names, seeded choices and instance numbers as the unsharded
//! run. Shard K then drives only its slice of each actor, so the shards
//! together send what one process would, and every shard recognises every
//! canary of the run: a canary of an instance another shard drives, seen
//! by one of this shard's instances, is a leak across shards, named with
//! the shard that instance belongs to. [`merge`](crate::session::Merge)
//! makes one verdict of the shards' reports.
//!
//! An actor is split when it is a population actor, or when it has at
//! least two instances per shard (so that each shard keeps a peer to probe
//! with). A smaller actor (four clinicians over four shards) is driven
//! whole by every shard: its requests are sent once per shard, and what
//! its instances see of another shard's instances is not judged, since
//! the grants that allow it (a booking with that clinician) were made on
//! the other shard.

use serde::{Deserialize, Serialize};

/// Shard `index` (1-based) of `of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub of: usize,
}

impl Shard {
    /// `K/N`, 1 ≤ K ≤ N.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (k, n) = text.split_once('/').ok_or("expected K/N, e.g. 2/3")?;
        let (index, of): (usize, usize) = (
            k.trim().parse().map_err(|_| "K is not a number")?,
            n.trim().parse().map_err(|_| "N is not a number")?,
        );
        if of == 0 || index == 0 || index > of {
            return Err(format!("{text}: need 1 <= K <= N"));
        }
        Ok(Shard { index, of })
    }

    /// Whether an actor of `count` instances is split among the shards
    /// (else every shard drives all of it).
    pub fn splits(&self, count: usize, population: bool) -> bool {
        self.of > 1 && (population || count >= 2 * self.of)
    }

    /// The shard (1-based) that drives instance `index` of an actor of
    /// `count` instances, when the actor is split: contiguous slices, so a
    /// look-alike pair (instances 2k and 2k+1) mostly stays together.
    pub fn owner_of(&self, index: usize, count: usize, population: bool) -> Option<usize> {
        self.splits(count, population)
            .then(|| index * self.of / count.max(1) + 1)
    }

    /// Whether this shard drives instance `index` of such an actor.
    pub fn drives(&self, index: usize, count: usize, population: bool) -> bool {
        self.owner_of(index, count, population)
            .is_none_or(|owner| owner == self.index)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.of)
    }
}

/// CI variables that name one pipeline run, shared by its parallel jobs,
/// with the variable that tells a retry apart (fresh canaries for it).
const CI_RUN_IDS: &[(&str, Option<&str>)] = &[
    ("GITHUB_RUN_ID", Some("GITHUB_RUN_ATTEMPT")),
    ("CI_PIPELINE_ID", None),
    ("BUILDKITE_BUILD_ID", Some("BUILDKITE_RETRY_COUNT")),
    ("CIRCLE_WORKFLOW_ID", None),
];

/// The run id a shard takes when none is given: the CI pipeline's (every
/// job of a matrix has the same), or `None` outside CI.
pub fn ci_run_id() -> Option<String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    CI_RUN_IDS.iter().find_map(|(id, attempt)| {
        let id = var(id)?;
        Some(match attempt.and_then(var) {
            Some(attempt) => format!("{id}-{attempt}"),
            None => id,
        })
    })
}

/// The nonce a given run id stands for: every shard of the run derives
/// the same canaries, names and times from it.
pub fn nonce_of(run: &str) -> u64 {
    let bytes = run.bytes().map(u64::from).collect::<Vec<_>>();
    crate::canary::mix(0x5a4d_0001, &bytes)
}

/// The seed of a sharded run given none: the same in every shard.
pub fn seed_of(run: &str) -> u64 {
    crate::canary::mix(nonce_of(run), &[0x5eed])
}

/// What a shard's report says of the run it is part of, so that a merge
/// knows what is missing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Part {
    pub shard: Shard,
    /// The run id given (`--run-id`, or the CI's).
    pub run: String,
    /// Each scenario's steps (the JUnit cases of the merged report).
    pub steps: Vec<(String, Vec<String>)>,
}

/// What a merged report was made of.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Merged {
    pub run: String,
    /// Shards in the run.
    pub of: usize,
    /// Shards whose report was read, and complete.
    pub shards: Vec<usize>,
    /// Shards with no report: their instances' work was not done.
    pub missing: Vec<usize>,
}

/// Which shard drives each instance of a run's ledger: the shard this
/// process is, and each world's actors' sizes.
#[derive(Debug)]
pub struct Slices {
    pub shard: Shard,
    /// Each world's first instance and actors, in id order.
    worlds: std::sync::RwLock<Vec<(usize, Actors)>>,
}

/// A world's actors: each one's count and whether it is a population.
type Actors = Vec<(usize, bool)>;

impl Slices {
    pub fn new(shard: Shard) -> Slices {
        Slices {
            shard,
            worlds: Default::default(),
        }
    }

    /// The world whose instances start at `base` has these actors.
    pub fn add(&self, base: usize, roles: Actors) {
        let mut worlds = self.worlds.write().unwrap_or_else(|p| p.into_inner());
        worlds.push((base, roles));
    }

    /// The one shard that drives instance `id` (instance `index` of actor
    /// `role` of its world), or `None` when every shard drives it.
    pub fn owner(&self, id: usize, role: usize, index: usize) -> Option<usize> {
        let worlds = self.worlds.read().unwrap_or_else(|p| p.into_inner());
        let at = worlds
            .partition_point(|(base, _)| *base <= id)
            .checked_sub(1)?;
        let (count, population) = *worlds[at].1.get(role)?;
        self.shard.owner_of(index, count, population)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instance_of_a_split_actor_has_one_shard_and_small_actors_are_whole() {
        for of in 1..=5 {
            for count in [1, 3, 7, 10, 50] {
                for population in [true, false] {
                    for index in 0..count {
                        let drivers = (1..=of)
                            .filter(|k| Shard { index: *k, of }.drives(index, count, population))
                            .count();
                        let split = Shard { index: 1, of }.splits(count, population);
                        assert_eq!(drivers, if split { 1 } else { of });
                    }
                }
            }
        }
        let shard = Shard { index: 1, of: 4 };
        assert!(!shard.splits(4, false) && shard.splits(8, false) && shard.splits(3, true));
    }

    #[test]
    fn shards_parse_and_one_run_id_gives_one_nonce() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, of: 4 }));
        assert!(Shard::parse("0/4").is_err() && Shard::parse("5/4").is_err());
        assert!(Shard::parse("x").is_err());
        assert_eq!(nonce_of("12345-1"), nonce_of("12345-1"));
        assert_ne!(nonce_of("12345-1"), nonce_of("12345-2"));
    }
}
