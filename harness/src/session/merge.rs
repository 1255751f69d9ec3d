//! `crosstalk merge`: the reports of a run's shards (`run --shard K/N`)
//! made into one report and one exit code, as if one process had run.
//!
//! Each shard's JSON report says which shard of which run it is; the merge
//! reads every one under the directories it is given (a CI job's downloaded
//! artifacts), refuses reports of different runs, and sums: requests and
//! detection health per scenario, buckets by key (a leak seen by two
//! shards is one bucket), the findings files into one. A shard with no
//! report is work not done: the merge is incomplete (exit 3) unless a
//! present shard found something.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::executor::RunStats;
use crate::findings::Bucket;
use crate::health::Health;
use crate::report::{Outputs, RunReport};
use crate::shard::{Merged, Part, Shard};

use super::run::{cannot_write, harness_failed, verdict, write_page};
use super::{RunOutcome, SessionError};

/// Directories looked into at most this deep for reports and findings.
const DEPTH: usize = 6;
/// Files looked at, at most, under all the directories.
const FILES: usize = 10_000;
/// A report larger than this is not read (reports hold buckets, not every
/// finding: real ones are far smaller).
const MAX_REPORT: u64 = 256 * 1024 * 1024;

/// A merge of shard reports.
pub struct Merge {
    /// Where the shards' JSON reports and findings directories are.
    pub dirs: Vec<PathBuf>,
    /// The findings of every shard go to `<findings>/<run id>/findings.jsonl`.
    pub findings: PathBuf,
    pub outputs: Outputs,
}

/// One shard's report and the file it came from.
struct ShardReport {
    path: PathBuf,
    report: RunReport,
    part: Part,
}

impl Merge {
    pub fn execute(self) -> Result<RunOutcome, SessionError> {
        self.outputs
            .prepare()
            .map_err(|(path, err)| cannot_write(&path, err))?;
        let files = files_under(&self.dirs)?;
        let shards = shard_reports(&files)?;
        let (run, of) = one_run(&shards)?;
        let present: Vec<usize> = shards.iter().map(|s| s.part.shard.index).collect();
        let missing: Vec<usize> = (1..=of).filter(|k| !present.contains(k)).collect();
        let mut report = merged(&shards);
        report.merged = Some(Merged {
            run,
            of,
            shards: present,
            missing,
        });
        let gathered = gather_findings(&files, &report, &self.findings);
        if let Ok(Some(file)) = &gathered {
            report.findings_file = Some(file.display().to_string());
        }
        let steps = (shards.first()).map_or_else(Vec::new, |s| s.part.steps.clone());
        let written = self.outputs.write(&report, &steps);
        // A missing shard leaves the report incomplete (see its conclusion).
        let mut outcome = verdict(report);
        let problems = (gathered.err().into_iter()).chain(
            written
                .err()
                .map(|(path, err)| cannot_write(&path, err).to_string()),
        );
        harness_failed(&mut outcome, problems.collect());
        write_page(&self.outputs, "merge", &mut outcome);
        Ok(outcome)
    }
}

/// Every file under `dirs` (a file given is itself), in a stable order.
fn files_under(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, SessionError> {
    let mut files = Vec::new();
    for dir in dirs {
        if dir.is_file() {
            files.push(dir.clone());
            continue;
        }
        if !dir.is_dir() {
            return Err(SessionError::Input(format!(
                "{}: no such directory (give the directories holding the shards' reports)",
                dir.display()
            )));
        }
        walk(dir, DEPTH, &mut files)?;
    }
    Ok(files)
}

fn walk(dir: &Path, depth: usize, files: &mut Vec<PathBuf>) -> Result<(), SessionError> {
    let cannot = |err: std::io::Error| {
        SessionError::Input(format!("cannot read directory {}: {err}", dir.display()))
    };
    let mut entries: Vec<PathBuf> = (std::fs::read_dir(dir).map_err(cannot)?)
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if files.len() >= FILES {
            return Err(SessionError::Input(format!(
                "more than {FILES} files under {}: give the directories of the shards' reports",
                dir.display()
            )));
        }
        // Not through links: a loop or a link out of the artifacts is no report.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() && depth > 0 {
            walk(&path, depth - 1, files)?;
        } else if meta.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

/// The JSON files among `files` that are a shard's report, ordered by
/// shard; one report per shard.
fn shard_reports(files: &[PathBuf]) -> Result<Vec<ShardReport>, SessionError> {
    let mut shards: Vec<ShardReport> = Vec::new();
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let Some(report) = read_report(path)? else {
            continue;
        };
        let Some(part) = report.shard.clone() else {
            continue;
        };
        if let Some(other) = shards.iter().find(|s| s.part.shard == part.shard) {
            return Err(SessionError::Input(format!(
                "{} and {} are both reports of shard {}: give each shard's once",
                other.path.display(),
                path.display(),
                part.shard
            )));
        }
        shards.push(ShardReport {
            path: path.clone(),
            report,
            part,
        });
    }
    shards.sort_by_key(|s| s.part.shard.index);
    Ok(shards)
}

