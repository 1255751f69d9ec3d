//! The script's last lines: whether the answers show the finding again,
//! checked the way the judges found it: a canary in the encoding the oracle
//! saw it in (any case), an owned id as a whole JSON value at its path (never
//! as part of other text), a server error by its status, tampering by the
//! owner's reads before and after the write.

use std::fmt::Write as _;

use crate::executor::Issued;
use crate::findings::{Finding, FindingKind, Witnessed};
use crate::oracle::Marker;
use crate::request::shell_quote_double;

use super::Recording;
use super::script::{Vars, shell_name, single_quoted};

/// Writes the verdict: `REPRODUCED` (exit 1) when the condition holds, else
/// could not run (exit 2) when a request could not be sent, else `not
/// reproduced` (exit 0).
pub(super) fn check(
    out: &mut String,
    recording: &Recording<'_>,
    vars: &Vars,
    kind: Option<FindingKind>,
) {
    let verdict = match (recording.finding, kind) {
        (Some(finding), _) => condition(recording, finding, vars),
        (None, Some(FindingKind::ServerError)) => {
            let all: Vec<usize> = (1..=recording.order.len()).collect();
            Ok((any(&all, |n| format!("[[ $S{n} == 5* ]]")), String::new()))
        }
        _ => Err("the recorded run did not show the finding: read the answers above".into()),
    };
    let (condition, whom) = match verdict {
        Ok(found) => found,
        Err(why) => {
            let _ = writeln!(out, "cannot \"{}\"", shell_quote_double(&why));
            return;
        }
    };
    let summary = recording
        .finding
        .map_or(String::new(), |f| f.summary.clone());
    let summary = shell_quote_double(&summary);
    let _ = writeln!(
        out,
        "if {condition}; then\n  echo \"REPRODUCED: {summary}\"\n  exit 1\nfi"
    );
    let _ = writeln!(
        out,
        "[ -z \"$UNSENT\" ] || cannot \"$UNSENT\"\necho \"not reproduced: {}\"\nexit 0",
        shell_quote_double(&whom)
    );
}

/// The shell condition that holds when the finding shows again, and what
/// the answers show when it does not.
fn condition(
    recording: &Recording<'_>,
    finding: &Finding,
    vars: &Vars,
) -> Result<(String, String), String> {
    let order = recording.order;
    let answers = answers(order, finding);
    if answers.is_empty() {
        return Err(format!("step `{}` is not in this recording", finding.step));
    }
    let victim = finding.victim.as_deref().unwrap_or_default();
    if let Some(witnessed) = &finding.witnessed {
        let write = answers[0];
        return tamper(order, write, victim, witnessed)
            .map(|c| {
                (
                    c,
                    format!("{victim}'s data reads the same after answer {write}"),
                )
            })
            .ok_or_else(|| "the witness's reads are not in this recording".into());
    }
    let no_such = format!("answer {} shows no such thing", answers[0]);
    let condition = match (&finding.kind, &finding.marker) {
        (FindingKind::ServerError, _) => any(&answers, |n| format!("[[ $S{n} == 5* ]]")),
        (FindingKind::Expectation, _) => {
            let status = finding.exchange.status;
            any(&answers, |n| format!("[ \"$S{n}\" = {status} ]"))
        }
        (_, Some(Marker::Canary { encoding })) => {
            let label = format!("{}_CANARY", shell_name(victim).to_uppercase());
            if !vars.has(&label) {
                return Err(format!("{victim}'s canary is not in this recording"));
            }
            let filter = body_filter(&finding.location_pattern).unwrap_or_default();
            let (encoding, filter) = (encoding.as_str(), single_quoted(&filter));
            any(&answers, |n| {
                format!("shows_canary {n} \"${{{label}}}\" {encoding} {filter}")
            })
        }
        (_, Some(Marker::Identifier { var })) => {
            let shell = format!("{}_{}", shell_name(victim), shell_name(var)).to_uppercase();
            if !vars.has(&shell) {
                return Err(format!(
                    "{victim}'s {var} is not captured in this recording"
                ));
            }
            identifier(&answers, &finding.location_pattern, &shell)
        }
        (_, None) => return Err(format!("no check is known for {}", finding.summary)),
    };
    Ok((condition, no_such))
}

