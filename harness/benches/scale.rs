//! Performance figures, each printed beside the reference it is measured
//! against in the same run (machines are noisy; ratios travel):
//!
//! - the shipped suite on the embedded clinic at 1,000 and 10,000 patients:
//!   requests per second, and their ratio;
//! - the peak memory of `crosstalk run --patients 100000` (the command
//!   line, embedded clinic, shipped suite) beside `--patients 10000`'s: the
//!   peak resident set of the child process;
//! - harness CPU per request over HTTP (`crosstalk run --target`, shipped
//!   suite, 2,000 patients) against a bare reqwest client's (64 tasks, JSON
//!   GETs and POSTs, each answer parsed, on one worker thread as the
//!   harness), both against the same served clinic;
//! - the oracle on a 2 KB JSON answer (against parsing it) and on a 10 MB
//!   media body (against one `memmem` pass over it);
//! - `crosstalk fuzz` programs per second, and the cargo-fuzz target's body
//!   (what libFuzzer calls, without its instrumentation) in executions per
//!   second; the cargo-fuzz build itself when a nightly toolchain is there.
//!
//! `cargo bench -p crosstalk --bench scale` (ten minutes and more; `--quick` skips
//! the 10,000- and 100,000-patient runs). The served clinic is this binary started again
//! with `--serve-clinic`, so that its CPU is never counted as the client's.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use crosstalk::canary::{canary, run_id};
use crosstalk::embedded::FuzzTarget;
use crosstalk::executor::{Executor, RunOptions};
use crosstalk::findings::FindingSink;
use crosstalk::oracle::Oracle;
use crosstalk::plan::{Overrides, Plan};
use crosstalk::safety::Redactor;
use crosstalk::transport::{InProcess, Request, Response, Transport};
use crosstalk::world::{Instance, Ledger};

// The allocator the crosstalk binary runs with, so that the in-process
// figures measure what users run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn scenarios() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios"))
}

/// Requests and requests per second of the shipped suite, embedded clinic.
fn suite_rate(runtime: &tokio::runtime::Runtime, patients: usize) -> (u64, f64) {
    let overrides = Overrides {
        population: Some(patients),
        ..Default::default()
    };
    let plans = Plan::load_all(&[scenarios()], &overrides).unwrap();
    runtime.block_on(async {
        let clinic = clinic::Clinic::in_memory(clinic::Faults::none()).unwrap();
        let transport: Arc<dyn Transport> = Arc::new(InProcess::new(clinic.router(), "clinic"));
        let sink = Arc::new(FindingSink::new(None).unwrap());
        let started = Instant::now();
        let mut requests = 0;
        for (i, plan) in plans.into_iter().enumerate() {
            let options = RunOptions::new(1, 100 + i as u64);
            let stats = Executor::new(
                Arc::new(plan),
                transport.clone(),
                sink.clone(),
                Arc::new(Redactor::default()),
                options,
            )
            .run()
            .await;
            requests += stats.requests;
        }
        assert_eq!(sink.total(), 0, "the clean clinic gave findings");
        (requests, requests as f64 / started.elapsed().as_secs_f64())
    })
}

/// Nanoseconds the oracle takes to judge `body` (answered to instance 0 of
/// 10,000; a JSON body already parsed, as the judge hands it over), and
/// nanoseconds `reference` takes on it.
fn oracle_ns(
    body: &[u8],
    content_type: &'static str,
    rounds: u32,
    reference: impl Fn(&[u8]),
) -> (f64, f64) {
    let run = run_id(3);
    let ledger = Ledger::new(
        (0..10_000)
            .map(|i| Instance {
                world: "".into(),
                role: 0,
                index: i,
                label: format!("p#{i}"),
                canary: canary(&run, 3, i as u64),
            })
            .collect(),
    );
    let oracle = Oracle::new(&ledger, 0..ledger.len());
    let request = Request {
        method: http::Method::GET,
        path: "/v1/me/recordings".into(),
        headers: vec![],
        body: Default::default(),
    };
    let response = Response {
        status: 200,
        headers: http::HeaderMap::from_iter([(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        )]),
        body: body.to_vec().into(),
        truncated: false,
    };
    // The judge parses a body once for every judge; the oracle is given it.
    let json = serde_json::from_slice::<serde_json::Value>(body).ok();
    let started = Instant::now();
    for _ in 0..rounds {
        let found = oracle.inspect_parsed(&ledger, 0, &request, &response, json.as_ref());
        assert!(found.is_empty());
    }
    let judged = started.elapsed().as_nanos() as f64 / f64::from(rounds);
    let started = Instant::now();
    for _ in 0..rounds {
        reference(std::hint::black_box(body));
    }
    (
        judged,
        started.elapsed().as_nanos() as f64 / f64::from(rounds),
    )
}

