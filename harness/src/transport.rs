//! Transports: how a request reaches the target API.
//!
//! [`Http`] speaks HTTP over the network (reqwest, rustls) to a staging API.
//! [`InProcess`] calls a `tower::Service` directly, with no sockets: the
//! embedded reference clinic, and the fuzzer's fast path. Both hand back the
//! full response: status, every header and the body bytes.
//!
//! [`Http`] keeps connections alive between requests, and a server may
//! close an idle one just as a request goes out on it (uvicorn closes them
//! after 5 seconds): the request fails with a reset, or the connection ends
//! before any answer, though the target is fine. Such a request is sent once
//! more, on a fresh connection, when a second copy is safe
//! (`retry_is_safe`): an idempotent method, whose effect is the same sent
//! twice, or any method the HTTP stack says was never written. Idle
//! connections are also let go before servers usually close them
//! (`POOL_IDLE`), so the race is rare.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// A request as the executor built it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: http::Method,
    /// Path and query, e.g. `/v1/me?x=1`.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Request {
    /// The body's name/value pairs when it is a form.
    pub fn form(&self) -> Option<Vec<(String, String)>> {
        form_pairs(&self.headers, &self.body)
    }
}

/// The decoded pairs of a body the headers say is a form.
pub fn form_pairs(headers: &[(String, String)], body: &[u8]) -> Option<Vec<(String, String)>> {
    let form = headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("content-type")
            && value.starts_with("application/x-www-form-urlencoded")
    });
    form.then(|| {
        url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
}

/// A response as the target sent it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// As the HTTP stack parsed them: no copy is made of headers that no
    /// judge reads.
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// The body went on past the transport's limit: `body` is its start.
    pub truncated: bool,
}

impl Response {
    /// The first value of header `name`, as text.
    pub fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.headers.get(name).map(|v| text(v.as_bytes()))
    }

    /// The cookies the response sets, each `Set-Cookie` that parses.
    pub fn set_cookies(&self) -> impl Iterator<Item = cookie::Cookie<'_>> {
        (self.headers.get_all(http::header::SET_COOKIE).iter())
            .filter_map(|value| cookie::Cookie::parse(text(value.as_bytes())).ok())
    }

    /// Every header as (name, value) text: names in the order first
    /// received, the values of one name together.
    pub fn header_pairs(&self) -> impl Iterator<Item = (&str, Cow<'_, str>)> {
        (self.headers.iter()).map(|(name, value)| (name.as_str(), text(value.as_bytes())))
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// `headers` in a map of their own size, in the same order: the HTTP
/// stack's has room for more (six entries for two headers), and a batch
/// keeps every answer until all of it has arrived.
fn fitted(headers: http::HeaderMap) -> http::HeaderMap {
    let mut fitted = http::HeaderMap::with_capacity(headers.keys_len());
    let mut name = None;
    // Each name comes once, before its values.
    for (key, value) in headers {
        if key.is_some() {
            name = key;
        }
        if let Some(name) = &name {
            fitted.append(name.clone(), value);
        }
    }
    fitted
}

/// A header value as text: bytes that are not UTF-8 replaced.
fn text(value: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(value)
}

/// The target could not be reached or did not answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

pub type SendFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Response, TransportError>> + Send + 'a>>;

/// Sends one request and returns the response.
pub trait Transport: Send + Sync {
    fn send<'a>(&'a self, request: &'a Request) -> SendFuture<'a>;

    /// Where requests go, for messages: a URL or `in-process clinic`.
    fn describe(&self) -> String;

    /// How long one request may take before it fails unanswered; `None`
    /// when it never times out (in process).
    fn timeout(&self) -> Option<Duration> {
        None
    }

    /// Requests sent a second time so far, each because its first try met
    /// a kept-alive connection the server had closed.
    fn retried(&self) -> u64 {
        0
    }
}

/// The largest body read by default: enough for recordings' media.
pub const MAX_BODY: usize = 64 << 20;

/// How an [`Http`] transport behaves.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Requests per second at most.
    pub rate: Option<std::num::NonZeroU32>,
    /// How long one request may take, its answer read in full.
    pub timeout: std::time::Duration,
    /// Bytes of one answer's body read at most; a longer one is an error.
    pub max_body: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            rate: None,
            timeout: std::time::Duration::from_secs(30),
            max_body: MAX_BODY,
        }
    }
}

/// How long a connection may wait in the pool for its next request: less
/// than the 5 s after which uvicorn, Node and Apache close an idle
/// keep-alive connection, so a request seldom goes out on one being closed.
const POOL_IDLE: Duration = Duration::from_secs(4);

