//! Templates: the `{{ expression }}` holes in a step's path, headers and body.
//!
//! Parsing happens once, when a scenario is loaded, so an unknown variable or
//! actor is reported before any request is sent. Rendering is a lookup per
//! hole through a [`Resolve`] implementation supplied by the executor.
//!
//! Expressions:
//! - `name`: a variable of the instance (a capture), of the scenario
//!   (`[vars]`, `--var`), or a built-in: `canary`, `run_id`, `instance`,
//!   `index`, `number`, `unique_time`, `name`, `date_of_birth`, `twin.name`,
//!   `twin.date_of_birth`, `twin.email`;
//! - `env.NAME`: an environment variable;
//! - `ROLE.VAR`: `VAR` captured by one instance of actor `ROLE`, picked by seed;
//! - `peer.VAR`: `VAR` captured by another instance of the sender's own actor;
//! - `NAME.VAR`: `VAR` of the instance a step named with `pick`.
//!
//! A template that is one hole and nothing else renders to the value with
//! its type (`"{{number}}"` is an integer in a JSON body); `{{ number |
//! string }}` renders it as text.
//!
//! A hole's value may be escaped where it lands ([`Template::render_escaped`]):
//! a captured id in a path is one segment, whatever characters it holds,
//! while the text written around it is the scenario's and kept as written.

use std::borrow::Cow;
use std::fmt;

/// A parsed template: literal text and holes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// A hole; `true` when written `{{ expr | string }}`: always text.
    Hole(Expr, bool),
}

/// What a hole refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expr {
    /// A variable or built-in of the sending instance or the scenario.
    Var(String),
    /// An environment variable.
    Env(String),
    /// A value captured by an instance of another actor (or the same one).
    Pick { role: String, var: String },
    /// A value captured by another instance of the sender's own actor.
    Peer(String),
    /// A value captured by one named instance: `patient#2.appointment_id`
    /// (what reproductions are written with).
    Of {
        role: String,
        index: usize,
        var: String,
    },
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Var(name) => write!(f, "{name}"),
            Expr::Env(name) => write!(f, "env.{name}"),
            Expr::Pick { role, var } => write!(f, "{role}.{var}"),
            Expr::Peer(var) => write!(f, "peer.{var}"),
            Expr::Of { role, index, var } => write!(f, "{role}#{index}.{var}"),
        }
    }
}

/// A template that does not parse; `offset` is a byte offset into it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub offset: usize,
    pub len: usize,
    pub message: String,
}

/// Built-in names that are not `ROLE.VAR` picks although they contain a dot.
const DOTTED_BUILTINS: &[&str] = &["twin.name", "twin.date_of_birth", "twin.email"];

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Template {
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after_open = &rest[open + 2..];
            let close = after_open.find("}}").ok_or_else(|| TemplateError {
                offset: offset + open,
                len: 2,
                message: "`{{` is never closed by `}}`".into(),
            })?;
            let inner = &after_open[..close];
            let (inner, as_text) = match inner.split_once('|') {
                Some((expr, filter)) if filter.trim() == "string" => (expr, true),
                Some((_, other)) => {
                    return Err(TemplateError {
                        offset: offset + open,
                        len: close + 4,
                        message: format!(
                            "`|{other}`: the one conversion is `| string` (the value as text)"
                        ),
                    });
                }
                None => (inner, false),
            };
            let expr = parse_expr(inner.trim()).map_err(|message| TemplateError {
                offset: offset + open,
                len: close + 4,
                message,
            })?;
            parts.push(Part::Hole(expr, as_text));
            let consumed = open + 2 + close + 2;
            rest = &rest[consumed..];
            offset += consumed;
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every expression in the template.
    pub fn exprs(&self) -> impl Iterator<Item = &Expr> {
        self.parts.iter().filter_map(|part| match part {
            Part::Hole(expr, _) => Some(expr),
            Part::Text(_) => None,
        })
    }

    /// The template's one expression when it is nothing but a hole: such a
    /// template renders to the typed value (an integer stays an integer),
    /// unless written `{{ expr | string }}`.
    pub fn sole_expr(&self) -> Option<&Expr> {
        match self.parts.as_slice() {
            [Part::Hole(expr, false)] => Some(expr),
            _ => None,
        }
    }

    /// The template with each hole written as `{expr}`: how an endpoint is
    /// named in findings (`GET /v1/appointments/{peer.appointment_id}`).
    pub fn pattern(&self) -> String {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Text(text) => text.clone(),
                Part::Hole(expr, _) => format!("{{{expr}}}"),
            })
            .collect()
    }

    /// Whether the template is one hole and nothing else (`{{next}}`).
    pub fn is_one_hole(&self) -> bool {
        matches!(self.parts.as_slice(), [Part::Hole(..)])
    }

    /// Renders to text, resolving each hole.
    pub fn render<R: Resolve + ?Sized>(&self, resolver: &R) -> Result<String, Unresolved> {
        self.render_escaped(resolver, |value| Cow::Borrowed(value))
    }

    /// Renders to text with each hole's value, as text, passed through
    /// `escape`; the literal text is kept as written.
    pub fn render_escaped<R: Resolve + ?Sized>(
        &self,
        resolver: &R,
        escape: impl Fn(&str) -> Cow<'_, str>,
    ) -> Result<String, Unresolved> {
        let mut out = String::with_capacity(self.source.len() + 32);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Hole(expr, _) => match resolver.resolve(expr)? {
                    serde_json::Value::String(text) => out.push_str(&escape(&text)),
                    other => out.push_str(&escape(&other.to_string())),
                },
            }
        }
        Ok(out)
    }
}

