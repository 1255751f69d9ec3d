//! Reproductions: a shrunk program written out twice, as a scenario file
//! `crosstalk replay` runs and as a bash script anyone can run with curl and
//! jq alone. Both look for the same finding: the scenario file says which
//! (`[reproduces]`), and the script checks for it the way the oracle found
//! it.
//!
//! The script stands alone against a server that keeps its data: it signs
//! up and logs in by itself with e-mails, names, birth dates, times and
//! canaries drawn afresh on every run, takes what later requests need from
//! earlier answers with jq, and keeps each identity's cookies in a jar of
//! its own. No value of the fuzz run is written in it where a variable
//! stands for it, whatever characters the value holds: JSON bodies are
//! built by jq from variables, path segments encoded by jq. It holds no
//! credential: secret variables come from the environment, tokens and
//! cookies from the answers. It ends in one of three ways: `REPRODUCED`
//! (exit 1), `not reproduced` (exit 0), or could not run (exit 2, with the
//! reason: a tool or variable missing, a request that could not be sent).

mod check;
mod script;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::executor::Issued;
use crate::findings::{Finding, FindingKind};
use crate::fuzzer::{Program, Vocabulary};
use crate::scenario::{Reproduces, Scenario, Step};
use crate::template::{Expr, Template};

pub use script::curl_script;

/// A reproduction written to disk.
pub struct Reproduction {
    pub scenario: PathBuf,
    pub script: PathBuf,
}

/// What a recorded run of the program gave the script to work from.
pub struct Recording<'a> {
    pub order: &'a [Issued],
    /// Each instance's label and canary.
    pub identities: &'a [(String, String)],
    /// The finding as this run showed it, if it did.
    pub finding: Option<&'a Finding>,
}

/// A value the harness generated for an instance, drawn afresh by the
/// script on every run so that it runs again against the same server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Generated {
    /// A name or an e-mail: each letter and digit drawn afresh.
    Text,
    Date,
    Time,
}

