//! An operation of the document: where it goes in the flow (its rank),
//! which variables its path needs, how a list of it pages, and the naming
//! rules (`appointments` → `appointment_id`) that tie ids to operations.

use std::collections::BTreeSet;

use oas3::spec::Operation;

/// One operation of the document.
#[derive(Clone)]
pub(super) struct Op {
    pub method: String,
    pub path: String,
    pub operation: Operation,
}

impl Op {
    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The literal segments of the path.
    pub fn literals(&self) -> Vec<&str> {
        (self.path.split('/'))
            .filter(|s| !s.is_empty() && !s.starts_with('{'))
            .collect()
    }

    pub fn has_params(&self) -> bool {
        self.path.contains('{')
    }
}

/// How a list pages: its answer's cursor field, the query parameter that
/// takes it, and a page size parameter.
pub(super) struct Paging {
    pub cursor: String,
    pub param: String,
    pub size: Option<String>,
}

impl Paging {
    /// The first page's query: one item a page, so there is a next one.
    pub fn first_page(&self) -> toml::Table {
        let mut query = toml::Table::new();
        if let Some(size) = &self.size {
            query.insert(size.clone(), toml::Value::Integer(1));
        }
        query
    }

    pub fn next_page(&self) -> toml::Table {
        let mut query = self.first_page();
        let hole = format!("{{{{{}}}}}", self.cursor);
        query.insert(self.param.clone(), toml::Value::String(hole));
        query
    }
}

/// Creations first, then reads and updates of what was created, actions
/// (those that end something last), lists (which now hold what the
/// actions made; a list of what a creation made comes with the reads, while
/// it is as created) and updates of the caller's own; deletions last.
pub(super) fn rank(op: &Op, created: &BTreeSet<String>) -> u8 {
    const ENDINGS: &[&str] = &[
        "end", "close", "finish", "complete", "stop", "cancel", "hangup",
    ];
    let last = op
        .literals()
        .last()
        .map(|l| l.to_ascii_lowercase())
        .unwrap_or_default();
    match (op.method.as_str(), op.has_params()) {
        ("POST", false) => 0,
        ("GET", true) => 1,
        ("GET", false) if created.contains(&singular(&last)) => 1,
        ("PUT" | "PATCH", true) => 2,
        ("POST", true) if ENDINGS.contains(&last.as_str()) => 4,
        ("POST", true) => 3,
        ("GET", false) => 5,
        ("PUT" | "PATCH", false) => 5,
        ("DELETE", _) => 7,
        _ => 6,
    }
}

/// Each path parameter and the variable that fills it: `{appointment_id}`
/// itself; `{id}` after `appointments` is `appointment_id`.
pub(super) fn path_vars(op: &Op) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut previous = "";
    for segment in op.path.split('/').filter(|s| !s.is_empty()) {
        if let Some(param) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let var = match param {
                "id" | "uuid" | "key" => format!("{}_id", singular(previous)),
                other => snake(other),
            };
            out.push((param.to_string(), var));
        }
        previous = segment;
    }
    out
}

/// Whether a field names the account at login (an e-mail, a user name).
pub(super) fn is_login_name(field: &str) -> bool {
    let field = field.to_ascii_lowercase();
    field.contains("email") || ["username", "user_name", "login"].contains(&field.as_str())
}

/// How a field names the account at a login, best first: an e-mail, a
/// user name, a phone number; `None` when it names no account.
pub(super) fn account_name_rank(field: &str) -> Option<u8> {
    let field = field.to_ascii_lowercase().replace('-', "_");
    if field.contains("email") {
        Some(0)
    } else if ["username", "user_name", "login", "handle", "user"].contains(&field.as_str()) {
        Some(1)
    } else if field.contains("phone") || ["mobile", "msisdn"].contains(&field.as_str()) {
        Some(2)
    } else {
        None
    }
}

/// Whether a field holds a refresh token (`refresh_token`, `refreshToken`).
pub(super) fn is_refresh_token(field: &str) -> bool {
    let field = field.to_ascii_lowercase().replace(['_', '-'], "");
    field.contains("refreshtoken") || field == "refresh"
}

/// Whether a field takes a new password (`new_password`, `newPassword`).
pub(super) fn is_new_password(field: &str) -> bool {
    let field = field.to_ascii_lowercase();
    field.contains("password") && field.contains("new")
}

/// Whether an operation ends the caller's session: its path says logout,
/// signout or sign-out, or it deletes a session (`DELETE /sessions/{id}`).
pub(super) fn is_logout(op: &Op) -> bool {
    let words: Vec<String> = (op.literals().iter())
        .map(|l| l.to_ascii_lowercase().replace(['-', '_'], ""))
        .collect();
    let endings = ["logout", "logoff", "signout", "signoff"];
    words.iter().any(|w| endings.contains(&w.as_str()))
        || (op.method == "DELETE" && words.last().is_some_and(|w| singular(w) == "session"))
}

/// `entryId` → `entry_id`.
pub(super) fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out.replace('-', "_")
}

/// `appointments` → `appointment`, `categories` → `category`.
pub(super) fn singular(word: &str) -> String {
    let word = word.to_ascii_lowercase().replace('-', "_");
    if let Some(stem) = word.strip_suffix("ies") {
        format!("{stem}y")
    } else if word.ends_with("ss") {
        word
    } else {
        word.strip_suffix('s').unwrap_or(&word).to_string()
    }
}

pub(super) fn slug(title: &str) -> String {
    let slug: String = (title.to_ascii_lowercase().chars())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let slug = slug
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if slug.is_empty() { "api".into() } else { slug }
}

/// Removes and returns every op that `pick` chooses, in order.
pub(super) fn take_all(ops: &mut Vec<Op>, pick: impl Fn(&Op) -> bool) -> Vec<Op> {
    let (taken, kept) = std::mem::take(ops).into_iter().partition(pick);
    *ops = kept;
    taken
}

/// Removes and returns the first op that `pick` chooses.
pub(super) fn take(ops: &mut Vec<Op>, pick: impl Fn(&Op) -> bool) -> Option<Op> {
    let at = ops.iter().position(pick)?;
    Some(ops.remove(at))
}
