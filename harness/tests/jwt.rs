//! A JWT API of another shape than the clinic: its tokens carry the
//! account in their claims. The faulty one trusts a token whose header says
//! `alg: none`, so anyone can write someone else's claims. Scripted
//! (`credentials = "unsigned patient#1"`) and fuzzed (the unsigned-claims
//! mutation), the fault is found; the clean API stays clean.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crosstalk::session::{Exit, Fuzz, Run, TargetSpec};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

const KEY: &[u8] = b"test-signing-key";

/// email → (id, password, note)
type Users = HashMap<String, (u64, String, String)>;

#[derive(Clone, Default)]
struct Api {
    users: Arc<Mutex<Users>>,
    trusts_unsigned: bool,
}

fn router(trusts_unsigned: bool) -> Router {
    let api = Api {
        trusts_unsigned,
        ..Api::default()
    };
    Router::new()
        .route("/signup", post(signup))
        .route("/login", post(login))
        .route("/me", get(me))
        .with_state(api)
}

async fn signup(State(api): State<Api>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let mut users = api.users.lock().unwrap();
    let email = body["email"].as_str().unwrap_or_default().to_string();
    if users.contains_key(&email) {
        return (StatusCode::CONFLICT, Json(json!({"error": "taken"})));
    }
    let id = users.len() as u64 + 1;
    let password = body["password"].as_str().unwrap_or_default().to_string();
    let note = body["note"].as_str().unwrap_or_default().to_string();
    users.insert(email, (id, password, note));
    (StatusCode::CREATED, Json(json!({"id": id})))
}

async fn login(State(api): State<Api>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let users = api.users.lock().unwrap();
    let email = body["email"].as_str().unwrap_or_default();
    match users.get(email) {
        Some((_, password, _)) if Some(password.as_str()) == body["password"].as_str() => {
            let claims = json!({"sub": email, "exp": 4_102_444_800u64});
            let token =
                jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(KEY))
                    .unwrap();
            (StatusCode::OK, Json(json!({"token": token})))
        }
        _ => (StatusCode::UNAUTHORIZED, Json(json!({"error": "no"}))),
    }
}

/// The account the bearer token names.
fn subject(api: &Api, headers: &HeaderMap) -> Option<String> {
    let token = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next()?).ok()?).ok()?;
    if api.trusts_unsigned && header["alg"] == "none" {
        // The plausible wrong line: "unsigned tokens come from our own
        // test tooling", so their claims are read as they are.
        let claims = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
        let claims: Value = serde_json::from_slice(&claims).ok()?;
        return claims["sub"].as_str().map(str::to_string);
    }
    let data = jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(KEY),
        &Validation::default(),
    )
    .ok()?;
    data.claims["sub"].as_str().map(str::to_string)
}

async fn me(State(api): State<Api>, headers: HeaderMap) -> (StatusCode, Json<Value>) {
    let Some(email) = subject(&api, &headers) else {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "no"})));
    };
    let users = api.users.lock().unwrap();
    let (id, _, note) = users.get(&email).cloned().unwrap_or_default();
    (
        StatusCode::OK,
        Json(json!({"id": id, "email": email, "note": note})),
    )
}

const ACCOUNTS: &str = r#"
[vars]
password = "pw-for-the-test"

[actors.patient]
count = 2
population = true
auth = { bearer = "{{token}}" }

[[steps]]
name = "sign up"
actor = "patient"
request = "POST /signup"
body = { email = "{{canary}}@jwt.test", password = "{{password}}", note = "{{canary}}: asthma" }
expect = { status = 201 }

[[steps]]
name = "log in"
actor = "patient"
request = "POST /login"
body = { email = "{{canary}}@jwt.test", password = "{{password}}" }
capture = { token = { json = "$.token", secret = true } }

[[steps]]
name = "read own profile"
actor = "patient"
request = "GET /me"
expect = { status = 200 }
"#;

fn suite(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let suite = dir.join("suite");
    std::fs::create_dir_all(&suite).unwrap();
    std::fs::write(suite.join("profile.toml"), format!("{ACCOUNTS}{extra}")).unwrap();
    suite
}

const FORGED: &str = r#"
[[steps]]
name = "read a profile with another's claims, unsigned"
actor = "patient"
request = "GET /me"
credentials = "unsigned patient#1"
instance = 0
expect = { status = 401 }
"#;

async fn run(suite: std::path::PathBuf, url: String) -> (Exit, String) {
    let run = Run {
        contracts: crosstalk::session::Contracts::Off,
        findings: suite.join("../findings"),
        ..Run::new(vec![suite], TargetSpec::remote(url))
    };
    let outcome = run.execute().await.unwrap();
    (outcome.exit, outcome.report.summary())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_with_another_patients_claims_and_no_signature_is_found_where_it_is_trusted() {
    let dir = support::tempdir("jwt-run");
    let suite = suite(&dir, FORGED);
    let (faulty, summary) = run(suite.clone(), support::serve(|| router(true))).await;
    assert_eq!(faulty, Exit::Found);
    assert!(
        summary.contains("patient#0 received patient#1's canary"),
        "{summary}"
    );
    let (clean, summary) = run(suite, support::serve(|| router(false))).await;
    assert_eq!(clean, Exit::Clean, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fuzzer_forges_unsigned_claims_by_itself() {
    let dir = support::tempdir("jwt-fuzz");
    let suite = suite(&dir, "");
    let fuzz = |url: String, programs: u64, name: &str| Fuzz {
        seed: Some(1),
        // Bounded by programs; the time is a ceiling for a loaded machine.
        programs: Some(programs),
        time: Duration::from_secs(3600),
        shrink_time: Duration::from_secs(600),
        max_findings: Some(1),
        corpus: dir.join(name).join("corpus"),
        findings: dir.join(name).join("found"),
        ..Fuzz::new(vec![suite.clone()], TargetSpec::remote(url))
    };
    let found = fuzz(support::serve(|| router(true)), 20_000, "faulty")
        .execute()
        .await
        .unwrap();
    assert_eq!(found.exit, Exit::Found);
    let repro = support::walk(&dir.join("faulty/found"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "toml"))
        .unwrap();
    let text = std::fs::read_to_string(repro).unwrap();
    assert!(text.contains("unsigned patient#"), "{text}");
    let clean = fuzz(support::serve(|| router(false)), 300, "clean")
        .execute()
        .await
        .unwrap();
    assert_eq!(clean.exit, Exit::Clean);
}
