//! The `clinic` binary over a real socket: start-up, the catalog listing,
//! bad input, and 200 concurrent clients.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

const CLINIC: &str = env!("CARGO_BIN_EXE_clinic");

/// A `clinic serve --port 0` child process, killed on drop.
struct Served {
    child: Child,
    base: String,
}

impl Served {
    fn start(extra: &[&str]) -> Served {
        let mut child = Command::new(CLINIC)
            .args(["serve", "--port", "0"])
            .args(extra)
            .env_remove(clinic::FAULTS_ENV)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("clinic starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("clinic listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Served { child, base }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn faults_lists_the_catalog_one_line_each() {
    let out = Command::new(CLINIC).arg("faults").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), clinic::Fault::ALL.len(), "{text}");
    for (line, fault) in lines.iter().zip(clinic::Fault::ALL) {
        let (name, description) = line.split_once(' ').unwrap();
        assert_eq!(name, fault.name());
        assert_eq!(description.trim(), fault.description());
    }
}

#[test]
fn an_unknown_fault_is_refused_with_the_catalog_names() {
    let out = Command::new(CLINIC)
        .args(["serve", "--port", "0", "--fault", "switch-owner,nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown fault `nope`") && stderr.contains("media-idor"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_health_openapi_and_json_errors() {
    let served = Served::start(&[]);
    let http = reqwest::Client::new();
    let health = http
        .get(format!("{}/healthz", served.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let doc: Value = http
        .get(format!("{}/openapi.json", served.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(
        doc["paths"]["/v1/consultations/{id}/switch"]["post"].is_object(),
        "switch documented"
    );

    // Bad requests: always a 4xx JSON error, never a 5xx.
    let bad: Vec<(reqwest::Method, &str, Option<&str>)> = vec![
        (reqwest::Method::GET, "/v1/me", None),
        (reqwest::Method::POST, "/v1/patients", Some("{not json")),
        (
            reqwest::Method::POST,
            "/v1/patients",
            Some(r#"{"name": 5}"#),
        ),
        (
            reqwest::Method::POST,
            "/v1/patients",
            Some(
                r#"{"name":"a","email":"nope","date_of_birth":"x","phone":"1","password":"12345678"}"#,
            ),
        ),
        (
            reqwest::Method::POST,
            "/v1/auth/login",
            Some(r#"{"email":"nobody@x.test","password":"wrong"}"#),
        ),
        (reqwest::Method::GET, "/v1/appointments/not-a-number", None),
        (reqwest::Method::GET, "/v1/nowhere", None),
        (reqwest::Method::PUT, "/v1/me", None),
    ];
    for (method, path, body) in bad {
        let mut request = http.request(method.clone(), format!("{}{path}", served.base));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_client_error(), "{method} {path}: {status} {text}");
        let parsed: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
        assert!(parsed["error"]["message"].is_string(), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_in_flight_all_succeed() {
    let served = Served::start(&[]);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let clinicians: Value = http
        .get(format!("{}/v1/clinicians", served.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let clinician = clinicians[0]["id"].as_str().unwrap().to_string();
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (http, base, clinician) = (http.clone(), served.base.clone(), clinician.clone());
        clients.spawn(async move {
            let email = format!("load-{i}@patients.test");
            let signed_up = http
                .post(format!("{base}/v1/patients"))
                .json(&json!({"name": format!("Load {i}"), "email": email, "date_of_birth": "1990-01-01",
                              "phone": "1", "password": "password-1"}))
                .send()
                .await?;
            assert_eq!(signed_up.status(), 201);
            let login: Value = http
                .post(format!("{base}/v1/auth/login"))
                .json(&json!({"email": email, "password": "password-1"}))
                .send()
                .await?
                .json()
                .await?;
            let token = login["token"].as_str().unwrap().to_string();
            let slot = format!("2028-01-01T{:02}:{:02}:00Z", i / 60, i % 60);
            let booked = http
                .post(format!("{base}/v1/appointments"))
                .bearer_auth(&token)
                .json(&json!({"clinician_id": clinician, "slot": slot, "reason": format!("load {i}")}))
                .send()
                .await?;
            assert_eq!(booked.status(), 201);
            let me: Value = http.get(format!("{base}/v1/me")).bearer_auth(&token).send().await?.json().await?;
            assert_eq!(me["email"], email);
            Ok::<_, reqwest::Error>(())
        });
    }
    let mut done = 0;
    while let Some(result) = clients.join_next().await {
        result.expect("client task").expect("client requests");
        done += 1;
    }
    assert_eq!(done, 200);
}
