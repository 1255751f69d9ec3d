//! `crosstalk check`: validates scenario files and describes their plans
//! without sending a request. A bad file is the same error as for `run`.

use std::path::PathBuf;

use crate::plan::{Overrides, Plan};

use super::SessionError;

/// A check of scenario files.
pub struct Check {
    /// Scenario files or directories (empty: `scenarios/`).
    pub scenarios: Vec<PathBuf>,
    /// `--var` and `--patients`, as `run` would take them.
    pub overrides: Overrides,
}

impl Check {
    /// Each plan in plain words, or the first bad input.
    pub fn execute(self) -> Result<String, SessionError> {
        let plans = Plan::load_all(&self.scenarios, &self.overrides)?;
        Ok(plans
            .iter()
            .map(Plan::describe)
            .collect::<Vec<_>>()
            .join("\n"))
    }
}
