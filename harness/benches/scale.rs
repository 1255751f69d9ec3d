//! Scale figures, printed as ratios measured in one run:
//! - the shipped suite on the embedded clinic at 100 and 1,000 patients
//!   (requests per second);
//! - the oracle's cost per response with 100 and 10,000 instances' canaries
//!   (it should not grow with the number of instances).
//!
//! `cargo bench -p crosstalk --bench scale`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crosstalk::canary::{canary, run_id};
use crosstalk::executor::{Executor, RunOptions};
use crosstalk::findings::FindingSink;
use crosstalk::oracle::Oracle;
use crosstalk::plan::{Overrides, Plan};
use crosstalk::safety::Redactor;
use crosstalk::transport::{InProcess, Request, Response, Transport};
use crosstalk::world::{Instance, Ledger};

fn suite_rate(runtime: &tokio::runtime::Runtime, patients: usize) -> (u64, f64) {
    let overrides = Overrides {
        population: Some(patients),
        ..Default::default()
    };
    let plans = Plan::load_all(
        &[PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scenarios"
        ))],
        &overrides,
    )
    .unwrap();
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

fn oracle_ns_per_response(instances: usize) -> f64 {
    let run = run_id(3);
    let ledger = Ledger::new(
        (0..instances)
            .map(|i| Instance {
                role: 0,
                index: i,
                label: format!("p#{i}"),
                canary: canary(&run, 3, i as u64),
            })
            .collect(),
    );
    let oracle = Oracle::new(&ledger, 0..ledger.len());
    let own = ledger.instance(0).canary.clone();
    let body: String = serde_json::json!({
        "items": (0..20).map(|i| serde_json::json!({"id": i, "title": format!("Audio consultation, part {i}: {own} headache"), "mode": "audio"})).collect::<Vec<_>>()
    })
    .to_string();
    let request = Request {
        method: http::Method::GET,
        path: "/v1/me/recordings".into(),
        headers: vec![],
        body: Default::default(),
    };
    let response = Response {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.into(),
        truncated: false,
    };
    let rounds = 20_000;
    let started = Instant::now();
    for _ in 0..rounds {
        assert!(oracle.inspect(&ledger, 0, &request, &response).is_empty());
    }
    started.elapsed().as_nanos() as f64 / rounds as f64
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (small_requests, small_rate) = suite_rate(&runtime, 100);
    let (large_requests, large_rate) = suite_rate(&runtime, 1_000);
    println!("suite, 100 patients:    {small_requests:>6} requests, {small_rate:>8.0} requests/s");
    println!("suite, 1,000 patients:  {large_requests:>6} requests, {large_rate:>8.0} requests/s");
    println!(
        "throughput ratio 1,000 / 100 patients: {:.2}",
        large_rate / small_rate
    );
    let few = oracle_ns_per_response(100);
    let many = oracle_ns_per_response(10_000);
    println!("oracle, 100 instances:    {few:>8.0} ns per 2 KB response");
    println!("oracle, 10,000 instances: {many:>8.0} ns per 2 KB response");
    println!(
        "oracle cost ratio 10,000 / 100 instances: {:.2}",
        many / few
    );
}
