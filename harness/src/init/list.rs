//! Lists in answers, however an API wraps them: a bare array (`$`), an
//! envelope (`$.data`, `$.items`) or HAL's `_embedded` (`$._embedded.
//! clinicians`). Where the items sit and what they are is all `init` needs
//! to take a list's first id or to tell which fields everyone is shown.

use oas3::Spec;
use oas3::spec::{ObjectOrReference, ObjectSchema, Schema};

use super::operation::{singular, snake};

/// A list in an answer.
pub(super) struct List {
    /// The JSON path of the array (`$`, `$.data`, `$._embedded.clinicians`).
    pub at: String,
    pub item: ObjectSchema,
    /// The resource its items' schema names (`ClinicianOut` → `clinician`).
    pub resource: Option<String>,
}

impl List {
    /// The path of the first item's field `key` (`$.data[0].id`).
    pub fn first(&self, key: &str) -> String {
        format!("{}[0].{key}", self.at)
    }

    /// The path of every item's field `key` (`$.data[*].title`).
    pub fn every(&self, key: &str) -> String {
        format!("{}[*].{key}", self.at)
    }
}

/// The list an answer of `schema` holds: at its top, or one or two objects
/// down (an envelope, HAL's `_embedded`).
pub(super) fn find(spec: &Spec, schema: &ObjectSchema) -> Option<List> {
    if let Some(list) = items(spec, schema, "$".into()) {
        return Some(list);
    }
    let inner = |schema: &ObjectSchema, at: &str| -> Vec<(String, ObjectSchema)> {
        (schema.properties.iter())
            .filter_map(|(key, p)| Some((format!("{at}.{key}"), p.resolve(spec).ok()?)))
            .collect()
    };
    let one_down = inner(schema, "$");
    let found = (one_down.iter()).find_map(|(at, s)| items(spec, s, at.clone()));
    found.or_else(|| {
        (one_down.iter())
            .flat_map(|(at, s)| inner(s, at))
            .find_map(|(at, s)| items(spec, &s, at))
    })
}

/// The list `schema` is, when it is an array of objects.
fn items(spec: &Spec, schema: &ObjectSchema, at: String) -> Option<List> {
    let Some(Schema::Object(item)) = schema.items.as_deref() else {
        return None;
    };
    let resource = match item.as_ref() {
        ObjectOrReference::Ref { ref_path, .. } => Some(resource_named(ref_path)),
        _ => None,
    };
    let item = item.resolve(spec).ok()?;
    (!item.properties.is_empty()).then_some(List { at, item, resource })
}

/// The resource a schema's name names (`#/components/schemas/PatientOut` →
/// `patient`), less the suffixes generators add for a read model.
pub(super) fn resource_named(ref_path: &str) -> String {
    let mut name = ref_path.rsplit('/').next().unwrap_or(ref_path);
    for suffix in [
        "Response", "Out", "Read", "Public", "Detail", "Schema", "Model", "Dto",
    ] {
        name = name
            .strip_suffix(suffix)
            .filter(|n| !n.is_empty())
            .unwrap_or(name);
    }
    singular(&snake(name))
}
