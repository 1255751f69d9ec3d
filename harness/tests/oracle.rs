//! The oracle against real HTTP responses served by wiremock: leaks in every
//! encoding are found; clean responses, coincidences and echoes are not.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crosstalk::canary::{Encoding, canary, run_id};
use crosstalk::oracle::{Evidence, Marker, Oracle};
use crosstalk::transport::{Http, Request, Transport};
use crosstalk::world::{Instance, Kind, Ledger};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ALICE: usize = 0;
const BOB: usize = 1;

/// Two patients; Bob owns appointment 42 and the patient id below.
struct World {
    ledger: Ledger,
    oracle: Oracle,
    server: MockServer,
    http: Http,
}

const BOB_PATIENT_ID: &str = "9b2f7c1e-2d4a-4a8e-9f0e-6c1d2b3a4f50";

fn appointment_kind() -> Kind {
    let mut siblings: Vec<String> = ["id", "patient_id", "slot", "reason", "status"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    siblings.sort();
    Kind {
        var: "appointment_id".into(),
        key: Some("id".into()),
        siblings,
        generated: false,
    }
}

impl World {
    async fn new() -> World {
        let run = run_id(11);
        let instances = (0..2)
            .map(|i| Instance {
                world: "".into(),
                role: 0,
                index: i,
                label: format!("patient#{i}"),
                canary: canary(&run, 11, i as u64),
            })
            .collect();
        let ledger = Ledger::new(instances);
        ledger.capture(BOB, "42".into(), appointment_kind(), false);
        ledger.capture(
            BOB,
            BOB_PATIENT_ID.into(),
            Kind {
                var: "patient_id".into(),
                key: Some("id".into()),
                siblings: vec![],
                generated: false,
            },
            false,
        );
        let oracle = Oracle::new(&ledger, 0..ledger.len());
        let server = MockServer::start().await;
        let http = Http::new(url::Url::parse(&server.uri()).unwrap(), Default::default()).unwrap();
        World {
            ledger,
            oracle,
            server,
            http,
        }
    }

    fn bob_canary(&self) -> String {
        self.ledger.instance(BOB).canary.clone()
    }

    /// Serves `response` at `route` and returns what Alice's request to it shows her.
    async fn alice_gets(
        &self,
        route: &str,
        response: ResponseTemplate,
        sent_path: &str,
        sent_body: &str,
    ) -> Vec<Evidence> {
        Mock::given(method("GET"))
            .and(path(route))
            .respond_with(response)
            .mount(&self.server)
            .await;
        let request = Request {
            method: http::Method::GET,
            path: sent_path.to_string(),
            headers: vec![],
            body: bytes::Bytes::from(sent_body.to_string()),
        };
        let response = self.http.send(&request).await.expect("wiremock answers");
        self.oracle
            .inspect(&self.ledger, ALICE, &request, &response)
    }
}

fn canary_encodings(found: &[Evidence]) -> Vec<(usize, Encoding, String)> {
    found
        .iter()
        .filter_map(|e| match e.what {
            Marker::Canary { encoding } => Some((e.victim, encoding, e.location.clone())),
            Marker::Identifier { .. } => None,
        })
        .collect()
}

#[tokio::test]
async fn finds_a_canary_in_a_json_field_with_its_path() {
    let w = World::new().await;
    let body =
        json!({"items": [{"title": "mine"}, {"title": format!("Audio call: {}", w.bob_canary())}]});
    let found = w
        .alice_gets(
            "/r",
            ResponseTemplate::new(200).set_body_json(body),
            "/r",
            "",
        )
        .await;
    assert_eq!(
        canary_encodings(&found),
        vec![(BOB, Encoding::Plain, "body $.items[1].title".to_string())]
    );
    assert_eq!(found[0].location_pattern, "body $.items[*].title");
}

#[tokio::test]
async fn finds_a_case_folded_canary() {
    let w = World::new().await;
    let body = json!({"name": w.bob_canary().to_uppercase()});
    let found = w
        .alice_gets(
            "/r",
            ResponseTemplate::new(200).set_body_json(body),
            "/r",
            "",
        )
        .await;
    assert_eq!(
        canary_encodings(&found),
        vec![(BOB, Encoding::Plain, "body $.name".to_string())]
    );
}

#[tokio::test]
async fn finds_a_json_escaped_canary() {
    let w = World::new().await;
    let escaped: String = w
        .bob_canary()
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let raw = format!(r#"{{"note": "{escaped}"}}"#);
    let found = w
        .alice_gets(
            "/r",
            ResponseTemplate::new(200).set_body_raw(raw, "application/json"),
            "/r",
            "",
        )
        .await;
    assert_eq!(
        canary_encodings(&found),
        vec![(BOB, Encoding::JsonEscaped, "body $.note".to_string())]
    );
}

#[tokio::test]
async fn finds_a_url_encoded_canary_in_a_header() {
    let w = World::new().await;
    let encoded: String = format!("name={} x", w.bob_canary())
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect();
    let response =
        ResponseTemplate::new(302).insert_header("location", format!("/search?{encoded}").as_str());
    let found = w.alice_gets("/r", response, "/r", "").await;
    assert_eq!(
        canary_encodings(&found),
        vec![(BOB, Encoding::UrlEncoded, "header location".to_string())]
    );
}

#[tokio::test]
async fn finds_a_canary_inside_a_jwt_payload() {
    let w = World::new().await;
    let payload = URL_SAFE_NO_PAD.encode(json!({"sub": "x", "name": w.bob_canary()}).to_string());
    let jwt = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.c2lnbmF0dXJl");
    let found = w
        .alice_gets(
            "/r",
            ResponseTemplate::new(200).set_body_json(json!({"token": jwt})),
            "/r",
            "",
        )
        .await;
    assert_eq!(
        canary_encodings(&found),
        vec![(BOB, Encoding::Base64, "body $.token".to_string())]
    );
}

#[tokio::test]
async fn finds_a_canary_in_binary_media_and_in_error_bodies() {
    let w = World::new().await;
    let mut media = vec![0u8, 159, 146, 150, 255, 0, 1];
    media.extend_from_slice(w.bob_canary().as_bytes());
    media.extend_from_slice(&[0, 0, 7]);
    let found = w
        .alice_gets(
            "/media",
            ResponseTemplate::new(200).set_body_raw(media, "audio/ogg"),
            "/media",
            "",
        )
        .await;
    assert_eq!(
        canary_encodings(&found),
        vec![(BOB, Encoding::Plain, "body".to_string())]
    );

    let error = json!({"error": {"message": format!("slot taken by {}", w.bob_canary())}});
    let found = w
        .alice_gets(
            "/err",
            ResponseTemplate::new(409).set_body_json(error),
            "/err",
            "",
        )
        .await;
    assert_eq!(
        canary_encodings(&found),
        vec![(BOB, Encoding::Plain, "body $.error.message".to_string())]
    );
}

#[tokio::test]
async fn finds_an_owned_id_as_a_json_value_of_its_kind() {
    let w = World::new().await;
    let body = json!([{"id": 42, "patient_id": "someone", "slot": "s", "reason": "r", "status": "booked"}]);
    let found = w
        .alice_gets(
            "/list",
            ResponseTemplate::new(200).set_body_json(body),
            "/list",
            "",
        )
        .await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].victim, BOB);
    assert_eq!(
        found[0].what,
        Marker::Identifier {
            var: "appointment_id".into()
        }
    );
    assert_eq!(found[0].location, "body $[0].id");

    let body = json!({"appointment_id": 42});
    let found = w
        .alice_gets(
            "/ref",
            ResponseTemplate::new(200).set_body_json(body),
            "/ref",
            "",
        )
        .await;
    assert_eq!(
        found.len(),
        1,
        "a leaf named like the variable is that kind: {found:?}"
    );

    let body = json!({"owner": BOB_PATIENT_ID});
    let found = w
        .alice_gets(
            "/uuid",
            ResponseTemplate::new(200).set_body_json(body),
            "/uuid",
            "",
        )
        .await;
    assert_eq!(
        found.len(),
        1,
        "a long id is evidence under any key: {found:?}"
    );
}

