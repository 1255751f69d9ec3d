//! Response contracts: the shape of each step's responses (status, content
//! type, JSON keys and value types), kept as insta snapshots so that a
//! silent change of a field's name or type fails the gate like a leak would.
//!
//! A shape holds types, never values, so a snapshot cannot carry an id, a
//! canary, a timestamp or a credential. Shapes are merged over every
//! instance that sent the step; two shapes are compatible when they differ
//! only where one of them knows nothing (an empty array). Files use insta's
//! `.snap` format: drift writes a `.snap.new` beside the snapshot, which
//! `cargo insta review` or `crosstalk snapshots accept` turns into the new
//! snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;

/// The shape of a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// Scalar types seen: `boolean`, `integer`, `null`, `number`, `string`.
    Scalar(BTreeSet<&'static str>),
    Object(BTreeMap<String, Shape>),
    /// Element shape; `None` when only empty arrays were seen.
    Array(Option<Box<Shape>>),
    /// Different kinds at once (an object here, null there).
    Union(Vec<Shape>),
}

/// The scalar kind of `value`, `None` for an array or an object.
fn scalar_kind(value: &Value) -> Option<&'static str> {
    match value {
        Value::Null => Some("null"),
        Value::Bool(_) => Some("boolean"),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some("integer"),
        Value::Number(_) => Some("number"),
        Value::String(_) => Some("string"),
        Value::Array(_) | Value::Object(_) => None,
    }
}

impl Shape {
    pub fn of(value: &Value) -> Shape {
        match value {
            Value::Array(items) => Shape::Array(
                items
                    .iter()
                    .map(Shape::of)
                    .reduce(Shape::merge)
                    .map(Box::new),
            ),
            Value::Object(map) => {
                Shape::Object(map.iter().map(|(k, v)| (k.clone(), Shape::of(v))).collect())
            }
            scalar => Shape::scalar(scalar_kind(scalar).expect("neither array nor object")),
        }
    }

    /// Whether merging `value`'s shape would leave this one as it is: most
    /// answers of a step have a shape seen already, and telling so builds
    /// nothing.
    pub fn covers(&self, value: &Value) -> bool {
        match (self, value) {
            // As `merge` does: the one part of the value's kind answers.
            (Shape::Union(parts), _) => (parts.iter())
                .find(|part| part.rank() == Shape::rank_of(value))
                .is_some_and(|part| part.covers(value)),
            (Shape::Scalar(kinds), _) => scalar_kind(value).is_some_and(|k| kinds.contains(k)),
            (Shape::Object(fields), Value::Object(map)) => map
                .iter()
                .all(|(k, v)| fields.get(k).is_some_and(|f| f.covers(v))),
            (Shape::Array(element), Value::Array(items)) => match element {
                Some(element) => items.iter().all(|item| element.covers(item)),
                None => items.is_empty(),
            },
            _ => false,
        }
    }

    fn scalar(name: &'static str) -> Shape {
        Shape::Scalar(BTreeSet::from([name]))
    }

    /// The shape that covers both.
    pub fn merge(self, other: Shape) -> Shape {
        match (self, other) {
            (Shape::Scalar(mut a), Shape::Scalar(b)) => {
                a.extend(b);
                Shape::Scalar(a)
            }
            (Shape::Object(mut a), Shape::Object(b)) => {
                for (key, shape) in b {
                    let merged = match a.remove(&key) {
                        Some(existing) => existing.merge(shape),
                        None => shape,
                    };
                    a.insert(key, merged);
                }
                Shape::Object(a)
            }
            (Shape::Array(a), Shape::Array(b)) => Shape::Array(match (a, b) {
                (Some(a), Some(b)) => Some(Box::new(a.merge(*b))),
                (a, b) => a.or(b),
            }),
            // Part by part: a union is never a part of another, so merging
            // a shape with itself leaves it as it is.
            (union @ Shape::Union(_), Shape::Union(others)) => {
                others.into_iter().fold(union, Shape::merge)
            }
            (Shape::Union(mut parts), other) | (other, Shape::Union(mut parts)) => {
                let position = parts
                    .iter()
                    .position(|p| std::mem::discriminant(p) == std::mem::discriminant(&other));
                match position {
                    Some(i) => {
                        let existing = parts.remove(i);
                        parts.push(existing.merge(other));
                    }
                    None => parts.push(other),
                }
                parts.sort_by_key(Shape::rank);
                Shape::Union(parts)
            }
            (a, b) => {
                let mut parts = vec![a, b];
                parts.sort_by_key(Shape::rank);
                Shape::Union(parts)
            }
        }
    }

