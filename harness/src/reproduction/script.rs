//! The bash script: its variables, its requests and how they are sent.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::Value;

use crate::executor::{Issued, Recorded};
use crate::findings::FindingKind;
use crate::request::shell_quote_double;
use crate::safety::{is_credential_header, is_secret_name};

use super::{Generated, Recording, check};

/// The helper functions every script starts with.
const PRELUDE: &str = include_str!("prelude.sh");

/// Runs from scratch before saying not reproduced, as `crosstalk replay`
/// makes: a race, and anything else.
const RACE_TRIES: u32 = 100;
const TRIES: u32 = 20;

/// Known text → the shell variable that stands for it.
#[derive(Default)]
pub(super) struct Vars {
    /// Distinctive values (ids, canaries, tokens, names), replaced wherever
    /// they appear, longest first.
    known: Vec<(String, String)>,
    /// Short values (`17`), replaced only where a whole path segment, query
    /// value, form value or JSON value is one: inside other text they are
    /// coincidence.
    short: Vec<(String, String)>,
    /// Variables set from an answer: empty when that answer did not give them.
    captured: BTreeSet<String>,
}

/// Values at least this long stand for a variable wherever they appear.
const DISTINCT: usize = 8;

impl Vars {
    fn add(&mut self, value: &str, var: &str) {
        let taken = |list: &[(String, String)]| list.iter().any(|(v, _)| v == value);
        if value.is_empty() || taken(&self.known) {
            return;
        }
        if value.len() < DISTINCT {
            // The latest capture of a short value wins.
            self.short.insert(0, (value.to_string(), var.to_string()));
            return;
        }
        self.known.push((value.to_string(), var.to_string()));
        self.known.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
    }

    fn capture(&mut self, value: &str, var: &str) {
        self.captured.insert(var.to_string());
        self.add(value, var);
    }

    /// The variable a whole value is.
    pub(super) fn whole(&self, value: &str) -> Option<&str> {
        (self.known.iter().chain(&self.short))
            .find(|(v, _)| v == value)
            .map(|(_, var)| var.as_str())
    }

    /// Whether `var` is set in the script at all.
    pub(super) fn has(&self, var: &str) -> bool {
        (self.known.iter().chain(&self.short)).any(|(_, v)| v == var)
    }

    /// `text` quoted for a double-quoted shell word, known values as variables.
    pub(super) fn substitute(&self, text: &str) -> String {
        let mut out = shell_quote_double(text);
        for (value, var) in &self.known {
            out = out.replace(&shell_quote_double(value), &format!("${{{var}}}"));
        }
        out
    }