/// A 2 KB JSON list of recordings, each with the receiver's own canary.
fn json_2k() -> Vec<u8> {
    let own = canary(&run_id(3), 3, 0);
    let items: Vec<_> = (0..16)
        .map(|i| serde_json::json!({"id": i, "title": format!("Audio consultation, part {i}: {own} headache"), "mode": "audio", "duration_seconds": 600 + i}))
        .collect();
    serde_json::to_vec(&serde_json::json!({ "items": items })).unwrap()
}

/// 10 MB of media: pseudo-random bytes.
fn media_10m() -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..10 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// User + system CPU seconds of this process, or of its waited-for children.
fn cpu_seconds(who: libc::c_int) -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes the struct it is given.
    unsafe { libc::getrusage(who, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The clinic served by this binary in a child process, and its address.
fn serve_clinic() -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--serve-clinic")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the bench starts again as the clinic");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    (child, line.trim().to_string())
}

/// `measure` against a clinic served for it alone.
fn against_fresh_clinic(measure: impl FnOnce(&str) -> (u64, f64)) -> (u64, f64) {
    let (mut server, base) = serve_clinic();
    let measured = measure(&base);
    let _ = server.kill();
    let _ = server.wait();
    measured
}

/// The (requests, figure) pair with the median figure.
fn median(mut measured: Vec<(u64, f64)>) -> (u64, f64) {
    measured.sort_by(|a, b| a.1.total_cmp(&b.1));
    measured[measured.len() / 2]
}

/// The child's side of [`serve_clinic`]: print the address, serve.
fn clinic_server() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("http://{}", listener.local_addr().unwrap());
        let clinic = clinic::Clinic::in_memory(clinic::Faults::none()).unwrap();
        clinic.serve(listener).await.unwrap();
    });
}

