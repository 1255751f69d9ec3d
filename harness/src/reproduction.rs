//! Reproductions: a shrunk program written out twice, as a scenario file
//! `crosstalk replay` runs and as a bash script anyone can run with curl and
//! jq alone.
//!
//! The script stands alone against a fresh server: it signs up and logs in
//! by itself, takes what later requests need (ids, tokens) from earlier
//! answers with jq, keeps each instance's cookies in a jar of its own, and
//! ends by saying whether the finding showed (exit 1) or not (exit 0), as
//! `crosstalk replay` does. It holds no credential: secret variables and
//! any password a body sends come from the environment, tokens and cookies
//! from the answers. Each instance's canary is drawn afresh on every run
//! (unless given), so the script can run again against a server that kept
//! the accounts of the last run. A race is sent at the same moment, and
//! tried again from scratch until it shows (up to `TRIES`, 50).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::executor::{Issued, Recorded};
use crate::findings::{Finding, FindingKind, Witnessed};
use crate::fuzzer::{Program, Vocabulary};
use crate::oracle::Marker;
use crate::request::shell_quote_double;
use crate::safety::{is_credential_header, is_secret_name};

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
    let mut text = format!(
        "# {description}\n# Replay: crosstalk replay {name}.toml   (exit 1: still leaks; 0: fixed)\nseed = {seed}\n"
    );
    text.push_str(&program.to_reproduction(vocab, &description));
    let scenario = dir.join(format!("{name}.toml"));
    std::fs::write(&scenario, text)?;
    let script = dir.join(format!("{name}.sh"));
    std::fs::write(
        &script,
        curl_script(&description, recording, &vocab.secret_values()),
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(Reproduction { scenario, script })
}

/// Known text → the shell variable that stands for it.
#[derive(Default)]
struct Vars {
    /// Distinctive values (ids, canaries, tokens), replaced wherever they
    /// appear, longest first.
    known: Vec<(String, String)>,
    /// Short values (`17`), replaced only as a whole path segment, query
    /// value or JSON value: inside other text they are coincidence.
    short: Vec<(String, String)>,
}

/// Values at least this long stand for a variable wherever they appear.
const DISTINCT: usize = 8;

impl Vars {
    fn add(&mut self, value: &str, var: String) {
        if value.is_empty() || self.known.iter().any(|(v, _)| v == value) {
            return;
        }
        if value.len() < DISTINCT {
            // The latest capture of a short value wins.
            self.short.insert(0, (value.to_string(), var));
            return;
        }
        self.known.push((value.to_string(), var));
        self.known.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
    }

    /// `text` quoted for a double-quoted shell word, known values as variables.
    fn substitute(&self, text: &str) -> String {
        let mut out = shell_quote_double(text);
        for (value, var) in &self.known {
            out = out.replace(&shell_quote_double(value), &format!("${{{var}}}"));
        }
        out
    }

    fn exact(&self, token: &str) -> Option<&str> {
        self.short
            .iter()
            .find(|(v, _)| v == token)
            .map(|(_, var)| var.as_str())
    }

    /// A request path, short values too where a whole segment or query
    /// value is one.
    fn path(&self, path: &str) -> String {
        let mut out = String::new();
        for piece in path.split_inclusive(['/', '?', '&', '=']) {
            let cut = piece.len() - piece.ends_with(['/', '?', '&', '=']) as usize;
            let (token, sep) = piece.split_at(cut);
            match self.exact(token) {
                Some(var) => out.push_str(&format!("${{{var}}}")),
                None => out.push_str(&self.substitute(token)),
            }
            out.push_str(sep);
        }
        out
    }

    /// A request body, short values too where a whole JSON value is one.
    fn body(&self, body: &str) -> String {
        let mut out = self.substitute(body);
        for (value, var) in &self.short {
            for (before, after) in [("\\\":\\\"", "\\\""), ("\\\":", ","), ("\\\":", "}")] {
                let written = format!("{before}{}{after}", shell_quote_double(value));
                out = out.replace(&written, &format!("{before}${{{var}}}{after}"));
            }
        }
        out
    }
}

