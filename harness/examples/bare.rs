#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
fn cpu_seconds(who: libc::c_int) -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes the struct it is given.
    unsafe { libc::getrusage(who, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
fn reqwest_cpu_per_request(base: &str) -> (u64, f64) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
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
async fn answer(request: reqwest::RequestBuilder) -> serde_json::Value {
    let response = request.send().await.unwrap();
    response.json().await.unwrap()
}

fn main() {
    let base = std::env::args().nth(1).unwrap();
    let u0 = cpu(libc::RUSAGE_SELF);
    let (n, c) = reqwest_cpu_per_request(&base);
    let u1 = cpu(libc::RUSAGE_SELF);
    println!(
        "bare req={n} cpu={c:.1}us user={:.1}us sys={:.1}us",
        (u1.0 - u0.0) * 1e6 / n as f64,
        (u1.1 - u0.1) * 1e6 / n as f64
    );
}
fn cpu(who: libc::c_int) -> (f64, f64) {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}
