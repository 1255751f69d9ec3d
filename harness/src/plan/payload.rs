//! What a step sends besides its path and headers: the query and one body
//! kind (JSON, form, multipart or raw bytes), planned with their templates.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::build::{build_body, parse_template};
use crate::scenario::{ContentSpec, Located, PartSpec, ScenarioError, Step, limits};
use crate::template::Template;

/// A JSON value with templates in its strings.
#[derive(Debug, Clone)]
pub enum Body {
    Object(Vec<(String, Body)>),
    Array(Vec<Body>),
    Text(Template),
    Literal(Value),
}

impl Body {
    /// The value as written, holes left as text.
    pub fn literal(&self) -> Value {
        match self {
            Body::Literal(value) => value.clone(),
            Body::Text(t) => Value::String(t.source().to_string()),
            Body::Array(items) => Value::Array(items.iter().map(Body::literal).collect()),
            Body::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.literal()))
                    .collect(),
            ),
        }
    }

    /// Adds its templates to `out`.
    pub fn templates<'a>(&'a self, out: &mut Vec<&'a Template>) {
        match self {
            Body::Object(fields) => fields.iter().for_each(|(_, v)| v.templates(out)),
            Body::Array(items) => items.iter().for_each(|v| v.templates(out)),
            Body::Text(t) => out.push(t),
            Body::Literal(_) => {}
        }
    }
}

/// A step's body.
#[derive(Debug, Clone)]
pub enum Payload {
    Json(Body),
    /// Name → value; a list value repeats the name.
    Form(Vec<(String, Body)>),
    Multipart(Vec<(String, Content)>),
    Raw(Content),
}

/// A multipart field, or the raw body.
#[derive(Debug, Clone)]
pub struct Content {
    pub file_name: Option<Template>,
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

/// Where a content's bytes come from.
#[derive(Debug, Clone)]
pub enum Bytes {
    Text(Template),
    Literal(Vec<u8>),
    /// This many bytes, generated, carrying the sender's canary.
    Generated(u64),
}

impl Payload {
    /// Adds its templates to `out`.
    pub fn templates<'a>(&'a self, out: &mut Vec<&'a Template>) {
        let content = |c: &'a Content, out: &mut Vec<&'a Template>| {
            out.extend(c.file_name.iter());
            if let Bytes::Text(t) = &c.bytes {
                out.push(t);
            }
        };
        match self {
            Payload::Json(body) => body.templates(out),
            Payload::Form(fields) => fields.iter().for_each(|(_, v)| v.templates(out)),
            Payload::Multipart(parts) => parts.iter().for_each(|(_, c)| content(c, out)),
            Payload::Raw(c) => content(c, out),
        }
    }
}

/// The step's body, if it has one (at most one kind).
pub(super) fn payload(located: &Located<Step>) -> Result<Option<Payload>, ScenarioError> {
    let step = &located.value;
    if let [first, second, ..] = step.body_kinds()[..] {
        return Err(located.error_at(
            second,
            format!("a step sends one body: `{first}` or `{second}`, not both"),
        ));
    }
    let mut ignored = Vec::new();
    Ok(Some(if let Some(body) = &step.body {
        Payload::Json(build_body(located, body, &mut ignored)?)
    } else if let Some(form) = &step.form {
        Payload::Form(pairs(located, form)?)
    } else if let Some(parts) = &step.multipart {
        let mut planned = Vec::new();
        for (name, part) in parts {
            let content = match part {
                PartSpec::Text(text) => Content {
                    file_name: None,
                    content_type: None,
                    bytes: Bytes::Text(parse_template(located, text)?),
                },
                PartSpec::File(spec) => content(located, name, spec)?,
            };
            planned.push((name.clone(), content));
        }
        Payload::Multipart(planned)
    } else if let Some(raw) = &step.raw {
        if raw.file.is_some() {
            return Err(
                located.error_at("file", "`file` names a multipart part: a raw body has none")
            );
        }
        if raw.content_type.is_none() {
            return Err(located.error_at("raw", "a raw body needs `content_type`"));
        }
        Payload::Raw(content(located, "raw", raw)?)
    } else {
        return Ok(None);
    }))
}

/// Query or form pairs: scalars and templates; a list repeats the name.
pub(super) fn pairs(
    located: &Located<Step>,
    table: &std::collections::BTreeMap<String, toml::Value>,
) -> Result<Vec<(String, Body)>, ScenarioError> {
    let mut out = Vec::new();
    for (name, value) in table {
        let values = match value {
            toml::Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        for value in values {
            if matches!(value, toml::Value::Table(_) | toml::Value::Array(_)) {
                return Err(located.error_at(
                    name,
                    format!("`{name}` must be text, a number or a boolean (or a list of them)"),
                ));
            }
            out.push((name.clone(), build_body(located, value, &mut Vec::new())?));
        }
    }
    Ok(out)
}

fn content(
    located: &Located<Step>,
    name: &str,
    spec: &ContentSpec,
) -> Result<Content, ScenarioError> {
    let sources = [
        spec.text.is_some(),
        spec.base64.is_some(),
        spec.size.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        return Err(located.error_at(
            name,
            format!("`{name}` needs exactly one of `text`, `base64` and `size`"),
        ));
    }
    let bytes = match (&spec.text, &spec.base64, spec.size) {
        (Some(text), _, _) => Bytes::Text(parse_template(located, text)?),
        (_, Some(encoded), _) => Bytes::Literal(
            STANDARD
                .decode(encoded.trim())
                .map_err(|err| located.error_at(encoded, format!("`{name}`: not base64: {err}")))?,
        ),
        (_, _, Some(size)) if size > limits::BODY_BYTES => {
            return Err(located.error_at(
                "size",
                format!(
                    "`{name}`: at most {} generated bytes, not {size}",
                    limits::BODY_BYTES
                ),
            ));
        }
        (_, _, Some(size)) => Bytes::Generated(size),
        _ => unreachable!("exactly one source is set"),
    };
    if let Some(kind) = &spec.content_type
        && kind.parse::<mime::Mime>().is_err()
    {
        return Err(located.error_at(kind, format!("`{kind}` is not a content type")));
    }
    let file_name = match &spec.file {
        Some(file) => Some(parse_template(located, file)?),
        None => None,
    };
    Ok(Content {
        file_name,
        content_type: spec.content_type.clone(),
        bytes,
    })
}
