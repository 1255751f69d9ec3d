//! Coverage: which operations of an API's OpenAPI document a run reached,
//! and which it never did, so a gate can require that every operation was
//! exercised (`crosstalk run --openapi FILE --require-coverage`).
//!
//! An operation is reached when a request with its method and a path its
//! template matches (`/v1/appointments/{id}` matches `/v1/appointments/7`)
//! was answered, a probe's or the witness's included. The document's
//! `servers` may put the API under a path (`/api`): that prefix may lead.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::executor::Issued;

/// The operations of an OpenAPI 3 document.
#[derive(Debug, Clone)]
pub struct Operations {
    operations: Vec<Operation>,
    /// Path prefixes of the document's servers (`/api`), longest first.
    prefixes: Vec<String>,
}

#[derive(Debug, Clone)]
struct Operation {
    method: String,
    template: String,
    /// Each segment of the template: `None` for a `{parameter}`.
    segments: Vec<Option<String>>,
}

/// Reached and unreached operations, as `METHOD /template`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Coverage {
    pub reached: Vec<String>,
    pub unreached: Vec<String>,
}

impl Operations {
    /// Reads a JSON or YAML document; a clear error when it is not one.
    pub fn load(path: &Path) -> Result<Operations, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read OpenAPI document {}: {err}", path.display()))?;
        Operations::parse(&text)
            .map_err(|err| format!("{} is not an OpenAPI 3 document: {err}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Operations, String> {
        let spec = crate::openapi::read(text)?;
        let operations = spec
            .operations()
            .map(|(template, method, _)| Operation {
                method: method.to_string(),
                segments: segments(&template)
                    .map(|s| (!s.starts_with('{')).then(|| s.to_string()))
                    .collect(),
                template,
            })
            .collect();
        let mut prefixes: Vec<String> = (spec.servers.iter())
            .filter_map(|server| server_path(&server.url))
            .collect();
        prefixes.sort_by_key(|p| std::cmp::Reverse(p.len()));
        Ok(Operations {
            operations,
            prefixes,
        })
    }

    pub fn len(&self) -> usize {
        self.operations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// Every operation as `METHOD /template`, in document order.
    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        (self.operations.iter()).map(|op| format!("{} {}", op.method, op.template))
    }

    /// Which operations the answered requests of `order` reached.
    pub fn cover<'a>(&self, order: impl IntoIterator<Item = &'a Issued>) -> Coverage {
        let mut reached = vec![false; self.operations.len()];
        for issued in order.into_iter().filter(|i| i.status.is_some()) {
            if let Some(i) = self.routed(&issued.method, &issued.path) {
                reached[i] = true;
            }
        }
        let mut coverage = Coverage::default();
        for (name, hit) in self.names().zip(reached) {
            match hit {
                true => coverage.reached.push(name),
                false => coverage.unreached.push(name),
            }
        }
        coverage
    }

    /// The operation (`METHOD /template`) a request with `method` to
    /// `path` reaches.
    pub fn operation_of(&self, method: &str, path: &str) -> Option<String> {
        let op = &self.operations[self.routed(method, path)?];
        Some(format!("{} {}", op.method, op.template))
    }

    /// The most specific template the path matches, as servers route it:
    /// a literal segment wins over a template at the same place
    /// (`/users/_debug` is not `/users/{name}`).
    fn routed(&self, method: &str, path: &str) -> Option<usize> {
        let path = path.split('?').next().unwrap_or_default();
        let best = (self.operations.iter().enumerate())
            .filter(|(_, op)| op.method == method && self.matches(op, path))
            .max_by_key(|(_, op)| literals(op));
        best.map(|(i, _)| i)
    }

    fn matches(&self, op: &Operation, path: &str) -> bool {
        let bare = std::iter::once(path);
        let under = (self.prefixes.iter()).filter_map(|p| path.strip_prefix(p.as_str()));
        bare.chain(under).any(|path| {
            let actual: Vec<&str> = segments(path).collect();
            actual.len() == op.segments.len()
                && (actual.iter().zip(&op.segments)).all(|(a, t)| match t {
                    Some(literal) => literal == a,
                    None => !a.is_empty(),
                })
        })
    }
}

/// Which of an operation's segments are literal, first to last: compared,
/// a literal earlier in the path ranks higher.
fn literals(op: &Operation) -> Vec<bool> {
    op.segments.iter().map(Option::is_some).collect()
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// The path of a server URL (`https://host/api` or `/api`), if not `/`.
fn server_path(url: &str) -> Option<String> {
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |at| &rest[at..]),
        None => url,
    };
    let path = path.trim_end_matches('/');
    (!path.is_empty()).then(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(method: &str, path: &str, status: Option<u16>) -> Issued {
        Issued {
            seq: 0,
            scenario: "s".into(),
            instance: "a#0".into(),
            step: "s".into(),
            method: method.into(),
            path: path.into(),
            status,
            batch: 0,
            exchange: None,
        }
    }

    #[test]
    fn an_operation_is_reached_by_an_answered_request_its_template_matches() {
        let doc = r#"
openapi: 3.0.3
info: { title: t, version: "1" }
servers: [{ url: "https://staging.example/api" }]
paths:
  /items/{id}:
    get: { responses: { "200": { description: ok } } }
    delete: { responses: { "204": { description: gone } } }
  /items:
    post: { responses: { "201": { description: made } } }
  /items/{id}/parts:
    get: { responses: { "200": { description: ok } } }
"#;
        let ops = Operations::parse(doc).unwrap();
        assert_eq!(ops.len(), 4);
        let order = [
            issued("GET", "/api/items/7?x=1", Some(200)),
            issued("POST", "/items", Some(201)),
            issued("DELETE", "/api/items/7", None),
            issued("GET", "/api/items/7/parts/9", Some(404)),
        ];
        let coverage = ops.cover(&order);
        assert_eq!(coverage.reached, ["POST /items", "GET /items/{id}"]);
        assert_eq!(
            coverage.unreached,
            ["DELETE /items/{id}", "GET /items/{id}/parts"]
        );
    }

    #[test]
    fn a_literal_segment_wins_over_a_template() {
        let doc = r#"
openapi: 3.0.3
info: { title: t, version: "1" }
paths:
  /users/v1/{username}:
    get: { responses: { "200": { description: ok } } }
  /users/v1/_debug:
    get: { responses: { "200": { description: ok } } }
"#;
        let ops = Operations::parse(doc).unwrap();
        let debug_only = ops.cover(&[issued("GET", "/users/v1/_debug", Some(200))]);
        assert_eq!(debug_only.reached, ["GET /users/v1/_debug"]);
        assert_eq!(debug_only.unreached, ["GET /users/v1/{username}"]);
        let both = ops.cover(&[
            issued("GET", "/users/v1/_debug", Some(200)),
            issued("GET", "/users/v1/ada", Some(200)),
        ]);
        assert!(both.unreached.is_empty(), "{:?}", both.unreached);
    }

    #[test]
    fn what_is_no_document_says_so() {
        let err = Operations::parse("{ \"openapi\": 3 }").unwrap_err();
        assert!(!err.is_empty());
    }
}