    /// The rank of `Shape::of(value)`.
    fn rank_of(value: &Value) -> u8 {
        match value {
            Value::Array(_) => 1,
            Value::Object(_) => 2,
            _ => 0,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Shape::Scalar(_) => 0,
            Shape::Array(_) => 1,
            Shape::Object(_) => 2,
            Shape::Union(_) => 3,
        }
    }

    /// Whether `self` (the snapshot) and `seen` describe the same contract:
    /// equal, except where one side saw only empty arrays.
    pub fn compatible(&self, seen: &Shape) -> bool {
        match (self, seen) {
            (Shape::Array(None), Shape::Array(_)) | (Shape::Array(_), Shape::Array(None)) => true,
            (Shape::Array(Some(a)), Shape::Array(Some(b))) => a.compatible(b),
            (Shape::Object(a), Shape::Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.get(k).is_some_and(|w| v.compatible(w)))
            }
            (Shape::Union(a), Shape::Union(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.compatible(y))
            }
            (a, b) => a == b,
        }
    }

    /// Indented text, one key a line, keys sorted: diff-friendly.
    pub fn render(&self, indent: usize, out: &mut String) {
        let pad = "  ".repeat(indent);
        match self {
            Shape::Scalar(types) => {
                out.push_str(&types.iter().copied().collect::<Vec<_>>().join(" | "))
            }
            Shape::Array(None) => out.push_str("[]"),
            Shape::Array(Some(element)) => {
                out.push('[');
                element.render(indent, out);
                out.push(']');
            }
            Shape::Object(map) if map.is_empty() => out.push_str("{}"),
            Shape::Object(map) => {
                out.push_str("{\n");
                for (key, shape) in map {
                    let _ = write!(
                        out,
                        "{pad}  {}: ",
                        serde_json::to_string(key).unwrap_or_default()
                    );
                    shape.render(indent + 1, out);
                    out.push('\n');
                }
                let _ = write!(out, "{pad}}}");
            }
            Shape::Union(parts) => {
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" | ");
                    }
                    part.render(indent, out);
                }
            }
        }
    }
}

/// What one status of a step answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub content_type: String,
    /// `None` for a body that is not JSON (media, empty).
    pub shape: Option<Shape>,
}

impl Variant {
    fn compatible(&self, seen: &Variant) -> bool {
        self.content_type == seen.content_type
            && match (&self.shape, &seen.shape) {
                (Some(a), Some(b)) => a.compatible(b),
                (a, b) => a == b,
            }
    }
}

/// A step's contract: what each status answers with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contract {
    pub variants: BTreeMap<u16, Variant>,
}

impl Contract {
    pub fn observe(&mut self, status: u16, content_type: Option<&str>, body: &[u8]) {
        let json = serde_json::from_slice::<Value>(body).ok();
        self.observe_json(status, content_type, json.as_ref());
    }

