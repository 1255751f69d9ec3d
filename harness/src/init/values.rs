//! Example values for a request, from the schema of each field and its
//! name: a canary in every free-text string (so whatever is created can be
//! recognised wherever it shows up), built-ins for names, dates and times,
//! the scenario's password, enum values in turn (a mode switched goes to
//! another mode), and captured variables for ids and refresh tokens.

use std::collections::{BTreeSet, HashMap};

use oas3::Spec;
use oas3::spec::{
    ObjectOrReference, ObjectSchema, Schema, SchemaType as Type, SchemaTypeSet as TypeSet,
};

use super::operation::is_refresh_token;

/// Every instance its own password: one account's password opens no other.
pub(super) const OWN_PASSWORD: &str = "{{password}} {{canary}}";

/// The variable that holds an instance's refresh token.
pub(super) const REFRESH_TOKEN: &str = "refresh_token";

/// Renders example values; remembers which enum value each field had.
pub(super) struct Values<'a> {
    spec: &'a Spec,
    /// Variables captured by earlier steps.
    pub known: &'a BTreeSet<String>,
    /// Which enum value each field takes next, across the whole suite.
    turns: HashMap<String, usize>,
    /// `*_id` fields no captured variable could fill.
    pub missing: Vec<String>,
    /// Every field of an object, not only those it requires (a login
    /// chooses among them).
    pub all_fields: bool,
    /// The password an instance's account has: its own by default, or the
    /// one a suite's sign-up sets (`fuzz --openapi`).
    pub password: String,
}