/// The crosstalk report in `path`, or `None` when it is another JSON file
/// (not an object with a run id and scenarios); a report that cannot be
/// read is an error, never skipped.
fn read_report(path: &Path) -> Result<Option<RunReport>, SessionError> {
    let bad = |why: String| SessionError::Input(format!("{}: {why}", path.display()));
    let size = std::fs::metadata(path)
        .map_err(|e| bad(e.to_string()))?
        .len();
    if size > MAX_REPORT {
        return Ok(None);
    }
    let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let Ok(serde_json::Value::Object(json)) = serde_json::from_slice(&text) else {
        return Ok(None);
    };
    if !json.contains_key("shard") || !json.contains_key("run_id") {
        return Ok(None);
    }
    serde_json::from_value(serde_json::Value::Object(json))
        .map(Some)
        .map_err(|err| bad(format!("not a shard report crosstalk can read: {err}")))
}

/// The run every report is a shard of, and its number of shards.
fn one_run(shards: &[ShardReport]) -> Result<(String, usize), SessionError> {
    let Some(first) = shards.first() else {
        return Err(SessionError::Input(
            "no shard report among the files given: give the directories holding the JSON reports of `crosstalk run --shard K/N --json FILE`".into(),
        ));
    };
    for other in &shards[1..] {
        let (a, b) = (&first.part, &other.part);
        let differs = if a.run != b.run {
            Some(format!("run `{}` and run `{}`", a.run, b.run))
        } else if a.shard.of != b.shard.of {
            Some(format!("{} and {} shards", a.shard.of, b.shard.of))
        } else if first.report.seed != other.report.seed {
            Some(format!(
                "seed {} and seed {}",
                first.report.seed, other.report.seed
            ))
        } else {
            None
        };
        if let Some(differs) = differs {
            return Err(SessionError::Input(format!(
                "{} and {} are not shards of one run ({differs})",
                first.path.display(),
                other.path.display()
            )));
        }
    }
    Ok((first.part.run.clone(), first.part.shard.of))
}

/// One report of every shard's: per scenario its work summed, buckets by
/// key, baselines as one.
fn merged(shards: &[ShardReport]) -> RunReport {
    let reports: Vec<&RunReport> = shards.iter().map(|s| &s.report).collect();
    let first = reports[0];
    let mut scenarios: Vec<RunStats> = Vec::new();
    for stats in reports.iter().flat_map(|r| &r.scenarios) {
        match scenarios.iter_mut().find(|s| s.scenario == stats.scenario) {
            Some(known) => add_stats(known, stats),
            None => scenarios.push(stats.clone()),
        }
    }
    let mut buckets: Vec<Bucket> = Vec::new();
    for shard in shards {
        for bucket in &shard.report.buckets {
            match buckets.iter_mut().find(|b| b.key == bucket.key) {
                Some(known) => known.count += bucket.count,
                None => {
                    let mut bucket = bucket.clone();
                    let label = &mut bucket.first.observer;
                    *label = observed_on(label, shard.part.shard);
                    bucket.first.summary =
                        format!("on shard {}: {}", shard.part.shard, bucket.first.summary);
                    buckets.push(bucket);
                }
            }
        }
    }
    let union = |of: fn(&RunReport) -> &Vec<String>| {
        let mut all: Vec<String> = reports.iter().flat_map(|r| of(r).clone()).collect();
        all.sort();
        all.dedup();
        all
    };
    // Stale only if no shard produced it.
    let seen: Vec<&String> = buckets.iter().map(|b| &b.key).collect();
    let stale = union(|r| &r.stale)
        .into_iter()
        .filter(|key| !seen.contains(&key))
        .collect();
    let unwritten = reports.iter().filter_map(|r| r.unwritten_findings.clone());
    RunReport {
        run_id: first.run_id.clone(),
        seed: first.seed,
        target: first.target.clone(),
        scenarios,
        total_findings: reports.iter().map(|r| r.total_findings).sum(),
        buckets,
        findings_file: None,
        unwritten_findings: unwritten.reduce(|a, b| crate::findings::Unwritten {
            count: a.count + b.count,
            error: a.error,
        }),
        accepted: union(|r| &r.accepted),
        stale,
        pending_snapshots: union(|r| &r.pending_snapshots),
        coverage: coverage(&reports),
        self_test: None,
        shard: None,
        merged: None,
    }
}

/// An observer's label with its shard: the shards' instances are one
/// run's, and its victim's label already names the victim's shard.
fn observed_on(label: &str, shard: crate::shard::Shard) -> String {
    format!("{label} (shard {shard})")
}