    /// As [`Contract::observe`], with the body already parsed (`None`: not JSON).
    pub fn observe_json(&mut self, status: u16, content_type: Option<&str>, json: Option<&Value>) {
        if let Some(known) = self.variants.get(&status)
            && json.is_none_or(|v| known.shape.as_ref().is_some_and(|s| s.covers(v)))
        {
            return;
        }
        let content_type = content_type
            .and_then(|c| c.split(';').next())
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let shape = json.map(Shape::of);
        match self.variants.remove(&status) {
            Some(Variant {
                content_type: known,
                shape: known_shape,
            }) => {
                let shape = match (known_shape, shape) {
                    (Some(a), Some(b)) => Some(a.merge(b)),
                    (a, b) => a.or(b),
                };
                self.variants.insert(
                    status,
                    Variant {
                        content_type: known,
                        shape,
                    },
                );
            }
            None => {
                self.variants.insert(
                    status,
                    Variant {
                        content_type,
                        shape,
                    },
                );
            }
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for (status, variant) in &self.variants {
            let content_type = if variant.content_type.is_empty() {
                "-"
            } else {
                &variant.content_type
            };
            let _ = write!(out, "{status} {content_type}");
            if let Some(shape) = &variant.shape {
                out.push('\n');
                shape.render(0, &mut out);
            }
            out.push_str("\n\n");
        }
        out.trim_end().to_string() + "\n"
    }

    /// Reads what [`Contract::render`] wrote.
    pub fn parse(text: &str) -> Option<Contract> {
        let mut variants = BTreeMap::new();
        for block in text.split("\n\n").map(str::trim).filter(|b| !b.is_empty()) {
            let (head, shape) = block.split_once('\n').unwrap_or((block, ""));
            let (status, content_type) = head.split_once(' ')?;
            let content_type = if content_type == "-" {
                String::new()
            } else {
                content_type.to_string()
            };
            let shape = if shape.trim().is_empty() {
                None
            } else {
                Some(parse_shape(&mut shape.trim())?)
            };
            variants.insert(
                status.parse().ok()?,
                Variant {
                    content_type,
                    shape,
                },
            );
        }
        Some(Contract { variants })
    }

    /// The statuses both know whose answers changed.
    pub fn drift(&self, seen: &Contract) -> Vec<u16> {
        self.variants
            .iter()
            .filter(|(status, known)| {
                seen.variants
                    .get(status)
                    .is_some_and(|now| !known.compatible(now))
            })
            .map(|(status, _)| *status)
            .collect()
    }

    /// The snapshot to accept: what was seen, plus statuses not seen this time.
    pub fn updated_with(&self, seen: &Contract) -> Contract {
        let mut variants = self.variants.clone();
        variants.extend(seen.variants.clone());
        Contract { variants }
    }
}

/// Parses one rendered shape from the front of `input`.
fn parse_shape(input: &mut &str) -> Option<Shape> {
    let mut parts = vec![parse_single(input)?];
    loop {
        let rest = input.trim_start_matches(' ');
        match rest.strip_prefix("| ") {
            Some(after) => {
                *input = after;
                parts.push(parse_single(input)?);
            }
            None => break,
        }
    }
    if parts.len() == 1 {
        return parts.pop();
    }
    // Scalars separated by `|` are one scalar set; anything else a union.
    if parts.iter().all(|p| matches!(p, Shape::Scalar(_))) {
        return parts.into_iter().reduce(Shape::merge);
    }
    let mut scalars: Option<Shape> = None;
    let mut others = Vec::new();
    for part in parts {
        match part {
            Shape::Scalar(_) => scalars = Some(scalars.map_or(part.clone(), |s| s.merge(part))),
            other => others.push(other),
        }
    }
    let mut all: Vec<Shape> = scalars.into_iter().chain(others).collect();
    all.sort_by_key(Shape::rank);
    Some(Shape::Union(all))
}

fn parse_single(input: &mut &str) -> Option<Shape> {
    *input = input.trim_start();
    if let Some(rest) = input.strip_prefix("[]") {
        *input = rest;
        return Some(Shape::Array(None));
    }
    if let Some(rest) = input.strip_prefix('[') {
        *input = rest;
        let element = parse_shape(input)?;
        *input = input.trim_start().strip_prefix(']')?;
        return Some(Shape::Array(Some(Box::new(element))));
    }
    if let Some(rest) = input.strip_prefix("{}") {
        *input = rest;
        return Some(Shape::Object(BTreeMap::new()));
    }
    if let Some(rest) = input.strip_prefix('{') {
        *input = rest;
        let mut map = BTreeMap::new();
        loop {
            *input = input.trim_start();
            if let Some(rest) = input.strip_prefix('}') {
                *input = rest;
                return Some(Shape::Object(map));
            }
            let mut de = serde_json::Deserializer::from_str(input).into_iter::<String>();
            let key = de.next()?.ok()?;
            let consumed = de.byte_offset();
            *input = input[consumed..].strip_prefix(": ")?;
            let shape = parse_shape(input)?;
            map.insert(key, shape);
        }
    }
    for name in ["boolean", "integer", "null", "number", "string"] {
        if let Some(rest) = input.strip_prefix(name) {
            *input = rest;
            return Some(Shape::scalar(name));
        }
    }
    None
}

/// Contracts of one run, per step, gathered as responses arrive.
#[derive(Debug, Default)]
pub struct Observed {
    steps: Mutex<BTreeMap<String, (String, Contract)>>,
}

impl Observed {
    /// Records a response to `step` (named as in the scenario) at `endpoint`.
    pub fn record(
        &self,
        step: &str,
        endpoint: &str,
        status: u16,
        content_type: Option<&str>,
        json: Option<&Value>,
    ) {
        let mut steps = self.steps.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, contract)) = steps.get_mut(step) {
            return contract.observe_json(status, content_type, json);
        }
        let entry = steps
            .entry(step.to_string())
            .or_insert_with(|| (endpoint.to_string(), Contract::default()));
        entry.1.observe_json(status, content_type, json);
    }

    pub fn take(&self) -> BTreeMap<String, (String, Contract)> {
        std::mem::take(&mut *self.steps.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A step whose responses no longer match its snapshot.
#[derive(Debug, Clone)]
pub struct Drift {
    pub step: String,
    pub endpoint: String,
    /// The statuses whose shape changed (all seen, when no snapshot exists).
    pub statuses: Vec<u16>,
    /// There was no snapshot at all (a finding only in CI mode).
    pub missing: bool,
    /// A unified diff, snapshot → seen.
    pub diff: String,
    pub pending: PathBuf,
}

/// What comparing a run with its snapshots found.
#[derive(Debug, Default)]
pub struct Comparison {
    pub drifts: Vec<Drift>,
    /// New or changed snapshots written as `.snap.new`.
    pub pending: Vec<PathBuf>,
}

/// `<dir>/<scenario>/<step>.snap`.
pub fn snapshot_path(dir: &Path, scenario: &str, step: &str) -> PathBuf {
    dir.join(scenario).join(format!("{}.snap", slug(step)))
}

/// `text` as a file name: lowercase letters and digits, runs of anything
/// else as one `-`.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

fn snap_text(source: &str, step: &str, endpoint: &str, contract: &Contract) -> String {
    format!(
        "---\nsource: {source}\nexpression: \"{}\"\n---\n{}",
        format!("{endpoint} (step `{step}`)").replace('"', "'"),
        contract.render()
    )
}

fn snap_body(text: &str) -> &str {
    // insta's header is `---` … `---`.
    text.strip_prefix("---\n")
        .and_then(|rest| rest.split_once("\n---\n"))
        .map_or(text, |(_, body)| body)
}

/// Where one scenario's contracts are compared.
pub struct Snapshots<'a> {
    /// The snapshot directory.
    pub dir: &'a Path,
    /// The scenario's key within it (its path in its suite).
    pub key: &'a str,
    /// The scenario file, as snapshot headers name it.
    pub source: &'a str,
    /// A missing snapshot is drift too (CI), not only a pending review.
    pub ci: bool,
}

/// Compares what a run saw with the snapshots. Missing snapshots and
/// drifted ones are written as `.snap.new` for review; drift is reported,
/// and in CI mode so is a missing snapshot.
pub fn compare(
    at: &Snapshots<'_>,
    observed: BTreeMap<String, (String, Contract)>,
) -> std::io::Result<Comparison> {
    let mut comparison = Comparison::default();
    for (step, (endpoint, seen)) in observed {
        let path = snapshot_path(at.dir, at.key, &step);
        let pending = PathBuf::from(format!("{}.new", path.display()));
        let known = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| Contract::parse(snap_body(&text)));
        let (update, drift) = match &known {
            None if at.ci => (Some(seen.clone()), seen.variants.keys().copied().collect()),
            None => (Some(seen.clone()), Vec::new()),
            Some(known) => {
                let drift = known.drift(&seen);
                let updated = known.updated_with(&seen);
                let changed = !drift.is_empty() || updated.variants.len() != known.variants.len();
                (changed.then_some(updated), drift)
            }
        };
        if let Some(update) = update {
            std::fs::create_dir_all(pending.parent().expect("snapshots live in a directory"))?;
            std::fs::write(&pending, snap_text(at.source, &step, &endpoint, &update))?;
            comparison.pending.push(pending.clone());
        } else if pending.exists() {
            // A pending snapshot this run agrees is not needed any more.
            std::fs::remove_file(&pending)?;
        }
        if !drift.is_empty() {
            let before = known.as_ref().map(Contract::render).unwrap_or_default();
            let after = known
                .as_ref()
                .map_or_else(|| seen.render(), |k| k.updated_with(&seen).render());
            let diff = similar::TextDiff::from_lines(&before, &after)
                .unified_diff()
                .context_radius(3)
                .header("snapshot", "this run")
                .to_string();
            comparison.drifts.push(Drift {
                step,
                endpoint,
                statuses: drift,
                missing: known.is_none(),
                diff,
                pending,
            });
        }
    }
    Ok(comparison)
}