/// Peak resident memory (MiB) and requests of `crosstalk run --patients
/// N`, embedded clinic, shipped suite: a child process, waited for with
/// `wait4` for its own peak alone.
// wait4 reaps the child: std's `wait` would find it gone.
/// `crosstalk run` of the shipped suite with `args`, quiet, its JSON
/// report to `report` and its findings under `dir`.
fn crosstalk_run(args: &[&str], report: &Path, dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_crosstalk"));
    command
        .arg("run")
        .args(args)
        .arg("--json")
        .arg(report)
        .arg("--findings")
        .arg(dir.join("findings"))
        .arg(scenarios())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

#[allow(clippy::zombie_processes)]
fn run_peak_memory(patients: usize, dir: &Path) -> (u64, f64) {
    let report = dir.join(format!("memory-{patients}.json"));
    let child = crosstalk_run(
        &["--seed", "1", "--patients", &patients.to_string()],
        &report,
        dir,
    )
    .spawn()
    .unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 writes only the status and the struct it is given.
    let waited = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(waited, child.id() as libc::pid_t, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the clean clinic gave findings or the run was incomplete ({patients} patients)"
    );
    // ru_maxrss is in KiB on Linux.
    (requests_in(&report), usage.ru_maxrss as f64 / 1024.0)
}

/// This process's peak resident set so far, which a child's counts from.
fn own_peak_mib() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes only the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

/// The requests a run's JSON report counts.
fn requests_in(report: &Path) -> u64 {
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    (report["scenarios"].as_array())
        .expect("the report lists scenarios")
        .iter()
        .map(|s| {
            s["requests"]
                .as_u64()
                .expect("each scenario counts its requests")
        })
        .sum()
}

/// Harness CPU microseconds per request: `crosstalk run --target` in a child.
fn harness_cpu_per_request(base: &str, dir: &Path) -> (u64, f64) {
    let report = dir.join("report.json");
    let before = cpu_seconds(libc::RUSAGE_CHILDREN);
    let args = ["--target", base, "--patients", "2000", "--seed", "1"];
    let status = crosstalk_run(&args, &report, dir).status().unwrap();
    let cpu = cpu_seconds(libc::RUSAGE_CHILDREN) - before;
    assert!(status.success(), "the served clinic gave findings");
    let requests = requests_in(&report);
    (requests, cpu * 1e6 / requests as f64)
}

/// Bare reqwest CPU microseconds per request: 64 tasks, each a patient that
/// signs up, logs in, then reads its profile and books and lists
/// appointments, every answer parsed as JSON. On one worker thread, as
/// `crosstalk` runs against a served target (one thread costs less CPU per
/// request than two, for either).
fn reqwest_cpu_per_request(base: &str) -> (u64, f64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let before = cpu_seconds(libc::RUSAGE_SELF);
    let requests: u64 = runtime.block_on(async {
        let client = reqwest::Client::new();
        let tasks = (0..64).map(|task| {
            let (client, base) = (client.clone(), base.to_string());
            tokio::spawn(async move { bare_patient(&client, &base, task).await })
        });
        let mut total = 0;
        for task in tasks.collect::<Vec<_>>() {
            total += task.await.unwrap();
        }
        total
    });
    let cpu = cpu_seconds(libc::RUSAGE_SELF) - before;
    (requests, cpu * 1e6 / requests as f64)
}

async fn bare_patient(client: &reqwest::Client, base: &str, task: u32) -> u64 {
    let email = format!("bench-{task}-{}@example.test", std::process::id());
    let signup = serde_json::json!({"name": "Bench Patient", "email": email, "password": "bench-password-1", "date_of_birth": "1980-01-01", "phone": "+441234567890"});
    answer(client.post(format!("{base}/v1/patients")).json(&signup)).await;
    let login = serde_json::json!({"email": email, "password": "bench-password-1"});
    let token = answer(client.post(format!("{base}/v1/auth/login")).json(&login)).await;
    let token = token["token"]
        .as_str()
        .expect("a login answers a token")
        .to_string();
    let clinicians = answer(
        client
            .get(format!("{base}/v1/clinicians"))
            .bearer_auth(&token),
    )
    .await;
    let clinician = clinicians[0]["id"]
        .as_str()
        .expect("a clinician")
        .to_string();
    let mut requests = 3;
    for round in 0..300u32 {
        let slot = format!(
            "{}-{:02}-{:02}T{:02}:{:02}:00Z",
            2030 + round / 168,
            1 + task % 12,
            1 + round % 28,
            round % 24,
            task % 60
        );
        let book = serde_json::json!({"clinician_id": clinician, "slot": slot, "reason": "bench"});
        let appointment = format!("{base}/v1/appointments/{}", round + 1);
        answer(
            client
                .post(format!("{base}/v1/appointments"))
                .bearer_auth(&token)
                .json(&book),
        )
        .await;
        answer(client.get(format!("{base}/v1/me")).bearer_auth(&token)).await;
        answer(client.get(appointment).bearer_auth(&token)).await;
        requests += 3;
    }
    requests
}

/// Sends `request` and parses its answer as JSON, as a client would.
async fn answer(request: reqwest::RequestBuilder) -> serde_json::Value {
    let response = request.send().await.unwrap();
    response.json().await.unwrap()
}

/// `crosstalk fuzz` programs per second on the embedded clinic, 20 s.
fn fuzz_programs_per_second(dir: &Path) -> f64 {
    let out = Command::new(env!("CARGO_BIN_EXE_crosstalk"))
        .args(["fuzz", "--time", "20s", "--seed", "1"])
        .arg("--corpus")
        .arg(dir.join("corpus"))
        .arg("--findings")
        .arg(dir.join("fuzz"))
        .arg(scenarios())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    // The last progress line: "  20s  4321 programs (216 execs/s), …".
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains(" programs ("))
        .expect("fuzz prints progress");
    let programs: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    programs / 20.0
}

