//! Reading an OpenAPI 3 document, for `init` and `--openapi`: JSON or YAML,
//! as real services serve them. FastAPI's default security scheme gives a
//! relative `tokenUrl` (`"token"`), which the document model takes only as
//! an absolute URL: relative URLs in security schemes are resolved against
//! the document's first server first. A node that still cannot be read is
//! named by its path in the document, never by a line and column of the
//! whole text.

use oas3::Spec;
use serde_json::Value;

/// The document in `text`, or why it is not one, naming where.
pub fn read(text: &str) -> Result<Spec, String> {
    let mut doc: Value = match text.trim_start().starts_with('{') {
        true => serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?,
        false => yaml_serde::from_str(text).map_err(|e| format!("not YAML: {e}"))?,
    };
    resolve_flow_urls(&mut doc);
    serde_path_to_error::deserialize(doc).map_err(|err| {
        let at = err.path().to_string();
        let at = match at.as_str() {
            "." => "$".to_string(),
            path => format!("$.{path}"),
        };
        format!("at {at}: {}", err.inner())
    })
}

/// The OAuth2 flow URLs (`tokenUrl`, `authorizationUrl`, `refreshUrl`) of
/// every security scheme, made absolute against the first server's URL
/// (itself against `http://localhost` when relative or absent).
fn resolve_flow_urls(doc: &mut Value) {
    let base = server_base(doc);
    let Some(schemes) = doc
        .pointer_mut("/components/securitySchemes")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let flows = (schemes.values_mut())
        .filter_map(|scheme| scheme.get_mut("flows")?.as_object_mut())
        .flat_map(|flows| flows.values_mut().filter_map(Value::as_object_mut));
    for flow in flows {
        for key in ["tokenUrl", "authorizationUrl", "refreshUrl"] {
            let Some(Value::String(url)) = flow.get_mut(key) else {
                continue;
            };
            if url::Url::parse(url).is_err()
                && let Ok(absolute) = base.join(url)
            {
                *url = absolute.to_string();
            }
        }
    }
}

/// Where the first server is, as a base to join relative URLs to.
fn server_base(doc: &Value) -> url::Url {
    let localhost = url::Url::parse("http://localhost/").expect("a valid URL");
    let server = doc.pointer("/servers/0/url").and_then(Value::as_str);
    let Some(server) = server else {
        return localhost;
    };
    let server = format!("{}/", server.trim_end_matches('/'));
    url::Url::parse(&server)
        .or_else(|_| localhost.join(&server))
        .unwrap_or(localhost)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FASTAPI: &str = r#"{
      "openapi": "3.1.0",
      "info": {"title": "Restaurant", "version": "0.1.0"},
      "servers": [{"url": "/api"}],
      "paths": {"/token": {"post": {"responses": {"200": {"description": "ok"}}}}},
      "components": {"securitySchemes": {"OAuth2PasswordBearer": {
        "type": "oauth2", "flows": {"password": {"scopes": {}, "tokenUrl": "token"}}}}}
    }"#;

    #[test]
    fn a_relative_token_url_is_read_against_the_server() {
        let spec = read(FASTAPI).unwrap();
        let text = serde_json::to_string(&spec.components).unwrap();
        assert!(text.contains("http://localhost/api/token"), "{text}");
    }

    #[test]
    fn a_node_that_cannot_be_read_is_named_by_its_path() {
        let broken = FASTAPI.replace(r#""responses": {"200""#, r#""responses": {"200": 7, "201""#);
        let err = read(&broken).unwrap_err();
        assert!(err.starts_with("at $.paths./token.post.responses"), "{err}");
        assert!(read("{ not json").unwrap_err().starts_with("not JSON"));
    }
}