/// Turns every `.snap.new` under `dir` into its `.snap`; returns how many.
pub fn accept(dir: &Path) -> std::io::Result<usize> {
    let mut accepted = 0;
    for entry in std::fs::read_dir(dir)?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            accepted += accept(&path)?;
        } else if let Some(target) = path
            .to_str()
            .and_then(|p| p.strip_suffix(".new"))
            .filter(|p| p.ends_with(".snap"))
        {
            std::fs::rename(&path, target)?;
            accepted += 1;
        }
    }
    Ok(accepted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `covers` answers what merging would: whether the shape stays as it is.
    #[test]
    fn a_shape_covers_exactly_the_values_that_would_not_change_it() {
        let samples = [
            json!(null),
            json!(1),
            json!(1.5),
            json!("a"),
            json!(true),
            json!([]),
            json!([1, "a"]),
            json!([[1], {"x": null}]),
            json!({"id": 1}),
            json!({"id": "1", "tags": []}),
            json!({"id": 1, "tags": [{"t": 1}], "who": {"n": "a"}}),
            json!([{"id": 1}, {"id": null, "more": [true]}]),
        ];
        // Shapes made by merging runs of the samples, in several orders.
        let mut shapes = Vec::new();
        for start in 0..samples.len() {
            for len in 1..=4 {
                let run = (0..len).map(|i| &samples[(start + i * 5) % samples.len()]);
                shapes.push(run.map(Shape::of).reduce(Shape::merge).unwrap());
            }
        }
        let mut covered = 0;
        for shape in &shapes {
            assert_eq!(
                shape.clone().merge(shape.clone()),
                *shape,
                "merged with itself"
            );
            for value in &samples {
                let unchanged = shape.clone().merge(Shape::of(value)) == *shape;
                assert_eq!(shape.covers(value), unchanged, "{shape:?} and {value}");
                covered += usize::from(unchanged);
            }
        }
        // Both answers were asked for many times.
        assert!(
            covered > 20 && covered < shapes.len() * samples.len() - 20,
            "{covered}"
        );
    }

    #[test]
    fn shapes_merge_render_and_parse_back() {
        let a = Shape::of(
            &json!({"id": 1, "items": [], "next": null, "tags": ["x"], "who": {"name": "a"}}),
        );
        let b =
            Shape::of(&json!({"id": 2, "items": [{"t": "x"}], "next": 5, "tags": [], "who": null}));
        let merged = a.merge(b);
        let mut text = String::new();
        merged.render(0, &mut text);
        assert_eq!(
            text,
            "{\n  \"id\": integer\n  \"items\": [{\n    \"t\": string\n  }]\n  \"next\": integer | null\n  \"tags\": [string]\n  \"who\": null | {\n    \"name\": string\n  }\n}"
        );
        let parsed = parse_shape(&mut text.as_str()).unwrap();
        assert_eq!(parsed, merged);
    }

    #[test]
    fn renamed_or_retyped_fields_drift_and_empty_arrays_do_not() {
        let mut known = Contract::default();
        known.observe(
            200,
            Some("application/json"),
            br#"{"reason": "x", "items": [{"id": 1}]}"#,
        );
        let mut same = Contract::default();
        same.observe(
            200,
            Some("application/json; charset=utf-8"),
            br#"{"reason": "y", "items": []}"#,
        );
        same.observe(404, Some("application/json"), br#"{"error": {}}"#);
        assert!(known.drift(&same).is_empty());
        let mut renamed = Contract::default();
        renamed.observe(
            200,
            Some("application/json"),
            br#"{"reason_text": "x", "items": [{"id": 1}]}"#,
        );
        assert_eq!(known.drift(&renamed), vec![200]);
        let mut retyped = Contract::default();
        retyped.observe(
            200,
            Some("application/json"),
            br#"{"reason": 5, "items": [{"id": 1}]}"#,
        );
        assert_eq!(known.drift(&retyped), vec![200]);
        assert_eq!(Contract::parse(&known.render()), Some(known));
    }
}
