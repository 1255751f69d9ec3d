//! The clinic's OpenAPI document tells the truth, as a spec-driven tool
//! reads it: it parses as OpenAPI 3.1, its operation ids are unique, every
//! parameter sits where the router reads it, the router answers every
//! documented operation and no undocumented method, and every refusal an
//! operation gives (401, 403, 404, 409) is documented.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use axum::http::{Method, StatusCode};
use oas3::spec::ParameterIn;
use serde_json::json;
use support::{Api, User};

async fn spec(api: &Api) -> oas3::Spec {
    let reply = api.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    oas3::from_json(&reply.text).expect("the document parses as OpenAPI 3.1")
}

/// `(path, method, documented statuses)` of every operation.
fn operations(spec: &oas3::Spec) -> Vec<(String, Method, BTreeSet<String>)> {
    spec.operations()
        .map(|(path, method, op)| {
            let documented = op
                .responses
                .clone()
                .unwrap_or_default()
                .into_keys()
                .collect();
            (path, method, documented)
        })
        .collect()
}

/// The path with each `{param}` replaced by `value`.
fn concrete(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').unwrap() + open;
        out.push_str(&rest[..open]);
        out.push_str(value);
        rest = &rest[close + 1..];
    }
    out + rest
}

#[tokio::test]
async fn operation_ids_are_unique_and_parameters_sit_where_the_router_reads_them() {
    let api = Api::new(&[]);
    let spec = spec(&api).await;
    let mut ids = BTreeMap::new();
    for (path, method, op) in spec.operations() {
        let id = op.operation_id.clone().expect("every operation has an id");
        if let Some(other) = ids.insert(id.clone(), format!("{method} {path}")) {
            panic!("operation id `{id}` is used by {other} and {method} {path}");
        }
        let params = op.parameters(&spec).unwrap();
        let in_template: BTreeSet<String> = path
            .split('{')
            .skip(1)
            .map(|p| p.split('}').next().unwrap().to_string())
            .collect();
        let declared: BTreeSet<String> = params
            .iter()
            .filter(|p| p.location == ParameterIn::Path)
            .map(|p| p.name.clone())
            .collect();
        assert_eq!(declared, in_template, "{method} {path}: path parameters");
        for p in params.iter().filter(|p| p.location == ParameterIn::Query) {
            assert_ne!(
                p.required,
                Some(true),
                "{method} {path}: `{}` is optional",
                p.name
            );
        }
    }
    let query = |path: &str, method: Method| -> BTreeSet<String> {
        let op = spec.operation(&method, path).unwrap();
        let params = op.parameters(&spec).unwrap();
        (params.iter())
            .filter(|p| p.location == ParameterIn::Query)
            .map(|p| p.name.clone())
            .collect()
    };
    assert_eq!(
        query("/v1/appointments", Method::GET),
        ["status".to_string()].into()
    );
    assert_eq!(
        query("/v1/me/recordings", Method::GET),
        ["after".to_string(), "limit".to_string()].into()
    );
}

#[tokio::test]
async fn the_schemas_say_what_values_are_accepted() {
    let api = Api::new(&[]);
    let reply = api.call(Method::GET, "/openapi.json", None, None).await;
    let doc = reply.json();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["BookRequest"]["properties"]["slot"]["format"],
        "date-time"
    );
    assert_eq!(schemas["Mode"]["enum"], json!(["audio", "video"]));
    assert_eq!(
        schemas["ModeRequest"]["properties"]["mode"]["$ref"],
        "#/components/schemas/Mode"
    );
    let change =
        &doc["paths"]["/v1/me"]["patch"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(change["$ref"], "#/components/schemas/ProfileChange");
    let fields: BTreeSet<&str> = schemas["ProfileChange"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, ["email", "name", "phone"].into());
}

#[tokio::test]
async fn the_auth_operations_document_their_bodies_and_sessions() {
    let api = Api::new(&[]);
    let doc = api
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .json();
    let schemas = &doc["components"]["schemas"];
    let properties = |schema: &str| -> BTreeSet<String> {
        (schemas[schema]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned())
        .collect()
    };
    let required = |schema: &str| schemas[schema]["required"].clone();
    assert_eq!(
        properties("LoginRequest"),
        ["email", "password", "username"].map(String::from).into()
    );
    assert_eq!(required("LoginRequest"), json!(["password"]));
    assert_eq!(
        properties("LoginResponse"),
        ["refresh_token", "role", "token", "user_id"]
            .map(String::from)
            .into()
    );
    assert_eq!(required("RefreshRequest"), json!(["refresh_token"]));
    assert!(properties("SignUpRequest").contains("username"));
    let refresh = &doc["paths"]["/v1/auth/refresh"]["post"];
    assert_eq!(
        refresh["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/RefreshRequest"
    );
    assert_eq!(
        refresh["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/LoginResponse"
    );
    let logout = &doc["paths"]["/v1/auth/logout"]["post"];
    assert_eq!(logout["security"], json!([{"bearer": []}]));
    let statuses: BTreeSet<&str> = (logout["responses"].as_object().unwrap().keys())
        .map(String::as_str)
        .collect();
    assert_eq!(statuses, ["204", "401"].into());
    let count = spec(&api).await.operations().count();
    assert_eq!(count, 28, "the document's operations");
}

#[tokio::test]
async fn the_router_answers_every_documented_operation_and_no_other_method() {
    let api = Api::new(&[]);
    let spec = spec(&api).await;
    let documented = operations(&spec);
    let all = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    let paths: BTreeSet<&String> = documented.iter().map(|(p, ..)| p).collect();
    for path in paths {
        for method in &all {
            let reply = api
                .call(method.clone(), &concrete(path, "1"), None, None)
                .await;
            let is_documented = documented.iter().any(|(p, m, _)| p == path && m == method);
            let unknown = reply.status == StatusCode::METHOD_NOT_ALLOWED
                || reply.text.contains("no such endpoint");
            assert_eq!(
                !unknown, is_documented,
                "{method} {path} answered {} {}",
                reply.status, reply.text
            );
        }
    }
}

#[tokio::test]
async fn every_refusal_an_operation_gives_is_documented() {
    let api = Api::new(&[]);
    let spec = spec(&api).await;
    let patient = api.patient("Ada Lovelace", "1990-01-01").await;
    let clinician = api.clinician(1).await;
    let callers: [(&str, Option<&User>); 3] = [
        ("nobody", None),
        ("a patient", Some(&patient)),
        ("a clinician", Some(&clinician)),
    ];
    let mut undocumented = Vec::new();
    let mut operations = operations(&spec);
    // Logging out ends the callers' sessions: it goes last, so that every
    // other operation is tried with a live one.
    operations.sort_by_key(|(path, ..)| path == "/v1/auth/logout");
    for (path, method, documented) in operations {
        for (who, caller) in callers {
            // An id no one has: a refusal, whoever asks.
            let target = concrete(&path, "99999");
            let body = matches!(method, Method::POST | Method::PATCH).then(|| json!({}));
            let reply = api.call(method.clone(), &target, caller, body).await;
            let status = reply.status.as_u16();
            if [401, 403, 404, 409].contains(&status) && !documented.contains(&status.to_string()) {
                undocumented.push(format!("{method} {path} as {who}: {status}"));
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "undocumented refusals:\n{}",
        undocumented.join("\n")
    );
}
