//! `crosstalk init --openapi`: a starter suite from an API's OpenAPI 3
//! document, as an ordinary scenario file to edit and commit.
//!
//! One population actor. Its sign-up and login are recognised when they
//! can be (a POST with a password and no security requirement; the login's
//! path says login, token, session or auth); otherwise a marked section
//! says what to fill in. Then one step per operation, in an order where
//! every id a path or body needs was captured before: creations first
//! (each captures the id it returns), then reads, actions and updates,
//! deletions last, and a deletion of the account itself in the teardown.
//! A list that returns another resource's ids (`GET /clinicians`) is read
//! first when a body needs one of them. Expectations are the documented
//! 2xx codes, with 403 and 409 where documented: a generated flow cannot
//! know roles and states, and the oracle, the witness and the probes judge
//! the rest. Operations that cannot be placed are listed with the reason.
//!
//! The session is followed through: a login names the account the sign-up
//! made, with the sign-up's own values (one account name where the login
//! offers several, the one the sign-up sent). The session's own steps
//! close the flow: a refresh grant sends the refresh token the login
//! answered and keeps the new session it answers, which a logout then
//! ends, after every other step that needs a session; when the teardown
//! still needs one (the account's deletion), a login again follows. A
//! token endpoint that takes the refresh grant too gets a refresh step of
//! its own; tokens that travel in headers (a CSRF token, an `ETag` for
//! `If-Match`) are captured and sent back ([`headers`]).
//!
//! What the document says of a field decides its value ([`values`]): what
//! a body requires, a canary where text is free and private, the document's
//! own values for roles and codes, and no canary in what a list anyone may
//! read shows (that list's fields are declared public in its step).

mod beyond;
mod headers;
mod list;
mod operation;
pub mod unsent;
mod values;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use oas3::Spec;
use oas3::spec::{ObjectSchema, ParameterIn, SecurityScheme};

use operation::{
    Op, Paging, account_name_rank, is_login_name, is_logout, is_new_password, is_refresh_token,
    path_vars, rank, singular, slug, snake, take, take_all,
};
use values::{REFRESH_TOKEN, Values};

/// The generated suite.
pub struct Suite {
    /// A file name for it, from the document's title.
    pub file_name: String,
    pub text: String,
    /// Operations left out, each with why.
    pub unplaced: Vec<String>,
    /// What was recognised as the sign-up and the login, as the file says.
    pub account: String,
}

/// Reads the document (JSON or YAML) and writes the suite.
pub fn from_openapi(text: &str) -> Result<Suite, String> {
    let spec = crate::openapi::read(text)?;
    let ops: Vec<Op> = spec
        .operations()
        .map(|(path, method, operation)| Op {
            method: method.to_string(),
            path,
            operation: operation.clone(),
        })
        .collect();
    if ops.is_empty() {
        return Err("the document has no operations".into());
    }
    Generator::new(&spec).write(ops)
}

struct Generator<'a> {
    spec: &'a Spec,
    out: String,
    known: BTreeSet<String>,
    unplaced: Vec<String>,
    account: String,
    names: BTreeSet<String>,
    /// Variables some operation's path needs.
    needed: BTreeSet<String>,
    /// Which enum value each field takes next: a mode switched goes to
    /// another mode than the one the call started in.
    turns: std::collections::HashMap<String, usize>,
    /// The recognised sign-up (`POST /users`) and the body it sent.
    signup: Option<(String, toml::Table)>,
    /// The password the account has now, when a step changed it.
    password: Option<toml::Value>,
    /// Whether the step being written is a refresh grant.
    refreshing: bool,
    /// The header a CSRF token travels in, when the document has one.
    csrf: Option<String>,
    /// Paths whose writes take `If-Match`: their reads capture the `ETag`.
    etag_paths: BTreeSet<String>,
    /// Records known by their HAL link alone (`booking_id`, whose answer
    /// gave `_links.self.href` and no id): their paths are the link.
    linked: BTreeSet<String>,
    /// The lists the document shows to everyone (no security), by path.
    listed: std::collections::BTreeMap<String, list::List>,
    /// The actor whose steps these are.
    actor: String,
    /// Probes written after every other step of the flow ([`beyond`]).
    deferred: String,
    /// The password an instance's account has when the sign-up is not
    /// this generator's (a suite's own, for `fuzz --openapi`).
    account_password: String,
}

impl<'a> Generator<'a> {
    fn new(spec: &'a Spec) -> Self {
        Generator {
            spec,
            out: String::new(),
            known: BTreeSet::new(),
            unplaced: Vec::new(),
            account: String::new(),
            names: BTreeSet::new(),
            needed: BTreeSet::new(),
            turns: Default::default(),
            signup: None,
            password: None,
            refreshing: false,
            csrf: None,
            etag_paths: BTreeSet::new(),
            linked: BTreeSet::new(),
            listed: Default::default(),
            actor: "user".into(),
            deferred: String::new(),
            account_password: values::OWN_PASSWORD.to_string(),
        }
    }

