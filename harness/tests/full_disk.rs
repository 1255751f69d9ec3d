//! A disk that refuses writes mid-run: no finding may be lost (each one the
//! findings file did not take is printed to stderr as its JSON line), the
//! summary must not claim the file holds them, the exit code still says
//! something was found, and `requests.jsonl` keeps whole lines only.
//!
//! Three ways to refuse: `/dev/full` under the library's sink (always), a
//! file size limit on the binary (always: a write past it is cut short,
//! then fails, as on a disk that fills up), and a real 64 KiB tmpfs (only
//! as root where `mount` works; skipped with a message otherwise).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crosstalk::findings::{Finding, FindingKind, FindingSink, RedactedExchange};

mod support;

use support::{tempdir, text};

const CROSSTALK: &str = env!("CARGO_BIN_EXE_crosstalk");

/// The faulty run of the brief: the profile cache leaks in every scenario.
fn leaking_run(findings: &Path) -> Command {
    let mut command = support::command(CROSSTALK);
    command
        .arg("run")
        .arg(support::root().join("scenarios"))
        .args(["--fault", "profile-cache", "--seed", "3", "--no-snapshots"])
        .arg("--findings")
        .arg(findings)
        .env_remove("CROSSTALK_ALLOW_HOSTS");
    command
}

/// Runs `command` with every regular file it writes limited to `bytes`:
/// the write that crosses the limit is cut short and the next one fails
/// (`EFBIG`), as on a disk that fills up. Pipes (stdout, stderr) are not
/// files and are not limited.
fn with_file_size_limit(mut command: Command, bytes: u64) -> Output {
    // SAFETY: setrlimit and signal are async-signal-safe, and the closure
    // touches nothing the parent's other threads hold.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Else the write past the limit kills the process (SIGXFSZ)
            // instead of failing; an ignored signal stays so across exec.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    command.output().expect("crosstalk runs")
}

/// The one run directory under `findings`.
fn run_dir(findings: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(findings)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.into_iter().next().unwrap()
}

/// The findings printed to stderr: its lines that are JSON objects.
fn printed_findings(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The total of the summary's `N finding(s) in M bucket(s)` line.
fn total_in_summary(stdout: &str) -> usize {
    let line = stdout
        .lines()
        .find(|l| l.contains(" finding(s) in ") && l.contains(" bucket(s)"))
        .unwrap_or_else(|| panic!("no findings line in:\n{stdout}"));
    line.split_whitespace().next().unwrap().parse().unwrap()
}

/// Every line of a JSON Lines file, parsed; panics on a torn line.
fn whole_lines(path: &Path) -> Vec<serde_json::Value> {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.is_empty() || bytes.ends_with(b"\n"),
        "{} ends in a torn line: {:?}",
        path.display(),
        String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(200)..])
    );
    text(&bytes)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// What every refused run must show, whatever refused it: exit 1, each
/// finding in the file or on stderr (exactly once), and a summary that
/// says which.
fn assert_nothing_lost(out: &Output, run_dir: &Path, total: usize) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(total > 0, "the faulty run finds leaks:\n{stdout}");
    let in_file = whole_lines(&run_dir.join("findings.jsonl"));
    let printed = printed_findings(&stderr);
    assert!(!printed.is_empty(), "nothing printed to stderr:\n{stderr}");
    assert_eq!(in_file.len() + printed.len(), total, "{stdout}");
    assert!(printed.iter().all(|f| f["kind"].is_string()), "{stderr}");
    assert!(
        printed.iter().any(|f| f["kind"] == "leak"),
        "the leaks are among them"
    );
    assert!(
        stderr.contains("warning: cannot append to"),
        "the first failure is loud:\n{stderr}"
    );
    assert!(
        !stdout.contains("every finding is in"),
        "the summary claims the file holds them all:\n{stdout}"
    );
    let unwritten = format!("{} ", printed.len());
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&unwritten) && l.contains("could not be written to")),
        "the summary says how many are not in the file:\n{stdout}"
    );
}

