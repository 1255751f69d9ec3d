//! Safety: crosstalk creates many accounts on a real server, so it only
//! talks to hosts it was allowed to, and never writes a credential out.
//!
//! Requests stay under the target's path prefix too: a value rendered into
//! a path is one segment (see [`path_segment`]), and a path with a `.` or
//! `..` segment, however encoded, is refused rather than resolved: servers
//! and proxies disagree on how many times to decode and where `..` goes, so
//! only a path with none means the same thing to all of them.

use std::borrow::Cow;
use std::collections::BTreeSet;

mod redactor;
mod secrets;

pub use redactor::Redactor;

/// Hosts a run may target. Loopback is always allowed.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    hosts: BTreeSet<String>,
}

impl AllowList {
    pub fn new(hosts: impl IntoIterator<Item = String>) -> Self {
        Self {
            hosts: hosts
                .into_iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }

    /// Refuses `url` unless its host is loopback or allowed.
    pub fn check(&self, url: &url::Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            let url = printable(url);
            return Err(format!("{url}: only http and https targets are supported"));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => return Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => return Ok(()),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(format!("{}: the target has no host", printable(url))),
        };
        if host == "localhost" || self.hosts.contains(&host) {
            return Ok(());
        }
        Err(format!(
            "refusing to target {host}: crosstalk creates accounts and data on the target, so only loopback \
             and hosts given with --allow-host (or CROSSTALK_ALLOW_HOSTS) may be targeted"
        ))
    }
}

/// `value` as one path segment: a value holding `/`, `?`, `#`, `%` or `\`
/// (which would start a segment, a query or a fragment, or an escape) is
/// percent-encoded whole, every byte but letters and digits; any other
/// value is kept as it is, so ordinary ids (`17`, `a.b`, a UUID) go out
/// unchanged. Whole, because that is one of the encodings the redactor
/// knows a secret by: a secret in a path is still found in reports.
pub fn path_segment(value: &str) -> Cow<'_, str> {
    if !value.contains(['/', '?', '#', '%', '\\']) {
        return Cow::Borrowed(value);
    }
    Cow::Owned(
        percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
    )
}

/// How many times a segment is decoded looking for `..`: a server behind
/// a proxy may decode twice; text that still decodes further after this
/// many rounds is refused as ambiguous.
const DECODE_ROUNDS: usize = 4;

/// The first segment of `path` (its query left out) that is `.` or `..`
/// once decoded: as written, percent-encoded in any case (`%2e%2E`,
/// `.%2e`), encoded twice (`%252e`), hidden behind an encoded separator
/// (`..%2F`, `a%5C..`) or a path parameter (`..;x`, which some servers
/// strip).
/// The segment is returned with the text it decoded to.
fn dot_segment(path: &str) -> Option<(&str, String)> {
    let path = path.split('?').next().unwrap_or_default();
    (path.split('/')).find_map(|segment| Some((segment, decodes_to_dots(segment)?)))
}

/// What `segment` decodes to when that is or holds a `.` or `..` segment.
fn decodes_to_dots(segment: &str) -> Option<String> {
    let dots = |part: &str| matches!(part.split(';').next(), Some("." | ".."));
    // Most segments encode nothing: checked as they are, with no copy
    // (this runs twice for every request).
    if !segment.contains('%') {
        return (segment.split(['/', '\\']).any(dots)).then(|| segment.to_string());
    }
    let mut text = segment.to_string();
    for _ in 0..DECODE_ROUNDS {
        if text.split(['/', '\\']).any(dots) {
            return Some(text);
        }
        let decoded = percent_encoding::percent_decode_str(&text).decode_utf8_lossy();
        if decoded == text {
            return None;
        }
        text = decoded.into_owned();
    }
    Some(text)
}

/// Why `path` cannot be a path on the target: it names another origin
/// (`//host`, `\\host`, a scheme), could leave the target's path prefix
/// (a `.` or `..` segment) or holds what HTTP does not allow.
pub fn path_problem(path: &str) -> Option<String> {
    let origin = "would leave the target's origin";
    if !path.starts_with('/') {
        return Some(format!("`{path}` does not start with `/`: it {origin}"));
    }
    if path.starts_with("//") || path.contains('\\') {
        return Some(format!(
            "`{path}` {origin} (`//` and `\\` name another host)"
        ));
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!(
            "`{path}` has spaces or control characters (percent-encode them)"
        ));
    }
    if let Some((segment, decoded)) = dot_segment(path) {
        return Some(format!(
            "`{path}` has the segment `{segment}` (decoded: `{decoded}`), a `.` or `..` segment \
             once decoded: it could leave the target's path prefix (such segments are refused, \
             never resolved)"
        ));
    }
    if path.parse::<http::uri::PathAndQuery>().is_err() {
        return Some(format!("`{path}` is not a valid request path"));
    }
    None
}

