//! Scenario files: TOML as written by people, loaded with its includes.
//!
//! This module only reads and merges files; [`crate::plan`] checks what they
//! say. Everything keeps the file and byte range it came from so that every
//! complaint, here or in the plan, points at `file:line:column`.
//!
//! ```toml
//! include = ["lib/accounts.toml"]   # actors, vars, setup and teardown shared by scenarios
//!
//! [vars]
//! password = "correct horse battery"
//!
//! [actors.patient]
//! count = 50
//! population = true                 # --patients N sets this count
//! auth = { bearer = "{{token}}" }   # or { header = { name = "x-api-key", value = "{{key}}" } }, or { cookies = true }
//!
//! [[steps]]
//! name = "book"
//! actor = "patient"
//! request = "POST /v1/appointments"
//! body = { clinician_id = "{{clinician.id}}", reason = "{{canary}} headache" }
//! expect = { status = 201, json = { "$.status" = "booked" } }
//! capture = { appointment_id = "$.id", slot = { json = "$.slot", shared = true } }
//! grant_to = "{{clinician_id}}"     # the instance owning this value may now see this instance's data
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

mod step;
mod suite;

pub use step::{Capture, CaptureSpec, ContentSpec, Expect, Matcher, PartSpec, Step};

pub use suite::{SuiteFile, discover, files, suite_files};

/// A file's text, shared by everything parsed from it.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    /// Where each line starts: positions in the file cost a binary search,
    /// so loading stays linear in its size.
    line_starts: Vec<usize>,
}

/// Limits on what a scenario may ask for: past them it is refused with a
/// clear error instead of exhausting the machine.
pub mod limits {
    /// Bytes of one scenario or include file.
    pub const FILE_BYTES: u64 = 16 << 20;
    /// Files included, directly or not, by one scenario.
    pub const INCLUDED_FILES: usize = 256;
    /// Include nesting.
    pub const INCLUDE_DEPTH: usize = 16;
    /// Instances of one actor.
    pub const INSTANCES: usize = 100_000;
    /// Steps (and teardown steps) of one scenario.
    pub const STEPS: usize = 100_000;
    /// Bytes of a generated body or file (`size = N`).
    pub const BODY_BYTES: u64 = 64 << 20;
}

impl SourceFile {
    pub fn new(path: PathBuf, text: String) -> SourceFile {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceFile {
            path,
            text,
            line_starts,
        }
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|start| *start <= offset);
        let start = self.line_starts[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map_or(0, |l| l.chars().count())
            + 1;
        (line, col)
    }
}

/// Why `path` cannot be included, if it cannot: missing, or not a regular
/// file (a directory, a FIFO, a device such as `/dev/zero`).
fn not_includable(path: &Path) -> Option<&'static str> {
    match std::fs::metadata(path) {
        Err(_) => Some("does not exist"),
        Ok(meta) if meta.is_dir() => Some("is a directory, not a scenario file"),
        Ok(meta) if !meta.is_file() => Some("is not a regular file (a pipe or a device)"),
        Ok(_) => None,
    }
}

/// The text of a scenario file: a regular file, not too large.
fn read_scenario_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let cannot = |why: String| format!("cannot read scenario file: {why}");
    let meta = std::fs::metadata(path).map_err(|err| cannot(err.to_string()))?;
    if !meta.is_file() {
        return Err(cannot("it is not a regular file".into()));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limits::FILE_BYTES + 1).read_to_string(&mut text))
        .map_err(|err| cannot(err.to_string()))?;
    if text.len() as u64 > limits::FILE_BYTES {
        return Err(cannot(format!(
            "it is larger than {} bytes",
            limits::FILE_BYTES
        )));
    }
    Ok(text)
}

/// Bad scenario input: what is wrong, and where. Boxed: it carries the
/// file's text for the snippet, and lives on the error path only.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error(transparent)]
#[diagnostic(transparent)]
pub struct ScenarioError(Box<Detail>);

#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{location}: {message}")]
pub struct Detail {
    location: String,
    message: String,
    #[source_code]
    source_code: Option<NamedSource<String>>,
    #[label("{label}")]
    span: Option<SourceSpan>,
    label: String,
    #[help]
    help: Option<String>,
}