    fn write(mut self, mut ops: Vec<Op>) -> Result<Suite, String> {
        self.needed = (ops.iter().flat_map(path_vars))
            .map(|(_, var)| var)
            .collect();
        let listed: Vec<(String, list::List)> = (ops.iter())
            .filter(|op| op.method == "GET" && self.is_public(op))
            .filter_map(|op| Some((op.path.clone(), self.list_of(op, "")?)))
            .collect();
        self.listed.extend(listed);
        self.csrf = headers::csrf_header(self.spec, &ops);
        self.etag_paths = (ops.iter())
            .filter(|op| headers::takes_if_match(self.spec, op))
            .map(|op| op.path.clone())
            .collect();
        let title = self.spec.info.title.clone();
        let _ = writeln!(
            self.out,
            "# Generated by `crosstalk init` from the OpenAPI document of {title}.\n# Edit freely: it is an ordinary scenario file (docs/scenarios.md).\ndescription = \"Every operation of {}, by many users at once\"\n",
            title.replace('"', "'")
        );
        let _ = writeln!(
            self.out,
            "[vars]\npassword = \"correct horse battery staple 7\"\n"
        );
        // An operation that resets or seeds the whole database would wipe
        // every instance's data mid-run: never part of the flow.
        for op in take_all(&mut ops, resets_everything) {
            self.unplaced.push(format!(
                "{}: resets or seeds the whole database, so it is left out of the flow (send it once as a [[setup]] step if the target needs it)",
                op.name()
            ));
        }
        let signup = take(&mut ops, |op| self.is_signup(op));
        let login = take(&mut ops, |op| self.is_login(op));
        // Not creations, nor the account's deletion: they close the flow.
        let mut refreshes = take_all(&mut ops, |op| self.sends_refresh_token(op));
        let logouts = take_all(&mut ops, is_logout);
        self.signup = signup.as_ref().map(|op| (op.name(), toml::Table::new()));
        let auth = self.auth(login.as_ref());
        let _ = writeln!(
            self.out,
            "[actors.user]\ncount = 5\npopulation = true\n{auth}"
        );
        self.account(signup, login.as_ref());
        let (teardown, rest): (Vec<Op>, Vec<Op>) = ops
            .into_iter()
            .partition(|op| op.method == "DELETE" && !op.has_params());
        self.place_all(rest);
        if let Some(login) = login.as_ref().filter(|op| self.takes_refresh_grant(op)) {
            // The token endpoint takes the refresh grant too (RFC 6749 §6).
            refreshes.insert(0, login.clone());
        }
        self.out.push_str(&std::mem::take(&mut self.deferred));
        self.end_session(refreshes, logouts, login.as_ref(), !teardown.is_empty());
        for op in teardown {
            self.step(&op, "teardown");
        }
        let file_name = slug(&title);
        Ok(Suite {
            file_name: format!("{file_name}.toml"),
            text: self.out,
            unplaced: self.unplaced,
            account: self.account,
        })
    }

    fn body_schema(&self, op: &Op) -> Option<(String, ObjectSchema)> {
        let body = op.operation.request_body(self.spec).ok()??;
        let (kind, media) = body.content.into_iter().next()?;
        let schema = media.schema?.resolve(self.spec).ok()?;
        Some((kind, schema))
    }

    fn has_password(&self, op: &Op) -> bool {
        self.body_schema(op).is_some_and(|(_, s)| {
            s.properties
                .keys()
                .any(|k| k.to_ascii_lowercase().contains("password"))
        })
    }

    /// A POST that sends a password and does not change one. (Whether it
    /// needs a session cannot decide: `security: []` on an operation reads
    /// the same as no `security` at all.)
    fn sends_password(&self, op: &Op) -> bool {
        let changes_one = op.path.to_ascii_lowercase().contains("password");
        op.method == "POST" && !changes_one && self.has_password(op)
    }

    fn is_login(&self, op: &Op) -> bool {
        let path = op.path.to_ascii_lowercase();
        let words = ["login", "token", "session", "signin", "auth"];
        self.sends_password(op) && words.iter().any(|w| path.contains(w))
    }

    fn is_signup(&self, op: &Op) -> bool {
        self.sends_password(op) && !self.is_login(op)
    }

    /// The actor's `auth`, from the document's security schemes.
    fn auth(&self, login: Option<&Op>) -> String {
        let schemes = self
            .spec
            .components
            .as_ref()
            .map(|c| c.security_schemes.clone());
        for scheme in schemes.unwrap_or_default().values() {
            match scheme.resolve(self.spec) {
                Ok(SecurityScheme::Http { scheme, .. })
                    if scheme.eq_ignore_ascii_case("bearer") =>
                {
                    return "auth = { bearer = \"{{token}}\" }\n".into();
                }
                Ok(SecurityScheme::ApiKey { name, location, .. }) if location == "cookie" => {
                    let _ = name;
                    return "auth = { cookies = true }\n".into();
                }
                Ok(SecurityScheme::ApiKey { name, location, .. })
                    if location == "header" && !headers::is_csrf(&name) =>
                {
                    return format!(
                        "auth = {{ header = {{ name = \"{name}\", value = \"{{{{token}}}}\" }} }}\n"
                    );
                }
                Ok(SecurityScheme::OAuth2 { .. }) => {
                    return "auth = { bearer = \"{{token}}\" }\n".into();
                }
                _ => {}
            }
        }
        match login {
            Some(_) => "auth = { cookies = true }\n".into(),
            None => String::new(),
        }
    }

    /// The sign-up and login steps, or a marked section to fill in.
    fn account(&mut self, signup: Option<Op>, login: Option<&Op>) {
        self.account = account_note(signup.as_ref(), login);
        if signup.is_none() || login.is_none() {
            let _ = writeln!(
                self.out,
                "# ── {} ──\n# Add here the steps that give each user an account and a credential\n# (capture it as `token`, secret), and an `auth` to the actor above.\n",
                self.account
            );
        }
        for op in signup.iter().chain(login) {
            self.step(op, "steps");
        }
        // A credential no step captures cannot be sent: the actor sends
        // none until the user says how (the marked section above).
        if !self.known.contains("token") {
            let line = (self.out.lines())
                .find(|l| l.starts_with("auth = ") && l.contains("{{token}}"))
                .map(str::to_string);
            if let Some(line) = line {
                let commented = format!("# {line}   (no step captures `token`)\n");
                self.out = self.out.replace(&format!("{line}\n"), &commented);
            }
        }
    }

    /// Places every operation once what it needs is captured.
    fn place_all(&mut self, mut ops: Vec<Op>) {
        let created: BTreeSet<String> = (ops.iter())
            .filter(|op| op.method == "POST" && !op.has_params())
            .filter_map(|op| op.literals().last().map(|l| singular(l)))
            .collect();
        ops.sort_by_key(|op| (rank(op, &created), op.path.clone()));
        loop {
            // A creation, once the lists that return the ids it needs are
            // read (`clinician_id` from `GET /clinicians`).
            let creation = ops.first().filter(|op| rank(op, &created) == 0);
            let first_needs = creation.map(|op| self.needs(op)).unwrap_or_default();
            if !first_needs.is_empty() && self.read_a_list(&mut ops, &first_needs) {
                continue;
            }
            let ready = ops.iter().position(|op| self.needs(op).is_empty());
            let Some(at) = ready else {
                let wanted: Vec<String> = ops.iter().flat_map(|op| self.needs(op)).collect();
                if !self.read_a_list(&mut ops, &wanted) {
                    break;
                }
                continue;
            };
            let op = ops.remove(at);
            self.step(&op, "steps");
        }
        for op in ops {
            let needs = self.needs(&op);
            self.not_placed(&op, &needs);
        }
    }

