//! The clinic's document read as a contract, the way Schemathesis reads it:
//! every status an operation answers is documented for it, every body
//! validates against the schema documented for its status and content
//! type, and a request body the document accepts is never refused as a bad
//! request (one it refuses always is a 4xx).

use std::collections::BTreeSet;

use axum::http::Method;
use serde_json::Value;

use crate::support::{Api, Reply, User};

/// One request a test sends, and why.
pub struct Call<'a> {
    pub why: String,
    pub method: Method,
    /// The documented path, such as `/v1/appointments/{id}`.
    pub template: String,
    pub path: String,
    pub caller: Option<&'a User>,
    pub body: Option<Value>,
}

impl<'a> Call<'a> {
    pub fn new(why: impl Into<String>, method: Method, template: &str) -> Self {
        Call {
            why: why.into(),
            method,
            template: template.to_string(),
            path: template.to_string(),
            caller: None,
            body: None,
        }
    }

    /// Each `{param}` of the path replaced by `value`, or by each of
    /// `value`'s `/`-separated parts in turn (`ada/17` for
    /// `/v1/patients/{patient_id}/documents/{document_id}`).
    pub fn at(mut self, value: &str) -> Self {
        self.path = fill(&self.template, value);
        self
    }

    pub fn query(mut self, query: &str) -> Self {
        self.path = format!("{}?{query}", self.path);
        self
    }

    pub fn by(mut self, caller: Option<&'a User>) -> Self {
        self.caller = caller;
        self
    }

    pub fn body(mut self, body: Option<Value>) -> Self {
        self.body = body;
        self
    }
}

/// `template` with each `{param}` replaced by `value`, or by each of its
/// `/`-separated parts in turn.
pub fn fill(template: &str, value: &str) -> String {
    let parts: Vec<&str> = value.split('/').collect();
    let mut out = String::new();
    let mut rest = template;
    let mut n = 0;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').unwrap() + open;
        out.push_str(&rest[..open]);
        out.push_str(parts[n.min(parts.len() - 1)]);
        n += 1;
        rest = &rest[close + 1..];
    }
    out + rest
}

pub struct Contract {
    pub doc: Value,
}

impl Contract {
    pub async fn of(api: &Api) -> Contract {
        let reply = api.call(Method::GET, "/openapi.json", None, None).await;
        Contract { doc: reply.json() }
    }

    /// Every documented `(method, path)`.
    pub fn operations(&self) -> Vec<(Method, String)> {
        let mut all = Vec::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                all.push((method, path.clone()));
            }
        }
        all
    }

    pub fn operation(&self, method: &Method, template: &str) -> &Value {
        let op = &self.doc["paths"][template][method.as_str().to_lowercase()];
        assert!(op.is_object(), "{method} {template} is not documented");
        op
    }

    /// The type of the path parameters (`integer` or `string`).
    pub fn path_type(&self, method: &Method, template: &str) -> Option<&str> {
        let params = self.operation(method, template)["parameters"].as_array()?;
        let path = params.iter().find(|p| p["in"] == "path")?;
        path["schema"]["type"].as_str()
    }

    /// The JSON request body's schema, `$ref` followed.
    pub fn request_schema(&self, method: &Method, template: &str) -> Option<&Value> {
        let op = self.operation(method, template);
        let schema = op.get("requestBody")?["content"]["application/json"].get("schema")?;
        Some(self.resolve(schema))
    }

    fn resolve<'v>(&'v self, schema: &'v Value) -> &'v Value {
        match schema["$ref"].as_str() {
            Some(pointer) => self.doc.pointer(pointer.trim_start_matches('#')).unwrap(),
            None => schema,
        }
    }

    /// Why `value` breaks `schema` (with the document's components), if it does.
    pub fn refusal(&self, schema: &Value, value: &Value) -> Option<String> {
        let mut schema = schema.clone();
        schema["components"] = self.doc["components"].clone();
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("the document's schema compiles: {e}"));
        let error = validator.iter_errors(value).next()?;
        Some(format!("{} at `{}`", error, error.instance_path()))
    }

    /// Every way `reply` to `call` breaks the document.
    pub fn breaches(&self, call: &Call<'_>, reply: &Reply) -> Vec<String> {
        let op = self.operation(&call.method, &call.template);
        let mut found = Vec::new();
        let status = reply.status.as_str();
        match op["responses"].get(status) {
            None => found.push(format!("undocumented {status}")),
            Some(response) => found.extend(self.body_breach(response, reply)),
        }
        found.extend(self.request_breach(op, call, reply));
        found
    }

    /// The answer's body against the schema of its status and content type.
    fn body_breach(&self, response: &Value, reply: &Reply) -> Option<String> {
        let Some(content) = response.get("content") else {
            return (!reply.text.is_empty()).then(|| "a body where none is documented".into());
        };
        let media = reply.content_type.split(';').next().unwrap().trim();
        let Some(documented) = content.get(media) else {
            return Some(format!("content type `{media}` is not documented"));
        };
        let body = if media == "application/json" {
            match serde_json::from_str(&reply.text) {
                Ok(body) => body,
                Err(e) => return Some(format!("not JSON ({e})")),
            }
        } else {
            Value::String(reply.text.clone())
        };
        let refused = self.refusal(&documented["schema"], &body)?;
        Some(format!("body breaks its schema: {refused}"))
    }

    /// A body the document accepts is never a 400; one it refuses is a 4xx.
    fn request_breach(&self, op: &Value, call: &Call<'_>, reply: &Reply) -> Option<String> {
        let request = op.get("requestBody")?;
        let refused = match &call.body {
            Some(body) => self.refusal(&request["content"]["application/json"]["schema"], body),
            None => (request["required"] == true).then(|| "no body".to_string()),
        };
        match refused {
            None if reply.status == 400 => Some("a request the document accepts got 400".into()),
            Some(why) if !reply.status.is_client_error() => Some(format!(
                "a request the document refuses ({why}) got {}",
                reply.status
            )),
            _ => None,
        }
    }
}

/// Sends calls, judges each answer against the contract and keeps every
/// breach, so that one run reports them all.
pub struct Audit<'a> {
    pub api: &'a Api,
    pub contract: &'a Contract,
    breaches: Vec<String>,
    pub covered: BTreeSet<(Method, String)>,
}

impl<'a> Audit<'a> {
    pub fn new(api: &'a Api, contract: &'a Contract) -> Self {
        Audit {
            api,
            contract,
            breaches: Vec::new(),
            covered: BTreeSet::new(),
        }
    }

    pub async fn send(&mut self, call: Call<'_>) -> Reply {
        let reply = (self.api)
            .call(
                call.method.clone(),
                &call.path,
                call.caller,
                call.body.clone(),
            )
            .await;
        for breach in self.contract.breaches(&call, &reply) {
            self.breaches.push(format!(
                "{} {} ({}): {breach}\n    sent {} -> {} {}",
                call.method,
                call.template,
                call.why,
                call.body
                    .as_ref()
                    .map_or("no body".into(), Value::to_string),
                reply.status,
                reply.text
            ));
        }
        self.covered.insert((call.method, call.template));
        reply
    }

    /// Panics with every breach found.
    pub fn finish(self) {
        assert!(
            self.breaches.is_empty(),
            "{} answers break the document:\n{}",
            self.breaches.len(),
            self.breaches.join("\n")
        );
    }
}
