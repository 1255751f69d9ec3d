//! What the document implies beyond the happy path, written as probes
//! right after the step they vary (each named `probe: …`, with no
//! expectation: the oracle and the witness judge its answer):
//!
//! - **A conflict**: a creation documented to answer `409` is sent again
//!   with a peer's values (its shared ids and the unique values its own
//!   answer gave back, such as a slot), the free text the sender's own:
//!   the refusal must not quote the peer's record.
//! - **Mass assignment**: a write whose answer (the read model) has id
//!   fields its body (the write model) lacks is sent again with those
//!   fields set to a peer's ids: a server that assigns them writes, and
//!   echoes, the peer's record.
//! - **A race**: an action on a record that switches its state (a body
//!   field with documented values, such as a call's `mode`) is sent the
//!   other way at the same moment: two changes of shared state at once.
//!
//! The sign-up and login are never varied: an account made by a probe
//! would be nobody's.

use oas3::spec::ObjectSchema;

use super::Generator;
use super::operation::{Op, snake};

/// A step just written, as the probes vary it.
pub(super) struct Written<'a> {
    pub op: &'a Op,
    pub name: &'a str,
    /// The request line's path, with its holes.
    pub path: &'a str,
    /// `body` or `form`, and the fields sent.
    pub body: Option<(&'a str, &'a toml::Table)>,
}

/// What the probes of a step add: captures to the step itself (the
/// values a peer's probe sends), and the probe steps, as text.
#[derive(Default)]
pub(super) struct Probes {
    pub captures: Vec<String>,
    pub steps: String,
}

/// The probes of `step`, a step of the flow.
pub(super) fn probes(g: &mut Generator<'_>, step: &Written<'_>) -> Probes {
    let mut probes = Probes::default();
    let op = step.op;
    let Some((key, body)) = step.body else {
        return probes;
    };
    if g.is_signup(op) || g.is_login(op) {
        return probes;
    }
    // First, so that it joins the step itself.
    if let Some(switched) = switched(g, op, body) {
        let race = write_probe(
            g,
            step,
            "the other way at once",
            (key, &switched),
            "concurrent = true\n",
        );
        probes.steps.push_str(&race);
    }
    if let Some(conflict) = conflict(g, step, body, &mut probes.captures) {
        let conflict = write_probe(g, step, "with a peer's values", (key, &conflict), "");
        probes.steps.push_str(&conflict);
    }
    if let Some(assigned) = mass_assignment(g, op, body) {
        // By one instance: the owner's reads around it are its own.
        let one = "instance = 0\n";
        let assigned = write_probe(g, step, "with a peer's ids added", (key, &assigned), one);
        g.deferred.push_str(&assigned);
    }
    probes
}

/// A creation documented to answer 409, with a peer's shared and unique
/// values; captures the unique ones its answer gives back.
fn conflict(
    g: &mut Generator<'_>,
    step: &Written<'_>,
    body: &toml::Table,
    captures: &mut Vec<String>,
) -> Option<toml::Table> {
    let op = step.op;
    let refuses = (op.operation.responses.as_ref()).is_some_and(|r| r.contains_key("409"));
    if op.method != "POST" || !refuses {
        return None;
    }
    let answer = g.response_schema(op)?;
    let mut varied = body.clone();
    let mut unique = false;
    for (field, value) in varied.iter_mut() {
        let Some(text) = value.as_str() else {
            continue;
        };
        let id = |v: &&str| v.ends_with("_id") && g.known.contains(*v);
        if let Some(var) = lone_hole(text).filter(id) {
            *value = toml::Value::String(format!("{{{{peer.{var}}}}}"));
        } else if is_unique(text) {
            let path = g.field(&answer, |k| k == field)?;
            if !g.known.contains(field) {
                captures.push(format!(
                    "{field} = {{ json = \"{path}\", shared = true, optional = true }}"
                ));
                g.known.insert(field.clone());
            }
            *value = toml::Value::String(format!("{{{{peer.{field}}}}}"));
            unique = true;
        }
    }
    unique.then_some(varied)
}

/// The body with the id fields the answer has and the body's schema
/// lacks, each set to a peer's id of that kind.
fn mass_assignment(g: &Generator<'_>, op: &Op, body: &toml::Table) -> Option<toml::Table> {
    if !matches!(op.method.as_str(), "POST" | "PUT" | "PATCH") {
        return None;
    }
    let (_, write) = g.body_schema(op)?;
    let read = g.response_schema(op)?;
    let mut added = body.clone();
    for field in read.properties.keys() {
        if write.properties.contains_key(field) || body.contains_key(field) {
            continue;
        }
        let var = match field.as_str() {
            "id" => g.schema_resource(op).map(|r| format!("{r}_id")),
            f if f.ends_with("_id") || f.ends_with("Id") => Some(snake(f)),
            _ => None,
        };
        if let Some(var) = var.filter(|v| g.known.contains(v)) {
            let peer = format!("{{{{peer.{var}}}}}");
            added.insert(field.clone(), toml::Value::String(peer));
        }
    }
    (added.len() > body.len()).then_some(added)
}

/// The body switched the other way, when `op` switches a record's state:
/// an action on a record (a POST below an id, documented to answer 200,
/// not to create with 201) whose body takes a field with documented
/// values (`mode`). The other value, so that the step itself still does
/// what the flow needs whichever is served first (a call that starts as
/// audio refuses a switch to audio, never the switch to video).
fn switched(g: &Generator<'_>, op: &Op, body: &toml::Table) -> Option<toml::Table> {
    let responses = op.operation.responses.as_ref()?;
    let action = op.method == "POST" && op.has_params() && !responses.contains_key("201");
    if !action || !responses.contains_key("200") {
        return None;
    }
    let (_, schema) = g.body_schema(op)?;
    schema.properties.iter().find_map(|(field, property)| {
        let property: ObjectSchema = property.resolve(g.spec).ok()?;
        let sent = body.get(field)?;
        let other = (property.enum_values.iter())
            .filter_map(|v| v.as_str())
            .find(|v| sent.as_str() != Some(*v))?;
        let mut switched = body.clone();
        switched.insert(field.clone(), toml::Value::String(other.to_string()));
        Some(switched)
    })
}

/// A probe of `step` sending `body` (`body` or `form`, and its fields),
/// with `more` lines.
fn write_probe(
    g: &mut Generator<'_>,
    step: &Written<'_>,
    what: &str,
    (key, body): (&str, &toml::Table),
    more: &str,
) -> String {
    let name = g.unique_name(&format!("probe: {} {what}", step.name));
    // The step's own headers (a CSRF token, `If-Match`): a probe the
    // server refuses for want of them would test nothing.
    let headers = g.request_headers(step.op);
    let headers = match headers.is_empty() {
        true => String::new(),
        false => format!("headers = {}\n", toml::Value::Table(headers)),
    };
    format!(
        "[[steps]]\nname = \"{name}\"\nactor = \"{}\"\nrequest = \"{} {}\"\n{headers}{key} = {}\n{more}\n",
        g.actor,
        step.op.method,
        step.path,
        toml::Value::Table(body.clone())
    )
}

/// `{{var}}` → `var`.
fn lone_hole(text: &str) -> Option<&str> {
    let inner = text.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let plain = inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    plain.then_some(inner)
}

/// A value no other instance sends, that is no free text: a time or a
/// serial, without the sender's canary.
fn is_unique(text: &str) -> bool {
    (text.contains("{{unique_time}}") || text.contains("{{serial}}"))
        && !text.contains("{{canary}}")
}