    /// A request path: a segment or query value that is a variable's value
    /// (once percent-decoded) is that variable, encoded by jq.
    fn path(&self, path: &str) -> String {
        let mut out = String::new();
        for piece in path.split_inclusive(['/', '?', '&', '=']) {
            let cut = piece.len() - piece.ends_with(['/', '?', '&', '=']) as usize;
            let (token, sep) = piece.split_at(cut);
            let decoded = percent_encoding::percent_decode_str(&token.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned();
            match self.whole(&decoded) {
                Some(var) if !token.is_empty() => {
                    let _ = write!(out, "$(uri \"${{{var}}}\")");
                }
                _ => out.push_str(&self.substitute(token)),
            }
            out.push_str(sep);
        }
        out
    }

    /// The captured variables a piece of script refers to.
    fn uses(&self, text: &str) -> BTreeSet<String> {
        text.split("${")
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .filter(|name| self.captured.contains(*name))
            .map(str::to_string)
            .collect()
    }

    /// A JSON value as a jq expression, known values as jq variables
    /// (`--arg`), numbers converted back.
    fn jq(&self, value: &Value, args: &mut BTreeSet<String>) -> String {
        match value {
            Value::Object(map) => {
                let fields: Vec<String> = map
                    .iter()
                    .map(|(k, v)| format!("{}: {}", Value::from(k.as_str()), self.jq(v, args)))
                    .collect();
                format!("{{{}}}", fields.join(", "))
            }
            Value::Array(items) => {
                let items: Vec<String> = items.iter().map(|v| self.jq(v, args)).collect();
                format!("[{}]", items.join(", "))
            }
            Value::String(text) => self.jq_string(text, args),
            Value::Number(n) => match self.whole(&n.to_string()) {
                Some(var) => {
                    args.insert(var.to_string());
                    format!("(${var} | tonumber)")
                }
                None => n.to_string(),
            },
            other => other.to_string(),
        }
    }

    /// A JSON string: a variable, or literal text and distinctive values
    /// joined.
    fn jq_string(&self, text: &str, args: &mut BTreeSet<String>) -> String {
        if let Some(var) = self.whole(text) {
            args.insert(var.to_string());
            return format!("${var}");
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some((at, value, var)) = self
            .known
            .iter()
            .filter_map(|(v, var)| rest.find(v.as_str()).map(|at| (at, v, var)))
            .min_by_key(|(at, v, _)| (*at, std::cmp::Reverse(v.len())))
        {
            if at > 0 {
                parts.push(Value::from(&rest[..at]).to_string());
            }
            args.insert(var.clone());
            parts.push(format!("${var}"));
            rest = &rest[at + value.len()..];
        }
        if !rest.is_empty() || parts.is_empty() {
            parts.push(Value::from(rest).to_string());
        }
        match parts.as_slice() {
            [one] => one.clone(),
            _ => format!("({})", parts.join(" + ")),
        }
    }
}

/// Text as one single-quoted shell word.
pub(super) fn single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Variables the user must set: name → why.
type Env = BTreeMap<String, String>;

/// A bash script that sends the recorded requests in order with curl and
/// ends by checking for the finding: `PASSWORD=… ./repro.sh http://host`.
pub fn curl_script(
    description: &str,
    recording: &Recording<'_>,
    secrets: &[(String, String)],
    generated: &[(String, Generated)],
    kind: Option<FindingKind>,
) -> String {
    let mut vars = Vars::default();
    let mut env = Env::new();
    for (name, value) in secrets {
        let shell = shell_name(name).to_uppercase();
        env.insert(
            shell.clone(),
            format!("the secret variable {name} of the scenario"),
        );
        vars.add(value, &shell);
    }
    let mut values = String::new();
    for (label, canary) in recording.identities {
        let shell = format!("{}_CANARY", shell_name(label).to_uppercase());
        let _ = writeln!(values, "{shell}=\"${{{shell}:-$(fresh_canary)}}\"");
        vars.add(canary, &shell);
    }
    fresh_values(&mut values, generated, &mut vars);
    for (var, value, why) in body_secrets(recording.order, &vars) {
        env.insert(var.clone(), why);
        vars.add(&value, &var);
    }
    let mut requests = String::new();
    let sent: Vec<(usize, &Issued, &Recorded)> = (recording.order.iter().enumerate())
        .filter_map(|(n, issued)| issued.exchange.as_ref().map(|e| (n + 1, issued, e)))
        .collect();
    for batch in sent.chunk_by(|a, b| a.1.batch == b.1.batch) {
        send(&mut requests, batch, &vars, &mut env);
        for &(n, _, exchange) in batch {
            answer(&mut requests, n, exchange, &mut vars);
        }
    }
    let race = sent.windows(2).any(|w| w[0].1.batch == w[1].1.batch);
    let mut out = preamble(description, &env, if race { RACE_TRIES } else { TRIES });
    out.push_str(&values);
    out.push('\n');
    out.push_str(&requests);
    check::check(&mut out, recording, &vars, kind);
    out
}

/// The script's start: what it is, its helpers, the variables the user
/// must set, the retries, where the answers go.
fn preamble(description: &str, env: &Env, tries: u32) -> String {
    let mut out = String::from("#!/usr/bin/env bash\n");
    for line in description.lines() {
        let _ = writeln!(out, "# {}", comment(line));
    }
    let _ = writeln!(
        out,
        "# Sends the reproduction's requests in order, then says whether the finding showed.\n# Needs bash, curl and jq: ./THIS.sh http://host:port"
    );
    out.push_str(PRELUDE);
    for (var, why) in env {
        let why = shell_quote_double(why);
        let _ = writeln!(
            out,
            "[ -n \"${{{var}:-}}\" ] || cannot \"set {var}, {why}\""
        );
    }
    retry(&mut out, tries);
    let _ = writeln!(out, "BASE=\"${{1:-http://127.0.0.1:8080}}\"");
    let _ = writeln!(
        out,
        "JARS=$(mktemp -d) || cannot \"no temporary directory\""
    );
    let _ = writeln!(out, "trap 'rm -rf \"$JARS\"' EXIT");
    out
}

/// Text for a comment: on one line, whatever it holds.
pub(super) fn comment(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// What shows only sometimes (a race) must not pass for fixed after one
/// run: the script runs itself from scratch (fresh values each time) until
/// it shows, or `TRIES` runs did not.
fn retry(out: &mut String, tries: u32) {
    let _ = writeln!(
        out,
        r##"if [ -z "${{CROSSTALK_TRY:-}}" ]; then
  ran=0
  for try in $(seq "${{TRIES:-{tries}}}"); do
    echo "# try $try"
    rc=0; CROSSTALK_TRY=$try bash "$0" "$@" || rc=$?
    case $rc in
      0) ran=1 ;;
      1) exit 1 ;;
    esac
  done
  [ "$ran" = 1 ] || cannot "no try sent every request"
  echo "not reproduced in ${{TRIES:-{tries}}} tries"
  exit 0
fi"##
    );
}

/// Each generated value drawn afresh: names and e-mails letter by letter
/// (two that differ only in case stay so), dates and times anew.
fn fresh_values(out: &mut String, generated: &[(String, Generated)], vars: &mut Vars) {
    let mut groups: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (k, (value, kind)) in generated.iter().enumerate() {
        if vars.whole(value).is_some() {
            continue;
        }
        let var = format!("GENERATED_{}", k + 1);
        match kind {
            Generated::Text => {
                groups.entry(value.to_lowercase()).or_default().push(value);
                continue;
            }
            Generated::Date => {
                let _ = writeln!(out, "{var}=$(fresh_date)");
            }
            Generated::Time => {
                let _ = writeln!(out, "{var}=$(fresh_time)");
            }
        }
        vars.add(value, &var);
    }
    for (g, (lower, members)) in groups.iter().enumerate() {
        let base = format!("GENERATED_TEXT_{}", g + 1);
        let _ = writeln!(out, "{base}=$(fresh {})", single_quoted(lower));
        for (m, member) in members.iter().enumerate() {
            if *member == lower {
                vars.add(member, &base);
                continue;
            }
            let var = format!("{base}_{}", m + 1);
            let _ = writeln!(out, "{var}=$(recase \"${base}\" {})", single_quoted(member));
            vars.add(member, &var);
        }
    }
}

/// One request: the captured values it needs checked, its body built,
/// the curl arguments.
struct Prepared {
    n: usize,
    needs: BTreeSet<String>,
    body: Option<String>,
    args: String,
}

/// Sends one batch: a request alone, or requests that went out at the same
/// moment (a race), each from a curl of its own, launched together and
/// waited for. Each body lands in `$JARS/<n>`, each status line in
/// `$JARS/<n>.head`.
fn send(out: &mut String, batch: &[(usize, &Issued, &Recorded)], vars: &Vars, env: &mut Env) {
    let mut prepared = Vec::new();
    for &(n, issued, exchange) in batch {
        let status = issued.status.map_or("nothing".into(), |s| s.to_string());
        let _ = writeln!(
            out,
            "# {n}. {} as {} (answered {status})",
            comment(&issued.step),
            comment(&issued.instance)
        );
        let body = body(n, exchange, vars);
        let args = curl_args(n, issued, exchange, vars, env, body.is_some());
        let needs = vars.uses(&format!("{} {args}", body.as_deref().unwrap_or("")));
        prepared.push(Prepared {
            n,
            needs,
            body,
            args,
        });
    }
    if let [one] = prepared.as_slice() {
        let _ = writeln!(out, "if {}; then", need(one));
        if let Some(body) = &one.body {
            let _ = writeln!(out, "  {body}");
        }
        let _ = writeln!(out, "  send {} {}\nfi", one.n, one.args);
        return;
    }
    let _ = writeln!(out, "# sent at the same moment, each by a curl of its own:");
    for p in &prepared {
        let _ = writeln!(out, "ok{}=0", p.n);
        let _ = writeln!(out, "if {}; then", need(p));
        if let Some(body) = &p.body {
            let _ = writeln!(out, "  {body}");
        }
        let _ = writeln!(out, "  ok{}=1\nfi", p.n);
    }
    // An identity's own requests go out one after another, in the order
    // recorded: curl processes started together reach the server in any
    // order, and a log-in that overtook its own sign-up would leave the
    // identity no session. Identities race each other; which goes first is
    // the server's to decide: every other try, the other way round.
    let chains = chains(&prepared, batch);
    let launch = |order: &mut dyn Iterator<Item = &Vec<&Prepared>>| {
        order
            .map(|chain| {
                let sends: Vec<String> = (chain.iter())
                    .map(|p| format!("[ \"$ok{0}\" = 0 ] || send {0} {1}", p.n, p.args))
                    .collect();
                match sends.as_slice() {
                    [one] => format!("  {one} &\n"),
                    _ => format!("  {{ {}; }} &\n", sends.join("; ")),
                }
            })
            .collect::<String>()
    };
    let forward = launch(&mut chains.iter());
    let backward = launch(&mut chains.iter().rev());
    let _ = writeln!(
        out,
        "if [ $(( ${{CROSSTALK_TRY:-0}} % 2 )) = 1 ]; then\n{backward}else\n{forward}fi\nwait"
    );
}

/// A batch's requests grouped by the identity whose cookie jar and session
/// they use, the groups in the order of their first request. Each group
/// goes in the program's order of its operations (a sign-up before its
/// log-in), not the order recorded: the run recorded may have sent the
/// batch the other way round.
fn chains<'a>(
    prepared: &'a [Prepared],
    batch: &[(usize, &Issued, &Recorded)],
) -> Vec<Vec<&'a Prepared>> {
    let mut who: Vec<&str> = Vec::new();
    let mut keyed = Vec::new();
    for (p, (_, issued, exchange)) in prepared.iter().zip(batch) {
        let name = exchange.captured_by.as_str();
        let group = who.iter().position(|w| *w == name).unwrap_or_else(|| {
            who.push(name);
            who.len() - 1
        });
        keyed.push((group, crate::fuzzer::op_index(&issued.step), p));
    }
    keyed.sort_by_key(|(group, op, _)| (*group, *op));
    let mut chains = vec![Vec::new(); who.len()];
    for (group, _, p) in keyed {
        chains[group].push(p);
    }
    chains
}

