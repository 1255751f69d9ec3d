//! Baselines: finding buckets a team has accepted (known, tracked, not yet
//! fixed), committed beside the scenarios, so that the gate fails only on
//! what is new. Entries no run produces any more are reported as stale.
//!
//! ```toml
//! [[accepted]]
//! bucket = "leak GET /v1/me/export at body $.appointments[*].reason"
//! note = "tracked as SEC-142"
//! ```

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::scenario::ScenarioError;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    #[serde(default)]
    pub accepted: Vec<Accepted>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accepted {
    pub bucket: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

impl Baseline {
    pub fn load(path: &Path) -> Result<Baseline, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| ScenarioError::file(path, format!("cannot read baseline: {err}")))?;
        let file = crate::scenario::SourceFile::new(path.to_path_buf(), text);
        toml::from_str(&file.text).map_err(|err| {
            ScenarioError::at(
                &file,
                err.span().unwrap_or(0..0),
                err.message().trim().to_string(),
            )
        })
    }

    /// A baseline accepting every bucket in `buckets`.
    pub fn of(buckets: impl IntoIterator<Item = String>) -> Baseline {
        Baseline {
            accepted: buckets
                .into_iter()
                .map(|bucket| Accepted {
                    bucket,
                    note: String::new(),
                })
                .collect(),
        }
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = format!(
            "# crosstalk baseline: finding buckets accepted for now. `crosstalk run --baseline {}`\n# fails only on buckets not listed here.\n\n{}",
            path.display(),
            toml::to_string(self).expect("baselines serialize")
        );
        std::fs::write(path, text)
    }

    pub fn accepts(&self, bucket: &str) -> bool {
        self.accepted.iter().any(|a| a.bucket == bucket)
    }

    /// Accepted buckets that `seen` does not contain.
    pub fn stale(&self, seen: &BTreeSet<String>) -> Vec<String> {
        self.accepted
            .iter()
            .filter(|a| !seen.contains(&a.bucket))
            .map(|a| a.bucket.clone())
            .collect()
    }
}
