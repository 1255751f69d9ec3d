//! Transports: how a request reaches the target API.
//!
//! [`Http`] speaks HTTP over the network (reqwest, rustls) to a staging API.
//! [`InProcess`] calls a `tower::Service` directly, with no sockets: the
//! embedded reference clinic, and the fuzzer's fast path. Both hand back the
//! full response: status, every header and the body bytes.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

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

/// HTTP over the network.
pub struct Http {
    client: reqwest::Client,
    /// The target, without user name or password.
    base: url::Url,
    /// `Basic …` from the target URL's user name and password, sent on
    /// every request but never part of a [`Request`], so never reported.
    basic: Option<String>,
    limiter: Option<Arc<governor::DefaultDirectRateLimiter>>,
    max_body: usize,
}

impl Http {
    /// A transport to `base`.
    pub fn new(mut base: url::Url, options: HttpOptions) -> Result<Self, TransportError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.timeout)
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|err| TransportError(format!("cannot build the HTTP client: {err}")))?;
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
            base,
            basic,
            limiter,
            max_body: options.max_body,
        })
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
            if let Some(limiter) = &self.limiter {
                limiter.until_ready().await;
            }
            // Checked at send time too: no path reaches another origin.
            let url = crate::safety::url_on(&self.base, &request.path).map_err(TransportError)?;
            let mut builder = self.client.request(request.method.clone(), url);
            if let Some(basic) = &self.basic
                && !request.headers.iter().any(|(n, _)| n == "authorization")
            {
                builder = builder.header("authorization", basic);
            }
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            let mut response = builder
                .body(request.body.clone())
                .send()
                .await
                .map_err(|err| TransportError(describe_reqwest_error(&err)))?;
            let status = response.status().as_u16();
            let headers = std::mem::take(response.headers_mut());
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
            let (status, headers) = (parts.status.as_u16(), parts.headers);
            // The embedded clinic is ours: its bodies are small, but bounded all the same.
            let body = http_body_util::Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|err| TransportError(err.to_string()))?
                .to_bytes();
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
