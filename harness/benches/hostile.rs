//! Peak memory of a run against hostile bodies: 8 patients each asking for
//! a 200 MiB answer, once with a length announced and once chunked without
//! end. Bodies are read and judged up to `--max-body` (64 MiB by default),
//! so the peak stays near 8 × 64 MiB, never 8 × 200 MiB or more. Prints the
//! process's peak resident memory.
//!
//! `cargo bench -p crosstalk --bench hostile`

use std::path::PathBuf;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use axum::routing::get;
use crosstalk::session::{Contracts, Run, TargetSpec};

const SCENARIO: &str = r#"
[actors.patient]
count = 8

[[steps]]
name = "download"
actor = "patient"
request = "GET /body"
"#;

/// The process's peak resident memory so far, in MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn serve(endless: bool) -> String {
    let app = Router::new().route("/", get(|| async { "ok" })).route(
        "/body",
        get(move || async move {
            let chunk = bytes::Bytes::from(vec![b'x'; 1 << 20]);
            let chunks = (0..if endless { usize::MAX } else { 200 }).map(move |_| chunk.clone());
            let stream = futures::stream::iter(chunks.map(Ok::<_, std::io::Error>));
            let mut response = Body::from_stream(stream).into_response();
            if !endless {
                response
                    .headers_mut()
                    .insert("content-length", (200u64 << 20).into());
            }
            response
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = std::env::temp_dir().join(format!("crosstalk-bench-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file: PathBuf = dir.join("hostile.toml");
    std::fs::write(&file, SCENARIO).unwrap();
    println!("peak before: {:>8.1} MiB", peak_mib());
    for endless in [false, true] {
        let started = Instant::now();
        let outcome = runtime.block_on(async {
            let target = serve(endless).await;
            let run = Run {
                findings: dir.join("findings"),
                contracts: Contracts::Off,
                ..Run::new(vec![file.clone()], TargetSpec::remote(target))
            };
            run.execute().await.unwrap()
        });
        let cut: usize = outcome
            .report
            .buckets
            .iter()
            .filter(|b| b.first.kind == crosstalk::findings::FindingKind::TransportError)
            .map(|b| b.count)
            .sum();
        println!(
            "{:<28} {:>8.1} MiB peak so far, {cut} of 8 answers cut at 64 MiB and judged, {:.1} s",
            if endless {
                "8 × endless chunked body:"
            } else {
                "8 × 200 MiB body:"
            },
            peak_mib(),
            started.elapsed().as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