/// The URL of `path` on `base`: the base's origin and path prefix, then
/// the path. Never another origin or a path outside the prefix, whatever
/// the path holds: checked again here, at send time, whatever built it.
pub fn url_on(base: &url::Url, path: &str) -> Result<url::Url, String> {
    if let Some(problem) = path_problem(path) {
        return Err(problem);
    }
    let (path_part, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let prefix = base.path().trim_end_matches('/');
    let mut url = base.clone();
    url.set_path(&format!("{prefix}{path_part}"));
    url.set_query(query);
    url.set_fragment(None);
    fn origin(url: &url::Url) -> (&str, Option<url::Host<&str>>, Option<u16>) {
        (url.scheme(), url.host(), url.port_or_known_default())
    }
    if origin(&url) != origin(base) {
        return Err(format!("`{path}` would leave the target's origin"));
    }
    // `set_path` resolves dot segments: whatever it made must still be
    // under the prefix.
    if !url.path().starts_with(&format!("{prefix}/")) {
        return Err(format!(
            "`{path}` would leave the target's path prefix `{prefix}/`"
        ));
    }
    Ok(url)
}

/// `url` as it may be printed: no user name or password in it.
pub fn printable(url: &url::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

pub const REDACTED: &str = "[redacted]";

/// Body fields that hold credentials whatever the scenario says, matched
/// without case; names ending in `_token`, `_secret` or `password` too.
pub const CREDENTIAL_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "client_secret",
    "secret",
    "sessionid",
];

/// Whether a body field named `name` holds a credential.
pub fn is_credential_field(name: &str, extra: &[String]) -> bool {
    let name = name.to_ascii_lowercase();
    CREDENTIAL_FIELDS.contains(&name.as_str())
        || name.ends_with("_token")
        || name.ends_with("_secret")
        || name.ends_with("password")
        || extra.iter().any(|e| e.eq_ignore_ascii_case(&name))
}

/// Whether a variable named `name` is secret unless said otherwise.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "passwd", "token", "secret", "key"]
        .iter()
        .any(|word| name.contains(word))
}

/// `text` safe to print on a terminal: control characters (ESC among them)
/// shown escaped, and so are the invisible ones that change how the rest
/// reads (a right-to-left override can make a finding read backwards; a
/// zero-width space hides in a name); line breaks and tabs kept.
pub fn terminal_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if c.is_control() || invisible(c) => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// Bidirectional controls and zero-width characters.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
    )
}

/// Headers that carry credentials whatever the scenario says.
pub fn is_credential_header(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "authorization" | "cookie" | "set-cookie" | "proxy-authorization" | "x-api-key"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidirectional_and_zero_width_characters_are_shown_escaped() {
        let shown = terminal_safe("patient#1 received \u{202E}s'0#tneitap\u{202C} data\u{200B}!\n");
        assert_eq!(
            shown,
            "patient#1 received \\u{202e}s'0#tneitap\\u{202c} data\\u{200b}!\n"
        );
        assert_eq!(terminal_safe("Zoë Ünal, 日本"), "Zoë Ünal, 日本");
    }

    #[test]
    fn a_value_is_one_segment_and_ordinary_ids_are_unchanged() {
        for plain in [
            "17",
            "a.b",
            "v1.2",
            "0b7e3c1a-9f2d-4c55-8e1b-2a6f3d9c4e10",
            "..",
        ] {
            assert_eq!(path_segment(plain), plain);
        }
        let encoded = [
            ("a/b", "a%2Fb"),
            ("x?admin=1", "x%3Fadmin%3D1"),
            ("y#frag", "y%23frag"),
            ("100%", "100%25"),
            ("a\\b", "a%5Cb"),
        ];
        for (value, segment) in encoded {
            assert_eq!(path_segment(value), segment, "{value}");
        }
    }

    #[test]
    fn dot_segments_are_refused_in_every_encoding() {
        for refused in [
            "/v1/notes/..",
            "/v1/./notes",
            "/v1/notes/%2e%2E",
            "/v1/notes/.%2e/x",
            "/v1/notes/%2E",
            "/v1/notes/..%2F..%2Fetc",
            "/v1/notes/a%2F..%2Fb",
            "/v1/notes/..%5Cx",
            "/v1/notes/%252e%252e",
            "/v1/notes/%2E%2E%2F%2E%2E%2Fetc",
            "/v1/notes/..;x",
            "/v1/notes/%25252525252e",
        ] {
            let problem = path_problem(refused).unwrap_or_else(|| panic!("{refused} passed"));
            assert!(
                problem.contains("`.` or `..` segment once decoded"),
                "{problem}"
            );
        }
        for fine in [
            "/v1/notes/a.b",
            "/v1/notes/v1.2",
            "/v1/notes/...",
            "/v1/notes/.hidden",
            "/v1/notes/x%3Fadmin%3D1",
            "/v1/notes/%2E%2E%25",
            "/v1/notes?after=../x",
        ] {
            assert_eq!(path_problem(fine), None, "{fine}");
        }
    }

    #[test]
    fn urls_stay_under_the_targets_path_prefix() {
        let base = url::Url::parse("http://127.0.0.1:8080/api").unwrap();
        let url = url_on(&base, "/v1/notes/x%3Fa?b=1").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/api/v1/notes/x%3Fa?b=1");
        for escaping in ["/../etc/passwd", "/v1/%2e%2e/%2e%2e/x", "/a#/../../b"] {
            let err = url_on(&base, escaping).unwrap_err();
            assert!(err.contains("`.` or `..`"), "{escaping}: {err}");
        }
    }

    #[test]
    fn loopback_and_allowed_hosts_only() {
        let allow = AllowList::new(["staging.example.org".to_string()]);
        for ok in [
            "http://127.0.0.1:8080/",
            "http://localhost/",
            "http://[::1]:3000",
            "https://STAGING.example.org/api",
        ] {
            assert!(allow.check(&url::Url::parse(ok).unwrap()).is_ok(), "{ok}");
        }
        for refused in [
            "https://prod.example.org/",
            "http://10.0.0.8/",
            "ftp://127.0.0.1/",
        ] {
            assert!(
                allow.check(&url::Url::parse(refused).unwrap()).is_err(),
                "{refused}"
            );
        }
    }
}
