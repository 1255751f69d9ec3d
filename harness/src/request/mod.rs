//! Requests: one plan step rendered for one instance, with the credentials
//! of whichever identity the step sends (its own, another's, another's JWT
//! claims unsigned, or none).

use bytes::Bytes;
use serde_json::Value;

mod body;

pub(crate) use body::render_body;

use crate::plan::{Credentials, PlanStep};
use crate::resolver::Resolver;
use crate::safety::{Redactor, is_credential_header};
use crate::template::{Resolve, Unresolved};
use crate::transport::Request;
use crate::world::{InstanceId, World};

/// A rendered request and whose credentials went out with it.
pub struct Built {
    pub request: Request,
    /// The identity whose credential the request carries; `None` when it
    /// carries none (anonymous, or a credential not captured yet).
    pub credential_of: Option<InstanceId>,
}

/// Whose credentials `step` sends when `sender` sends it.
pub fn identity(world: &World, step: &PlanStep, sender: InstanceId) -> Option<InstanceId> {
    match step.credentials {
        Credentials::Own => Some(sender),
        Credentials::Anonymous => None,
        Credentials::Of(role, index) | Credentials::Unsigned(role, index) => {
            Some(world.id(role, index))
        }
        Credentials::Picked(pick) => Some(crate::resolver::picked(world, sender, pick)),
    }
}

/// Why a step cannot be sent.
#[derive(Debug)]
pub enum Unsent {
    /// A hole with no value.
    Missing(Unresolved),
    /// A path or header that is not valid HTTP.
    Invalid(String),
}

impl std::fmt::Display for Unsent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unsent::Missing(missing) => write!(f, "{missing}"),
            Unsent::Invalid(why) => f.write_str(why),
        }
    }
}

impl Unsent {
    /// The variable a missing hole names (`peer.next` → `next`).
    pub fn missing_var(&self) -> Option<&str> {
        match self {
            Unsent::Missing(missing) => missing.expr.rsplit('.').next(),
            Unsent::Invalid(_) => None,
        }
    }
}

/// Renders `step` as the resolver's instance, with `identity`'s credentials.
/// Every credential rendered is taught to the redactor before it is sent.
pub fn build(
    world: &World,
    redactor: &Redactor,
    step: &PlanStep,
    resolver: &Resolver<'_>,
    identity: Option<InstanceId>,
) -> Result<Built, Unsent> {
    let built = render(world, redactor, step, resolver, identity).map_err(Unsent::Missing)?;
    valid(&built.request).map_err(Unsent::Invalid)?;
    Ok(built)
}

/// Whether `request` can go on the wire as it is: its path stays on the
/// target's origin and under its prefix, and its headers are valid HTTP.
fn valid(request: &Request) -> Result<(), String> {
    if let Some(problem) = crate::safety::path_problem(&request.path) {
        return Err(problem);
    }
    for (name, value) in &request.headers {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err()
            || http::HeaderValue::from_str(value).is_err()
        {
            return Err(format!(
                "header `{name}` has a value that is not valid in HTTP (line breaks or control characters)"
            ));
        }
    }
    Ok(())
}

fn render(
    world: &World,
    redactor: &Redactor,
    step: &PlanStep,
    resolver: &Resolver<'_>,
    identity: Option<InstanceId>,
) -> Result<Built, Unresolved> {
    let mut headers = match identity {
        Some(id) => credentials(world, redactor, id, resolver.step_key()),
        None => Vec::new(),
    };
    let credential_of = match step.credentials {
        // A forged token is nobody's credential: its answer is the sender's
        // to see, and whatever of the claims' owner it shows is a leak.
        Credentials::Unsigned(..) => {
            headers = unsigned(headers, redactor);
            None
        }
        _ => identity.filter(|_| !headers.is_empty()),
    };
    Ok(Built {
        request: as_written(step, resolver, headers)?,
        credential_of,
    })
}

