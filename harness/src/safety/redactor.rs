//! The redactor: every credential a run has seen, removed from anything it
//! writes out (paths, bodies, excerpts, summaries), in every encoding a
//! request may have given it.

use std::sync::RwLock;

use super::secrets::SecretIndex;
use super::{REDACTED, is_credential_field};

/// Every credential seen in a run, removed from anything written out.
#[derive(Debug, Default)]
pub struct Redactor {
    secrets: RwLock<Secrets>,
    /// Body fields to blank besides [`CREDENTIAL_FIELDS`].
    fields: RwLock<Vec<String>>,
}

#[derive(Debug, Default)]
struct Secrets {
    /// Each secret in every encoding, for finding them in a text, and which
    /// were taught as they are: every request carrying a credential teaches
    /// it again, and a known one then costs one shared look-up.
    index: SecretIndex,
}

impl Redactor {
    pub fn add(&self, secret: &str) {
        // Short values would redact ordinary text; credentials are long.
        if secret.len() >= 8 {
            self.insert(secret);
        }
    }

    /// A value the scenario declares secret: redacted even when short.
    pub fn add_declared(&self, secret: &str) {
        if secret.len() >= 4 {
            self.insert(secret);
        }
    }

    /// More body fields to treat as credentials (a scenario's `redact_fields`).
    pub fn add_fields(&self, fields: &[String]) {
        let mut extra = self.fields.write().unwrap_or_else(|p| p.into_inner());
        extra.extend(fields.iter().cloned());
    }

    /// The secret as written, and as a form or a query encodes it: a
    /// password sent in a form must not reach a report encoded either.
    fn insert(&self, secret: &str) {
        if (self.secrets.read().unwrap_or_else(|p| p.into_inner()))
            .index
            .taught(secret.as_bytes())
        {
            return;
        }
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let percent =
            percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let mut secrets = self.secrets.write().unwrap_or_else(|p| p.into_inner());
        secrets.index.insert(secret.as_bytes(), true);
        for text in [&form, &percent] {
            secrets.index.insert(text.as_bytes(), false);
        }
    }

    /// A request or response body as it may be written out: known secrets
    /// replaced, and credential fields of a JSON or form body blanked.
    pub fn redact_body(&self, text: &str) -> String {
        let text = self.redact(text);
        let extra = self.fields.read().unwrap_or_else(|p| p.into_inner());
        if let Ok(mut json) = serde_json::from_str::<serde_json::Value>(&text) {
            blank_fields(&mut json, &extra);
            return json.to_string();
        }
        let form_like = text.contains('=') && !text.contains(char::is_whitespace);
        if !form_like {
            return text;
        }
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(text.as_bytes())
            .map(|(k, v)| {
                let v = if is_credential_field(&k, &extra) {
                    REDACTED.into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }

    /// `text` with every known secret replaced.
    pub fn redact(&self, text: &str) -> String {
        let secrets = self.secrets.read().unwrap_or_else(|p| p.into_inner());
        let hits = secrets.index.find(text.as_bytes());
        if hits.is_empty() {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut from = 0;
        for hit in hits {
            // Secrets are whole UTF-8 strings, so their ends are char boundaries.
            out.push_str(text.get(from..hit.start).unwrap_or_default());
            out.push_str(REDACTED);
            from = hit.end;
        }
        out.push_str(text.get(from..).unwrap_or_default());
        out
    }
}

/// Blanks the string values of credential fields, at any depth.
fn blank_fields(json: &mut serde_json::Value, extra: &[String]) {
    match json {
        serde_json::Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if is_credential_field(key, extra) && value.is_string() {
                    *value = serde_json::Value::String(REDACTED.into());
                } else {
                    blank_fields(value, extra);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| blank_fields(v, extra)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_a_secret_encoded_by_a_form_or_a_query() {
        let redactor = Redactor::default();
        redactor.add_declared("pass word&x+y=z");
        for sent in [
            "pin=pass+word%26x%2By%3Dz&u=1",
            "/s?q=pass%20word%26x%2By%3Dz",
        ] {
            let out = redactor.redact(sent);
            assert!(out.contains(REDACTED) && !out.contains("word"), "{out}");
        }
    }

    #[test]
    fn redacts_every_known_secret() {
        let redactor = Redactor::default();
        redactor.add("tok-1234567890");
        redactor.add("short");
        assert_eq!(
            redactor.redact("Bearer tok-1234567890 short"),
            "Bearer [redacted] short"
        );
    }

    #[test]
    fn a_secret_that_is_another_ones_encoding_is_encoded_too() {
        let redactor = Redactor::default();
        redactor.add("pass word&x");
        // The first one's form encoding, now a secret of its own: its own
        // encodings must be learnt though its text is already known.
        redactor.add("pass+word%26x");
        let out = redactor.redact("/s?q=pass%2Bword%2526x");
        assert_eq!(out, "/s?q=[redacted]");
    }
}
