//! Findings: what went wrong, said in plain words, bucketed, and written to
//! disk the moment they are found (append and flush), so that a crash or a
//! Ctrl-C loses none.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::oracle::Marker;

/// At most this many findings of one bucket are written in full.
const WRITTEN_PER_BUCKET: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A response carried another instance's data.
    Leak,
    /// A 5xx response.
    ServerError,
    /// A status, field or capture the scenario expected was not there.
    Expectation,
    /// A response's shape no longer matches its contract snapshot.
    Drift,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Leak => "leak",
            FindingKind::ServerError => "server-error",
            FindingKind::Expectation => "expectation",
            FindingKind::Drift => "drift",
        }
    }
}

/// The exchange a finding is about, secrets redacted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedactedExchange {
    pub method: String,
    pub path: String,
    pub request_body: String,
    pub status: u16,
    pub response_headers: Vec<(String, String)>,
    pub response_excerpt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub run_id: String,
    pub seed: u64,
    pub scenario: String,
    pub step: String,
    /// `METHOD /path/{holes}` as written in the scenario.
    pub endpoint: String,
    /// `patient#3`.
    pub observer: String,
    /// Whose data it was (leaks only).
    pub victim: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<Marker>,
    /// Where in the response: `body $.items[0].title`.
    pub location: String,
    pub location_pattern: String,
    /// Other places in the same response where the victim's data appeared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<String>,
    /// One sentence a person can act on.
    pub summary: String,
    pub exchange: RedactedExchange,
    /// The observer's earlier steps, oldest first.
    pub trace: Vec<String>,
}

impl Finding {
    /// A contract drift, as a finding of its own.
    pub fn drift(
        run_id: &str,
        seed: u64,
        scenario: &str,
        drift: crate::contract::Drift,
    ) -> Finding {
        let statuses: Vec<String> = drift.statuses.iter().map(u16::to_string).collect();
        let location = format!("status {}", statuses.join(", "));
        let (method, path) = drift
            .endpoint
            .split_once(' ')
            .unwrap_or((drift.endpoint.as_str(), ""));
        Finding {
            kind: FindingKind::Drift,
            run_id: run_id.to_string(),
            seed,
            scenario: scenario.to_string(),
            step: drift.step.clone(),
            endpoint: drift.endpoint.clone(),
            observer: String::new(),
            victim: None,
            marker: None,
            location: location.clone(),
            location_pattern: location,
            also: Vec::new(),
            summary: format!(
                "the {} response of step `{}` ({}) no longer matches its contract snapshot; the new one is {}",
                statuses.join("/"),
                drift.step,
                drift.endpoint,
                drift.pending.display()
            ),
            exchange: RedactedExchange {
                method: method.to_string(),
                path: path.to_string(),
                request_body: String::new(),
                status: drift.statuses.first().copied().unwrap_or(0),
                response_headers: Vec::new(),
                response_excerpt: drift.diff,
            },
            trace: Vec::new(),
        }
    }

    /// Findings of one bucket are one bug: endpoint × kind × location.
    pub fn bucket(&self) -> String {
        format!(
            "{} {} at {}",
            self.kind.as_str(),
            self.endpoint,
            self.location_pattern
        )
    }
}

/// One bucket: how often it was hit, and its first finding.
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    pub key: String,
    pub count: usize,
    pub first: Finding,
}

/// Collects findings into buckets and appends them to a JSON Lines file.
pub struct FindingSink {
    path: Option<PathBuf>,
    inner: Mutex<SinkState>,
}

struct SinkState {
    file: Option<File>,
    buckets: BTreeMap<String, Bucket>,
    total: usize,
}

impl FindingSink {
    /// Appends to `path` (created with its directory) when given.
    pub fn new(path: Option<&Path>) -> std::io::Result<Self> {
        let file = match path {
            Some(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                Some(OpenOptions::new().create(true).append(true).open(path)?)
            }
            None => None,
        };
        Ok(Self {
            path: path.map(Path::to_path_buf),
            inner: Mutex::new(SinkState {
                file,
                buckets: BTreeMap::new(),
                total: 0,
            }),
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn record(&self, finding: Finding) {
        let mut state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        state.total += 1;
        let key = finding.bucket();
        let count = {
            let bucket = state.buckets.entry(key.clone()).or_insert_with(|| Bucket {
                key,
                count: 0,
                first: finding.clone(),
            });
            bucket.count += 1;
            bucket.count
        };
        if count <= WRITTEN_PER_BUCKET
            && let Some(file) = state.file.as_mut()
        {
            let line = serde_json::to_string(&finding).expect("findings serialize");
            // A finding that cannot be written is still in memory and in the
            // summary; say so rather than stop the run.
            if let Err(err) = writeln!(file, "{line}").and_then(|_| file.flush()) {
                tracing::warn!("cannot append to the findings file: {err}");
            }
        }
    }

    pub fn total(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    pub fn buckets(&self) -> Vec<Bucket> {
        let state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        state.buckets.values().cloned().collect()
    }
}
