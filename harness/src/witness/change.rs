//! What differs between two reads of the same thing: the status, else
//! each JSON leaf by its path (a list of another length, or a body that is
//! not JSON, as a whole).

use std::sync::OnceLock;

use bytes::Bytes;
use serde_json::Value;

use crate::transport::Response;

/// What one read answered, as the witness compares it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub status: u16,
    body: Bytes,
    json: OnceLock<Option<Value>>,
}

impl Snapshot {
    pub fn of(response: &Response) -> Snapshot {
        Snapshot {
            status: response.status,
            body: response.body.clone(),
            json: OnceLock::new(),
        }
    }

    /// The body as JSON, parsed when first asked for: most reads equal the
    /// one before byte for byte and are never parsed.
    pub fn json(&self) -> Option<&Value> {
        (self.json)
            .get_or_init(|| serde_json::from_slice(&self.body).ok())
            .as_ref()
    }
}

/// One difference between two reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `status`, or a JSONPath such as `$.items[0].status`.
    pub path: String,
    /// The path with array indices as `[*]`.
    pub pattern: String,
    pub before: String,
    pub after: String,
}

/// What differs between `before` and `after`: the status, else each JSON
/// leaf (an array of another length or a non-JSON body as a whole).
pub fn changes(before: &Snapshot, after: &Snapshot) -> Vec<Change> {
    let mut out = Vec::new();
    if before.status != after.status {
        out.push(Change {
            path: "status".into(),
            pattern: "status".into(),
            before: before.status.to_string(),
            after: after.status.to_string(),
        });
        return out;
    }
    if before.body == after.body {
        return out;
    }
    match (before.json(), after.json()) {
        (Some(a), Some(b)) => diff(a, b, "$".into(), "$".into(), &mut out),
        _ => out.push(Change {
            path: "body".into(),
            pattern: "body".into(),
            before: format!("{} bytes", before.body.len()),
            after: format!("{} bytes", after.body.len()),
        }),
    }
    out
}

fn diff(a: &Value, b: &Value, path: String, pattern: String, out: &mut Vec<Change>) {
    // Most reads are unchanged: compare before naming any path.
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let (v, w) = (x.get(key), y.get(key));
                if v == w {
                    continue;
                }
                let (p, q) = (format!("{path}.{key}"), format!("{pattern}.{key}"));
                match (v, w) {
                    (Some(v), Some(w)) => diff(v, w, p, q, out),
                    (v, w) => out.push(change(p, q, v, w)),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate().filter(|(_, (v, w))| v != w) {
                diff(v, w, format!("{path}[{i}]"), format!("{pattern}[*]"), out);
            }
        }
        _ => out.push(change(path, pattern, Some(a), Some(b))),
    }
}

fn change(path: String, pattern: String, a: Option<&Value>, b: Option<&Value>) -> Change {
    let show = |v: Option<&Value>| match v {
        None => "absent".to_string(),
        Some(Value::Array(items)) => format!("{} item(s)", items.len()),
        Some(Value::Object(_)) => "an object".to_string(),
        Some(v) => crate::judge::truncate(&v.to_string(), 80),
    };
    Change {
        before: show(a),
        after: show(b),
        path,
        pattern,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snap(status: u16, json: Value) -> Snapshot {
        Snapshot {
            status,
            body: Bytes::from(json.to_string()),
            json: OnceLock::from(Some(json)),
        }
    }

    #[test]
    fn changes_name_each_changed_leaf_and_a_status_alone() {
        let before = snap(
            200,
            json!({"status": "booked", "items": [{"a": 1}, {"a": 2}]}),
        );
        let after = snap(
            200,
            json!({"status": "cancelled", "items": [{"a": 1}, {"a": 3}]}),
        );
        let found = changes(&before, &after);
        let paths: Vec<&str> = found.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["$.items[1].a", "$.status"]);
        assert_eq!(found[1].before, "\"booked\"");
        assert_eq!(found[0].pattern, "$.items[*].a");
        assert!(changes(&before, &before.clone()).is_empty());
        let gone = changes(&before, &snap(404, json!({"error": "not_found"})));
        assert_eq!(gone.len(), 1);
        assert_eq!(
            (gone[0].before.as_str(), gone[0].after.as_str()),
            ("200", "404")
        );
    }

    #[test]
    fn a_list_of_another_length_is_one_change() {
        let before = snap(200, json!([{"id": 1}, {"id": 2}]));
        let after = snap(200, json!([{"id": 1}]));
        let found = changes(&before, &after);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].before.as_str(), found[0].after.as_str()),
            ("2 item(s)", "1 item(s)")
        );
    }
}