impl ScenarioError {
    /// An error at a byte range of `file`.
    pub fn at(
        file: &SourceFile,
        range: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        let (line, col) = file.line_col(range.start);
        Self(Box::new(Detail {
            location: format!("{}:{line}:{col}", file.path.display()),
            // The message is said once, above the snippet.
            label: "here".to_string(),
            message,
            source_code: Some(NamedSource::new(
                file.path.display().to_string(),
                file.text.clone(),
            )),
            span: Some(SourceSpan::from(range.start..range.end.max(range.start))),
            help: None,
        }))
    }

    /// An error about a whole file (it cannot be read, say).
    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        Self(Box::new(Detail {
            location: path.display().to_string(),
            message: message.into(),
            source_code: None,
            span: None,
            label: String::new(),
            help: None,
        }))
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.0.help = Some(help.into());
        self
    }

    /// `file:line:column` (or just the file).
    pub fn location(&self) -> &str {
        &self.0.location
    }

    pub fn message(&self) -> &str {
        &self.0.message
    }
}

/// A value kept with where it was written.
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub value: T,
    pub file: Arc<SourceFile>,
    pub span: std::ops::Range<usize>,
}

impl<T> Located<T> {
    pub(crate) fn at_start(file: &Arc<SourceFile>, value: T) -> Located<T> {
        Located {
            value,
            file: file.clone(),
            span: 0..0,
        }
    }

    pub fn error(&self, message: impl Into<String>) -> ScenarioError {
        ScenarioError::at(&self.file, self.span.clone(), message)
    }

    /// An error at the first occurrence of `needle` inside this item, or at
    /// the whole item when it does not occur verbatim.
    pub fn error_at(&self, needle: &str, message: impl Into<String>) -> ScenarioError {
        self.error_within(needle, needle, message)
    }

    /// Like [`Located::error_at`], pointing at `inner` within the first
    /// occurrence of `outer` (a hole within its template).
    pub fn error_within(
        &self,
        outer: &str,
        inner: &str,
        message: impl Into<String>,
    ) -> ScenarioError {
        // An array-of-tables item's span may cover only its `[[header]]`:
        // search on to the next table header.
        let rest = self.file.text.get(self.span.start..).unwrap_or_default();
        let body_end = (rest.get(1..).and_then(|r| r.find("\n["))).map_or(rest.len(), |at| at + 1);
        let text = &rest[..body_end.max(self.span.len()).min(rest.len())];
        let range = match text.find(outer).filter(|_| !outer.is_empty()) {
            Some(at) => match text[at..at + outer.len()]
                .find(inner)
                .filter(|_| !inner.is_empty())
            {
                Some(within) => {
                    self.span.start + at + within..self.span.start + at + within + inner.len()
                }
                None => self.span.start + at..self.span.start + at + outer.len(),
            },
            None => self.span.clone(),
        };
        ScenarioError::at(&self.file, range, message)
    }
}

/// A scenario file as written. Its JSON Schema is what editors check
/// scenario files with (see [`schema`]).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "crosstalk scenario file")]
struct RawFile {
    /// What the scenario tests, in a sentence.
    #[serde(default)]
    description: Option<String>,
    /// The seed to run with (reproductions carry the one they were found with).
    #[serde(default)]
    seed: Option<u64>,
    /// What a reproduction reproduces: `replay` judges by it.
    #[serde(default)]
    reproduces: Option<Reproduces>,
    /// Files whose actors, vars and steps come first (paths relative to this file).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    include: Vec<Spanned<String>>,
    /// Values every step may use: `NAME = value`, or `{ value = …, secret = true }`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    vars: BTreeMap<String, Spanned<toml::Value>>,
    /// Body fields to redact besides the well-known credential fields.
    #[serde(default)]
    redact_fields: Vec<String>,
    /// JSONPaths whose values change on their own in every step's answer.
    #[serde(default)]
    volatile: Vec<String>,
    /// JSONPaths whose values are public in every step's answer.
    #[serde(default)]
    public: Vec<String>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Actor>")]
    actors: BTreeMap<String, Spanned<Actor>>,
    /// Sent once, before the flow, by no instance.
    #[serde(default)]
    #[schemars(with = "Vec<Step>")]
    setup: Vec<Spanned<Step>>,
    /// The flow: each step sent by every instance of its actor, in lockstep.
    #[serde(default)]
    #[schemars(with = "Vec<Step>")]
    steps: Vec<Spanned<Step>>,
    /// After the flow, also after a Ctrl-C: by every instance of the
    /// step's actor, or once when it names none.
    #[serde(default)]
    #[schemars(with = "Vec<Step>")]
    teardown: Vec<Spanned<Step>>,
}