/// A bash script that sends the recorded requests in order with curl and
/// ends by checking for the finding: `PASSWORD=… ./repro.sh http://host`.
pub fn curl_script(
    description: &str,
    recording: &Recording<'_>,
    secrets: &[(String, String)],
) -> String {
    let mut out = String::new();
    let mut vars = Vars::default();
    let _ = writeln!(out, "#!/usr/bin/env bash");
    let _ = writeln!(out, "# {description}");
    let _ = writeln!(
        out,
        "# Sends the reproduction's requests in order, then says whether the finding showed\n# (exit 1) or not (exit 0). Needs curl and jq."
    );
    let _ = writeln!(out, "set -euo pipefail");
    if recording.order.windows(2).any(|w| w[0].batch == w[1].batch) {
        // A race shows only sometimes: the script runs itself from scratch
        // (fresh canaries each time) until it shows or TRIES runs did not.
        let _ = writeln!(
            out,
            "if [ -z \"${{CROSSTALK_TRY:-}}\" ]; then\n  for try in $(seq \"${{TRIES:-50}}\"); do\n    echo \"# try $try\"\n    rc=0; CROSSTALK_TRY=$try bash \"$0\" \"$@\" || rc=$?\n    [ \"$rc\" -ne 0 ] && exit \"$rc\"\n  done\n  exit 0\nfi"
        );
    }
    let _ = writeln!(out, "BASE=\"${{1:-http://127.0.0.1:8080}}\"");
    let _ = writeln!(out, "JARS=$(mktemp -d)");
    let _ = writeln!(out, "trap 'rm -rf \"$JARS\"' EXIT");
    for (name, value) in secrets {
        let shell = name.to_uppercase();
        let _ = writeln!(
            out,
            ": \"${{{shell}:?set {shell}, the secret variable {name} of the scenario}}\""
        );
        vars.add(value, shell);
    }
    for (var, value, why) in body_secrets(recording.order, &vars) {
        let _ = writeln!(out, ": \"${{{var}:?set {var}, {why}}}\"");
        vars.add(&value, var);
    }
    for (label, canary) in recording.identities {
        let shell = format!("{}_CANARY", shell_name(label).to_uppercase());
        let _ = writeln!(
            out,
            "{shell}=\"${{{shell}:-ct$(od -An -N10 -tx1 /dev/urandom | tr -d ' \\n')}}\""
        );
        vars.add(canary, shell);
    }
    let _ = writeln!(out);
    let sent: Vec<(usize, &Issued, &Recorded)> = recording
        .order
        .iter()
        .enumerate()
        .filter_map(|(n, issued)| issued.exchange.as_ref().map(|e| (n, issued, e)))
        .collect();
    for batch in sent.chunk_by(|a, b| a.1.batch == b.1.batch) {
        send(&mut out, batch, &vars);
        for &(n, _, exchange) in batch {
            answer(&mut out, n, exchange, &mut vars);
        }
    }
    check(&mut out, recording, &vars);
    out
}

/// Sends one batch: a request alone, or requests that went out at the
/// same moment (a race) from one curl running them in parallel, so they
/// leave together rather than a process start apart. Each body lands in
/// `$JARS/<n>`, each status line in `$JARS/<n>.head`.
fn send(out: &mut String, batch: &[(usize, &Issued, &Recorded)], vars: &Vars) {
    if batch.len() > 1 {
        let _ = writeln!(out, "# sent at the same moment:");
    }
    let mut transfers = Vec::new();
    for &(n, issued, exchange) in batch {
        let _ = writeln!(
            out,
            "# {}. {} as {} (answered {})",
            n + 1,
            issued.step,
            issued.instance,
            issued
                .status
                .map_or("nothing".to_string(), |s| s.to_string())
        );
        transfers.push(format!(
            "{} -o \"$JARS/{n}\" -D \"$JARS/{n}.head\"",
            curl_args(issued, exchange, vars)
        ));
    }
    if batch.len() == 1 {
        let _ = writeln!(out, "curl -sS {}", transfers[0]);
        return;
    }
    // Which goes first is the server's to decide: every other try, the
    // other way round.
    let forward = transfers.join(" \\\n    --next ");
    transfers.reverse();
    let backward = transfers.join(" \\\n    --next ");
    let _ = writeln!(
        out,
        "if [ $(( ${{CROSSTALK_TRY:-0}} % 2 )) = 1 ]; then\n  curl -sS -Z --parallel-immediate {backward}\nelse\n  curl -sS -Z --parallel-immediate {forward}\nfi"
    );
}

