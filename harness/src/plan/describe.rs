//! A plan in plain words, for `crosstalk check`: its actors, and for each
//! step who sends it, the request with its holes, what it expects, captures
//! and grants. Nothing is sent to make it.

use std::fmt::Write as _;

use super::{CaptureSource, Credentials, Payload, Plan, PlanStep};
use crate::template::Expr;

impl Plan {
    /// What running this plan would do, one block per step.
    pub fn describe(&self) -> String {
        let mut out = format!("{}\n", self.scenario);
        for role in &self.roles {
            let auth = match (&role.auth.header, role.auth.cookies) {
                (Some((name, value)), _) => format!("{name}: {}", value.source()),
                (None, true) => "a cookie session".to_string(),
                (None, false) => "no credentials".to_string(),
            };
            let reauth = match role.reauth {
                Some(step) => format!(", logs in again with `{}` on a 401", self.steps[step].name),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "  actor {} × {}, sends {auth}{reauth}",
                role.name, role.count
            );
        }
        let steps = (self.setup.iter().map(|s| ("setup", true, s)))
            .chain(self.steps.iter().map(|s| ("step", false, s)))
            .chain(self.teardown.iter().map(|s| ("teardown", false, s)))
            .chain(self.cleanup.iter().map(|s| ("teardown", true, s)));
        for (kind, once, step) in steps {
            self.describe_step(kind, once, step, &mut out);
        }
        out
    }

    fn describe_step(&self, kind: &str, once: bool, step: &PlanStep, out: &mut String) {
        let role = &self.roles[step.role].name;
        let senders = match step.instance {
            _ if once => "once, by no instance".to_string(),
            Some(n) => format!("{role}#{n}"),
            None => format!("every {role}"),
        };
        let together = if step.concurrent {
            ", with the step before"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {kind} `{}` ({}): {senders}{together}",
            step.name, step.location
        );
        let _ = writeln!(out, "    {} {}", step.method, step.path.pattern());
        let picks = step
            .source
            .pick
            .iter()
            .map(|(name, of)| format!("{name} = one {of}"));
        list(out, "picks", picks.collect());
        match step.credentials {
            Credentials::Own => {}
            Credentials::Anonymous => line(out, "credentials", "none".into()),
            Credentials::Picked(p) => line(out, "credentials", format!("{}'s", self.picks[p].0)),
            Credentials::Of(r, i) => {
                line(out, "credentials", format!("{}#{i}'s", self.roles[r].name))
            }
            Credentials::Unsigned(r, i) => line(
                out,
                "credentials",
                format!("{}#{i}'s claims, unsigned", self.roles[r].name),
            ),
        }
        if let Some(body) = &step.body {
            line(out, "body", body_kind(body));
        }
        let mut holes: Vec<String> = step
            .templates()
            .into_iter()
            .flat_map(|t| t.exprs().map(Expr::to_string))
            .collect();
        let mut seen = std::collections::HashSet::new();
        holes.retain(|hole| seen.insert(hole.clone()));
        list(out, "holes", holes);
        let expect = &step.expect;
        let mut expects: Vec<String> = (expect.status.iter())
            .map(|c| format!("status {}", c.written))
            .collect();
        expects.extend((expect.json.iter()).map(|(path, _, c)| format!("{path} {}", c.written)));
        expects.extend(
            (expect.headers.iter()).map(|(name, c)| format!("header {name} {}", c.written)),
        );
        expects.extend((expect.body.iter()).map(|c| format!("body {}", c.written)));
        list(out, "expects", expects);
        let captures = step.captures.iter().map(|c| {
            let source = match &c.source {
                CaptureSource::Json { text, .. } => text.clone(),
                CaptureSource::Header(name) => format!("header {name}"),
                CaptureSource::Cookie(name) => format!("cookie {name}"),
            };
            let flags: Vec<&str> = [
                (c.secret, "secret"),
                (c.shared, "shared"),
                (c.optional, "optional"),
            ]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
            match flags.is_empty() {
                true => format!("{} ← {source}", c.var),
                false => format!("{} ← {source} ({})", c.var, flags.join(", ")),
            }
        });
        list(out, "captures", captures.collect());
        if let Some(grant) = &step.grant_to {
            line(
                out,
                "grants",
                format!("the owner of {} may see the sender", grant.source()),
            );
        }
        list(
            out,
            "public",
            step.public.iter().map(|(p, _)| p.clone()).collect(),
        );
        list(
            out,
            "volatile",
            step.volatile.iter().map(|(p, _)| p.clone()).collect(),
        );
    }
}

/// The kind of body a step sends, and its fields.
fn body_kind(body: &Payload) -> String {
    let names = |fields: Vec<&String>| {
        let names: Vec<&str> = fields.into_iter().map(String::as_str).collect();
        names.join(", ")
    };
    match body {
        Payload::Json(_) => "JSON".to_string(),
        Payload::Form(fields) => {
            format!("form ({})", names(fields.iter().map(|(n, _)| n).collect()))
        }
        Payload::Multipart(parts) => {
            format!(
                "multipart ({})",
                names(parts.iter().map(|(n, _)| n).collect())
            )
        }
        Payload::Raw(content) => format!("raw {}", content.content_type.as_deref().unwrap_or("")),
    }
}

fn line(out: &mut String, what: &str, text: String) {
    let _ = writeln!(out, "    {what}: {text}");
}

fn list(out: &mut String, what: &str, items: Vec<String>) {
    if !items.is_empty() {
        line(out, what, items.join(", "));
    }
}
