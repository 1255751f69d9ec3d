//! Findings: what went wrong, said in plain words, bucketed, and written to
//! disk the moment they are found, every one of them, one complete JSON line
//! per finding in a single write, so that a crash, a kill or a Ctrl-C loses
//! none and leaves no half line behind. A disk that refuses a write (full,
//! or a file size limit) loses none either: from that finding on, each one
//! is printed to stderr as the same JSON line, and the sink counts them so
//! the summary never claims the file holds them.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::oracle::Marker;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A response carried another instance's data.
    Leak,
    /// A write changed another instance's data: what the owner reads of
    /// its own changed, or its login stopped working.
    Tamper,
    /// An identity that may not see an instance's data asked for it (a
    /// probe) and was answered 2xx, though the answer showed none of it.
    Access,
    /// A 5xx response.
    ServerError,
    /// A status, field or capture the scenario expected was not there.
    Expectation,
    /// A response's shape no longer matches its contract snapshot.
    Drift,
    /// A request got no answer: a timeout, a reset, malformed HTTP, a body
    /// that could not be read. The run did not do that part of its work.
    TransportError,
    /// A step could not be sent (a value it needs was never captured, a
    /// request that cannot be built). The run did not do that part either.
    Skipped,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Leak => "leak",
            FindingKind::Tamper => "tamper",
            FindingKind::Access => "access",
            FindingKind::ServerError => "server-error",
            FindingKind::Expectation => "expectation",
            FindingKind::Drift => "drift",
            FindingKind::TransportError => "transport-error",
            FindingKind::Skipped => "skipped",
        }
    }

    /// Every kind, in report order.
    pub const ALL: [FindingKind; 8] = [
        FindingKind::Leak,
        FindingKind::Tamper,
        FindingKind::Access,
        FindingKind::ServerError,
        FindingKind::Expectation,
        FindingKind::Drift,
        FindingKind::TransportError,
        FindingKind::Skipped,
    ];

    /// Another instance's data seen or changed: what the product exists
    /// to find (a leak or tampering).
    pub fn harm(self) -> bool {
        matches!(self, FindingKind::Leak | FindingKind::Tamper)
    }

    /// The run could not do some of its work: no verdict on the target,
    /// but never a pass. A baseline cannot accept these.
    pub fn incomplete(self) -> bool {
        matches!(self, FindingKind::TransportError | FindingKind::Skipped)
    }
}

/// What the integrity witness saw of the victim's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Witnessed {
    /// The victim's own read `read` changed at `path` (`status`, `body` or
    /// a JSONPath).
    Change {
        read: String,
        path: String,
        before: String,
        after: String,
    },
    /// The victim's login `login` answered 2xx before and not after.
    Lockout { login: String, status: u16 },
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
    /// Whose data it was (leaks and tampering).
    pub victim: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<Marker>,
    /// What the witness saw change (tampering only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witnessed: Option<Witnessed>,
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
    /// The request as a curl command to rerun by hand (credentials as
    /// environment variables); empty for findings about no one request.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub curl: String,
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
            witnessed: None,
            location: location.clone(),
            location_pattern: location,
            also: Vec::new(),
            summary: if drift.missing {
                format!(
                    "step `{}` ({}) has no contract snapshot, and a CI run must compare with one; the new one is {}",
                    drift.step,
                    drift.endpoint,
                    drift.pending.display()
                )
            } else {
                format!(
                    "the {} response of step `{}` ({}) no longer matches its contract snapshot; the new one is {}",
                    statuses.join("/"),
                    drift.step,
                    drift.endpoint,
                    drift.pending.display()
                )
            },
            exchange: RedactedExchange {
                method: method.to_string(),
                path: path.to_string(),
                request_body: String::new(),
                status: drift.statuses.first().copied().unwrap_or(0),
                response_headers: Vec::new(),
                response_excerpt: drift.diff,
            },
            trace: Vec::new(),
            curl: String::new(),
        }
    }

    /// Findings of one bucket are one bug: kind × scenario × endpoint ×
    /// location.
    pub fn bucket(&self) -> String {
        format!(
            "{} in {}: {} at {}",
            self.kind.as_str(),
            self.scenario,
            self.endpoint,
            self.location_pattern
        )
    }
}

