//! The shrinker: reduces a leaking program to a small one that still leaks
//! the same bucket, and writes it out as a scenario file crosstalk can run
//! (`crosstalk replay`) plus a curl script anyone can run.
//!
//! Delta debugging over operations (drop chunks, halving the chunk size
//! when nothing can go), then over mutations (each borrowed value, swapped
//! credential, flipped enum, set field and concurrent flag is dropped if the leak stays
//! without it), then over instances (each is folded into a lower-numbered one
//! of its actor). Every candidate runs from scratch, with fresh identities
//! in a ledger of its own against a fresh target (embedded) or new accounts
//! (remote), so the program kept holds every step it needs; a candidate
//! with concurrent operations must leak in three runs out of three, since
//! races are not certain. If even the original does not leak from scratch,
//! there is nothing to shrink: the finding is not confirmed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::executor::Issued;
use crate::fuzzer::{Identity, Program, Runner, Vocabulary, bucket};
use crate::request::shell_quote_double;
use crate::safety::is_credential_header;

/// How many runs of a candidate must all show the leak: a program with
/// concurrent operations must show it every time, so that a reproduction of
/// a race does not depend on luck.
fn tries(program: &Program) -> u64 {
    if program.ops.iter().any(|op| op.concurrent) {
        3
    } else {
        1
    }
}

/// Whether `program`, run from scratch, shows the bucket `key`.
pub async fn reproduces(runner: &Runner, vocab: &Vocabulary, program: &Program, key: &str) -> bool {
    for _ in 0..tries(program) {
        let outcome = runner.run_alone(vocab, program, false).await;
        if !outcome.findings.iter().any(|f| bucket(f) == key) {
            return false;
        }
    }
    true
}

/// The smallest program found that still shows the bucket `key` from
/// scratch, trying candidates until `stop` says so; `None` when `program`
/// itself does not.
pub async fn shrink(
    runner: &Runner,
    vocab: &Vocabulary,
    program: &Program,
    key: &str,
    stop: &(dyn Fn() -> bool + Sync),
) -> Option<Program> {
    let mut best = program.clone();
    if !reproduces(runner, vocab, &best, key).await {
        return None;
    }
    let still =
        async |candidate: &Program| !stop() && reproduces(runner, vocab, candidate, key).await;

    // Operations: remove chunks, from halves down to single operations.
    let mut chunk = best.ops.len().div_ceil(2).max(1);
    loop {
        let mut removed_any = false;
        let mut start = 0;
        while start < best.ops.len() {
            let mut candidate = best.clone();
            let end = (start + chunk).min(candidate.ops.len());
            candidate.ops.drain(start..end);
            if !candidate.ops.is_empty() && still(&candidate).await {
                best = candidate;
                removed_any = true;
            } else {
                start += chunk;
            }
        }
        if (chunk == 1 && !removed_any) || stop() {
            break;
        }
        if !removed_any {
            chunk = chunk.div_ceil(2);
        }
    }

    // Mutations: keep only those the leak needs.
    for i in 0..best.ops.len() {
        let simpler = [
            |op: &mut crate::fuzzer::Op| op.borrow = None,
            |op: &mut crate::fuzzer::Op| op.identity = Identity::Own,
            |op: &mut crate::fuzzer::Op| op.flip = None,
            |op: &mut crate::fuzzer::Op| op.set = None,
            |op: &mut crate::fuzzer::Op| op.concurrent = false,
        ];
        for simplify in simpler {
            let mut candidate = best.clone();
            simplify(&mut candidate.ops[i]);
            if candidate != best && still(&candidate).await {
                best = candidate;
            }
        }
    }

    // Instances: fold each into a lower-numbered one of the same actor.
    let mut used: Vec<(usize, usize)> = best
        .ops
        .iter()
        .map(|op| (vocab.role_of(op), op.instance))
        .collect();
    used.sort_unstable();
    used.dedup();
    for &(role, high) in used.iter().rev() {
        for low in 0..high {
            let candidate = renumber(vocab, &best, role, high, low);
            if candidate != best && still(&candidate).await {
                best = candidate;
                break;
            }
        }
    }
    Some(best)
}

/// The program with instance `from` of actor `role` replaced by `to`.
fn renumber(vocab: &Vocabulary, program: &Program, role: usize, from: usize, to: usize) -> Program {
    let swap = |i: usize| if i == from { to } else { i };
    let mut out = program.clone();
    for set in out.ops.iter_mut().filter_map(|op| op.set.as_mut()) {
        if set.role == role {
            set.from = swap(set.from);
        }
    }
    for op in out.ops.iter_mut().filter(|op| vocab.role_of(op) == role) {
        op.instance = swap(op.instance);
        op.borrow = op.borrow.map(swap).filter(|b| *b != op.instance);
        if let Identity::Other(i) = op.identity {
            op.identity = if swap(i) == op.instance {
                Identity::Own
            } else {
                Identity::Other(swap(i))
            };
        }
    }
    out
}