    /// The session's own steps close the flow: the refresh grants, then
    /// the logouts, after every other step that needs the session. The
    /// logout ends the session the refresh made. Until then the step that
    /// last gave a credential is the login, which the witness re-sends
    /// around a foreign write: a password another set shows as a login
    /// that stopped working (a refresh grant would still work). Each later
    /// logout, and the teardown when it has steps (the account's deletion
    /// needs a session), gets a login again first.
    fn end_session(
        &mut self,
        refreshes: Vec<Op>,
        logouts: Vec<Op>,
        login: Option<&Op>,
        teardown: bool,
    ) {
        for op in refreshes {
            if self.placeable(&op) {
                self.refreshing = true;
                let name = match self.is_login(&op) {
                    true => self.unique_name(&format!("{} (refresh grant)", self.base_name(&op))),
                    false => self.unique_name(&self.base_name(&op)),
                };
                self.step_named(&op, "steps", name);
                self.refreshing = false;
            }
        }
        let mut ended: Option<String> = None;
        for op in logouts {
            if !self.placeable(&op) {
                continue;
            }
            match (&ended, login) {
                (Some(_), Some(login)) => self.login_again(login),
                (Some(before), None) => {
                    self.unplaced.push(format!(
                        "{}: {before} ended the session before, and no login was recognised to start another",
                        op.name()
                    ));
                    continue;
                }
                (None, None) if teardown => {
                    self.unplaced.push(format!(
                        "{}: would end the session the teardown needs, and no login was recognised to start another",
                        op.name()
                    ));
                    continue;
                }
                (None, _) => {}
            }
            self.step(&op, "steps");
            ended = Some(op.name());
        }
        if let (Some(_), Some(login), true) = (&ended, login, teardown) {
            self.login_again(login);
        }
    }

    /// Whether what `op` needs was captured; if not, it is noted unplaced.
    fn placeable(&mut self, op: &Op) -> bool {
        let needs = self.needs(op);
        if !needs.is_empty() {
            self.not_placed(op, &needs);
        }
        needs.is_empty()
    }

    /// Notes `op` unplaced for want of `needs`, with what would place it.
    fn not_placed(&mut self, op: &Op, needs: &[String]) {
        let ways: Vec<String> = needs.iter().map(|var| would_give(var)).collect();
        self.unplaced.push(format!(
            "{}: needs {}, which no operation placed before returns; a step before it that captures {} would place it",
            op.name(),
            needs.join(", "),
            ways.join(", and ")
        ));
    }

    /// The login once more, for a new session after a logout.
    fn login_again(&mut self, login: &Op) {
        let name = self.unique_name(&format!("{} again", self.base_name(login)));
        self.step_named(login, "steps", name);
    }

    /// Variables the operation's path and body need that nothing captured yet.
    fn needs(&self, op: &Op) -> Vec<String> {
        let mut out: Vec<String> = match self.link(op) {
            Some(_) => Vec::new(),
            None => path_vars(op).into_iter().map(|(_, var)| var).collect(),
        };
        if let Some((_, schema)) = self.body_schema(op) {
            let mut values = Values::new(self.spec, &self.known, self.turns.clone());
            values.password.clone_from(&self.account_password);
            values.object(&schema, 0);
            out.extend(values.missing);
        }
        out.retain(|v| !self.known.contains(v));
        out.sort();
        out.dedup();
        out
    }

    /// The variable holding the link to `op`'s record (`booking_href`),
    /// when its path ends with the id of a record known by its link alone.
    fn link(&self, op: &Op) -> Option<String> {
        let (param, var) = path_vars(op).pop()?;
        let last = op.path.ends_with(&format!("{{{param}}}"));
        let href = format!("{}_href", var.strip_suffix("_id")?);
        (last && self.linked.contains(&var)).then_some(href)
    }

    /// Reads a list whose items' ids a waiting operation needs (`X_id` from
    /// `GET …/Xs`); whether it found one.
    fn read_a_list(&mut self, ops: &mut Vec<Op>, wanted: &[String]) -> bool {
        for var in wanted.iter().cloned() {
            let Some(base) = var.strip_suffix("_id") else {
                continue;
            };
            let found = ops.iter().enumerate().find_map(|(at, op)| {
                let list = self.list_of(op, base)?;
                list.item
                    .properties
                    .contains_key("id")
                    .then_some((at, list))
            });
            if let Some((at, list)) = found {
                let op = ops.remove(at);
                let name =
                    self.unique_name(&format!("list {}", op.literals().last().unwrap_or(&"")));
                let capture = format!(
                    "capture = {{ {var} = {{ json = \"{}\", shared = true, optional = true }} }}",
                    list.first("id")
                );
                self.emit(&op, "steps", &name, Some(capture), None);
                self.known.insert(var);
                return true;
            }
        }
        false
    }

    /// The list of `resource` (of anything when empty) that `op` answers
    /// with, when it is a plain read of one: named by its path's last word
    /// (`GET /clinicians`) or by its items' schema (`GET /menu` listing
    /// `MenuItem`s).
    fn list_of(&self, op: &Op, resource: &str) -> Option<list::List> {
        if op.method != "GET" || op.has_params() {
            return None;
        }
        let list = list::find(self.spec, &self.response_schema(op)?)?;
        let by_path = op
            .literals()
            .last()
            .is_some_and(|l| singular(l) == resource);
        let any = resource.is_empty();
        (any || by_path || list.resource.as_deref() == Some(resource)).then_some(list)
    }

    fn unique_name(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut n = 2;
        while !self.names.insert(name.clone()) {
            name = format!("{base} ({n})");
            n += 1;
        }
        name
    }

    /// A step's name: the operation's id, or its summary, or its method
    /// and path.
    fn base_name(&self, op: &Op) -> String {
        let base = (op.operation.operation_id.clone())
            .or(op.operation.summary.clone())
            .unwrap_or_else(|| op.name());
        base.replace('"', "'")
    }