/// One bucket: how often it was hit, and its first finding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bucket {
    pub key: String,
    pub count: usize,
    pub first: Finding,
}

/// A JSON Lines file appended whole lines at a time: a kill leaves whole
/// lines only (or, at worst, one torn last line, which the next writer
/// closes off before appending). A write that fails part-way (a full disk)
/// is cut back to the last whole line, and the file is appended to no more:
/// a line written after a lost one would make the file look complete.
pub struct JsonLines {
    state: Mutex<Lines>,
    /// Each record reaches the file before `write` returns (findings);
    /// otherwise records are written a buffer of lines at a time (the request
    /// log, a line per request: a syscall each cost more than the line).
    durable: bool,
}

/// What a [`JsonLines`] holds behind its lock.
struct Lines {
    file: File,
    /// Whole lines not written yet.
    pending: Vec<u8>,
    /// Set by the first write that failed; nothing is written after it.
    failed: Option<Unwritten>,
}

/// Records that never reached a JSON Lines file, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unwritten {
    /// How many records are not in the file.
    pub count: usize,
    /// The error of the write that failed, after which none was tried.
    pub error: String,
}

impl JsonLines {
    /// Opens `path` for appending, creating it and its directory.
    pub fn append(path: &Path) -> std::io::Result<JsonLines> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)?;
        if ends_torn(&mut file)? {
            file.write_all(b"\n")?;
        }
        Ok(JsonLines {
            state: Mutex::new(Lines {
                file,
                pending: Vec::new(),
                failed: None,
            }),
            durable: true,
        })
    }

    /// As [`JsonLines::append`], written a buffer of lines at a time: the
    /// last lines reach the file at [`JsonLines::flush`] or when dropped.
    pub fn buffered(path: &Path) -> std::io::Result<JsonLines> {
        Ok(JsonLines {
            durable: false,
            ..Self::append(path)?
        })
    }

    /// Appends `record` as one line. Only the write that fails is an error:
    /// the records after it are counted in [`JsonLines::unwritten`], so that
    /// a full disk is one warning, not one per record.
    pub fn write<T: Serialize>(&self, record: &T) -> std::io::Result<()> {
        self.write_line(&line(record)).map(drop)
    }

    /// Appends `line` (one record and its newline): `Ok(true)` once it is
    /// written (or buffered to be), `Ok(false)` when an earlier failure
    /// dropped it.
    fn write_line(&self, line: &[u8]) -> std::io::Result<bool> {
        let mut lines = self.lock();
        if let Some(failed) = &mut lines.failed {
            failed.count += 1;
            return Ok(false);
        }
        lines.pending.extend_from_slice(line);
        if self.durable || lines.pending.len() >= LOG_BUFFER {
            lines.write_out()?;
        }
        Ok(true)
    }

    /// Writes out the lines buffered so far.
    pub fn flush(&self) -> std::io::Result<()> {
        self.lock().write_out()
    }

    /// The records that did not reach the file, once a write failed.
    pub fn unwritten(&self) -> Option<Unwritten> {
        self.lock().failed.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lines> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Lines {
    /// Writes the pending lines in one write(2) where the system allows.
    /// On failure the file is cut back to its last whole line and the lines
    /// not in it are counted as unwritten.
    fn write_out(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() || self.failed.is_some() {
            return Ok(());
        }
        let before = match self.file.metadata() {
            Ok(meta) => meta.len(),
            Err(err) => return Err(self.fail(0, 0, err)),
        };
        match write_some(&mut self.file, &self.pending) {
            (_, Ok(())) => {
                self.pending.clear();
                Ok(())
            }
            (written, Err(err)) => Err(self.fail(before, written, err)),
        }
    }

    /// After `written` bytes of the pending lines went in at `before`:
    /// cuts off the torn line, counts the lines lost and stops appending.
    fn fail(&mut self, before: u64, written: usize, err: std::io::Error) -> std::io::Error {
        let whole = self.pending[..written]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let mut error = err.to_string();
        if whole < written
            && let Err(cut) = self.file.set_len(before + whole as u64)
        {
            error = format!("{error}; its torn last line could not be cut off: {cut}");
        }
        let count = self.pending[whole..]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        self.failed = Some(Unwritten { count, error });
        self.pending.clear();
        err
    }
}

/// The last buffered lines reach the file when it is dropped, whole.
impl Drop for Lines {
    fn drop(&mut self) {
        if let Err(err) = self.write_out() {
            tracing::warn!("cannot append to a JSON Lines file: {err}");
        }
    }
}

/// `record` as one JSON line with its newline.
fn line<T: Serialize>(record: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(record).expect("records serialize");
    line.push(b'\n');
    line
}

/// Writes as much of `bytes` as the file takes: how many bytes went in,
/// and the error that stopped it (a short write counts as one).
fn write_some(file: &mut File, bytes: &[u8]) -> (usize, std::io::Result<()>) {
    let mut written = 0;
    while written < bytes.len() {
        match file.write(&bytes[written..]) {
            Ok(0) => return (written, Err(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => written += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return (written, Err(err)),
        }
    }
    (written, Ok(()))
}

/// Bytes of lines a buffered log holds before writing them out.
const LOG_BUFFER: usize = 64 * 1024;

/// Whether a file's last line lacks its newline.
fn ends_torn(file: &mut File) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// Collects findings into buckets and appends every one to a JSON Lines file.
pub struct FindingSink {
    path: Option<PathBuf>,
    file: Option<JsonLines>,
    buckets: Mutex<BTreeMap<String, Bucket>>,
    /// Findings recorded so far; shared with whoever must decide an exit
    /// code before the run ends (a second Ctrl-C).
    total: Arc<AtomicUsize>,
    /// A self-test's: findings that follow from a planted defect are its.
    self_test: Option<Arc<crate::self_test::SelfTest>>,
}

impl FindingSink {
    /// Appends to `path` (created with its directory) when given.
    pub fn new(path: Option<&Path>) -> std::io::Result<Self> {
        Ok(Self {
            path: path.map(Path::to_path_buf),
            file: path.map(JsonLines::append).transpose()?,
            buckets: Mutex::default(),
            total: Arc::default(),
            self_test: None,
        })
    }

    /// Hands findings that follow from `test`'s planted defects to it:
    /// they are never the target's.
    pub fn planted_by(mut self, test: Arc<crate::self_test::SelfTest>) -> Self {
        self.self_test = Some(test);
        self
    }

    /// Counts into `total` (shared with the caller) instead of its own counter.
    pub fn counting(mut self, total: Arc<AtomicUsize>) -> Self {
        self.total = total;
        self
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn record(&self, finding: Finding) {
        if self
            .self_test
            .as_ref()
            .is_some_and(|t| t.explains(&finding))
        {
            return;
        }
        if let Some(file) = &self.file {
            self.append(file, &finding);
        }
        self.total.fetch_add(1, Ordering::SeqCst);
        let key = finding.bucket();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets
            .entry(key.clone())
            .or_insert_with(|| Bucket {
                key,
                count: 0,
                first: finding,
            })
            .count += 1;
    }

    /// Appends `finding` to the file. From the first write that fails on,
    /// it goes to stderr as the same line (credentials are redacted in
    /// findings): the run goes on, and stderr holds what the file does not.
    fn append(&self, file: &JsonLines, finding: &Finding) {
        let line = line(finding);
        let failed = match file.write_line(&line) {
            Ok(true) => return,
            Ok(false) => None,
            Err(err) => Some(err),
        };
        // One lock: the warning and the line are not split by another's.
        let mut stderr = std::io::stderr().lock();
        if let Some(err) = failed {
            let path = self
                .path
                .as_deref()
                .unwrap_or(Path::new("the findings file"));
            let _ = writeln!(
                stderr,
                "warning: cannot append to {}: {err}; this finding and every one after it are printed to stderr as JSON lines",
                path.display()
            );
        }
        let _ = stderr.write_all(&line);
    }

    /// The findings that are not in the findings file (each was printed to
    /// stderr), once a write to it failed.
    pub fn unwritten(&self) -> Option<Unwritten> {
        self.file.as_ref().and_then(JsonLines::unwritten)
    }

    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    /// Every bucket, the gravest kinds first ([`FindingKind::ALL`] order).
    pub fn buckets(&self) -> Vec<Bucket> {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<Bucket> = buckets.values().cloned().collect();
        all.sort_by_key(|b| FindingKind::ALL.iter().position(|k| *k == b.first.kind));
        all
    }
}