/// The answers the finding was seen in: its step as its observer sent it
/// (any sender of the step when that names none).
fn answers(order: &[Issued], finding: &Finding) -> Vec<usize> {
    let at = |observer: bool| -> Vec<usize> {
        (order.iter().enumerate())
            .filter(|(_, i)| i.step == finding.step && i.exchange.is_some())
            .filter(|(_, i)| !observer || i.instance == finding.observer)
            .map(|(n, _)| n + 1)
            .collect()
    };
    let mine = at(true);
    if mine.is_empty() { at(false) } else { mine }
}

/// Whether the victim's value shows whole where the oracle found it.
fn identifier(answers: &[usize], location: &str, shell: &str) -> String {
    if let Some(header) = location.strip_prefix("header ") {
        let header = single_quoted(header);
        return any(answers, |n| {
            format!("shows_token {n} {header} \"${{{shell}}}\"")
        });
    }
    match body_filter(location) {
        Some(filter) => {
            let filter = single_quoted(&filter);
            any(answers, |n| {
                format!("shows_value {n} {filter} \"${{{shell}}}\"")
            })
        }
        None => any(answers, |n| format!("shows_token {n} '' \"${{{shell}}}\"")),
    }
}

/// `{ c1 || c2; }` over the answers.
fn any(answers: &[usize], condition: impl Fn(usize) -> String) -> String {
    let all: Vec<String> = answers.iter().map(|&n| condition(n)).collect();
    format!("{{ {}; }}", all.join(" || "))
}

/// `body $.items[*].title` → `.items[]?.title`: the jq filter for where in
/// a JSON body a finding was; `None` for the whole answer.
fn body_filter(location: &str) -> Option<String> {
    jsonpath_to_jq(location.strip_prefix("body ")?)
}

/// For tampering: whether the victim's read after the write differs where
/// it did from its read before, or its login after the write fails; both
/// reads answered.
fn tamper(order: &[Issued], write: usize, victim: &str, witnessed: &Witnessed) -> Option<String> {
    let find = |label: &str, step: &str, after: bool| {
        let wanted = format!("{label}: {step}");
        let is = |i: &Issued| i.step == wanted && i.instance == victim && i.exchange.is_some();
        let found = if after {
            (order.iter().enumerate().skip(write)).find(|(_, i)| is(i))
        } else {
            (order[..write - 1].iter().enumerate()).rfind(|(_, i)| is(i))
        };
        found.map(|(n, _)| n + 1)
    };
    match witnessed {
        Witnessed::Lockout { login, .. } => find("witness login after", login, true)
            .map(|a| format!("[ -n \"$S{a}\" ] && [[ $S{a} != 2* ]]")),
        Witnessed::Change { read, path, .. } => {
            let b = find("witness before", read, false)?;
            let a = find("witness after", read, true)?;
            let both = format!("[ -n \"$S{b}\" ] && [ -n \"$S{a}\" ]");
            Some(match path.as_str() {
                "status" => format!("{both} && [ \"$S{b}\" != \"$S{a}\" ]"),
                _ => {
                    let jq = single_quoted(&jsonpath_to_jq(path).unwrap_or_else(|| ".".into()));
                    format!("{both} && [ \"$(value_at {b} {jq})\" != \"$(value_at {a} {jq})\" ]")
                }
            })
        }
    }
}