/// Writes `<dir>/<name>.toml` and `<dir>/<name>.sh`.
pub fn write_reproduction(
    dir: &Path,
    name: &str,
    vocab: &Vocabulary,
    program: &Program,
    summary: &str,
    seed: u64,
    recording: &Recording<'_>,
) -> std::io::Result<Reproduction> {
    std::fs::create_dir_all(dir)?;
    let description = format!("Reproduction found by crosstalk fuzz: {summary}");
    let kind = recording
        .finding
        .map(|f| f.kind)
        .or_else(|| kind_of_name(name));
    let mut text = format!(
        "# {description}\n# Replay: crosstalk replay {name}.toml   (exit 1: it shows again; 0: fixed)\nseed = {seed}\n"
    );
    text.push_str(&program.to_reproduction(vocab, &description));
    if let Some(kind) = kind {
        text.push_str(&reproduces(kind, recording.finding));
    }
    let scenario = dir.join(format!("{name}.toml"));
    std::fs::write(&scenario, text)?;
    let generated = generated_values(&program.to_scenario(vocab), recording.order);
    let script = dir.join(format!("{name}.sh"));
    let text = curl_script(
        &description,
        recording,
        &vocab.secret_values(),
        &generated,
        kind,
    );
    std::fs::write(&script, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(Reproduction { scenario, script })
}

/// The `[reproduces]` table: what `replay` looks for.
fn reproduces(kind: FindingKind, finding: Option<&Finding>) -> String {
    #[derive(serde::Serialize)]
    struct File {
        reproduces: Reproduces,
    }
    let file = File {
        reproduces: Reproduces {
            kind: kind.as_str().to_string(),
            step: finding.filter(|_| !kind.harm()).map(|f| f.step.clone()),
        },
    };
    format!(
        "\n{}",
        toml::to_string(&file).expect("a reproduces table serializes")
    )
}

/// A reproduction's file name starts with its bucket's kind (`server-error-in-…`):
/// the kind when the recorded run did not show the finding.
fn kind_of_name(name: &str) -> Option<FindingKind> {
    FindingKind::ALL
        .into_iter()
        .filter(|k| name.starts_with(&format!("{}-", k.as_str())))
        .max_by_key(|k| k.as_str().len())
}

/// The values the recorded requests sent for the per-run built-ins (names,
/// birth dates, look-alike e-mails, unique times, user names made with
/// `serial`), found by reading each request beside its step's template.
pub fn generated_values(scenario: &Scenario, order: &[Issued]) -> Vec<(String, Generated)> {
    let steps: HashMap<&str, &Step> = (scenario.setup.iter())
        .chain(&scenario.steps)
        .chain(&scenario.teardown)
        .map(|s| (s.value.name.as_str(), &s.value))
        .collect();
    let mut out = Vec::new();
    for issued in order {
        let (Some(exchange), Some(step)) = (&issued.exchange, steps.get(issued.step.as_str()))
        else {
            continue;
        };
        if let (Some(template), Ok(sent)) = (&step.body, serde_json::from_str(&exchange.body)) {
            walk(template, &sent, &mut out);
        }
        let pairs = crate::transport::form_pairs(&exchange.headers, exchange.body.as_bytes());
        if let (Some(form), Some(pairs)) = (&step.form, pairs) {
            for (key, template) in form {
                let sent = pairs.iter().find(|(k, _)| k == key);
                if let (Some(kind), Some((_, value))) = (generated_kind(template), sent) {
                    out.push((value.clone(), kind));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn walk(template: &toml::Value, sent: &Value, out: &mut Vec<(String, Generated)>) {
    match (template, sent) {
        (toml::Value::Table(t), Value::Object(o)) => {
            for (key, template) in t {
                if let Some(sent) = o.get(key) {
                    walk(template, sent, out);
                }
            }
        }
        (toml::Value::Array(t), Value::Array(a)) => {
            t.iter().zip(a).for_each(|(t, s)| walk(t, s, out));
        }
        (template, Value::String(text)) => {
            if let Some(kind) = generated_kind(template) {
                out.push((text.clone(), kind));
            }
        }
        _ => {}
    }
}

/// Built-ins that differ between runs (a server that keeps its data would
/// refuse or pair up a second run's): a value made with one is drawn afresh.
const PER_RUN: &[&str] = &[
    "name",
    "twin.name",
    "twin.email",
    "date_of_birth",
    "twin.date_of_birth",
    "unique_time",
    "serial",
    "run_id",
];

/// The name of a hole that is a variable or built-in.
fn var(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Var(name) => Some(name.as_str()),
        _ => None,
    }
}

/// How to draw afresh the value of a template made with per-run built-ins
/// (a canary's own variable stands for it where one is in it).
fn generated_kind(template: &toml::Value) -> Option<Generated> {
    let toml::Value::String(text) = template else {
        return None;
    };
    let template = Template::parse(text).ok()?;
    if template.exprs().filter_map(var).any(|n| n == "canary") {
        return None;
    }
    match template.sole_expr().and_then(var) {
        Some("date_of_birth" | "twin.date_of_birth") => return Some(Generated::Date),
        Some("unique_time") => return Some(Generated::Time),
        _ => {}
    }
    (template.exprs().filter_map(var))
        .any(|n| PER_RUN.contains(&n))
        .then_some(Generated::Text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(template: &str) -> Option<Generated> {
        generated_kind(&toml::Value::String(template.into()))
    }

    #[test]
    fn per_run_values_are_drawn_afresh_and_seeded_accounts_are_kept() {
        assert_eq!(kind("{{twin.name}}"), Some(Generated::Text));
        assert_eq!(kind("{{twin.email}}"), Some(Generated::Text));
        assert_eq!(kind("member-{{serial}}"), Some(Generated::Text));
        assert_eq!(kind("user-{{serial}}-{{run_id}}"), Some(Generated::Text));
        assert_eq!(kind("{{date_of_birth}}"), Some(Generated::Date));
        assert_eq!(kind("{{unique_time}}"), Some(Generated::Time));
        assert_eq!(kind("clinician-{{number}}@clinic.test"), None);
        assert_eq!(kind("{{canary}}@patients.test"), None);
        assert_eq!(kind("{{password}}"), None);
        assert_eq!(kind("plain"), None);
    }

    #[test]
    fn a_reproduction_names_the_kind_it_shows() {
        assert_eq!(
            kind_of_name("server-error-in-notes-at-x-1234"),
            Some(FindingKind::ServerError)
        );
        assert_eq!(kind_of_name("leak-in-a-at-b"), Some(FindingKind::Leak));
        assert_eq!(kind_of_name("whatever"), None);
        let text = reproduces(FindingKind::ServerError, None);
        assert!(
            text.contains("[reproduces]\nkind = \"server-error\""),
            "{text}"
        );
    }
}