#[test]
fn a_findings_file_that_takes_nothing_leaves_every_finding_on_stderr_and_exits_1() {
    let dir = tempdir("disk-none");
    let findings = dir.join("findings");
    let out = with_file_size_limit(leaking_run(&findings), 0);
    let total = total_in_summary(&text(&out.stdout));
    let run_dir = run_dir(&findings);
    assert_nothing_lost(&out, &run_dir, total);
    assert_eq!(printed_findings(&text(&out.stderr)).len(), total);
    assert!(
        text(&out.stdout).contains("every finding was printed to stderr as a JSON line"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("requests.jsonl"),
        "the request log's failure is a problem too:\n{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::metadata(run_dir.join("requests.jsonl"))
            .unwrap()
            .len(),
        0
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_write_cut_short_leaves_whole_lines_and_the_rest_on_stderr() {
    let dir = tempdir("disk-short");
    let findings = dir.join("findings");
    // Not a multiple of anything a line could be: every file's last write
    // is cut short mid-line.
    let limit = 24 * 1024 + 7;
    let out = with_file_size_limit(leaking_run(&findings), limit);
    let total = total_in_summary(&text(&out.stdout));
    let run_dir = run_dir(&findings);
    assert_nothing_lost(&out, &run_dir, total);
    assert!(
        !whole_lines(&run_dir.join("findings.jsonl")).is_empty(),
        "the findings before the failure stay in the file"
    );
    let requests = whole_lines(&run_dir.join("requests.jsonl"));
    assert!(!requests.is_empty(), "the requests before it stay too");
    assert!(requests.iter().all(|r| r["seq"].is_u64()), "{requests:?}");
    let size = std::fs::metadata(run_dir.join("requests.jsonl"))
        .unwrap()
        .len();
    assert!(size <= limit, "{size}");
    assert!(
        text(&out.stderr).contains("requests.jsonl"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_full_tmpfs_loses_no_finding_and_tears_no_line() {
    let dir = tempdir("disk-tmpfs");
    let findings = dir.join("findings");
    let Some(_mounted) = Tmpfs::mount(&findings, "64k") else {
        std::fs::remove_dir_all(&dir).unwrap();
        return;
    };
    // The report goes outside the small filesystem: it is the reference.
    let json = dir.join("report.json");
    let out = leaking_run(&findings)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("crosstalk runs");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let total = report["total_findings"].as_u64().unwrap() as usize;
    let run_dir = run_dir(&findings);
    assert_nothing_lost(&out, &run_dir, total);
    let printed = printed_findings(&text(&out.stderr)).len() as u64;
    assert_eq!(
        report["unwritten_findings"]["count"].as_u64(),
        Some(printed)
    );
    let error = report["unwritten_findings"]["error"].as_str().unwrap();
    assert!(error.contains("No space left on device"), "{error}");
    whole_lines(&run_dir.join("requests.jsonl"));
    drop(_mounted);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` on `dir`; `None`, saying why, when not
    /// root or when `mount` refuses (a container without the capability).
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: mounting a small tmpfs needs root");
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs(dir.to_path_buf())),
            Ok(out) => {
                eprintln!("skipped: mount refused: {}", text(&out.stderr).trim());
                None
            }
            Err(err) => {
                eprintln!("skipped: cannot run mount: {err}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A finding as the judges make them, for the library-level test.
fn finding(n: usize) -> Finding {
    Finding {
        kind: FindingKind::Leak,
        run_id: "r".into(),
        seed: 3,
        scenario: "booking".into(),
        step: "read".into(),
        endpoint: "GET /v1/me".into(),
        observer: format!("patient#{n}"),
        victim: Some("patient#0".into()),
        marker: None,
        witnessed: None,
        location: "body $.name".into(),
        location_pattern: "body $.name".into(),
        also: Vec::new(),
        summary: "patient#1 saw patient#0's name".into(),
        exchange: RedactedExchange {
            method: "GET".into(),
            path: "/v1/me".into(),
            request_body: String::new(),
            status: 200,
            response_headers: Vec::new(),
            response_excerpt: String::new(),
        },
        trace: Vec::new(),
        curl: String::new(),
    }
}

#[test]
fn a_sink_over_dev_full_counts_every_finding_it_could_not_write() {
    let sink = FindingSink::new(Some(Path::new("/dev/full"))).unwrap();
    for n in 1..=3 {
        sink.record(finding(n));
    }
    assert_eq!(sink.total(), 3);
    let unwritten = sink.unwritten().expect("the writes failed");
    assert_eq!(unwritten.count, 3, "the first and the two after it");
    assert!(
        unwritten.error.contains("No space left on device"),
        "{}",
        unwritten.error
    );
    assert_eq!(sink.buckets()[0].count, 3, "still counted in the summary");

    let fine = tempdir("disk-fine");
    let sink = FindingSink::new(Some(&fine.join("findings.jsonl"))).unwrap();
    sink.record(finding(1));
    assert_eq!(sink.unwritten(), None);
    assert_eq!(whole_lines(&fine.join("findings.jsonl")).len(), 1);
    std::fs::remove_dir_all(&fine).unwrap();
}