/// A reproduction written to disk.
pub struct Reproduction {
    pub scenario: PathBuf,
    pub script: PathBuf,
}

/// Writes `<dir>/<name>.toml` and `<dir>/<name>.sh`.
pub fn write_reproduction(
    dir: &Path,
    name: &str,
    vocab: &Vocabulary,
    program: &Program,
    summary: &str,
    seed: u64,
    recorded: &[Issued],
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
        curl_script(&description, recorded, &vocab.secret_values()),
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(Reproduction { scenario, script })
}

/// A bash script that sends the recorded requests in order with curl,
/// capturing with jq what later requests need (ids, tokens) and keeping
/// each instance's cookies in a jar, so it logs in by itself against a
/// fresh server: `PASSWORD=… ./repro.sh http://127.0.0.1:8080`. Secret
/// variables come from the environment; no live credential is written.
pub fn curl_script(description: &str, recorded: &[Issued], secrets: &[(String, String)]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "#!/usr/bin/env bash");
    let _ = writeln!(out, "# {description}");
    let _ = writeln!(
        out,
        "# Sends the reproduction's requests in order. Needs curl and jq."
    );
    let _ = writeln!(out, "set -euo pipefail");
    let _ = writeln!(out, "BASE=\"${{1:-http://127.0.0.1:8080}}\"");
    let _ = writeln!(out, "JARS=$(mktemp -d)");
    // Known text → shell variable, longest first so ids inside tokens stay whole.
    let mut vars: Vec<(String, String)> = Vec::new();
    for (name, value) in secrets {
        let shell = name.to_uppercase();
        let _ = writeln!(
            out,
            ": \"${{{shell}:?set {shell}, the scenario's secret variable {name}}}\""
        );
        vars.push((value.clone(), shell));
    }
    let _ = writeln!(out);
    for (n, issued) in recorded.iter().enumerate() {
        let Some(exchange) = &issued.exchange else {
            continue;
        };
        vars.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
        let _ = writeln!(
            out,
            "# {}. {} as {} → {}",
            n + 1,
            issued.step,
            issued.instance,
            issued
                .status
                .map_or("no answer".to_string(), |s| s.to_string())
        );
        let _ = writeln!(out, "R{n}=$({})", curl_command(issued, exchange, &vars));
        let _ = writeln!(out, "echo \"$R{n}\"");
        for (var, value, path) in &exchange.captures {
            let Some(jq) = path.as_deref().and_then(jsonpath_to_jq) else {
                continue;
            };
            if value.len() < 2 {
                continue;
            }
            let shell = format!("{}_{var}", shell_name(&exchange.captured_by)).to_uppercase();
            let _ = writeln!(out, "{shell}=$(jq -r '{jq}' <<<\"$R{n}\")");
            vars.push((value.clone(), shell));
        }
        let _ = writeln!(out);
    }
    out
}

/// One recorded request as a curl command: known values as shell
/// variables, cookies from the instance's jar, and any credential left
/// over as a variable the user must set, never its value.
fn curl_command(
    issued: &Issued,
    exchange: &crate::executor::Recorded,
    vars: &[(String, String)],
) -> String {
    let substitute = |text: &str| {
        let mut out = shell_quote_double(text);
        for (value, var) in vars {
            out = out.replace(&shell_quote_double(value), &format!("${{{var}}}"));
        }
        out
    };
    let jar = format!("$JARS/{}", shell_name(&exchange.captured_by));
    let mut command = format!(
        "curl -sS -c \"{jar}\" -X {} \"$BASE{}\"",
        issued.method,
        substitute(&issued.path)
    );
    for (name, value) in &exchange.headers {
        if name.eq_ignore_ascii_case("cookie") {
            let _ = write!(command, " -b \"{jar}\"");
            continue;
        }
        let mut value = substitute(value);
        if is_credential_header(name) && !value.contains("${") {
            let shell = shell_name(name).to_uppercase();
            value = format!("${{{shell}:?set {shell}}}");
        }
        let _ = write!(command, " -H \"{name}: {value}\"");
    }
    if !exchange.body.is_empty() {
        let _ = write!(command, " --data \"{}\"", substitute(&exchange.body));
    }
    command
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
}
