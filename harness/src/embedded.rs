//! The embedded default target: the reference clinic, in process, a fresh
//! one for each use. Only this module knows the clinic exists, and only as
//! a `tower::Service` to send requests to: what it serves is learnt from
//! scenario files like any other API.

use std::path::PathBuf;
use std::sync::Arc;

use crate::findings::Finding;
use crate::fuzzer::{Runner, TargetFactory, Vocabulary, fuzz_one, vocabularies};
use crate::scenario::ScenarioError;
use crate::transport::{InProcess, Transport};

/// The shipped scenarios, where this crate was built from.
pub fn shipped_scenarios() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios"))
}

/// Where a fuzz target finds its scenarios: the source tree it was built
/// from, or else `scenarios/` beside the executable (how a fuzzing service
/// that ships only the binary directory, such as ClusterFuzzLite, sees them).
fn fuzz_scenarios() -> PathBuf {
    let built_from = shipped_scenarios();
    if built_from.is_dir() {
        return built_from;
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("scenarios")))
        .filter(|dir| dir.is_dir())
        .unwrap_or(built_from)
}

/// A fresh in-memory clinic with `faults` on: quick to make, as a fuzz
/// program makes one each.
pub fn transport(faults: &clinic::Faults) -> Arc<dyn Transport> {
    let clinic =
        clinic::Clinic::in_memory(faults.clone()).expect("an in-memory clinic always opens");
    named(clinic, faults)
}

/// A fresh clinic with `faults` on for a whole run: its data beyond a few
/// MiB waits in a temporary file, not in the run's memory (at 100,000
/// patients an in-memory clinic's held hundreds of megabytes).
pub fn run_transport(faults: &clinic::Faults) -> Arc<dyn Transport> {
    let clinic = clinic::Clinic::scratch(faults.clone()).expect("a scratch clinic always opens");
    named(clinic, faults)
}

/// `clinic` as a transport, named with its faults.
fn named(clinic: clinic::Clinic, faults: &clinic::Faults) -> Arc<dyn Transport> {
    let name = if faults.is_empty() {
        "embedded clinic".to_string()
    } else {
        format!("embedded clinic (faults: {faults})")
    };
    Arc::new(InProcess::new(clinic.router(), name))
}

/// Makes a fresh clinic with `faults` each time it is called.
pub fn factory(faults: clinic::Faults) -> TargetFactory {
    Arc::new(move || transport(&faults))
}

/// The body of the cargo-fuzz targets, callable from stable tests: the
/// shipped scenarios' vocabulary against fresh in-process clinics.
pub struct FuzzTarget {
    runtime: tokio::runtime::Runtime,
    vocabularies: Vec<Vocabulary>,
    runner: Runner,
}

impl FuzzTarget {
    pub fn new(faults: clinic::Faults) -> Result<FuzzTarget, ScenarioError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let scenarios =
            std::env::var_os("CROSSTALK_SCENARIOS").map_or_else(fuzz_scenarios, PathBuf::from);
        Ok(FuzzTarget {
            runtime,
            vocabularies: vocabularies(&[scenarios], &Default::default())?,
            runner: Runner::new(factory(faults), 1),
        })
    }

    /// Faults named in `CLINIC_FAULTS`, as the fuzz targets are configured.
    pub fn from_env() -> FuzzTarget {
        let faults = clinic::Faults::from_env()
            .unwrap_or_else(|err| panic!("{}: {err}", clinic::FAULTS_ENV));
        FuzzTarget::new(faults).unwrap_or_else(|err| panic!("the scenarios do not load: {err}"))
    }

    /// The leaks the program `bytes` stand for shows.
    pub fn run(&self, bytes: &[u8]) -> Vec<Finding> {
        fuzz_one(&self.runtime, &self.vocabularies, &self.runner, bytes)
    }

    pub fn vocabularies(&self) -> &[Vocabulary] {
        &self.vocabularies
    }
}