    /// Writes the step for `op` into `[[table]]`.
    fn step(&mut self, op: &Op, table: &str) {
        let name = self.unique_name(&self.base_name(op));
        self.step_named(op, table, name);
    }

    fn step_named(&mut self, op: &Op, table: &str, name: String) {
        let needed = self.needed.clone();
        let mut captures = self.captures(op, &needed);
        let paging = self.paging(op);
        if let Some(page) = &paging {
            // The first page small, its cursor kept for the next one.
            let cursor = format!(
                "{} = {{ json = \"$.{}\", optional = true }}",
                page.cursor, page.cursor
            );
            captures = Some(match captures {
                Some(c) => format!("{}, {cursor} }}", c.trim_end_matches('}').trim_end()),
                None => format!("capture = {{ {cursor} }}"),
            });
        }
        self.emit(
            op,
            table,
            &name,
            captures,
            paging.as_ref().map(|p| p.first_page()),
        );
        if let Some(page) = paging {
            let next = self.unique_name(&format!("{name}, next page"));
            self.emit(op, table, &next, None, Some(page.next_page()));
        }
    }

    /// A list that pages: a response field such as `next_after` whose name
    /// holds an optional query parameter's (`after`), and a page size
    /// parameter if there is one.
    fn paging(&self, op: &Op) -> Option<Paging> {
        if op.method != "GET" {
            return None;
        }
        let schema = self.response_schema(op)?;
        let params = op.operation.parameters(self.spec).unwrap_or_default();
        let query = || params.iter().filter(|p| p.location == ParameterIn::Query);
        let (cursor, param) = schema.properties.keys().find_map(|field| {
            let lower = field.to_ascii_lowercase();
            let param = query().find(|p| {
                let p = p.name.to_ascii_lowercase();
                lower != p
                    && (lower.starts_with("next") || lower.contains("cursor"))
                    && lower.contains(&p)
            })?;
            Some((field.clone(), param.name.clone()))
        })?;
        let sizes = ["limit", "page_size", "per_page", "size", "count"];
        let size = query().find(|p| sizes.contains(&p.name.to_ascii_lowercase().as_str()));
        Some(Paging {
            cursor,
            param,
            size: size.map(|p| p.name.clone()),
        })
    }

    fn emit(
        &mut self,
        op: &Op,
        table: &str,
        name: &str,
        capture: Option<String>,
        paging: Option<toml::Table>,
    ) {
        let mut path = op.path.clone();
        for (param, var) in path_vars(op) {
            path = path.replace(&format!("{{{param}}}"), &format!("{{{{{var}}}}}"));
        }
        if let Some(href) = self.link(op) {
            path = format!("{{{{{href}}}}}");
        }
        let _ = writeln!(
            self.out,
            "[[{table}]]\nname = \"{name}\"\nactor = \"{}\"\nrequest = \"{} {path}\"",
            self.actor, op.method
        );
        let turns = std::mem::take(&mut self.turns);
        let mut values = Values::new(self.spec, &self.known, turns);
        values.password.clone_from(&self.account_password);
        let mut query = self.query(op, &mut values);
        query.extend(paging.unwrap_or_default());
        if !query.is_empty() {
            let _ = writeln!(self.out, "query = {}", toml::Value::Table(query));
        }
        let headers = self.request_headers(op);
        if !headers.is_empty() {
            let _ = writeln!(self.out, "headers = {}", toml::Value::Table(headers));
        }
        let mut sent = None;
        if let Some((kind, schema)) = self.body_schema(op) {
            // A login and a refresh grant choose among every field.
            values.all_fields = self.refreshing || self.is_login(op);
            let mut fields = values.object(&schema, 0);
            if op.method == "POST" {
                self.unmarked(op, &mut fields);
            }
            if matches!(op.method.as_str(), "PATCH" | "PUT") {
                // An update keeps the account's login name: later logins
                // (and the witness's) still use it.
                fields.retain(|key, _| !is_login_name(key));
            }
            if self.refreshing {
                fields = self.refresh_body(&schema, fields);
            } else if self.is_login(op) {
                fields = self.login_body(&schema, fields);
            } else if let Some((_, sent)) =
                (self.signup.as_mut()).filter(|(name, _)| *name == op.name())
            {
                *sent = fields.clone();
            } else if let Some((_, new)) = fields.iter().find(|(key, _)| is_new_password(key)) {
                // Later logins send the password the account has now.
                self.password = Some(new.clone());
            }
            let key = match kind.as_str() {
                k if k.contains("x-www-form-urlencoded") => "form",
                k if k.contains("multipart") => "multipart",
                _ => "body",
            };
            let _ = writeln!(self.out, "{key} = {}", toml::Value::Table(fields.clone()));
            sent = Some((key, fields));
        }
        self.turns = values.into_turns();
        if let Some(list) = self.listed.get(&op.path).filter(|_| op.method == "GET") {
            // What the document lists to everyone is nobody's to leak.
            let fields = (list.item.properties.keys()).map(|key| list.every(key));
            let fields: Vec<toml::Value> = fields.map(toml::Value::String).collect();
            let _ = writeln!(self.out, "public = {}", toml::Value::Array(fields));
        }
        let statuses = self.statuses(op);
        if !statuses.is_empty() {
            let _ = writeln!(self.out, "expect.status = [{}]", statuses.join(", "));
        }
        let written = beyond::Written {
            op,
            name,
            path: &path,
            body: sent.as_ref().map(|(key, fields)| (*key, fields)),
        };
        let probes = match table {
            "steps" => beyond::probes(self, &written),
            _ => beyond::Probes::default(),
        };
        let capture = match (capture, probes.captures.join(", ")) {
            (capture, more) if more.is_empty() => capture,
            (Some(c), more) => Some(format!(
                "{}, {more} }}",
                c.trim_end().trim_end_matches('}').trim_end()
            )),
            (None, more) => Some(format!("capture = {{ {more} }}")),
        };
        if let Some(capture) = capture {
            let _ = writeln!(self.out, "{capture}");
        }
        let _ = writeln!(self.out);
        self.out.push_str(&probes.steps);
    }

