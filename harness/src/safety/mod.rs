//! Safety: crosstalk creates many accounts on a real server, so it only
//! talks to hosts it was allowed to, and never writes a credential out.

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

/// Why `path` cannot be a path on the target: it names another origin
/// (`//host`, `\\host`, a scheme) or holds what HTTP does not allow.
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
    if path.parse::<http::uri::PathAndQuery>().is_err() {
        return Some(format!("`{path}` is not a valid request path"));
    }
    None
}

/// The URL of `path` on `base`: the base's origin and path prefix, then
/// the path. Never another origin, whatever the path holds.
pub fn url_on(base: &url::Url, path: &str) -> Result<url::Url, String> {
    if let Some(problem) = path_problem(path) {
        return Err(problem);
    }
    let (path_part, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut url = base.clone();
    url.set_path(&format!("{}{path_part}", base.path().trim_end_matches('/')));
    url.set_query(query);
    url.set_fragment(None);
    fn origin(url: &url::Url) -> (&str, Option<url::Host<&str>>, Option<u16>) {
        (url.scheme(), url.host(), url.port_or_known_default())
    }
    if origin(&url) != origin(base) {
        return Err(format!("`{path}` would leave the target's origin"));
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
/// shown escaped, line breaks and tabs kept.
pub fn terminal_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
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
