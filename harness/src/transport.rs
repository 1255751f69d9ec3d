//! Transports: how a request reaches the target API.
//!
//! [`Http`] speaks HTTP over the network (reqwest, rustls) to a staging API.
//! [`InProcess`] calls a `tower::Service` directly, with no sockets: the
//! embedded reference clinic, and the fuzzer's fast path. Both hand back the
//! full response: status, every header and the body bytes.

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

/// A response as the target sent it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The target could not be reached or did not answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

pub type SendFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Response, TransportError>> + Send + 'a>>;

/// Sends one request and returns the response.
pub trait Transport: Send + Sync {
    fn send(&self, request: Request) -> SendFuture<'_>;

    /// Where requests go, for messages: a URL or `in-process clinic`.
    fn describe(&self) -> String;
}

/// HTTP over the network.
pub struct Http {
    client: reqwest::Client,
    base: url::Url,
    limiter: Option<Arc<governor::DefaultDirectRateLimiter>>,
}

impl Http {
    /// A transport to `base`, at most `rate` requests a second if set.
    pub fn new(
        base: url::Url,
        rate: Option<std::num::NonZeroU32>,
        timeout: std::time::Duration,
    ) -> Result<Self, TransportError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|err| TransportError(format!("cannot build the HTTP client: {err}")))?;
        let limiter = rate.map(|per_second| {
            Arc::new(governor::RateLimiter::direct(governor::Quota::per_second(
                per_second,
            )))
        });
        Ok(Self {
            client,
            base,
            limiter,
        })
    }
}

impl Transport for Http {
    fn send(&self, request: Request) -> SendFuture<'_> {
        Box::pin(async move {
            if let Some(limiter) = &self.limiter {
                limiter.until_ready().await;
            }
            let url = self
                .base
                .join(request.path.trim_start_matches('/'))
                .map_err(|err| TransportError(format!("bad path {}: {err}", request.path)))?;
            let mut builder = self.client.request(request.method, url);
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            let response = builder
                .body(request.body)
                .send()
                .await
                .map_err(|err| TransportError(describe_reqwest_error(&err)))?;
            let status = response.status().as_u16();
            let headers = header_pairs(response.headers());
            let body = response
                .bytes()
                .await
                .map_err(|err| TransportError(describe_reqwest_error(&err)))?;
            Ok(Response {
                status,
                headers,
                body,
            })
        })
    }

    fn describe(&self) -> String {
        self.base.to_string()
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

fn header_pairs(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
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
    B::Error: std::fmt::Display,
{
    fn send(&self, request: Request) -> SendFuture<'_> {
        let service = self.service.clone();
        Box::pin(async move {
            use tower::ServiceExt;
            let mut builder = http::Request::builder()
                .method(request.method)
                .uri(&request.path);
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            let http_request = builder.body(Full::new(request.body)).map_err(|err| {
                TransportError(format!("cannot build request {}: {err}", request.path))
            })?;
            let response = service
                .oneshot(http_request)
                .await
                .map_err(|err| TransportError(err.to_string()))?;
            let status = response.status().as_u16();
            let headers = header_pairs(response.headers());
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|err| TransportError(err.to_string()))?
                .to_bytes();
            Ok(Response {
                status,
                headers,
                body,
            })
        })
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}