/// The JSON Schema of scenario files, generated from the types that read them.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawFile)).expect("a schema serializes")
}

/// The finding a reproduction was written for: what `crosstalk replay`
/// looks for, so that a server error's reproduction reproduces when the
/// error shows, as the fuzzer judged it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reproduces {
    /// The finding's kind: `leak`, `tamper`, `server-error`, `expectation`.
    pub kind: String,
    /// The step whose answer shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

/// A role: how many instances, and how they authenticate.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub count: usize,
    /// `--patients N` sets the count of population actors.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub population: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// Captured variables that are public (a clinician's id), not owned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared: Vec<String>,
    /// A step of this actor (its login) sent again when one of its
    /// requests answers 401, before that request is sent once more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reauth: Option<String>,
    /// Every instance logs in to one and the same account (a shared demo
    /// login): said here, their being one account is no blind spot.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub one_account: bool,
}

/// How an actor's requests carry its credentials.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// `Authorization: Bearer <rendered>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer: Option<String>,
    /// Any header, e.g. `{ name = "x-api-key", value = "{{key}}" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<AuthHeader>,
    /// Keep the cookies each instance is given and send them back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cookies: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthHeader {
    pub name: String,
    pub value: String,
}

/// A scenario file merged with everything it includes.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file's stem, e.g. `mid-call-switch`.
    pub name: String,
    pub path: PathBuf,
    pub description: Option<String>,
    /// The seed the file asks to be run with (reproductions carry one).
    pub seed: Option<u64>,
    /// The finding a reproduction shows (reproductions carry one).
    pub reproduces: Option<Reproduces>,
    pub vars: BTreeMap<String, Located<toml::Value>>,
    /// Body fields to redact, from the file and everything it includes.
    pub redact_fields: Vec<String>,
    /// Paths volatile in every step, from the file and its includes: each
    /// step's `volatile` holds them too.
    pub volatile: Vec<String>,
    /// Paths public in every step, likewise.
    pub public: Vec<String>,
    pub actors: BTreeMap<String, Located<Actor>>,
    /// Steps sent once, before any instance's first step.
    pub setup: Vec<Located<Step>>,
    pub steps: Vec<Located<Step>>,
    /// Steps sent after the flow, also after a Ctrl-C: by every instance
    /// of their actor, or once when they name none.
    pub teardown: Vec<Located<Step>>,
    /// Files read so far, includes with them (bounded by [`limits`]).
    files_read: usize,
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Scenario {
    /// Reads `path` and the files it includes (paths relative to the file).
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let mut scenario = Scenario::empty(name, path.to_path_buf());
        let mut stack = Vec::new();
        scenario.merge_file(path, &mut stack, true)?;
        scenario.spread_file_wide();
        Ok(scenario)
    }

    /// Parses scenario text that is not on disk (tests, generated files).
    pub fn from_str(name: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let file = Arc::new(SourceFile::new(
            PathBuf::from(format!("{name}.toml")),
            text.to_string(),
        ));
        let raw = parse(&file)?;
        if let Some(include) = raw.include.first() {
            return Err(ScenarioError::at(
                &file,
                include.span(),
                "includes need a scenario file on disk",
            ));
        }
        let mut scenario = Scenario::empty(name.to_string(), file.path.clone());
        scenario.absorb(raw, &file, true);
        scenario.spread_file_wide();
        Ok(scenario)
    }

    /// A scenario made in memory rather than read (a fuzz program): there
    /// is no text to point into, so every part is located at the start of
    /// an empty file of its name.
    pub fn generated(
        name: &str,
        description: &str,
        vars: BTreeMap<String, toml::Value>,
        actors: impl IntoIterator<Item = (String, Actor)>,
        [setup, steps, teardown]: [Vec<Step>; 3],
    ) -> Scenario {
        let file = Arc::new(SourceFile::new(
            PathBuf::from(format!("{name}.toml")),
            String::new(),
        ));
        let locate = |steps: Vec<Step>| steps.into_iter().map(|s| Located::at_start(&file, s));
        let mut scenario = Scenario::empty(name.to_string(), file.path.clone());
        scenario.description = Some(description.to_string());
        scenario.vars = vars
            .into_iter()
            .map(|(name, value)| (name, Located::at_start(&file, value)))
            .collect();
        scenario.actors = actors
            .into_iter()
            .map(|(name, actor)| (name, Located::at_start(&file, actor)))
            .collect();
        scenario.setup = locate(setup).collect();
        scenario.steps = locate(steps).collect();
        scenario.teardown = locate(teardown).collect();
        scenario
    }

    /// The file-wide volatile and public paths, written into every step
    /// (so a step carries them into a fuzz program or a reproduction).
    fn spread_file_wide(&mut self) {
        let steps = self.setup.iter_mut().chain(&mut self.steps);
        for step in steps.chain(&mut self.teardown) {
            let step = &mut step.value;
            for (file_wide, own) in [
                (&self.volatile, &mut step.volatile),
                (&self.public, &mut step.public),
            ] {
                for path in file_wide {
                    if !own.contains(path) {
                        own.push(path.clone());
                    }
                }
            }
        }
    }

    fn empty(name: String, path: PathBuf) -> Scenario {
        Scenario {
            name,
            path,
            description: None,
            seed: None,
            reproduces: None,
            vars: BTreeMap::new(),
            redact_fields: Vec::new(),
            volatile: Vec::new(),
            public: Vec::new(),
            actors: BTreeMap::new(),
            setup: Vec::new(),
            steps: Vec::new(),
            teardown: Vec::new(),
            files_read: 0,
        }
    }

    fn merge_file(
        &mut self,
        path: &Path,
        stack: &mut Vec<PathBuf>,
        top: bool,
    ) -> Result<(), ScenarioError> {
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let text = read_scenario_file(path).map_err(|why| ScenarioError::file(path, why))?;
        let file = Arc::new(SourceFile::new(path.to_path_buf(), text));
        let raw = parse(&file)?;
        stack.push(canonical);
        self.files_read += 1;
        for include in &raw.include {
            if stack.len() >= limits::INCLUDE_DEPTH || self.files_read >= limits::INCLUDED_FILES {
                return Err(ScenarioError::at(
                    &file,
                    include.span(),
                    format!(
                        "too many includes: at most {} levels deep and {} files in all",
                        limits::INCLUDE_DEPTH,
                        limits::INCLUDED_FILES
                    ),
                ));
            }
            let target = path
                .parent()
                .unwrap_or(Path::new("."))
                .join(include.get_ref());
            let target_canonical = target.canonicalize().unwrap_or_else(|_| target.clone());
            if stack.contains(&target_canonical) {
                return Err(ScenarioError::at(
                    &file,
                    include.span(),
                    "this include leads back to a file that includes it",
                ));
            }
            if let Some(why) = not_includable(&target) {
                return Err(ScenarioError::at(
                    &file,
                    include.span(),
                    format!("included file {} {why}", target.display()),
                ));
            }
            self.merge_file(&target, stack, false)?;
        }
        stack.pop();
        self.absorb(raw, &file, top);
        Ok(())
    }

    /// Adds a parsed file: its vars and actors override what it included,
    /// its steps come after the included ones.
    fn absorb(&mut self, raw: RawFile, file: &Arc<SourceFile>, top: bool) {
        let located = |span: std::ops::Range<usize>| (file.clone(), span);
        if top || self.description.is_none() {
            self.description = raw.description.or(self.description.take());
        }
        if top {
            self.seed = raw.seed;
            self.reproduces = raw.reproduces;
        }
        self.redact_fields.extend(raw.redact_fields);
        self.volatile.extend(raw.volatile);
        self.public.extend(raw.public);
        for (name, value) in raw.vars {
            let (file, span) = located(value.span());
            self.vars.insert(
                name,
                Located {
                    value: value.into_inner(),
                    file,
                    span,
                },
            );
        }
        for (name, actor) in raw.actors {
            let (file, span) = located(actor.span());
            self.actors.insert(
                name,
                Located {
                    value: actor.into_inner(),
                    file,
                    span,
                },
            );
        }
        for (raw, into) in [
            (raw.setup, &mut self.setup),
            (raw.steps, &mut self.steps),
            (raw.teardown, &mut self.teardown),
        ] {
            into.extend(raw.into_iter().map(|step| {
                let (file, span) = located(step.span());
                Located {
                    value: step.into_inner(),
                    file,
                    span,
                }
            }));
        }
    }
}

fn parse(file: &Arc<SourceFile>) -> Result<RawFile, ScenarioError> {
    toml::from_str(&file.text).map_err(|err| {
        let span = err.span().unwrap_or(0..0);
        ScenarioError::at(file, span, err.message().trim().to_string())
    })
}
