//! Where a run's contract snapshots live, and the comparison after each
//! scenario. By default each suite keeps its own, in `snapshots/` inside
//! the suite directory, keyed by the scenario file's path in the suite:
//! two suites with a `booking.toml` never share a snapshot.

use std::path::{Path, PathBuf};

use crate::contract::{self, Snapshots};
use crate::findings::Finding;
use crate::plan::Plan;
use crate::world::World;

use super::SessionError;

/// Which snapshots a run compares its response contracts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contracts {
    /// None: contracts are not compared.
    Off,
    /// `<suite>/snapshots/` for each suite.
    BesideSuites,
    /// One directory for every suite (`--snapshots DIR`).
    In(PathBuf),
}

/// What comparing one scenario gave.
pub struct Compared {
    /// Drift findings (and, in CI mode, missing snapshots).
    pub findings: Vec<Finding>,
    /// `.snap.new` files written for review.
    pub pending: Vec<String>,
}

impl Contracts {
    /// Checks, before any request, that every snapshot directory is usable.
    pub fn prepare(&self, plans: &[Plan]) -> Result<(), SessionError> {
        let dirs: Vec<PathBuf> = match self {
            Contracts::Off => Vec::new(),
            Contracts::In(dir) => vec![dir.clone()],
            Contracts::BesideSuites => plans.iter().map(|p| dir_of(self, p)).collect(),
        };
        for dir in dirs {
            usable(&dir).map_err(|err| {
                SessionError::Input(format!("snapshots in {}: {err}", dir.display()))
            })?;
        }
        Ok(())
    }

    /// Compares what `world`'s scenario answered with its snapshots.
    pub fn compare(
        &self,
        world: &World,
        observed: std::collections::BTreeMap<String, (String, contract::Contract)>,
        ci: bool,
    ) -> Result<Compared, SessionError> {
        let mut compared = Compared {
            findings: Vec::new(),
            pending: Vec::new(),
        };
        if *self == Contracts::Off {
            return Ok(compared);
        }
        let plan = world.plan();
        let dir = dir_of(self, plan);
        let (key, source) = match &plan.file {
            Some(file) => (file.key(), file.path.display().to_string()),
            None => (plan.scenario.clone(), plan.scenario.clone()),
        };
        let at = Snapshots {
            dir: &dir,
            key: &key,
            source: &source,
            ci,
        };
        let comparison = contract::compare(&at, observed).map_err(|err| {
            SessionError::Input(format!(
                "cannot write snapshots in {}: {err}",
                dir.display()
            ))
        })?;
        compared.pending = comparison
            .pending
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        for drift in comparison.drifts {
            let finding = Finding::drift(&world.run_id, world.seed, &plan.scenario, drift);
            compared.findings.push(finding);
        }
        Ok(compared)
    }
}

fn dir_of(contracts: &Contracts, plan: &Plan) -> PathBuf {
    match (contracts, &plan.file) {
        (Contracts::In(dir), _) => dir.clone(),
        (_, Some(file)) => file.suite.join("snapshots"),
        (_, None) => PathBuf::from("snapshots"),
    }
}

/// A directory that exists or can be made.
fn usable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if !dir.is_dir() {
        return Err(std::io::Error::other("not a directory"));
    }
    Ok(())
}