    /// The headers a step sends back: the CSRF token on every write, and
    /// `If-Match` with the record's last `ETag` where the write takes it.
    fn request_headers(&self, op: &Op) -> toml::Table {
        let mut out = toml::Table::new();
        let hole = |var: &str| toml::Value::String(format!("{{{{{var}}}}}"));
        let write = !matches!(op.method.as_str(), "GET" | "HEAD" | "OPTIONS");
        // Not on the step that gives the token (a login, again).
        let schema = self.response_schema(op);
        let gives = |header: &str| headers::csrf_source(self.spec, op, header, schema.as_ref());
        if let Some(header) = self.csrf.as_ref().filter(|_| write) {
            if self.known.contains(headers::CSRF) && gives(header).is_none() {
                out.insert(header.clone(), hole(headers::CSRF));
            }
        }
        let etag = headers::etag_var(op);
        if headers::takes_if_match(self.spec, op) && self.known.contains(&etag) {
            out.insert("If-Match".into(), hole(&etag));
        }
        out
    }

    /// A login's body names the account the sign-up made, with the
    /// sign-up's own values: of several optional account names (`email`,
    /// `username`, `phone`), only the one the sign-up sent too, an e-mail
    /// first; the password the account has now; and no optional field that
    /// names no account (a `refresh_token`, a `scope`, a `client_id` filled
    /// with a canary would be a made-up credential).
    fn login_body(&self, schema: &ObjectSchema, mut fields: toml::Table) -> toml::Table {
        let required = self.required(schema);
        let signup = self.signup.as_ref().map(|(_, sent)| sent.clone());
        let signup = signup.unwrap_or_default();
        let names: Vec<String> = (fields.keys())
            .filter(|k| account_name_rank(k).is_some())
            .cloned()
            .collect();
        let chosen = match names.iter().any(|k| required.contains(k)) {
            // One the login requires names the account already.
            true => None,
            false => {
                (names.into_iter()).min_by_key(|k| (!signup.contains_key(k), account_name_rank(k)))
            }
        };
        // An OAuth2 password grant says which grant it is.
        fields.retain(|key, _| {
            required.contains(key)
                || chosen.as_deref() == Some(key)
                || (account_name_rank(key).is_none() && is_password(key))
                || key == "grant_type"
        });
        // The account the sign-up named, for a login that names it under
        // another key (OAuth2's `username` holding the sign-up's e-mail).
        let signed_up_as = (signup.iter())
            .filter_map(|(key, value)| Some((account_name_rank(key)?, value)))
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, value)| value.clone());
        for (key, value) in fields.iter_mut() {
            match (&self.password, signup.get(key)) {
                (Some(now), _) if is_password(key) => *value = now.clone(),
                (_, Some(sent)) => *value = sent.clone(),
                (_, None) if account_name_rank(key).is_some() => {
                    if let Some(name) = &signed_up_as {
                        *value = name.clone();
                    }
                }
                _ => {}
            }
        }
        fields
    }

    /// A creation's fields that its path's list shows to everyone carry no
    /// canary (everyone seeing it is no leak): a plain unique text instead,
    /// one a path can hold (a book's title names the book in its path).
    fn unmarked(&self, op: &Op, fields: &mut toml::Table) {
        let Some(list) = self.listed.get(&op.path) else {
            return;
        };
        for (key, value) in fields.iter_mut() {
            let marked = value.as_str().is_some_and(|v| v.contains("{{canary}}"));
            if marked && list.item.properties.contains_key(key) {
                *value = toml::Value::String(format!("{key}-{{{{run_id}}}}-{{{{serial}}}}"));
            }
        }
    }

    /// A refresh grant's body: the refresh token, the fields the schema
    /// requires, and a `grant_type` saying which grant it is; no account
    /// name or password (the token endpoint of a login may offer them).
    fn refresh_body(&self, schema: &ObjectSchema, mut fields: toml::Table) -> toml::Table {
        let required = self.required(schema);
        fields.retain(|key, _| {
            required.contains(key) || is_refresh_token(key) || key == "grant_type"
        });
        if let Some(grant) = fields.get_mut("grant_type") {
            *grant = toml::Value::String("refresh_token".into());
        }
        fields
    }

    /// Whether the document says anyone may call `op`: no security
    /// requirement on it nor on the document, or an empty one (optional).
    fn is_public(&self, op: &Op) -> bool {
        let security = &op.operation.security;
        let optional = security.iter().any(|r| r.0.is_empty());
        optional || (security.is_empty() && self.spec.security.is_empty())
    }

    /// Whether the login's token endpoint takes the refresh grant as well:
    /// its body has a refresh token field, and its `grant_type` admits
    /// `refresh_token` or an OAuth2 flow's `refreshUrl` is its path.
    fn takes_refresh_grant(&self, login: &Op) -> bool {
        let Some((_, schema)) = self.body_schema(login) else {
            return false;
        };
        if !schema.properties.keys().any(|k| is_refresh_token(k)) {
            return false;
        }
        let grant = (schema.properties.get("grant_type")).and_then(|s| s.resolve(self.spec).ok());
        grant.is_some_and(|g| self.admits(&g, "refresh_token"))
            || self
                .refresh_urls()
                .iter()
                .any(|path| path.ends_with(&login.path))
    }

    /// Whether a string schema admits `value`: by its enum, const, default
    /// or pattern, or those of a part of its `anyOf` or `oneOf`.
    fn admits(&self, schema: &ObjectSchema, value: &str) -> bool {
        let is = |v: &serde_json::Value| v.as_str() == Some(value);
        let parts = schema.any_of.iter().chain(&schema.one_of);
        schema.enum_values.iter().any(is)
            || schema.const_value.as_ref().is_some_and(is)
            || schema.default.as_ref().is_some_and(is)
            || schema.pattern.as_ref().is_some_and(|p| p.contains(value))
            || parts
                .filter_map(|part| part.resolve(self.spec).ok())
                .any(|part| self.admits(&part, value))
    }

    /// The paths of the OAuth2 flows' `refreshUrl`s.
    fn refresh_urls(&self) -> Vec<String> {
        let schemes = self
            .spec
            .components
            .as_ref()
            .map(|c| c.security_schemes.clone());
        let flows = (schemes.unwrap_or_default().into_values()).filter_map(|scheme| {
            match scheme.resolve(self.spec) {
                Ok(SecurityScheme::OAuth2 { flows, .. }) => Some(flows),
                _ => None,
            }
        });
        flows
            .flat_map(|f| {
                [
                    f.password.and_then(|p| p.refresh_url),
                    f.client_credentials.and_then(|c| c.refresh_url),
                    f.authorization_code.and_then(|a| a.refresh_url),
                    f.implicit.and_then(|i| i.refresh_url),
                ]
            })
            .flatten()
            .map(|url| url.path().to_string())
            .collect()
    }

    /// The fields an object schema requires, its `allOf` parts' too.
    fn required(&self, schema: &ObjectSchema) -> BTreeSet<String> {
        let mut required: BTreeSet<String> = schema.required.iter().cloned().collect();
        for part in &schema.all_of {
            if let Ok(part) = part.resolve(self.spec) {
                required.extend(self.required(&part));
            }
        }
        required
    }

    /// Whether the operation's body sends a refresh token (a refresh grant).
    fn sends_refresh_token(&self, op: &Op) -> bool {
        self.body_schema(op)
            .is_some_and(|(_, s)| s.properties.keys().any(|k| is_refresh_token(k)))
    }

    /// Required query parameters, and optional ones with an enum (a filter
    /// takes another path through the code), with example values.
    fn query(&self, op: &Op, values: &mut Values<'_>) -> toml::Table {
        let mut table = toml::Table::new();
        for param in op.operation.parameters(self.spec).unwrap_or_default() {
            let schema = param.schema.as_ref().and_then(|s| values.resolve(s));
            let filter = schema.as_ref().is_some_and(|s| !s.enum_values.is_empty());
            if param.location != ParameterIn::Query || !(param.required == Some(true) || filter) {
                continue;
            }
            let value = schema.and_then(|s| values.value(&param.name, &s, 0));
            table.insert(
                param.name.clone(),
                value.unwrap_or(toml::Value::String("{{canary}}".into())),
            );
        }
        table
    }

    /// Documented 2xx codes, and 403 and 409 when documented.
    fn statuses(&self, op: &Op) -> Vec<String> {
        let documented = op.operation.responses.clone().unwrap_or_default();
        let codes: Vec<String> = documented
            .keys()
            .filter(|c| c.starts_with('2') || *c == "403" || *c == "409")
            .filter(|c| c.parse::<u16>().is_ok())
            .cloned()
            .collect();
        match codes.iter().any(|c| c.starts_with('2')) {
            true => codes,
            false => Vec::new(),
        }
    }

    /// What a step captures: the id its answer returns, as `<resource>_id`,
    /// when a path needs it, and a login's token and refresh token (secret).
    /// A login and a refresh grant capture them again: a new session, which
    /// later steps use. An id is optional where a refusal is expected too
    /// (a 409 has none).
    fn captures(&mut self, op: &Op, needed: &BTreeSet<String>) -> Option<String> {
        let mut parts = Vec::new();
        let schema = self.response_schema(op);
        if let Some(schema) = &schema {
            self.json_captures(op, schema, needed, &mut parts);
        }
        self.header_captures(op, schema.as_ref(), &mut parts);
        (!parts.is_empty()).then(|| format!("capture = {{ {} }}", parts.join(", ")))
    }

    /// What a step captures from its answer's JSON.
    fn json_captures(
        &mut self,
        op: &Op,
        schema: &ObjectSchema,
        needed: &BTreeSet<String>,
        parts: &mut Vec<String>,
    ) {
        let refusable = self.statuses(op).iter().any(|c| !c.starts_with('2'));
        let resource = op
            .literals()
            .last()
            .map(|l| singular(l))
            .unwrap_or_default();
        let found = match op.method.as_str() {
            "DELETE" => None,
            _ => self.own_id(schema).map(|path| (path, resource.clone())),
        };
        let found = found.or_else(|| self.list_of_ids(op, schema));
        if let Some((path, resource)) = found {
            // The record is named by the path (`/patients` → `patient_id`)
            // or by its schema (`POST /register` answering a `Patient`).
            let named = self.schema_resource(op).map(|r| format!("{r}_id"));
            let vars = std::iter::once(format!("{resource}_id")).chain(named);
            if let Some(var) = vars.into_iter().find(|v| needed.contains(v)) {
                // A list may be empty: what needs its first id then does not apply.
                let optional = refusable || path.contains("[0]");
                self.capture_var(parts, var, &path, optional);
            }
        } else if op.method == "POST" && !op.has_params() {
            // A creation that answers no id but a HAL link to the record.
            let named = self.schema_resource(op).map(|r| format!("{r}_id"));
            let vars = std::iter::once(format!("{resource}_id")).chain(named);
            let var = vars
                .into_iter()
                .find(|v| needed.contains(v) && !self.known.contains(v));
            if let Some((var, path)) = var.zip(self.self_link(schema)) {
                let href = format!("{}_href", var.trim_end_matches("_id"));
                self.capture_var(parts, href, &path, refusable);
                self.linked.insert(var);
            }
        }
        // Values the answer names by field (`patientId` in `GET /me`'s
        // answer, `$.data.username` in a sign-up's).
        for var in needed.iter() {
            if let Some(path) = self.field(schema, |k| snake(k) == *var) {
                self.capture_var(parts, var.clone(), &path, refusable);
            }
        }
        let renews = self.is_login(op) || self.sends_refresh_token(op);
        let credentials = [
            ("token", self.token(schema)),
            (REFRESH_TOKEN, self.refresh_token(schema)),
        ];
        for (var, path) in credentials {
            let Some(path) = path.filter(|_| renews || !self.known.contains(var)) else {
                continue;
            };
            parts.push(format!("{var} = {{ json = \"{path}\", secret = true }}"));
            self.known.insert(var.into());
        }
    }

    /// The tokens a step's answer gives that travel in headers: the CSRF
    /// token (again at each login), and the `ETag` of a record whose
    /// writes take `If-Match`, from its reads and from writes that answer
    /// one (the record changed).
    fn header_captures(&mut self, op: &Op, schema: Option<&ObjectSchema>, parts: &mut Vec<String>) {
        let renews = self.is_login(op) || self.sends_refresh_token(op);
        let csrf = (self.csrf.as_deref())
            .filter(|_| renews || !self.known.contains(headers::CSRF))
            .and_then(|header| headers::csrf_source(self.spec, op, header, schema));
        if let Some(source) = csrf {
            parts.push(format!("{} = {source}, secret = true }}", headers::CSRF));
            self.known.insert(headers::CSRF.into());
        }
        let answers = headers::answers_etag(self.spec, op);
        let reads = op.method == "GET" || (op.method != "DELETE" && answers);
        if self.etag_paths.contains(&op.path) && reads {
            let var = headers::etag_var(op);
            parts.push(match answers {
                true => format!("{var} = {{ header = \"etag\" }}"),
                false => format!("{var} = {{ header = \"etag\", optional = true }}"),
            });
            self.known.insert(var);
        }
    }

    /// Captures `var` at `path` unless an earlier step did.
    fn capture_var(&mut self, parts: &mut Vec<String>, var: String, path: &str, optional: bool) {
        if self.known.contains(&var) {
            return;
        }
        parts.push(match optional {
            true => format!("{var} = {{ json = \"{path}\", optional = true }}"),
            false => format!("{var} = \"{path}\""),
        });
        self.known.insert(var);
    }

    /// The resource a 2xx answer's schema names (`PatientOut` → `patient`).
    fn schema_resource(&self, op: &Op) -> Option<String> {
        match self.response_media(op)? {
            oas3::spec::ObjectOrReference::Ref { ref_path, .. } => {
                Some(list::resource_named(&ref_path))
            }
            _ => None,
        }
    }

    /// Where a token sits in an answer: `$.access_token`, `$.data.token`.
    fn token(&self, schema: &ObjectSchema) -> Option<String> {
        self.field(schema, |k| {
            let k = k.to_ascii_lowercase();
            k.contains("token")
                && !k.contains("type")
                && !k.contains("refresh")
                && !headers::is_csrf(&k)
        })
    }

    /// Where a refresh token sits in an answer: `$.refresh_token`,
    /// `$.data.refreshToken`.
    fn refresh_token(&self, schema: &ObjectSchema) -> Option<String> {
        self.field(schema, is_refresh_token)
    }

    /// The path of the first field `is` picks, at the top of an answer or
    /// in an envelope one level down.
    fn field(&self, schema: &ObjectSchema, is: impl Fn(&str) -> bool) -> Option<String> {
        if let Some(key) = schema.properties.keys().find(|k| is(k)) {
            return Some(format!("$.{key}"));
        }
        schema.properties.iter().find_map(|(outer, property)| {
            let property = property.resolve(self.spec).ok()?;
            let key = property.properties.keys().find(|k| is(k))?;
            Some(format!("$.{outer}.{key}"))
        })
    }

    /// Where a HAL answer links to its record: `$._links.self.href`.
    fn self_link(&self, schema: &ObjectSchema) -> Option<String> {
        let links = schema.properties.get("_links")?.resolve(self.spec).ok()?;
        let own = links.properties.get("self")?.resolve(self.spec).ok()?;
        own.properties
            .contains_key("href")
            .then(|| "$._links.self.href".to_string())
    }

    /// Where a record's id sits in an answer: `$.id`, or `$.data.id` when
    /// the answer wraps the record in an envelope.
    fn own_id(&self, schema: &ObjectSchema) -> Option<String> {
        if schema.properties.contains_key("id") {
            return Some("$.id".into());
        }
        schema.properties.iter().find_map(|(key, property)| {
            let property = property.resolve(self.spec).ok()?;
            property
                .properties
                .contains_key("id")
                .then(|| format!("$.{key}.id"))
        })
    }

    /// Where the first id of a list answer sits (`$[0].id`, `$.items[0].id`,
    /// `$._embedded.clinicians[0].id`), and what it is an id of (the path's
    /// last word, singular).
    fn list_of_ids(&self, op: &Op, schema: &ObjectSchema) -> Option<(String, String)> {
        if op.method != "GET" {
            return None;
        }
        let resource = singular(op.literals().last()?);
        let list = list::find(self.spec, schema)?;
        (list.item.properties.contains_key("id")).then(|| (list.first("id"), resource))
    }

    /// The JSON schema of the first documented 2xx answer.
    fn response_schema(&self, op: &Op) -> Option<ObjectSchema> {
        self.response_media(op)?.resolve(self.spec).ok()
    }

    /// The schema of the first 2xx JSON answer, as the document writes it.
    fn response_media(&self, op: &Op) -> Option<oas3::spec::ObjectOrReference<ObjectSchema>> {
        let responses = op.operation.responses(self.spec);
        let (_, response) = responses.into_iter().find(|(c, _)| c.starts_with('2'))?;
        let (_, media) = response
            .content
            .into_iter()
            .find(|(k, _)| k.contains("json"))?;
        media.schema
    }
}