fn parse_expr(inner: &str) -> Result<Expr, String> {
    if inner.is_empty() {
        return Err("empty `{{ }}`: write a variable name inside".into());
    }
    if DOTTED_BUILTINS.contains(&inner) {
        return Ok(Expr::Var(inner.to_string()));
    }
    let expr = match inner.split_once('.') {
        None => Expr::Var(inner.to_string()),
        Some(("env", name)) => Expr::Env(name.to_string()),
        Some(("peer", var)) => Expr::Peer(var.to_string()),
        Some((qualified, var)) if qualified.contains('#') => {
            let (role, index) = qualified.split_once('#').expect("contains #");
            let index = index
                .parse()
                .map_err(|_| format!("`{inner}`: `{index}` is not an instance number"))?;
            Expr::Of {
                role: role.to_string(),
                index,
                var: var.to_string(),
            }
        }
        Some((role, var)) => Expr::Pick {
            role: role.to_string(),
            var: var.to_string(),
        },
    };
    let names_ok = match &expr {
        Expr::Var(name) | Expr::Peer(name) => valid_name(name),
        Expr::Env(name) => !name.is_empty() && !name.contains(char::is_whitespace),
        Expr::Pick { role, var } | Expr::Of { role, var, .. } => {
            valid_name(role) && valid_name(var)
        }
    };
    if !names_ok {
        return Err(format!(
            "`{inner}` is not a variable: expected `name`, `env.NAME`, `ROLE.VAR` or `peer.VAR`"
        ));
    }
    Ok(expr)
}

/// A hole that had no value when the request was built (the capture it
/// needs failed earlier, or no instance of the actor captured it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{{{{{expr}}}}}` has no value: {reason}")]
pub struct Unresolved {
    pub expr: String,
    pub reason: String,
}

/// Supplies the value of each hole.
pub trait Resolve {
    fn resolve(&self, expr: &Expr) -> Result<serde_json::Value, Unresolved>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fixed;
    impl Resolve for Fixed {
        fn resolve(&self, expr: &Expr) -> Result<serde_json::Value, Unresolved> {
            match expr {
                Expr::Var(name) if name == "id" => Ok(json!(42)),
                Expr::Peer(var) => Ok(json!(format!("peer-{var}"))),
                other => Err(Unresolved {
                    expr: other.to_string(),
                    reason: "not set".into(),
                }),
            }
        }
    }

    #[test]
    fn parses_holes_and_renders_them() {
        let t = Template::parse("/v1/things/{{ id }}?of={{peer.owner}}").unwrap();
        assert_eq!(t.render(&Fixed).unwrap(), "/v1/things/42?of=peer-owner");
        assert_eq!(t.pattern(), "/v1/things/{id}?of={peer.owner}");
        assert!(t.sole_expr().is_none());
        let sole = Template::parse("{{id}}").unwrap();
        assert_eq!(sole.sole_expr(), Some(&Expr::Var("id".into())));
        let text = Template::parse("{{ id | string }}").unwrap();
        assert_eq!(text.sole_expr(), None, "`| string` renders text");
        assert_eq!(text.render(&Fixed).unwrap(), "42");
        let err = Template::parse("{{ id | upper }}").unwrap_err();
        assert!(err.message.contains("`| string`"), "{}", err.message);
    }

    #[test]
    fn escapes_holes_but_not_the_text_around_them() {
        let t = Template::parse("/v1/a%2F/{{peer.x}}/{{id}}?q=/").unwrap();
        assert_eq!(
            (t.render_escaped(&Fixed, |value| Cow::Owned(value.to_uppercase()))).unwrap(),
            "/v1/a%2F/PEER-X/42?q=/"
        );
        assert_eq!(t.render(&Fixed).unwrap(), "/v1/a%2F/peer-x/42?q=/");
    }

    #[test]
    fn distinguishes_expression_forms() {
        let exprs: Vec<Expr> = Template::parse(
            "{{a}}{{env.HOME}}{{clinician.id}}{{peer.x}}{{twin.name}}{{patient#2.id}}",
        )
        .unwrap()
        .exprs()
        .cloned()
        .collect();
        assert_eq!(
            exprs,
            vec![
                Expr::Var("a".into()),
                Expr::Env("HOME".into()),
                Expr::Pick {
                    role: "clinician".into(),
                    var: "id".into()
                },
                Expr::Peer("x".into()),
                Expr::Var("twin.name".into()),
                Expr::Of {
                    role: "patient".into(),
                    index: 2,
                    var: "id".into()
                },
            ]
        );
    }

    #[test]
    fn reports_where_a_template_is_broken() {
        let err = Template::parse("abc {{ id").unwrap_err();
        assert_eq!(
            (err.offset, err.message.as_str()),
            (4, "`{{` is never closed by `}}`")
        );
        let err = Template::parse("x{{ a b }}").unwrap_err();
        assert_eq!(err.offset, 1);
        assert!(err.message.contains("not a variable"), "{}", err.message);
        assert!(Template::parse("{{}}").is_err());
    }

    #[test]
    fn unresolved_holes_are_errors_not_empty_text() {
        let err = Template::parse("{{missing}}")
            .unwrap()
            .render(&Fixed)
            .unwrap_err();
        assert_eq!(err.to_string(), "`{{missing}}` has no value: not set");
    }
}