/// `more`'s work added to `to`'s: the shards ran side by side, so the
/// time is the longest one's.
fn add_stats(to: &mut RunStats, more: &RunStats) {
    to.instances += more.instances;
    to.requests += more.requests;
    to.skipped += more.skipped;
    to.transport_errors += more.transport_errors;
    to.stopped += more.stopped;
    to.not_sent += more.not_sent;
    to.not_applicable += more.not_applicable;
    to.probes += more.probes;
    to.retried += more.retried;
    to.gave_up = to.gave_up.take().or(more.gave_up.clone());
    to.elapsed = to.elapsed.max(more.elapsed);
    to.interrupted |= more.interrupted;
    to.foreign_writes
        .extend(more.foreign_writes.iter().cloned());
    add_health(&mut to.health, &more.health);
}

/// What every shard's judges could see: probes summed per actor pair; a
/// shard's blind spot is the run's.
fn add_health(to: &mut Health, more: &Health) {
    for pair in &more.probes {
        let known =
            (to.probes.iter_mut()).find(|p| p.prober == pair.prober && p.owner == pair.owner);
        match known {
            Some(known) => {
                known.sent += pair.sent;
                known.answered += pair.answered;
            }
            None => to.probes.push(pair.clone()),
        }
    }
    to.merged.extend(more.merged.iter().cloned());
    to.unattributed += more.unattributed;
    to.watched_writes += more.watched_writes;
    for reason in &more.blind {
        if !to.blind.contains(reason) {
            to.blind.push(reason.clone());
        }
    }
}

/// The operations some shard reached; unreached, those none did.
fn coverage(reports: &[&RunReport]) -> Option<crate::coverage::Coverage> {
    let all: Vec<&crate::coverage::Coverage> =
        reports.iter().filter_map(|r| r.coverage.as_ref()).collect();
    if all.is_empty() {
        return None;
    }
    let mut reached: Vec<String> = all.iter().flat_map(|c| c.reached.clone()).collect();
    reached.sort();
    reached.dedup();
    let mut unreached: Vec<String> = (all.iter().flat_map(|c| c.unreached.clone()))
        .filter(|op| !reached.contains(op))
        .collect();
    unreached.sort();
    unreached.dedup();
    Some(crate::coverage::Coverage { reached, unreached })
}

/// The shards' findings files (`<run id>/shard-K-of-N/findings.jsonl`
/// under the directories given) appended into one, whole lines each:
/// `None` when no shard's file is there.
fn gather_findings(
    files: &[PathBuf],
    report: &RunReport,
    out_dir: &Path,
) -> Result<Option<PathBuf>, String> {
    let ours = |path: &&PathBuf| {
        let shard_dir = path.parent();
        let run_dir = shard_dir.and_then(Path::parent);
        path.file_name().is_some_and(|n| n == "findings.jsonl")
            && shard_dir
                .and_then(Path::file_name)
                .is_some_and(|n| n.to_string_lossy().starts_with("shard-"))
            && run_dir
                .and_then(Path::file_name)
                .is_some_and(|n| n.to_string_lossy() == report.run_id)
    };
    let mut by_shard: BTreeMap<usize, (Shard, &PathBuf)> = BTreeMap::new();
    for path in files.iter().filter(ours) {
        let name = path.parent().and_then(Path::file_name);
        let name = name
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(shard) = shard_dir(&name) {
            by_shard.entry(shard.index).or_insert((shard, path));
        }
    }
    if by_shard.is_empty() {
        return Ok(None);
    }
    let out = out_dir.join(&report.run_id).join("findings.jsonl");
    let cannot = |err: std::io::Error| format!("cannot write {}: {err}", out.display());
    std::fs::create_dir_all(out.parent().unwrap_or(out_dir)).map_err(cannot)?;
    let mut file = std::fs::File::create(&out).map_err(cannot)?;
    for (shard, path) in by_shard.values() {
        let read = std::fs::File::open(path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        let mut to = std::io::BufWriter::new(&mut file);
        findings_of(std::io::BufReader::new(read), *shard, &mut to).map_err(cannot)?;
    }
    Ok(Some(out))
}

/// `shard-K-of-N`, the directory of a shard's findings.
fn shard_dir(name: &str) -> Option<Shard> {
    let (k, n) = name.strip_prefix("shard-")?.split_once("-of-")?;
    Shard::parse(&format!("{k}/{n}")).ok()
}

/// Copies the findings of `shard` (whole lines; a torn last one is left
/// out), each observer named with its shard.
fn findings_of(
    from: impl std::io::BufRead,
    shard: Shard,
    to: &mut impl std::io::Write,
) -> std::io::Result<()> {
    for line in from.split(b'\n') {
        let Ok(mut finding) = serde_json::from_slice::<serde_json::Value>(&line?) else {
            continue;
        };
        if let Some(serde_json::Value::String(observer)) = finding.get_mut("observer") {
            *observer = observed_on(observer, shard);
        }
        serde_json::to_writer(&mut *to, &finding)?;
        to.write_all(b"\n")?;
    }
    to.flush()
}