/// `need N VARS…`: whether the request has every captured value it needs.
fn need(p: &Prepared) -> String {
    let mut text = format!("need {}", p.n);
    for var in &p.needs {
        let _ = write!(text, " {var}");
    }
    text
}

/// One answer: its status in `S<n>`, its body in `R<n>`, and what later
/// requests need captured with jq.
fn answer(out: &mut String, n: usize, exchange: &Recorded, vars: &mut Vars) {
    let _ = writeln!(out, "got {n}");
    for (var, value, path) in &exchange.captures {
        let Some(jq) = path.as_deref().and_then(check::jsonpath_to_jq) else {
            continue;
        };
        let shell =
            format!("{}_{}", shell_name(&exchange.captured_by), shell_name(var)).to_uppercase();
        // A path over every item captures the first, as the harness does.
        let jq = match jq.contains("[]?") {
            true => format!("first({jq})"),
            false => jq,
        };
        let _ = writeln!(out, "capture {shell} {n} {}", single_quoted(&jq));
        vars.capture(value, &shell);
    }
    let _ = writeln!(out);
}

/// The command that writes request `n`'s body to `$JARS/<n>.body`: JSON
/// built by jq from the variables, a form left to curl, other text as sent.
fn body(n: usize, exchange: &Recorded, vars: &Vars) -> Option<String> {
    if exchange.body.is_empty() || form_pairs(exchange).is_some() {
        return None;
    }
    let file = format!("\"$JARS/{n}.body\"");
    match serde_json::from_str::<Value>(&exchange.body) {
        Ok(json) => {
            let mut args = BTreeSet::new();
            let filter = vars.jq(&json, &mut args);
            let mut command = String::from("jq -ncj");
            for var in &args {
                let _ = write!(command, " --arg {var} \"${{{var}}}\"");
            }
            Some(format!("{command} {} >{file}", single_quoted(&filter)))
        }
        Err(_) => Some(format!(
            "printf '%s' \"{}\" >{file}",
            vars.substitute(&exchange.body)
        )),
    }
}

