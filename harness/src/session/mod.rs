//! Sessions: one whole command each. [`Run`], [`Fuzz`], [`Replay`], [`Merge`] and [`Check`] own
//! the target, the reports, baselines and snapshots, and the exit-code
//! decision; the `crosstalk` binary only turns flags into one of them and
//! prints what it returns. A Rust test drives them the same way.

pub mod check;
pub mod fuzz;
pub mod init;
pub mod merge;
pub mod replay;
pub mod run;
pub mod snapshots;
pub mod target;

pub use check::Check;
pub use fuzz::{Fuzz, FuzzOutcome};
pub use init::{Init, Initialised};
pub use merge::Merge;
pub use replay::{Replay, ReplayOutcome};
pub use run::{Run, RunOutcome};
pub use snapshots::Contracts;
pub use target::{Target, TargetSpec};

pub use crate::report::Conclusion;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_util::sync::CancellationToken;

use crate::scenario::ScenarioError;

/// How a session ended, as the command line's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every step ran, every response was judged, nothing was found.
    Clean,
    /// At least one finding (for replay: the leak reproduced).
    Found,
    /// Bad input, a usage error or an unreachable target.
    BadInput,
    /// The run could not do all its work (requests without an answer,
    /// steps that could not be sent; for fuzz, no program ran to the end or
    /// none got an answer) and found nothing else: no verdict on the
    /// target. A CI gate may retry this; never a leak.
    Incomplete,
    /// Stopped by a signal before the work was done, with nothing found.
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Clean => 0,
            Exit::Found => 1,
            Exit::BadInput => 2,
            Exit::Incomplete => 3,
            Exit::Interrupted => 130,
        }
    }
}

/// Why a session could not start (or finish) its work.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A scenario or baseline file is wrong; it points at the place.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A flag, a target or a file to write is wrong.
    #[error("{0}")]
    Input(String),
}

impl SessionError {
    pub fn exit(&self) -> Exit {
        Exit::BadInput
    }
}

/// How a caller stops a session early, and learns meanwhile whether it has
/// found anything (to choose an exit code when it must stop at once).
#[derive(Clone, Default)]
pub struct Stop {
    /// Cancel to stop: the flow stops, teardown runs, reports are written.
    pub cancel: CancellationToken,
    /// Findings recorded so far.
    pub found: Arc<AtomicUsize>,
}

impl Stop {
    /// The exit code for stopping right now, without reports.
    pub fn exit_now(&self) -> Exit {
        if self.found.load(Ordering::SeqCst) > 0 {
            Exit::Found
        } else {
            Exit::Interrupted
        }
    }
}

/// A page (`--html`) that could not be written: said on stderr, and bad
/// input unless something was found (a finding outranks it).
fn page_written(written: Result<(), String>, exit: &mut Exit) {
    if let Err(err) = written {
        eprintln!("error: {err}");
        if *exit != Exit::Found {
            *exit = Exit::BadInput;
        }
    }
}