/// Whether an operation resets or seeds the whole database (`GET
/// /createdb`, `POST /admin/reset`, `/seed`), by its path's literals; a
/// password's reset is no such thing.
fn resets_everything(op: &Op) -> bool {
    const WORDS: [&str; 10] = [
        "createdb",
        "create_db",
        "initdb",
        "init_db",
        "resetdb",
        "reset_db",
        "reset",
        "seed",
        "dropdb",
        "drop_db",
    ];
    let literals: Vec<String> = (op.literals().iter())
        .map(|l| l.to_ascii_lowercase().replace('-', "_"))
        .collect();
    let about_a_password = literals.iter().any(|l| l.contains("pass"));
    literals.iter().any(|l| WORDS.contains(&l.as_str())) && !about_a_password
}

/// What would give `var`: an answer's field of that name, or for an id the
/// `id` a creation or a list of its resource answers.
fn would_give(var: &str) -> String {
    match var.strip_suffix("_id") {
        Some(base) => format!(
            "`{var}` (an answer's `{var}` field, or the `id` that a `POST …/{base}s` or `GET …/{base}s` answers)"
        ),
        None => format!("`{var}` (an answer's `{var}` field)"),
    }
}

/// What was recognised as the sign-up and the login, in the words the
/// file and the screen both use.
fn account_note(signup: Option<&Op>, login: Option<&Op>) -> String {
    const FILL: &str = "not recognised in the document, fill in the marked section";
    match (signup, login) {
        (Some(signup), Some(login)) => {
            format!("sign-up and login: {}, {}", signup.name(), login.name())
        }
        (None, None) => format!("sign-up and login: {FILL}"),
        (Some(signup), None) => format!("sign-up: {}; login: {FILL}", signup.name()),
        (None, Some(login)) => format!("login: {}; sign-up: {FILL}", login.name()),
    }
}