/// HTTP over the network.
pub struct Http {
    client: reqwest::Client,
    /// For the second try of a request: keeps no connection, so each
    /// request has one of its own, fresh.
    fresh: reqwest::Client,
    /// The target, without user name or password.
    base: url::Url,
    /// `Basic …` from the target URL's user name and password, sent on
    /// every request but never part of a [`Request`], so never reported.
    basic: Option<String>,
    limiter: Option<Arc<governor::DefaultDirectRateLimiter>>,
    max_body: usize,
    timeout: Duration,
    /// Requests sent a second time, on a fresh connection.
    retried: AtomicU64,
}

impl Http {
    /// A transport to `base`.
    pub fn new(mut base: url::Url, options: HttpOptions) -> Result<Self, TransportError> {
        let client = http_client(&options, 256)?;
        let fresh = http_client(&options, 0)?;
        let limiter = options.rate.map(|per_second| {
            Arc::new(governor::RateLimiter::direct(governor::Quota::per_second(
                per_second,
            )))
        });
        let basic = basic_auth(&base);
        let _ = base.set_username("");
        let _ = base.set_password(None);
        Ok(Self {
            client,
            fresh,
            base,
            basic,
            limiter,
            max_body: options.max_body,
            timeout: options.timeout,
            retried: AtomicU64::new(0),
        })
    }

    /// Sends `request` through `client` up to its answer's head.
    async fn try_send(
        &self,
        client: &reqwest::Client,
        request: &Request,
    ) -> Result<Result<reqwest::Response, reqwest::Error>, TransportError> {
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        // Checked at send time too: no path reaches another origin.
        let url = crate::safety::url_on(&self.base, &request.path).map_err(TransportError)?;
        let mut builder = client.request(request.method.clone(), url);
        if let Some(basic) = &self.basic
            && !request.headers.iter().any(|(n, _)| n == "authorization")
        {
            builder = builder.header("authorization", basic);
        }
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        Ok(builder.body(request.body.clone()).send().await)
    }

    /// Sends `request`, and once more on a fresh connection when the first
    /// try met a closed kept-alive connection and a retry is safe.
    async fn send_head(&self, request: &Request) -> Result<reqwest::Response, TransportError> {
        let first = self.try_send(&self.client, request).await?;
        let answer = match first {
            Err(err) if retry_is_safe(&request.method, &err) => {
                self.retried.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    "retrying on a fresh connection: {}",
                    describe_reqwest_error(&err)
                );
                self.try_send(&self.fresh, request).await?
            }
            first => first,
        };
        answer.map_err(|err| TransportError(describe_reqwest_error(&err)))
    }

    /// The body of `response`: at most `max_body` bytes of it, and whether
    /// it went on past them (the rest is never read).
    async fn read_body(
        &self,
        mut response: reqwest::Response,
    ) -> Result<(Bytes, bool), TransportError> {
        let expected = response.content_length().unwrap_or(0) as usize;
        let mut body = bytes::BytesMut::with_capacity(expected.min(self.max_body));
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| TransportError(describe_reqwest_error(&err)))?
        {
            let room = self.max_body - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                return Ok((body.freeze(), true));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body.freeze(), false))
    }
}

/// The HTTP client for `options`, keeping at most `idle` connections per
/// host between requests.
fn http_client(options: &HttpOptions, idle: usize) -> Result<reqwest::Client, TransportError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(options.timeout)
        .pool_max_idle_per_host(idle)
        .pool_idle_timeout(POOL_IDLE)
        .build()
        .map_err(|err| TransportError(format!("cannot build the HTTP client: {err}")))
}

/// What a request that got no answer's head shows of its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    /// The connection was closed before the request was written: the HTTP
    /// stack handed the request back unsent.
    Unsent,
    /// The connection was reset, or ended, after the request was written
    /// and before any byte of an answer: whether the server acted on it
    /// cannot be told.
    Unanswered,
}

/// Whether `err` is worth one more try on a fresh connection: the
/// connection was closed under the request (never a timeout, a refused
/// connection, or a bad answer), and sending it again cannot do twice what
/// the server may have done once. An idempotent method (GET, HEAD,
/// OPTIONS, PUT, DELETE) may be sent again whatever the server did with
/// it; a POST or PATCH only when it was never written (RFC 9110, 9.2.2).
fn retry_is_safe(method: &http::Method, err: &reqwest::Error) -> bool {
    match closed_connection(err) {
        Some(Closed::Unsent) => true,
        Some(Closed::Unanswered) => method.is_idempotent(),
        None => false,
    }
}