/// Values sent under a secret-named field (a password in a login body)
/// that no variable stands for, nor holds: each becomes an environment
/// variable named after its field, with why it is needed. A field built
/// from a canary or a generated value is the script's to draw, and one an
/// earlier answer gave (a refresh grant's refresh token) the script's to
/// capture.
fn body_secrets(order: &[Issued], vars: &Vars) -> Vec<(String, String, String)> {
    let mut found: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut answered: BTreeSet<&str> = BTreeSet::new();
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
            let held = vars.whole(&value).is_some()
                || answered.contains(value.as_str())
                || vars.known.iter().any(|(v, _)| value.contains(v.as_str()))
                || found.values().any(|(v, _)| *v == value);
            if held || value.is_empty() {
                continue;
            }
            let base = shell_name(&key).to_uppercase();
            let mut var = base.clone();
            let mut k = 2;
            while found.contains_key(&var) || vars.has(&var) {
                var = format!("{base}_{k}");
                k += 1;
            }
            let why = format!("the {key} that {} sends", issued.instance);
            found.insert(var, (value, why));
        }
        answered.extend(exchange.captures.iter().map(|(_, text, _)| text.as_str()));
    }
    found
        .into_iter()
        .map(|(var, (value, why))| (var, value, why))
        .collect()
}