#[tokio::test]
async fn a_clean_response_shows_nothing() {
    let w = World::new().await;
    let alice = w.ledger.instance(ALICE).canary.clone();
    let body = json!({"name": alice, "items": [{"id": 7, "title": "Alice's own"}], "count": 42});
    let found = w
        .alice_gets(
            "/mine",
            ResponseTemplate::new(200).set_body_json(body),
            "/mine",
            "",
        )
        .await;
    assert!(found.is_empty(), "{found:?}");
}

#[tokio::test]
async fn a_foreign_id_inside_another_number_or_string_is_no_leak() {
    let w = World::new().await;
    let body = json!({"id": 420, "ref": "a42b", "total": 4242, "note": "room 42"});
    let found = w
        .alice_gets(
            "/r",
            ResponseTemplate::new(200).set_body_json(body),
            "/r",
            "",
        )
        .await;
    assert!(found.is_empty(), "{found:?}");
}

#[tokio::test]
async fn an_id_of_another_kind_with_the_same_value_is_no_leak() {
    let w = World::new().await;
    // Alice's own recording 42: same number as Bob's appointment 42.
    let body = json!({"items": [{"id": 42, "consultation_id": "c", "mode": "audio", "leg": 1, "title": "t"}]});
    let found = w
        .alice_gets(
            "/recordings",
            ResponseTemplate::new(200).set_body_json(body),
            "/recordings",
            "",
        )
        .await;
    assert!(found.is_empty(), "{found:?}");
}

#[tokio::test]
async fn the_observers_own_request_echoed_back_is_no_leak() {
    let w = World::new().await;
    let bob = w.bob_canary();
    // Alice asked for appointment 42 and sent Bob's canary (say, an email she typed).
    let body = json!({"error": {"message": format!("appointment 42 not found; {bob} is not yours")}, "id": 42});
    let sent_body = json!({"email": format!("{bob}@patients.test")}).to_string();
    let found = w
        .alice_gets(
            "/v1/appointments/42",
            ResponseTemplate::new(404).set_body_json(body.clone()),
            "/v1/appointments/42",
            &sent_body,
        )
        .await;
    assert!(found.is_empty(), "{found:?}");

    // The same response to a request that did not carry them is a leak.
    let found = w
        .alice_gets(
            "/v1/other",
            ResponseTemplate::new(404).set_body_json(body),
            "/v1/other",
            "",
        )
        .await;
    assert!(!found.is_empty());
}

#[tokio::test]
async fn granted_visibility_is_no_leak() {
    let w = World::new().await;
    let body = json!({"reason": w.bob_canary()});
    w.ledger.grant(ALICE, BOB);
    let found = w
        .alice_gets(
            "/r",
            ResponseTemplate::new(200).set_body_json(body),
            "/r",
            "",
        )
        .await;
    assert!(found.is_empty(), "{found:?}");
}