/// How `err` shows the connection was closed under its request, if it does.
/// Hyper's errors are known by their words: the crate does not name hyper's
/// types. Hyper (through reqwest) says "operation was canceled" when a
/// connection closed before the request was written, and "connection closed
/// before message completed" when it ended before any byte of the answer.
fn closed_connection(err: &reqwest::Error) -> Option<Closed> {
    if err.is_timeout() || err.is_connect() || !err.is_request() {
        return None;
    }
    let mut closed = None;
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
            if matches!(io.kind(), ConnectionReset | ConnectionAborted | BrokenPipe) {
                closed = Some(Closed::Unanswered);
            }
        }
        match cause.to_string().as_str() {
            "operation was canceled" => return Some(Closed::Unsent),
            "connection closed before message completed" => closed = Some(Closed::Unanswered),
            _ => {}
        }
        source = cause.source();
    }
    closed
}

/// The `Authorization` value a URL's user name and password stand for.
fn basic_auth(url: &url::Url) -> Option<String> {
    use base64::Engine;
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    let pair = format!(
        "{}:{}",
        decode(url.username()),
        decode(url.password().unwrap_or_default())
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
    Some(format!("Basic {encoded}"))
}

impl Transport for Http {
    fn send<'a>(&'a self, request: &'a Request) -> SendFuture<'a> {
        Box::pin(async move {
            let mut response = self.send_head(request).await?;
            let status = response.status().as_u16();
            let headers = fitted(std::mem::take(response.headers_mut()));
            let (body, truncated) = self.read_body(response).await?;
            Ok(Response {
                status,
                headers,
                body,
                truncated,
            })
        })
    }

    fn describe(&self) -> String {
        crate::safety::printable(&self.base)
    }

    fn timeout(&self) -> Option<Duration> {
        Some(self.timeout)
    }

    fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }
}

fn describe_reqwest_error(err: &reqwest::Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// A `tower::Service` called in process.
pub struct InProcess<S> {
    service: S,
    name: String,
}

impl<S> InProcess<S> {
    pub fn new(service: S, name: impl Into<String>) -> Self {
        Self {
            service,
            name: name.into(),
        }
    }
}

impl<S, B> Transport for InProcess<S>
where
    S: tower::Service<http::Request<Full<Bytes>>, Response = http::Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
    S::Error: std::fmt::Display,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn send<'a>(&'a self, request: &'a Request) -> SendFuture<'a> {
        let service = self.service.clone();
        Box::pin(async move {
            use tower::ServiceExt;
            let mut builder = http::Request::builder()
                .method(request.method.clone())
                .uri(&request.path);
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            let http_request = builder
                .body(Full::new(request.body.clone()))
                .map_err(|err| {
                    TransportError(format!("cannot build request {}: {err}", request.path))
                })?;
            let response = service
                .oneshot(http_request)
                .await
                .map_err(|err| TransportError(err.to_string()))?;
            let (parts, body) = response.into_parts();
            let (status, headers) = (parts.status.as_u16(), fitted(parts.headers));
            // The embedded clinic is ours: its bodies are small, but bounded all the same.
            let body = http_body_util::Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|err| TransportError(err.to_string()))?
                .to_bytes();
            // Copied to its own size: a body serialized into a growing
            // buffer keeps up to twice its length, and a batch keeps every
            // answer until all of it has arrived.
            let body = Bytes::copy_from_slice(&body);
            Ok(Response {
                status,
                headers,
                body,
                truncated: false,
            })
        })
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitted_headers_keep_every_value_in_order() {
        let mut headers = http::HeaderMap::new();
        headers.append("content-type", "application/json".parse().unwrap());
        headers.append("set-cookie", "a=1".parse().unwrap());
        headers.append("x-trace", "t".parse().unwrap());
        headers.append("set-cookie", "b=2".parse().unwrap());
        let pairs = |map: &http::HeaderMap| -> Vec<(String, String)> {
            let response = Response {
                status: 200,
                headers: map.clone(),
                body: Bytes::new(),
                truncated: false,
            };
            (response.header_pairs())
                .map(|(n, v)| (n.to_string(), v.into_owned()))
                .collect()
        };
        let fitted = fitted(headers.clone());
        assert_eq!(pairs(&fitted), pairs(&headers));
        assert_eq!(pairs(&fitted).len(), 4);
        assert!(
            fitted.capacity() < headers.capacity(),
            "{}",
            fitted.capacity()
        );
    }
}
