//! crosstalk against an API that is not the clinic: other paths, integer
//! ids, another envelope, and cookie or API-key sessions. A tiny in-memory
//! API served by wiremock has one object-level bug (`GET /accounts/{id}`
//! skips the owner check); the scenario finds it, and the owner-checked
//! endpoint stays clean.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crosstalk::executor::{Executor, RunOptions, WAVE};
use crosstalk::findings::{FindingKind, FindingSink};
use crosstalk::plan::{Overrides, Plan};
use crosstalk::safety::Redactor;
use crosstalk::scenario::Scenario;
use crosstalk::transport::{Http, Transport};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[derive(Default)]
struct State {
    accounts: Vec<String>,
    sessions: HashMap<String, usize>,
}

/// The whole API: `POST /accounts`, `POST /sessions`, `GET /accounts/me`,
/// and the faulty `GET /accounts/{id}`. Answers wrap data in `{"data": ...}`.
struct Api(Arc<Mutex<State>>);

impl Api {
    fn session(&self, request: &Request, state: &State) -> Option<usize> {
        let from_cookie = request
            .headers
            .get("cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|c| c.split("; ").find_map(|kv| kv.strip_prefix("sid=")))
            .map(str::to_string);
        let from_key = request
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        from_cookie
            .or(from_key)
            .and_then(|token| state.sessions.get(&token).copied())
    }
}

impl Respond for Api {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap();
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let account = |id: usize, note: &str| json!({"data": {"id": id, "note": note}});
        match (request.method.as_str(), request.url.path()) {
            ("POST", "/accounts") => {
                state
                    .accounts
                    .push(body["note"].as_str().unwrap_or_default().to_string());
                ResponseTemplate::new(201)
                    .set_body_json(json!({"data": {"id": state.accounts.len()}}))
            }
            ("POST", "/sessions") => {
                let id = body["id"].as_u64().unwrap_or(0) as usize;
                let token = format!("tok{}{}", id, uuid::Uuid::new_v4().simple());
                state.sessions.insert(token.clone(), id);
                ResponseTemplate::new(200)
                    .insert_header(
                        "set-cookie",
                        format!("sid={token}; Path=/; HttpOnly").as_str(),
                    )
                    .set_body_json(json!({"data": {"key": token}}))
            }
            ("GET", "/accounts/me") => match self.session(request, &state) {
                Some(id) => {
                    ResponseTemplate::new(200).set_body_json(account(id, &state.accounts[id - 1]))
                }
                None => ResponseTemplate::new(401).set_body_json(json!({"errors": ["sign in"]})),
            },
            ("GET", path) if path.starts_with("/accounts/") => {
                // The bug: any signed-in caller may read any account.
                let id: usize = path["/accounts/".len()..].parse().unwrap_or(0);
                match (
                    self.session(request, &state),
                    state.accounts.get(id.wrapping_sub(1)),
                ) {
                    (Some(_), Some(note)) => {
                        ResponseTemplate::new(200).set_body_json(account(id, note))
                    }
                    _ => ResponseTemplate::new(404)
                        .set_body_json(json!({"errors": ["no such account"]})),
                }
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

fn scenario(auth: &str) -> String {
    format!(
        r#"
[actors.user]
count = 6
auth = {auth}

[[steps]]
name = "create account"
actor = "user"
request = "POST /accounts"
body = {{ note = "{{{{canary}}}} private note" }}
expect = {{ status = 201 }}
capture = {{ account_id = "$.data.id" }}

[[steps]]
name = "sign in"
actor = "user"
request = "POST /sessions"
body = {{ id = "{{{{account_id}}}}" }}
expect = {{ status = 200 }}
capture = {{ key = {{ json = "$.data.key", secret = true }} }}

[[steps]]
name = "read own account"
actor = "user"
request = "GET /accounts/me"
expect = {{ status = 200 }}

[[steps]]
name = "probe another account"
actor = "user"
request = "GET /accounts/{{{{peer.account_id}}}}"
"#
    )
}

async fn run(auth: &str) -> Vec<(String, FindingKind, String)> {
    run_in_waves(auth, WAVE).await
}

/// As [`run`], each batch sent in waves of at most `wave` requests.
async fn run_in_waves(auth: &str, wave: usize) -> Vec<(String, FindingKind, String)> {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(Api(Arc::default()))
        .mount(&server)
        .await;
    let plan = Plan::build(
        &Scenario::from_str("accounts", &scenario(auth)).unwrap(),
        &Overrides::default(),
    )
    .unwrap();
    let transport: Arc<dyn Transport> =
        Arc::new(Http::new(url::Url::parse(&server.uri()).unwrap(), Default::default()).unwrap());
    let sink = Arc::new(FindingSink::new(None).unwrap());
    let options = RunOptions {
        concurrency: 8,
        wave,
        ..RunOptions::new(1, 2)
    };
    Executor::new(
        Arc::new(plan),
        transport,
        sink.clone(),
        Arc::new(Redactor::default()),
        options,
    )
    .run()
    .await;
    sink.buckets()
        .into_iter()
        .map(|b| (b.first.step.clone(), b.first.kind, b.first.summary.clone()))
        .collect()
}

#[tokio::test]
async fn cookie_sessions_integer_ids_and_another_envelope() {
    let found = run("{ cookies = true }").await;
    assert_eq!(found.len(), 1, "{found:#?}");
    let (step, kind, summary) = &found[0];
    assert_eq!(
        (step.as_str(), *kind),
        ("probe another account", FindingKind::Leak)
    );
    assert!(summary.contains("received user#"), "{summary}");
}

/// Over HTTP with cookie sessions, a batch sent in waves of two finds the
/// one leak and nothing else, as a batch sent whole does.
#[tokio::test]
async fn cookie_sessions_sent_in_waves_find_the_same_leak() {
    let found = run_in_waves("{ cookies = true }", 2).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        (found[0].0.as_str(), found[0].1),
        ("probe another account", FindingKind::Leak)
    );
}

#[tokio::test]
async fn api_key_header_sessions() {
    let found = run(r#"{ header = { name = "x-api-key", value = "{{key}}" } }"#).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        (found[0].0.as_str(), found[0].1),
        ("probe another account", FindingKind::Leak)
    );
}