fn secret_fields(value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::String(text) if is_secret_name(key) => {
                        out.push((key.clone(), text.clone()));
                    }
                    other => secret_fields(other, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| secret_fields(v, out)),
        _ => {}
    }
}

/// One recorded request as curl arguments: known values as shell
/// variables, cookies from the identity's own jar, and any credential left
/// over as a variable the user must set, never its value.
fn curl_args(
    n: usize,
    issued: &Issued,
    exchange: &Recorded,
    vars: &Vars,
    env: &mut Env,
    body_file: bool,
) -> String {
    let jar = format!("\"$JARS/{}.jar\"", shell_name(&exchange.captured_by));
    let method = match issued.method.as_str() {
        "HEAD" => "--head".to_string(),
        other => format!("-X {other}"),
    };
    let mut command = format!("-c {jar} {method} \"$BASE{}\"", vars.path(&issued.path));
    for (name, value) in &exchange.headers {
        let lower = name.to_ascii_lowercase();
        if lower == "cookie" {
            let _ = write!(command, " -b {jar}");
            continue;
        }
        if ["content-length", "host"].contains(&lower.as_str()) {
            continue;
        }
        let mut value = vars.substitute(value);
        if is_credential_header(name) && !value.contains("${") {
            let shell = shell_name(name).to_uppercase();
            env.insert(
                shell.clone(),
                format!("the {name} header {} sends", issued.instance),
            );
            value = format!("${{{shell}}}");
        }
        let _ = write!(command, " -H \"{}: {value}\"", shell_quote_double(name));
    }
    if let Some(pairs) = form_pairs(exchange) {
        // Each value as curl encodes it, so a variable stands for the
        // value itself, never for its encoded text.
        for (name, value) in pairs {
            let value = match vars.whole(&value) {
                Some(var) => format!("${{{var}}}"),
                None => vars.substitute(&value),
            };
            let _ = write!(
                command,
                " --data-urlencode \"{}={value}\"",
                shell_quote_double(&name)
            );
        }
    } else if body_file {
        let _ = write!(command, " --data-binary @\"$JARS/{n}.body\"");
    }
    command
}