/// Whether a field takes the account's password (not a new one).
pub(crate) fn is_password(field: &str) -> bool {
    field.to_ascii_lowercase().contains("password") && !is_new_password(field)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_database_reset_is_left_out_and_named_but_a_password_reset_is_not() {
        let doc = r#"
openapi: 3.0.3
info: { title: Shop, version: "1" }
paths:
  /createdb:
    get: { responses: { "200": { description: ok } } }
  /admin/reset-db:
    post: { responses: { "204": { description: ok } } }
  /password/reset:
    post: { responses: { "204": { description: ok } } }
  /books:
    get: { responses: { "200": { description: ok } } }
"#;
        let suite = super::from_openapi(doc).unwrap();
        assert!(!suite.text.contains("/createdb"), "{}", suite.text);
        assert!(
            suite.text.contains("POST /password/reset"),
            "{}",
            suite.text
        );
        let left_out: Vec<&String> = (suite.unplaced.iter())
            .filter(|line| line.contains("resets or seeds the whole database"))
            .collect();
        assert_eq!(left_out.len(), 2, "{:?}", suite.unplaced);
    }

    const FIELDS: &str = r#"
openapi: 3.0.3
info: { title: Fields, version: "1" }
paths:
  /accounts:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              required: [email, password, role, sms_code, first_name, birthDate, kind]
              properties:
                email: { type: string, format: email }
                password: { type: string }
                role: { type: string, example: caregiver }
                sms_code: { type: string }
                first_name: { type: string }
                birthDate: { type: string, format: date }
                kind: { type: string }
                nickname: { type: string }
                about: { type: string }
      responses: { "201": { description: ok } }
  /auth/session:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties: { email: { type: string }, password: { type: string } }
      responses: { "200": { description: ok } }
"#;

    /// The sign-up's body in the suite written from `doc`.
    fn signup_body(doc: &str) -> toml::Table {
        let suite = super::from_openapi(doc).unwrap();
        let parsed: toml::Table = toml::from_str(&suite.text).unwrap();
        let steps = parsed["steps"].as_array().unwrap();
        steps[0]["body"].as_table().unwrap().clone()
    }

    #[test]
    fn required_fields_are_filled_by_what_they_are_and_optional_ones_left_out() {
        let body = signup_body(FIELDS);
        // Optional fields left out; a role from the document's example; a
        // code as digits; a word-like field the document says nothing of
        // left out rather than filled with a canary.
        let keys: Vec<&str> = body.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "birthDate",
                "email",
                "first_name",
                "password",
                "role",
                "sms_code"
            ]
        );
        assert_eq!(body["role"].as_str(), Some("caregiver"));
        assert_eq!(body["sms_code"].as_str(), Some("123456"));
        // Look-alike pairs, and a password of the instance's own.
        assert_eq!(body["first_name"].as_str(), Some("{{twin.name}}"));
        assert_eq!(body["birthDate"].as_str(), Some("{{twin.date_of_birth}}"));
        assert_eq!(body["password"].as_str(), Some("{{password}} {{canary}}"));
        // With no field required, every one is sent (a partial update).
        let open = FIELDS.replace(
            "required: [email, password, role, sms_code, first_name, birthDate, kind]",
            "required: []",
        );
        let body = signup_body(&open);
        assert!(body.contains_key("nickname") && body.contains_key("about"));
        assert_eq!(body["about"].as_str(), Some("{{canary}} about"));
    }

    #[test]
    fn what_init_says_it_recognised_is_what_the_file_says() {
        let both = super::from_openapi(FIELDS).unwrap();
        assert_eq!(
            both.account,
            "sign-up and login: POST /accounts, POST /auth/session"
        );
        assert!(!both.text.contains("not recognised"), "{}", both.text);
        let login_only = FIELDS.replace("password: { type: string }\n                role", "role");
        let suite = super::from_openapi(&login_only).unwrap();
        assert!(
            suite
                .account
                .starts_with("login: POST /auth/session; sign-up: not recognised"),
            "{}",
            suite.account
        );
        assert!(
            suite.text.contains(&format!("# ── {} ──", suite.account)),
            "{}",
            suite.text
        );
    }

    #[test]
    fn a_refresh_grant_says_which_grant_it_is() {
        let doc = r#"
openapi: 3.0.3
info: { title: Grants, version: "1" }
paths:
  /users:
    post:
      requestBody:
        content:
          application/json:
            schema: { type: object, required: [email, password], properties: { email: { type: string }, password: { type: string } } }
      responses: { "201": { description: ok } }
  /oauth/token:
    post:
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              required: [username, password]
              properties:
                grant_type: { type: string, pattern: "^password$" }
                username: { type: string }
                password: { type: string }
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: { type: object, properties: { access_token: { type: string }, refresh_token: { type: string } } }
  /oauth/refresh:
    post:
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              required: [grant_type, refresh_token]
              properties:
                grant_type: { type: string }
                refresh_token: { type: string }
                client_id: { type: string }
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: { type: object, properties: { access_token: { type: string }, refresh_token: { type: string } } }
"#;
        let suite = super::from_openapi(doc).unwrap();
        let parsed: toml::Table = toml::from_str(&suite.text).unwrap();
        let steps = parsed["steps"].as_array().unwrap();
        let form = |at: usize| steps[at]["form"].as_table().unwrap().clone();
        // The login's grant, then the refresh's: its own grant type and the
        // login's refresh token, and no client id made up.
        assert_eq!(form(1)["grant_type"].as_str(), Some("password"));
        let refresh = form(steps.len() - 1);
        assert_eq!(refresh["grant_type"].as_str(), Some("refresh_token"));
        assert_eq!(refresh["refresh_token"].as_str(), Some("{{refresh_token}}"));
        assert_eq!(refresh.len(), 2, "{refresh:?}");
    }
}
