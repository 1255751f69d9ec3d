//! Self-test: proof, on the user's own API and suite, that the judges
//! would see a leak. A clean run says nothing was seen, not that anything
//! could have been; so `run --self-test` plants defects in real traffic
//! and checks that the judges name each one, the way mutation testing
//! checks that a test suite notices a broken line.
//!
//! Four kinds of defect, each the shape of a real bug:
//!
//! - *response swap* (a missing owner check on a read, a shared cache): an
//!   instance's 2xx answer to a read is replaced by the latest answer of
//!   the same step given to another instance;
//! - *foreign item* (a lost filter, a record filed under the wrong
//!   patient): one element of another's answer joins a list in this one;
//! - *session swap* (a login or refresh handing out another account): the
//!   answer to an instance's login is another instance's;
//! - *write redirect* (a missing owner check on a write): an instance's
//!   write names another's value of the same variable and goes out with
//!   that other instance's credential, so it really lands on the other
//!   account while the harness believes the writer sent its own.
//!
//! Planted answers are *shadows*: they go through the judges that would
//! name them (handover, leak, access) with a findings sink of their own,
//! and are then dropped, so the instance goes on with its real answer and
//! a plant never changes the run's course. A redirected write really
//! lands; every finding that follows about its two instances is the
//! plant's (its detection, or a consequence), never the target's. So
//! planted defects are never reported as findings of the target, and real
//! findings are reported as usual.
//!
//! [`Sensitivity`] is the outcome: planted and detected by kind and by
//! step, and each miss with its reason as far as the harness can tell.

pub mod plant;
mod sensitivity;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use serde::Serialize;

pub use sensitivity::{Ratio, Sensitivity, StepLine};

use crate::findings::{Finding, FindingKind};
use crate::world::InstanceId;
use plant::Donors;

/// The default sensitivity below which a self-test fails (exit 3).
pub const MIN_SENSITIVITY: f64 = 0.9;

/// A kind of planted defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Defect {
    ResponseSwap,
    ForeignItem,
    SessionSwap,
    WriteRedirect,
}

impl Defect {
    pub const ALL: [Defect; 4] = [
        Defect::ResponseSwap,
        Defect::ForeignItem,
        Defect::SessionSwap,
        Defect::WriteRedirect,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Defect::ResponseSwap => "response swap",
            Defect::ForeignItem => "foreign item",
            Defect::SessionSwap => "session swap",
            Defect::WriteRedirect => "write redirect",
        }
    }
}

/// One planted defect and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct Planted {
    #[serde(flatten)]
    pub plant: Plant,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Later findings about its two instances that followed from it (a
    /// redirected write only), kept out of the target's findings.
    #[serde(skip_serializing_if = "is_zero")]
    pub consequences: usize,
    /// Why a redirected write would be missed, known when it is sent.
    #[serde(skip)]
    if_missed: String,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What the judges made of a planted defect.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// A judge named it: which, and its finding's sentence.
    Detected { judge: String, finding: String },
    /// No judge named it; why, as far as the harness can tell.
    Missed { reason: String },
    /// A redirected write the target refused even with the victim's own
    /// credential: it did not land, so it is not counted.
    Void { reason: String },
    /// A redirected write waiting for the witness.
    Pending,
}

/// A self-test's planted defects, shared by every scenario file of a run.
pub struct SelfTest {
    seed: u64,
    min: f64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    planted: Vec<Planted>,
    /// (scenario, step key) → the latest answers to plant into others'.
    donors: HashMap<(String, u64), Donors>,
    /// (scenario, step, endpoint) → why a defect could not be planted there.
    unplanted: BTreeMap<(String, String, String), String>,
    /// Instances a redirected write involved: each takes part in one, so
    /// what follows from one plant is never blamed on another.
    involved: HashSet<InstanceId>,
}