/// The cargo-fuzz target's body: executions per second over fixed inputs.
fn fuzz_target_executions_per_second() -> f64 {
    let target = FuzzTarget::new(clinic::Faults::none()).unwrap();
    let mut state = 7u64;
    let inputs: Vec<Vec<u8>> = (0..400)
        .map(|_| {
            (0..64)
                .map(|_| {
                    state = crosstalk::canary::mix(state, &[1]);
                    state as u8
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    for input in &inputs {
        assert!(
            target.run(input).is_empty(),
            "the clean clinic gave findings"
        );
    }
    inputs.len() as f64 / started.elapsed().as_secs_f64()
}

/// Whether a nightly toolchain and cargo-fuzz are installed.
fn cargo_fuzz_available() -> bool {
    let available = |args: &[&str]| {
        Command::new("cargo")
            .args(args)
            .output()
            .is_ok_and(|out| out.status.success())
    };
    available(&["+nightly", "--version"]) && available(&["fuzz", "--version"])
}

/// libFuzzer's own figure for the cargo-fuzz build: 20 s from the corpus
/// directories `corpora` (the first one written to).
fn cargo_fuzz_executions_per_second(corpora: &[&Path]) -> Option<String> {
    let out = Command::new("cargo")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(["+nightly", "fuzz", "run", "--sanitizer", "none", "program"])
        .args(corpora)
        .args(["--", "-max_total_time=20"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let last = text.lines().rev().find(|l| l.contains("exec/s:"))?;
    Some(
        last.split("exec/s:")
            .nth(1)?
            .split_whitespace()
            .next()?
            .to_string(),
    )
}

fn main() {
    if std::env::args().any(|a| a == "--serve-clinic") {
        return clinic_server();
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let dir = std::env::temp_dir().join(format!("crosstalk-bench-{}", std::process::id()));
    let runtime = tokio::runtime::Runtime::new().unwrap();

    println!("measure                                        figure        reference       ratio");
    if !quick {
        // First, while this process is small: a child's peak resident set
        // as the kernel counts it starts from what this process held when
        // it spawned the child (after the in-process runs below, 340 MiB).
        let (small_requests, small) = run_peak_memory(10_000, &dir);
        let (large_requests, large) = run_peak_memory(100_000, &dir);
        println!(
            "run peak memory, 100,000 / 10,000 patients (MiB) {large:>6.0}   {small:>13.0}   {:>9.2}   ({large_requests} and {small_requests} requests; goal ≤ 1024 MiB; this process {:.0} MiB)",
            large / small,
            own_peak_mib()
        );
    }
    let (_, small) = suite_rate(&runtime, 1_000);
    if quick {
        println!("run, 1,000 patients (requests/s)            {small:>9.0}");
    } else {
        let (_, large) = suite_rate(&runtime, 10_000);
        println!(
            "run, 10,000 / 1,000 patients (requests/s)   {large:>9.0}   {small:>13.0}   {:>9.2}",
            large / small
        );
    }

    // Each measured three times, alternately, each against a clinic of its
    // own (a clinic's lists grow with what it holds); the medians compared.
    let (mut harness, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        harness.push(against_fresh_clinic(|base| {
            harness_cpu_per_request(base, &dir)
        }));
        bare.push(against_fresh_clinic(reqwest_cpu_per_request));
    }
    let ((harness_requests, harness), (bare_requests, bare)) = (median(harness), median(bare));
    println!(
        "harness / reqwest CPU per request (µs)      {harness:>9.1}   {bare:>13.1}   {:>9.2}   ({harness_requests} and {bare_requests} requests)",
        harness / bare
    );

    let json = json_2k();
    let (judged, parsed) = oracle_ns(&json, "application/json", 20_000, |b| {
        std::hint::black_box(serde_json::from_slice::<serde_json::Value>(b).ok());
    });
    println!(
        "oracle on {} B JSON vs parsing it (µs)    {:>9.2}   {:>13.2}   {:>9.2}   ({:.0} MB/s)",
        json.len(),
        judged / 1e3,
        parsed / 1e3,
        judged / parsed,
        json.len() as f64 / judged * 1e3
    );
    let media = media_10m();
    let finder = memchr::memmem::Finder::new(b"ctxxxxxx");
    let (judged, searched) = oracle_ns(&media, "video/mp4", 10, |b| {
        std::hint::black_box(finder.find(b));
    });
    let gbps = |ns: f64| media.len() as f64 / ns;
    println!(
        "oracle on 10 MB media vs memmem (GB/s)      {:>9.2}   {:>13.2}   {:>9.2}",
        gbps(judged),
        gbps(searched),
        gbps(judged) / gbps(searched)
    );

    let programs = fuzz_programs_per_second(&dir);
    let executions = fuzz_target_executions_per_second();
    println!("fuzz, programs/s                            {programs:>9.0}");
    println!("fuzz target body, executions/s              {executions:>9.0}");
    // From nothing, as libFuzzer starts by default (its inputs stay short
    // for the first seconds), and from the scripted flows' seeds (programs
    // of every step of a scenario).
    let seeds = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/seeds/program"
    ));
    let (empty, seeded) = (dir.join("cargo-fuzz-empty"), dir.join("cargo-fuzz-seeded"));
    let runs = [
        ("an empty corpus", vec![&*empty]),
        ("the seeds", vec![&*seeded, seeds]),
    ];
    if !cargo_fuzz_available() {
        println!("cargo-fuzz: skipped (no nightly toolchain or cargo-fuzz here)");
    } else {
        for (from, corpora) in runs {
            std::fs::create_dir_all(corpora[0]).unwrap();
            let figure = cargo_fuzz_executions_per_second(&corpora);
            let figure = figure.unwrap_or_else(|| "no figure".into());
            println!("cargo-fuzz (--sanitizer none) from {from}, exec/s {figure:>9}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