/// `$.a.b[0]` → `.a.b[0]`, `$.items[*].id` → `.items[]?.id`; `None` for
/// what jq cannot say as simply.
pub(super) fn jsonpath_to_jq(path: &str) -> Option<String> {
    let rest = path.strip_prefix('$')?;
    let simple = rest
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._[]*".contains(c));
    if !simple || rest.contains("..") {
        return None;
    }
    let rest = rest.replace("[*]", "[]?");
    Some(match rest.chars().next() {
        None => ".".to_string(),
        Some('[') => format!(".{rest}"),
        Some(_) => rest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpaths_become_jq_filters_where_simple() {
        assert_eq!(jsonpath_to_jq("$.token").as_deref(), Some(".token"));
        assert_eq!(jsonpath_to_jq("$").as_deref(), Some("."));
        assert_eq!(
            jsonpath_to_jq("$.items[0].id").as_deref(),
            Some(".items[0].id")
        );
        assert_eq!(
            jsonpath_to_jq("$[*].reason").as_deref(),
            Some(".[]?.reason")
        );
        assert_eq!(jsonpath_to_jq("$..id"), None);
        assert_eq!(jsonpath_to_jq("$['a b']"), None);
    }

    /// Runs the prelude's `call` in bash against answer 1 holding `body`:
    /// whether it held; `None` without bash and jq.
    fn holds(body: &str, call: &str) -> Option<bool> {
        let dir = std::env::temp_dir().join(format!("crosstalk-check-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).ok()?;
        std::fs::write(dir.join("1"), body).ok()?;
        std::fs::write(
            dir.join("1.head"),
            "HTTP/1.1 200 OK\r\nx-ref: /v1/users/17\r\n",
        )
        .ok()?;
        let script = format!(
            "{}\nJARS={}\n{call}",
            include_str!("prelude.sh"),
            dir.display()
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &script])
            .output()
            .ok()?;
        let _ = std::fs::remove_dir_all(&dir);
        match out.status.code() {
            Some(0) => Some(true),
            Some(1) => Some(false),
            _ => None,
        }
    }

    #[test]
    fn an_id_shows_only_as_a_whole_value_at_its_path() {
        let body = r#"{"items":[{"patient_id":2,"date_of_birth":"1995-11-26"}]}"#;
        let cases = [
            ("shows_value 1 '.items[]?.patient_id' 2", true),
            ("shows_value 1 '.items[]?.patient_id' 1", false),
            ("shows_value 1 '.items[]?.date_of_birth' 1", false),
            ("shows_value 1 '.items[]?.date_of_birth' 1995", false),
            ("shows_value 1 '.' 1995-11-26", true),
            ("shows_token 1 x-ref 17", true),
            ("shows_token 1 x-ref 1", false),
        ];
        for (call, expected) in cases {
            if let Some(held) = holds(body, call) {
                assert_eq!(held, expected, "{call}");
            }
        }
    }

    #[test]
    fn a_canary_shows_as_the_oracle_found_it() {
        let canary = "ctabcdefghijklmnopqrst";
        let upper = canary.to_uppercase();
        let b64 = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(format!("{{\"sub\":\"{canary}\"}}"))
        };
        let cases = [
            (format!(r#"{{"a":"x {upper} y"}}"#), "plain '.a'", true),
            (
                format!(r#"{{"a":"x","b":"{canary}"}}"#),
                "plain '.a'",
                false,
            ),
            (format!(r#"{{"t":"{b64}"}}"#), "base64 ''", true),
            (format!(r#"{{"t":"{b64}"}}"#), "plain ''", false),
            (
                r#"{"u":"%63%74abcdefghijklmnopqrst"}"#.into(),
                "url-encoded '.u'",
                true,
            ),
            (
                r#"{"u":"\u0063tabcdefghijklmnopqrst"}"#.into(),
                "json-escaped '.u'",
                true,
            ),
        ];
        for (body, how, expected) in cases {
            let call = format!("shows_canary 1 {canary} {how}");
            if let Some(held) = holds(&body, &call) {
                assert_eq!(held, expected, "{call} in {body}");
            }
        }
    }
}