impl SelfTest {
    pub fn new(seed: u64, min: f64) -> SelfTest {
        SelfTest {
            seed,
            min,
            state: Mutex::default(),
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The step's answers kept so far, to read or add to.
    pub fn with_donors<T>(&self, scenario: &str, step: u64, f: impl FnOnce(&mut Donors) -> T) -> T {
        let mut state = self.state();
        f(state
            .donors
            .entry((scenario.to_string(), step))
            .or_default())
    }

    /// A defect planted and already judged (a shadow).
    pub fn judged(&self, planted: Plant, outcome: Outcome) {
        self.state()
            .planted
            .push(planted.into_planted(outcome, String::new()));
    }

    /// Whether `id` took part in a redirected write already.
    pub fn involved(&self, id: InstanceId) -> bool {
        self.state().involved.contains(&id)
    }

    /// `pair` (writer, victim) take part in a redirected write.
    pub fn involve(&self, pair: [InstanceId; 2]) {
        self.state().involved.extend(pair);
    }

    /// A redirected write about to go out; its index, for what follows.
    pub fn redirected(&self, planted: Plant, if_missed: String) -> usize {
        let mut state = self.state();
        state
            .planted
            .push(planted.into_planted(Outcome::Pending, if_missed));
        state.planted.len() - 1
    }

    /// What the redirected write `index` was answered, and whether the
    /// witness watches its victim.
    pub fn answered(&self, index: usize, status: Option<u16>, watched: bool) {
        let mut state = self.state();
        let Some(planted) = state.planted.get_mut(index) else {
            return;
        };
        match status {
            Some(status) if (200..300).contains(&status) => {}
            other => {
                let answer = other.map_or("no answer".into(), |s| format!("status {s}"));
                planted.outcome = Outcome::Void {
                    reason: format!(
                        "the write did not land even with the victim's credential ({answer})"
                    ),
                };
                return;
            }
        }
        if !watched && planted.if_missed.is_empty() {
            planted.if_missed =
                "no own read of the victim to compare: the witness does not watch what this write changes".into();
        }
    }

    /// A step where no defect could be planted, and why.
    pub fn not_planted(&self, scenario: &str, step: &str, endpoint: &str, reason: &str) {
        let key = (scenario.to_string(), step.to_string(), endpoint.to_string());
        self.state()
            .unplanted
            .entry(key)
            .or_insert_with(|| reason.to_string());
    }

    /// Whether `finding` follows from a redirected write: its detection
    /// (the writer seen changing or reading the victim's data) or a
    /// consequence for one of its two instances. Either way it is the
    /// plant's, not the target's.
    pub fn explains(&self, finding: &Finding) -> bool {
        let mut state = self.state();
        // A void one counts too: its writer did not make its own write.
        let writes = (state.planted.iter_mut()).filter(|p| {
            p.plant.defect == Defect::WriteRedirect && p.plant.scenario == finding.scenario
        });
        for planted in writes {
            let plant = &planted.plant;
            let victim = finding.victim.as_deref();
            let names = finding.kind.is_exposure()
                && finding.observer == plant.observer
                && victim == Some(plant.victim.as_str());
            if names && matches!(planted.outcome, Outcome::Pending) {
                planted.outcome = Outcome::Detected {
                    judge: finding.kind.as_str().to_string(),
                    finding: finding.summary.clone(),
                };
                return true;
            }
            let involved = |label: &str| finding.observer == label || victim == Some(label);
            if involved(&plant.observer) || involved(&plant.victim) {
                planted.consequences += 1;
                return true;
            }
        }
        false
    }

    /// The outcome of every plant: the sensitivity, by kind and by step.
    pub fn sensitivity(&self) -> Sensitivity {
        let state = self.state();
        let planted = (state.planted.iter().cloned())
            .map(|mut p| {
                if matches!(p.outcome, Outcome::Pending) {
                    let reason = match p.if_missed.is_empty() {
                        true => "the witness saw no change in the victim's own reads".into(),
                        false => p.if_missed.clone(),
                    };
                    p.outcome = Outcome::Missed { reason };
                }
                p
            })
            .collect();
        Sensitivity::new(planted, &state.unplanted, self.min)
    }
}

/// A defect planted: what, where and between whom.
#[derive(Debug, Clone, Serialize)]
pub struct Plant {
    pub defect: Defect,
    pub scenario: String,
    pub step: String,
    pub endpoint: String,
    /// Who was shown (or wrote) another's data: `patient#7`.
    pub observer: String,
    /// Whose it was.
    pub victim: String,
}

impl Plant {
    fn into_planted(self, outcome: Outcome, if_missed: String) -> Planted {
        Planted {
            plant: self,
            outcome,
            consequences: 0,
            if_missed,
        }
    }
}

impl FindingKind {
    /// Whether the finding names whose data was seen or changed.
    pub fn is_exposure(self) -> bool {
        matches!(
            self,
            FindingKind::Leak | FindingKind::Tamper | FindingKind::Access
        )
    }
}
