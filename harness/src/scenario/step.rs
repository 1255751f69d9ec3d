//! A step as written: the request it sends (path, query, headers and one
//! body kind), what it expects, captures and declares about the answer.
//!
//! Every type here derives a JSON Schema as well as serde: the schema that
//! editors check scenario files with is generated from these very types
//! (`crosstalk schema`), so it cannot drift from what `run` accepts.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One request. In `[[steps]]` and `[[teardown]]` it is sent by every
/// instance of `actor`; in `[[setup]]`, and in `[[teardown]]` without an
/// actor, it is sent once for the whole scenario.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Unique within the scenario; findings and reports name steps by it.
    pub name: String,
    /// The actor whose instances send it (absent in `[[setup]]`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub actor: String,
    /// `METHOD /path`, with `{{ }}` holes; a literal `?query` is kept as written.
    pub request: String,
    /// Query parameters, each name and value form-encoded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(with = "BTreeMap<String, Scalar>")]
    pub query: BTreeMap<String, toml::Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A JSON body; strings may hold `{{ }}` holes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub body: Option<toml::Value>,
    /// An `application/x-www-form-urlencoded` body: each value encoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<BTreeMap<String, Scalar>>")]
    pub form: Option<BTreeMap<String, toml::Value>>,
    /// A `multipart/form-data` body: text fields and files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipart: Option<BTreeMap<String, PartSpec>>,
    /// Any other body, with its content type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<ContentSpec>,
    #[serde(default, skip_serializing_if = "Expect::is_empty")]
    pub expect: Expect,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capture: BTreeMap<String, Capture>,
    /// Names another instance once, for the rest of the scenario:
    /// `pick = { victim = "peer" }` (another instance of the same actor) or
    /// `{ doctor = "clinician" }` (an instance of that actor); then
    /// `{{victim.VAR}}` and `credentials = "victim"` in this and later steps.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pick: BTreeMap<String, String>,
    /// The instance owning this value may see the sender's data from now on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_to: Option<String>,
    /// Only this instance of the actor sends the step (reproductions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<usize>,
    /// Send with another identity's credentials: `"none"`, an instance
    /// (`"patient#1"`), a pick (`"victim"`), or `"unsigned patient#1"`.
    /// The response is judged as seen by that identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// Run at the same moment as the previous step.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub concurrent: bool,
    /// `false`: never probe this step (send it again as identities that
    /// may not see the sender's data named in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<bool>,
    /// JSONPaths in the answer whose values change on their own (a
    /// timestamp, a counter): the integrity witness ignores them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volatile: Vec<String>,
    /// JSONPaths in the answer whose values anyone may see (a public
    /// directory's e-mails): never evidence of a leak.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public: Vec<String>,
}

impl Step {
    /// The body keys the step sets (at most one is allowed).
    pub fn body_kinds(&self) -> Vec<&'static str> {
        [
            ("body", self.body.is_some()),
            ("form", self.form.is_some()),
            ("multipart", self.multipart.is_some()),
            ("raw", self.raw.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// A string (with holes), number or boolean; a list repeats the name.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum Scalar {
    Text(String),
    Number(f64),
    Flag(bool),
    Many(Vec<Scalar>),
}

/// One field of a multipart body: text (with holes), or a table for a file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(
    untagged,
    expecting = "a text field such as \"{{canary}} note\", or a table such as { file = \"scan.png\", content_type = \"image/png\", size = 4096 }"
)]
pub enum PartSpec {
    Text(String),
    File(ContentSpec),
}

/// Bytes to send: `text` (with holes), `base64`, or `size` generated bytes
/// that carry the sender's canary (so a file seen by another patient is
/// caught).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentSpec {
    /// The file name a multipart part declares (with holes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// What the answer must be. A wrong status is the one finding: the rest is
/// checked only when the status is as expected.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `200`, `[200, 204]`, or a matcher such as `{ not = 500 }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<StatusSchema>")]
    pub status: Option<toml::Value>,
    /// JSONPath → an expected value (with holes: `"{{user_id}}"` compares
    /// the typed value) or a matcher table.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(with = "BTreeMap<String, ExpectedSchema>")]
    pub json: BTreeMap<String, toml::Value>,
    /// Header name → an expected value or a matcher table.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(with = "BTreeMap<String, ExpectedSchema>")]
    pub headers: BTreeMap<String, toml::Value>,
    /// A matcher over the whole body as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Matcher>,
}

impl Expect {
    fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.json.is_empty()
            && self.headers.is_empty()
            && self.body.is_none()
    }
}

/// Tests on one value; every one given must hold.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    /// Equal to this value (with holes; a lone hole keeps its type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub equals: Option<toml::Value>,
    /// Not equal to this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub not: Option<toml::Value>,
    /// Equal to one of these values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<serde_json::Value>>")]
    pub one_of: Option<Vec<toml::Value>>,
    /// `true`: there is no such value (or it is null).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absent: Option<bool>,
    /// `true`: there is such a value, and it is not null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
    /// A regular expression its text must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    /// The length of a list, an object's entries or a string's characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// `true`: no canary in it but the sender's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_my_canaries: Option<bool>,
}

/// A status code, a list of them, or a matcher.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum StatusSchema {
    One(u16),
    Any(Vec<u16>),
    Matching(Matcher),
}

/// A matcher table, or a value to compare with (an object is compared
/// with `{ equals = { … } }`: a table is always a matcher).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum ExpectedSchema {
    Matching(Matcher),
    Text(String),
    Number(f64),
    Flag(bool),
    List(Vec<serde_json::Value>),
}

/// Where a variable is captured from.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(
    untagged,
    expecting = "a JSONPath such as \"$.id\", or a table such as { json = \"$.token\", secret = true }, { header = \"location\" } or { cookie = \"session\" }"
)]
pub enum Capture {
    /// A JSONPath into the response body.
    Json(String),
    Full(CaptureSpec),
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// A credential: never written to a report.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
    /// Public rather than owned by the capturing instance.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
    /// May be absent (or null): no finding, and the steps that need it
    /// are not applicable to that instance rather than skipped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

impl Capture {
    /// The JSONPath it reads, if it reads the body.
    pub fn json_path(&self) -> Option<&str> {
        match self {
            Capture::Json(path) => Some(path),
            Capture::Full(spec) => spec.json.as_deref(),
        }
    }

    pub fn is_secret(&self) -> bool {
        matches!(self, Capture::Full(spec) if spec.secret)
    }
}