/// One answer: its status in `S<n>`, its body in `R<n>`, and what later
/// requests need captured with jq.
fn answer(out: &mut String, n: usize, exchange: &Recorded, vars: &mut Vars) {
    let _ = writeln!(
        out,
        "S{n}=$(awk 'NR==1 {{print $2}}' \"$JARS/{n}.head\" 2>/dev/null || true)"
    );
    let _ = writeln!(out, "R{n}=$(<\"$JARS/{n}\")");
    let _ = writeln!(out, "echo \"{}. $S{n} $R{n}\"", n + 1);
    for (var, value, path) in &exchange.captures {
        let Some(jq) = path.as_deref().and_then(jsonpath_to_jq) else {
            continue;
        };
        let shell = format!("{}_{var}", shell_name(&exchange.captured_by)).to_uppercase();
        let _ = writeln!(
            out,
            "{shell}=$(jq -r '{jq}' <<<\"$R{n}\" 2>/dev/null || true)"
        );
        vars.add(value, shell);
    }
    let _ = writeln!(out);
}

/// The last lines: whether the answer that showed the finding shows it again.
fn check(out: &mut String, recording: &Recording<'_>, vars: &Vars) {
    let Some(finding) = recording.finding else {
        let _ = writeln!(
            out,
            "echo \"the recorded run did not show the finding (a race): read the answers above\""
        );
        return;
    };
    let Some(n) = recording.order.iter().position(|i| i.step == finding.step) else {
        return;
    };
    let victim = finding.victim.as_deref().unwrap_or_default();
    if let Some(witnessed) = &finding.witnessed {
        return tamper_check(out, recording.order, n, victim, witnessed, &finding.summary);
    }
    let condition = match (&finding.kind, &finding.marker) {
        (FindingKind::ServerError, _) => format!("[ \"${{S{n}:0:1}}\" = 5 ]"),
        (_, Some(Marker::Canary { .. })) => {
            let canary = recording
                .identities
                .iter()
                .find(|(label, _)| label == victim)
                .map(|(_, canary)| canary.as_str())
                .unwrap_or_default();
            format!("grep -qiF \"{}\" <<<\"$R{n}\"", vars.substitute(canary))
        }
        (_, _) => {
            let value = &finding.exchange.response_excerpt;
            let value = vars
                .exact(value)
                .map_or_else(|| vars.substitute(value), |var| format!("${{{var}}}"));
            format!("grep -qF \"{value}\" <<<\"$R{n}\"")
        }
    };
    let summary = shell_quote_double(&finding.summary);
    let _ = writeln!(out, "if {condition}; then");
    let _ = writeln!(out, "  echo \"REPRODUCED (answer {}): {summary}\"", n + 1);
    let _ = writeln!(out, "  exit 1");
    let _ = writeln!(out, "fi");
    let _ = writeln!(
        out,
        "echo \"not reproduced: answer {} shows no such thing\"",
        n + 1
    );
}