impl<'a> Values<'a> {
    pub fn new(
        spec: &'a Spec,
        known: &'a BTreeSet<String>,
        turns: HashMap<String, usize>,
    ) -> Values<'a> {
        Values {
            spec,
            known,
            turns,
            missing: Vec::new(),
            all_fields: false,
            password: OWN_PASSWORD.to_string(),
        }
    }

    /// The enum turns, to carry on to the next step.
    pub fn into_turns(self) -> HashMap<String, usize> {
        self.turns
    }

    pub fn resolve(&self, schema: &ObjectOrReference<ObjectSchema>) -> Option<ObjectSchema> {
        schema.resolve(self.spec).ok()
    }

    /// The value of field `name` with `schema`; `None` to leave it out.
    pub fn value(
        &mut self,
        name: &str,
        schema: &ObjectSchema,
        depth: usize,
    ) -> Option<toml::Value> {
        let schema = self.merged(schema);
        if schema.read_only == Some(true) || depth > 4 || name == "id" {
            // A record's own id is the server's to give.
            return None;
        }
        if let Some(id) = self.id(name) {
            return Some(toml::Value::String(id));
        }
        if is_refresh_token(name) {
            // A refresh grant sends the instance's own refresh token.
            return Some(toml::Value::String(self.captured(REFRESH_TOKEN)));
        }
        if let Some(value) = &schema.const_value {
            return json_to_toml(value);
        }
        if !schema.enum_values.is_empty() {
            let turn = self.turns.entry(name.to_string()).or_default();
            let value = &schema.enum_values[*turn % schema.enum_values.len()];
            *turn += 1;
            return json_to_toml(value);
        }
        let is = |t: Type| schema.schema_type.as_ref().is_some_and(|s| s.contains(t));
        let kind = code_like(name).filter(|_| !is(Type::Object) && !is(Type::Array));
        if let Some(kind) = kind {
            // A role or a code takes what the document says it may be,
            // never free text: left out when the document does not say.
            let documented = (schema.example.iter())
                .chain(&schema.examples)
                .chain(&schema.default)
                .find_map(json_to_toml);
            return documented.or(match kind {
                Kind::Code if is(Type::Integer) => Some(toml::Value::Integer(123456)),
                Kind::Code => Some(toml::Value::String("123456".into())),
                Kind::Word => None,
            });
        }
        if is(Type::Object) || (!schema.properties.is_empty() && schema.schema_type.is_none()) {
            return Some(toml::Value::Table(self.object(&schema, depth + 1)));
        }
        if is(Type::Array) {
            let item = match schema.items.as_deref() {
                Some(Schema::Object(item)) => self.resolve(item),
                _ => None,
            };
            let items = item.and_then(|i| self.value(name, &i, depth + 1));
            return Some(toml::Value::Array(items.into_iter().collect()));
        }
        if is(Type::Integer) {
            let min = schema
                .minimum
                .as_ref()
                .and_then(|m| m.as_i64())
                .unwrap_or(1);
            return Some(toml::Value::Integer(min.max(1)));
        }
        if is(Type::Number) {
            return Some(toml::Value::Float(1.0));
        }
        if is(Type::Boolean) {
            return Some(toml::Value::Boolean(true));
        }
        Some(toml::Value::String(
            self.text(name, schema.format.as_deref()),
        ))
    }

    /// Every property of an object schema that has a value: those it
    /// requires, or all of them when it requires none (a partial update)
    /// or `all_fields` says so.
    pub fn object(&mut self, schema: &ObjectSchema, depth: usize) -> toml::Table {
        let schema = self.merged(schema);
        let mut table = toml::Table::new();
        let every = self.all_fields || schema.required.is_empty();
        let wanted =
            (schema.properties.iter()).filter(|(name, _)| every || schema.required.contains(name));
        for (name, property) in wanted {
            let Some(property) = self.resolve(property) else {
                continue;
            };
            if let Some(value) = self.value(name, &property, depth) {
                table.insert(name.clone(), value);
            }
        }
        table
    }

    /// A schema with its `allOf` parts folded in.
    fn merged(&self, schema: &ObjectSchema) -> ObjectSchema {
        if let Some(part) = self.not_null(schema) {
            return part;
        }
        let mut merged = schema.clone();
        for part in &schema.all_of {
            if let Some(part) = self.resolve(part) {
                let part = self.merged(&part);
                merged.properties.extend(part.properties);
                merged.required.extend(part.required);
                merged.schema_type = merged.schema_type.or(part.schema_type);
            }
        }
        merged
    }

    /// For a schema that is only `anyOf` (or `oneOf`) a value or null, as
    /// FastAPI writes an optional field: the value's part, with the outer
    /// format, example and default.
    fn not_null(&self, schema: &ObjectSchema) -> Option<ObjectSchema> {
        let bare = schema.schema_type.is_none()
            && schema.properties.is_empty()
            && schema.enum_values.is_empty();
        let only_null = |s: &ObjectSchema| s.schema_type == Some(TypeSet::Single(Type::Null));
        let parts = schema.any_of.iter().chain(&schema.one_of);
        let part = (parts.filter_map(|p| self.resolve(p))).find(|p| !only_null(p));
        let mut part = self.merged(&part.filter(|_| bare)?);
        part.format = schema.format.clone().or(part.format);
        part.example = schema.example.clone().or(part.example);
        part.default = schema.default.clone().or(part.default);
        Some(part)
    }

    /// Another record's id (`clinician_id`): the variable an earlier step
    /// captured (a lone hole: its type kept), or a placeholder, noted missing.
    fn id(&mut self, name: &str) -> Option<String> {
        if !(name.ends_with("_id") || name.ends_with("Id")) {
            return None;
        }
        // `clinicianId` is `clinician_id`, as a path's `{clinicianId}` is.
        Some(self.captured(&super::operation::snake(name)))
    }

    /// The hole of a variable an earlier step captured, or a placeholder,
    /// noted missing.
    fn captured(&mut self, name: &str) -> String {
        if self.known.contains(name) {
            return format!("{{{{{name}}}}}");
        }
        self.missing.push(name.to_string());
        format!("FILL-ME-{name}")
    }

    /// Text for a string field, by its name and format.
    fn text(&mut self, name: &str, format: Option<&str>) -> String {
        // `fullName`, `full_name` and `FullName` alike.
        let lower = super::operation::snake(name);
        match (format, lower.as_str()) {
            // Pairs of look-alike people (the same name and date of birth):
            // a record matched by them instead of an id shows.
            (_, l) if l.contains("birth") || l == "dob" => "{{twin.date_of_birth}}".into(),
            (_, l) if is_persons_name(l) => "{{twin.name}}".into(),
            (Some("date-time"), _) => "{{unique_time}}".into(),
            (Some("date"), _) => "{{date_of_birth}}".into(),
            (Some("email"), _) | (_, "email") => "{{canary}}@example.test".into(),
            (_, l) if l.ends_with("email") => "{{canary}}@example.test".into(),
            // A new password of the sender's own: set on another's account,
            // it locks the owner out.
            (_, l) if l.contains("password") && l.contains("new") => {
                format!("{} new", self.password)
            }
            (Some("password"), _) => self.password.clone(),
            (_, l) if l.contains("password") => self.password.clone(),
            (_, "grant_type") => "password".into(),
            (_, "username" | "user_name" | "login") => "user-{{run_id}}-{{serial}}".into(),
            (_, l) if l.contains("phone") => "+44 7700 9{{serial}}".into(),
            (Some("uri" | "url"), _) => "https://example.test/{{canary}}".into(),
            _ => format!("{{{{canary}}}} {name}"),
        }
    }
}

/// Whether a field (snake case) holds a person's name: `name`,
/// `full_name`, `firstName`, `surname`; not a user name or a file name.
fn is_persons_name(field: &str) -> bool {
    const NAMES: [&str; 9] = [
        "name",
        "full_name",
        "display_name",
        "first_name",
        "last_name",
        "given_name",
        "family_name",
        "surname",
        "patient_name",
    ];
    NAMES.contains(&field)
}

/// What a code-like field takes.
enum Kind {
    /// A one-time code (`code`, `otp`, `pin`): digits.
    Code,
    /// A word from a fixed set (`role`, `type`, `status`…).
    Word,
}

/// Whether a field holds a code or a word from a fixed set, by the last
/// word of its name (`sms_code`, `userRole`).
fn code_like(name: &str) -> Option<Kind> {
    let snake = super::operation::snake(name);
    if snake == "grant_type" {
        return None;
    }
    let last = snake.rsplit('_').next().unwrap_or_default();
    match last {
        "code" | "otp" | "pin" => Some(Kind::Code),
        "role" | "type" | "kind" | "status" | "state" | "category" | "scope" | "gender"
        | "currency" | "country" | "language" | "locale" => Some(Kind::Word),
        _ => None,
    }
}

fn json_to_toml(value: &serde_json::Value) -> Option<toml::Value> {
    Some(match value {
        serde_json::Value::String(s) => toml::Value::String(s.clone()),
        serde_json::Value::Bool(b) => toml::Value::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        _ => return None,
    })
}
