//! Tokens that travel in headers, as the document says: a CSRF token the
//! session's answer gives (in a header or a field), which every write then
//! sends back, and `If-Match` from the `ETag` the last read or write of the
//! record answered. Without them a server that checks them refuses every
//! write, and the flow tests nothing past its first.

use oas3::Spec;
use oas3::spec::{ObjectSchema, ParameterIn, SecurityScheme};

use super::operation::{Op, singular};

/// The variable that holds an instance's CSRF token.
pub(super) const CSRF: &str = "csrf_token";

/// Whether a header's name says it carries a CSRF token.
pub(super) fn is_csrf(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("csrf") || name.contains("xsrf")
}

/// The header a CSRF token travels in: an API key scheme's header, or a
/// header parameter of an operation, whose name says CSRF or XSRF.
pub(super) fn csrf_header(spec: &Spec, ops: &[Op]) -> Option<String> {
    let schemes = spec.components.as_ref().map(|c| c.security_schemes.clone());
    let scheme = (schemes.unwrap_or_default().values()).find_map(|s| match s.resolve(spec) {
        Ok(SecurityScheme::ApiKey { name, location, .. })
            if location == "header" && is_csrf(&name) =>
        {
            Some(name)
        }
        _ => None,
    });
    scheme.or_else(|| {
        let params = ops.iter().flat_map(|op| header_params(spec, op));
        params.into_iter().find(|name| is_csrf(name))
    })
}

/// Where `op`'s 2xx answer gives the CSRF token travelling in `header`: a
/// header of that name it documents, or a field whose name says CSRF.
pub(super) fn csrf_source(
    spec: &Spec,
    op: &Op,
    header: &str,
    schema: Option<&ObjectSchema>,
) -> Option<String> {
    let responses = op.operation.responses(spec);
    let documented = (responses.iter())
        .filter(|(code, _)| code.starts_with('2'))
        .flat_map(|(_, r)| r.headers.keys())
        .find(|name| name.eq_ignore_ascii_case(header));
    if let Some(name) = documented {
        return Some(format!("{{ header = \"{}\"", name.to_ascii_lowercase()));
    }
    let field = schema?.properties.keys().find(|k| is_csrf(k))?;
    Some(format!("{{ json = \"$.{field}\""))
}

/// Whether `op` takes an `If-Match` header.
pub(super) fn takes_if_match(spec: &Spec, op: &Op) -> bool {
    (header_params(spec, op).iter()).any(|name| name.eq_ignore_ascii_case("if-match"))
}

/// Whether `op`'s 2xx answer documents an `ETag` header.
pub(super) fn answers_etag(spec: &Spec, op: &Op) -> bool {
    let responses = op.operation.responses(spec);
    (responses.iter())
        .filter(|(code, _)| code.starts_with('2'))
        .any(|(_, r)| r.headers.keys().any(|k| k.eq_ignore_ascii_case("etag")))
}

/// The variable that holds the `ETag` of the record at `op`'s path
/// (`/bookings/{id}` → `booking_etag`).
pub(super) fn etag_var(op: &Op) -> String {
    let resource = op.literals().last().map(|l| singular(l));
    format!("{}_etag", resource.unwrap_or_else(|| "record".into()))
}

/// The names of `op`'s header parameters.
fn header_params(spec: &Spec, op: &Op) -> Vec<String> {
    let params = op.operation.parameters(spec).unwrap_or_default();
    (params.into_iter())
        .filter(|p| p.location == ParameterIn::Header)
        .map(|p| p.name)
        .collect()
}