/// For tampering: whether the victim's read after the write (answer `a`)
/// differs where it did from its read before (answer `b`), or its login
/// after the write fails.
fn tamper_check(
    out: &mut String,
    order: &[Issued],
    write: usize,
    victim: &str,
    witnessed: &Witnessed,
    summary: &str,
) {
    let find = |label: &str, step: &str, after: bool| {
        let wanted = format!("{label}: {step}");
        let is = |i: &&Issued| i.step == wanted && i.instance == victim;
        if after {
            order
                .iter()
                .skip(write)
                .position(|i| is(&i))
                .map(|p| p + write)
        } else {
            order[..write].iter().rposition(|i| is(&i))
        }
    };
    let condition = match witnessed {
        Witnessed::Lockout { login, .. } => {
            find("witness login after", login, true).map(|a| format!("[ \"${{S{a}:0:1}}\" != 2 ]"))
        }
        Witnessed::Change { read, path, .. } => {
            let (b, a) = (
                find("witness before", read, false),
                find("witness after", read, true),
            );
            b.zip(a).map(|(b, a)| match path.as_str() {
                "status" => format!("[ \"$S{b}\" != \"$S{a}\" ]"),
                _ => {
                    let jq = jsonpath_to_jq(path).unwrap_or_else(|| ".".into());
                    let value = |n| {
                        format!("\"$(jq -c '{jq}' <<<\"$R{n}\" 2>/dev/null || echo \"$R{n}\")\"")
                    };
                    format!("[ {} != {} ]", value(b), value(a))
                }
            })
        }
    };
    let Some(condition) = condition else {
        let _ = writeln!(
            out,
            "echo \"the witness's reads are not in this recording\""
        );
        return;
    };
    let summary = shell_quote_double(summary);
    let _ = writeln!(out, "if {condition}; then");
    let _ = writeln!(
        out,
        "  echo \"REPRODUCED (answer {}): {summary}\"",
        write + 1
    );
    let _ = writeln!(out, "  exit 1");
    let _ = writeln!(out, "fi");
    let _ = writeln!(
        out,
        "echo \"not reproduced: {victim}'s data reads the same after answer {}\"",
        write + 1
    );
}

/// Values sent under a secret-named JSON field (a password in a login
/// body) that no variable stands for: each becomes an environment variable
/// named after its field, with why it is needed.
fn body_secrets(order: &[Issued], vars: &Vars) -> Vec<(String, String, String)> {
    let mut found: BTreeMap<String, (String, String)> = BTreeMap::new();
    for issued in order {
        let Some(exchange) = &issued.exchange else {
            continue;
        };
        let mut fields = Vec::new();
        match (form_pairs(exchange), serde_json::from_str(&exchange.body)) {
            (Some(pairs), _) => fields.extend(pairs.into_iter().filter(|(k, _)| is_secret_name(k))),
            (None, Ok(body)) => secret_fields(&body, &mut fields),
            (None, Err(_)) => continue,
        }
        for (key, value) in fields {
            let known = vars.known.iter().any(|(v, _)| *v == value)
                || found.values().any(|(v, _)| *v == value);
            if known || value.is_empty() {
                continue;
            }
            let base = shell_name(&key).to_uppercase();
            let mut var = base.clone();
            let mut k = 2;
            while found.contains_key(&var) || vars.known.iter().any(|(_, v)| *v == var) {
                var = format!("{base}_{k}");
                k += 1;
            }
            let why = format!("the {key} that {} sends", issued.instance);
            found.insert(var, (value, why));
        }
    }
    found
        .into_iter()
        .map(|(var, (value, why))| (var, value, why))
        .collect()
}

fn secret_fields(value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match value {
                    serde_json::Value::String(text) if is_secret_name(key) => {
                        out.push((key.clone(), text.clone()));
                    }
                    other => secret_fields(other, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| secret_fields(v, out)),
        _ => {}
    }
}

/// One recorded request as curl arguments: known values as shell
/// variables, cookies from the instance's jar, and any credential left
/// over as a variable the user must set, never its value.
fn curl_args(issued: &Issued, exchange: &Recorded, vars: &Vars) -> String {
    let jar = format!("$JARS/{}", shell_name(&exchange.captured_by));
    let mut command = format!(
        "-c \"{jar}\" -X {} \"$BASE{}\"",
        issued.method,
        vars.path(&issued.path)
    );
    for (name, value) in &exchange.headers {
        if name.eq_ignore_ascii_case("cookie") {
            let _ = write!(command, " -b \"{jar}\"");
            continue;
        }
        let mut value = vars.substitute(value);
        if is_credential_header(name) && !value.contains("${") {
            let shell = shell_name(name).to_uppercase();
            value = format!("${{{shell}:?set {shell}}}");
        }
        let _ = write!(command, " -H \"{name}: {value}\"");
    }
    match form_pairs(exchange) {
        // A form: each value as curl encodes it, so a variable stands for
        // the value itself, never for its encoded text.
        Some(pairs) => {
            for (name, value) in pairs {
                let value = match vars.exact(&value) {
                    Some(var) => format!("${{{var}}}"),
                    None => vars.substitute(&value),
                };
                let _ = write!(
                    command,
                    " --data-urlencode \"{}={value}\"",
                    shell_quote_double(&name)
                );
            }
        }
        None if !exchange.body.is_empty() => {
            let _ = write!(command, " --data \"{}\"", vars.body(&exchange.body));
        }
        None => {}
    }
    command
}