/// The decoded pairs of a form body.
pub(super) fn form_pairs(exchange: &Recorded) -> Option<Vec<(String, String)>> {
    crate::transport::form_pairs(&exchange.headers, exchange.body.as_bytes())
}

/// `patient#0` → `patient_0`: a shell variable or file name.
pub(super) fn shell_name(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(step: &str, path: &str, body: &str, captures: &[(&str, &str)]) -> Issued {
        Issued {
            seq: 0,
            scenario: "s".into(),
            instance: "member#0".into(),
            step: step.into(),
            method: "POST".into(),
            path: path.into(),
            status: Some(200),
            batch: 0,
            exchange: Some(Recorded {
                headers: vec![("content-type".into(), "application/json".into())],
                body: body.into(),
                captures: (captures.iter())
                    .map(|(var, value)| (var.to_string(), value.to_string(), Some("$.id".into())))
                    .collect(),
                captured_by: "member#0".into(),
            }),
        }
    }

    fn script(order: &mut [Issued]) -> String {
        for (n, issued) in order.iter_mut().enumerate() {
            issued.batch = n as u64;
        }
        let recording = Recording {
            order,
            identities: &[],
            finding: None,
        };
        curl_script("d", &recording, &[], &[], None)
    }

    /// Whether bash parses `script`; `None` without bash.
    fn parses(script: &str) -> Option<bool> {
        use std::io::Write as _;
        let mut bash = std::process::Command::new("bash")
            .arg("-n")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        bash.stdin.take()?.write_all(script.as_bytes()).ok()?;
        Some(bash.wait().ok()?.success())
    }

    /// A race recorded the other way round: one identity's log-in sent
    /// before its own sign-up. The script sends that identity's requests
    /// one after another in the program's order, and races the others.
    #[test]
    fn in_a_race_an_identity_s_own_requests_go_in_program_order() {
        let by = |step: &str, path: &str, who: &str| {
            let mut one = issued(step, path, r#"{"e":"x"}"#, &[]);
            one.instance = who.into();
            one.exchange.as_mut().unwrap().captured_by = who.into();
            one
        };
        let mut order = [
            by("log in [2]", "/login", "member#1"),
            by("sign up [0]", "/users", "member#1"),
            by("sign up [1]", "/users", "member#0"),
        ];
        for (seq, one) in order.iter_mut().enumerate() {
            one.seq = seq as u64;
        }
        let recording = Recording {
            order: &order,
            identities: &[],
            finding: None,
        };
        let script = curl_script("d", &recording, &[], &[], None);
        let launches: Vec<&str> = (script.lines())
            .filter(|l| l.trim_end().ends_with('&'))
            .collect();
        // Forward and backward: two launches each, member#1's chained.
        assert_eq!(launches.len(), 4, "{script}");
        let chained = launches.iter().find(|l| l.contains("{ ")).unwrap();
        let (sign_up, log_in) = (
            chained.find("send 2 ").unwrap(),
            chained.find("send 1 ").unwrap(),
        );
        assert!(sign_up < log_in, "{chained}");
        assert!(chained.contains("member_1.jar") && !chained.contains("member_0.jar"));
        assert!(
            launches
                .iter()
                .any(|l| !l.contains("{ ") && l.contains("send 3 "))
        );
        assert_ne!(parses(&script), Some(false), "{script}");
    }

    #[test]
    fn a_form_s_password_comes_from_the_environment_and_curl_encodes_it() {
        let mut login = issued("log in", "/token", "", &[]);
        let exchange = login.exchange.as_mut().unwrap();
        exchange.headers = vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )];
        exchange.body = "grant_type=password&username=m-1&password=pass+word%26x%2By%3Dz".into();
        let script = script(&mut [login]);
        assert!(!script.contains("pass word") && !script.contains("pass+word"));
        assert!(script.contains(r#"--data-urlencode "password=${PASSWORD}""#));
        assert!(script.contains(r#"--data-urlencode "grant_type=password""#));
        assert!(script.contains(r#"[ -n "${PASSWORD:-}" ] || cannot "set PASSWORD"#));
    }

    #[test]
    fn a_password_a_body_sends_comes_from_the_environment() {
        let body = r#"{"email":"dr@clinic.test","password":"staging-secret"}"#;
        let script = script(&mut [issued("log in", "/login", body, &[])]);
        assert!(!script.contains("staging-secret"), "{script}");
        assert!(
            script.contains(r#"--arg PASSWORD "${PASSWORD}""#),
            "{script}"
        );
        assert!(script.contains(r#""password": $PASSWORD"#), "{script}");
        assert_ne!(parses(&script), Some(false), "{script}");
    }

    #[test]
    fn captured_values_whatever_they_hold_are_variables_never_literals() {
        let hostile = r#"a"b$(touch /tmp/x)`id`'c\d"#;
        let step = "sign up\nrm -f /tmp/y";
        let sign_up = issued(step, "/users", r#"{"name":"x"}"#, &[("id", hostile)]);
        let encoded: String =
            percent_encoding::utf8_percent_encode(hostile, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let body = serde_json::json!({ "owner": hostile, "note": format!("for {hostile}!") });
        let read = issued("read", &format!("/users/{encoded}"), &body.to_string(), &[]);
        let script = script(&mut [sign_up, read]);
        assert!(!script.contains("touch /tmp/x"), "{script}");
        assert!(!script.contains(&encoded), "{script}");
        assert!(
            script.contains(r#"/users/$(uri "${MEMBER_0_ID}")"#),
            "{script}"
        );
        assert!(
            script.contains(r#""note": ("for " + $MEMBER_0_ID + "!")"#),
            "{script}"
        );
        assert!(script.contains("need 2 MEMBER_0_ID"), "{script}");
        assert!(script.contains("# 1. sign up rm -f"), "{script}");
        assert!(!script.lines().any(|l| l.starts_with("rm -f")), "{script}");
        assert_ne!(parses(&script), Some(false), "{script}");
    }

    #[test]
    fn a_short_id_stands_for_a_whole_value_only() {
        let sign_up = issued("sign up", "/users", r#"{"name":"x"}"#, &[("id", "1")]);
        let body = r#"{"user_id":1,"born":"1995-11-26","ref":"1"}"#;
        let read = issued("read", "/users/1/notes?page=1", body, &[]);
        let script = script(&mut [sign_up, read]);
        assert!(
            script.contains(
                r#""born": "1995-11-26", "ref": $MEMBER_0_ID, "user_id": ($MEMBER_0_ID | tonumber)"#
            ),
            "{script}"
        );
    }
}