/// `step` rendered by `resolver` after the `headers` given (credentials):
/// its path and query, its own headers and its body. Each value in the
/// path is one segment: a captured `../x` or `a?b` cannot add segments or
/// start a query (the path is then checked in [`valid`]). A path that is
/// one hole and nothing else is a link the target gave (a HAL `href`, a
/// `Location`), taken as a path: [`valid`] still keeps it on the target.
fn as_written<R: Resolve + ?Sized>(
    step: &PlanStep,
    resolver: &R,
    mut headers: Vec<(String, String)>,
) -> Result<Request, Unresolved> {
    let path = match step.path.is_one_hole() {
        true => step.path.render(resolver)?,
        false => (step.path).render_escaped(resolver, crate::safety::path_segment)?,
    };
    let path = body::with_query(path, &step.query, resolver)?;
    for (name, template) in &step.headers {
        headers.push((name.clone(), template.render(resolver)?));
    }
    let body = match &step.body {
        Some(payload) => {
            let (content_type, bytes) = body::render(payload, resolver)?;
            if !headers.iter().any(|(n, _)| n == "content-type") {
                headers.push(("content-type".into(), content_type));
            }
            bytes
        }
        None => Bytes::new(),
    };
    Ok(Request {
        method: step.method.clone(),
        path,
        headers,
        body,
    })
}

/// A step sent once, by no instance: no credentials but its own headers.
pub fn build_once<R: Resolve + ?Sized>(step: &PlanStep, resolver: &R) -> Result<Request, Unsent> {
    let request = as_written(step, resolver, Vec::new()).map_err(Unsent::Missing)?;
    valid(&request).map_err(Unsent::Invalid)?;
    Ok(request)
}

/// The auth header and cookies `id` holds; none before its credential is
/// captured (sign-up, login).
fn credentials(
    world: &World,
    redactor: &Redactor,
    id: InstanceId,
    step_key: u64,
) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    let role = &world.plan().roles[world.instance(id).role];
    if let Some((name, template)) = &role.auth.header {
        let vars = world.state(id).vars.clone();
        let as_identity = Resolver::new(world, id, step_key, &vars);
        if let Ok(value) = template.render(&as_identity) {
            redactor.add(value.strip_prefix("Bearer ").unwrap_or(&value));
            headers.push((name.clone(), value));
        }
    }
    if role.auth.cookies {
        let state = world.state(id);
        if !state.cookies.is_empty() {
            let jar: Vec<String> = state
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            headers.push(("cookie".into(), jar.join("; ")));
        }
    }
    headers
}

/// The headers with each JWT they carry re-made with `alg: none` and no
/// signature, the claims kept; a header or cookie with no JWT is dropped.
fn unsigned(headers: Vec<(String, String)>, redactor: &Redactor) -> Vec<(String, String)> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let forge = |token: &str| {
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let header = URL_SAFE_NO_PAD.decode(header).ok()?;
        serde_json::from_slice::<Value>(&header).ok()?.get("alg")?;
        Some(format!("{none}.{claims}."))
    };
    headers
        .into_iter()
        .filter_map(|(name, value)| {
            let forged: Vec<String> = value
                .split([' ', ';', '='])
                .filter_map(|word| forge(word).map(|f| value.replace(word, &f)))
                .collect();
            let value = forged.into_iter().next()?;
            redactor.add(value.strip_prefix("Bearer ").unwrap_or(&value));
            Some((name, value))
        })
        .collect()
}

/// `request` as a curl command anyone can rerun by hand against `$TARGET`:
/// credentials become environment variables named after their header
/// (`$AUTHORIZATION`, `$COOKIE`), other secrets are redacted.
pub fn curl(request: &Request, redactor: &Redactor) -> String {
    let quote = shell_quote_double;
    let mut command = format!(
        "curl -sS -X {} \"$TARGET{}\"",
        request.method,
        quote(&redactor.redact(&request.path))
    );
    for (name, value) in &request.headers {
        let redacted = redactor.redact(value);
        let value = if is_credential_header(name) || redacted != *value {
            format!("${}", name.to_ascii_uppercase().replace('-', "_"))
        } else {
            quote(value)
        };
        command.push_str(&format!(" -H \"{name}: {value}\""));
    }
    if !request.body.is_empty() {
        let body = redactor.redact_body(&String::from_utf8_lossy(&request.body));
        command.push_str(&format!(" --data-raw \"{}\"", quote(&body)));
    }
    command
}

/// Text safe inside double quotes in bash.
pub fn shell_quote_double(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('$', "\\$")
        .replace('`', "\\`")
}

/// Whether `id` holds a credential it could send now.
pub fn holds_credential(world: &World, id: InstanceId) -> bool {
    !credentials(world, &Redactor::default(), id, 0).is_empty()
}