/// The decoded pairs of a form body.
fn form_pairs(exchange: &Recorded) -> Option<Vec<(String, String)>> {
    crate::transport::form_pairs(&exchange.headers, exchange.body.as_bytes())
}

/// `patient#0` → `patient_0`: a shell variable or file name.
fn shell_name(text: &str) -> String {
    text.replace(['#', '-'], "_")
}

/// `$.a.b[0]` → `.a.b[0]`; `None` for what jq cannot say as simply.
fn jsonpath_to_jq(path: &str) -> Option<String> {
    let rest = path.strip_prefix('$')?;
    let simple = rest
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._[]".contains(c));
    if !simple || rest.contains("[*]") || rest.contains("..") {
        return None;
    }
    Some(if rest.is_empty() {
        ".".to_string()
    } else {
        rest.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpaths_become_jq_filters_where_simple() {
        assert_eq!(jsonpath_to_jq("$.token").as_deref(), Some(".token"));
        assert_eq!(
            jsonpath_to_jq("$.items[0].id").as_deref(),
            Some(".items[0].id")
        );
        assert_eq!(jsonpath_to_jq("$..id"), None);
        assert_eq!(jsonpath_to_jq("$.items[*].id"), None);
    }

    #[test]
    fn quoting_keeps_shell_specials_literal() {
        assert_eq!(shell_quote_double(r#"a"$b`c\"#), r#"a\"\$b\`c\\"#);
    }

    #[test]
    fn a_form_s_password_comes_from_the_environment_and_curl_encodes_it() {
        let issued = Issued {
            seq: 0,
            scenario: "s".into(),
            instance: "member#0".into(),
            step: "log in".into(),
            method: "POST".into(),
            path: "/token".into(),
            status: Some(200),
            batch: 0,
            exchange: Some(Recorded {
                headers: vec![(
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                )],
                body: "grant_type=password&username=m-1&password=pass+word%26x%2By%3Dz".into(),
                captures: Vec::new(),
                captured_by: "member#0".into(),
            }),
        };
        let recording = Recording {
            order: &[issued],
            identities: &[],
            finding: None,
        };
        let script = curl_script("d", &recording, &[]);
        assert!(
            !script.contains("pass word") && !script.contains("pass+word"),
            "{script}"
        );
        assert!(
            script.contains(r#"--data-urlencode "password=${PASSWORD}""#),
            "{script}"
        );
        assert!(
            script.contains(r#"--data-urlencode "grant_type=password""#),
            "{script}"
        );
    }

    #[test]
    fn a_password_a_body_sends_comes_from_the_environment() {
        let issued = Issued {
            seq: 0,
            scenario: "s".into(),
            instance: "clinician#0".into(),
            step: "log in".into(),
            method: "POST".into(),
            path: "/login".into(),
            status: Some(200),
            batch: 0,
            exchange: Some(Recorded {
                headers: vec![("content-type".into(), "application/json".into())],
                body: r#"{"email":"dr@clinic.test","password":"staging-secret"}"#.into(),
                captures: Vec::new(),
                captured_by: "clinician#0".into(),
            }),
        };
        let recording = Recording {
            order: &[issued],
            identities: &[],
            finding: None,
        };
        let script = curl_script("d", &recording, &[]);
        assert!(!script.contains("staging-secret"), "{script}");
        assert!(script.contains(": \"${PASSWORD:?set PASSWORD"), "{script}");
        assert!(
            script.contains(r#"\"password\":\"${PASSWORD}\""#),
            "{script}"
        );
        let checked = std::process::Command::new("bash")
            .arg("-n")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut bash| {
                use std::io::Write as _;
                bash.stdin.take().unwrap().write_all(script.as_bytes())?;
                bash.wait()
            });
        if let Ok(status) = checked {
            assert!(status.success(), "bash cannot parse the script:\n{script}");
        }
    }
}
