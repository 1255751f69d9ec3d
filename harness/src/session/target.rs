//! The target of a session: the embedded reference clinic (a fresh one on
//! demand) or a remote API, checked against the allowlist and probed once.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use crate::safety::AllowList;
use crate::transport::{Http, HttpOptions, Request, Transport};

use super::SessionError;

/// Where requests go, as the command line says it.
#[derive(Debug, Clone, Default)]
pub struct TargetSpec {
    /// Base URL of a running API; `None` for the embedded clinic.
    pub url: Option<String>,
    /// Clinic faults to switch on (embedded target only).
    pub faults: Vec<String>,
    /// Hosts besides loopback that may be targeted.
    pub allow_hosts: Vec<String>,
    /// Requests per second at most (network targets).
    pub rate: Option<NonZeroU32>,
    /// How long one request may take, answer read in full (network targets).
    pub timeout: Option<Duration>,
    /// Bytes of one answer's body read at most (network targets).
    pub max_body: Option<usize>,
}

impl TargetSpec {
    /// The embedded clinic with `faults` on.
    pub fn embedded(faults: &[&str]) -> TargetSpec {
        TargetSpec {
            faults: faults.iter().map(|f| f.to_string()).collect(),
            ..TargetSpec::default()
        }
    }

    /// A running API at `url`.
    pub fn remote(url: impl Into<String>) -> TargetSpec {
        TargetSpec {
            url: Some(url.into()),
            ..TargetSpec::default()
        }
    }
}

/// A target ready to send to.
pub enum Target {
    Embedded(clinic::Faults),
    Remote(Arc<Http>),
}

impl Target {
    /// Checks `spec` and, for a remote target, that it answers at all.
    pub async fn connect(spec: &TargetSpec) -> Result<Target, SessionError> {
        let Some(target) = &spec.url else {
            let faults = clinic::Faults::parse_list(&spec.faults.join(","))
                .map_err(|err| SessionError::Input(format!("--fault: {err}")))?;
            return Ok(Target::Embedded(faults));
        };
        if !spec.faults.is_empty() {
            return Err(SessionError::Input(
                "--fault switches faults of the embedded clinic; it cannot change a --target"
                    .into(),
            ));
        }
        // The target may hold a password: an error does not repeat it.
        let mut url = url::Url::parse(target)
            .map_err(|err| SessionError::Input(format!("--target is not a URL: {err}")))?;
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        AllowList::new(spec.allow_hosts.clone())
            .check(&url)
            .map_err(SessionError::Input)?;
        let mut options = HttpOptions {
            rate: spec.rate,
            ..HttpOptions::default()
        };
        options.timeout = spec.timeout.unwrap_or(options.timeout);
        options.max_body = spec.max_body.unwrap_or(options.max_body);
        let http = Http::new(url.clone(), options).map_err(|e| SessionError::Input(e.0))?;
        // Any answer at all proves the target is there.
        let probe = Request {
            method: http::Method::GET,
            path: "/".into(),
            headers: Vec::new(),
            body: Default::default(),
        };
        http.send(&probe).await.map_err(|err| {
            // The error may quote the URL, user name and password included.
            let shown = crate::safety::printable(&url);
            let err = err.to_string().replace(url.as_str(), &shown);
            SessionError::Input(format!("the target {shown} is unreachable: {err}"))
        })?;
        Ok(Target::Remote(Arc::new(http)))
    }

    /// A transport to the target; for the embedded clinic, a fresh clinic.
    pub fn transport(&self) -> Arc<dyn Transport> {
        match self {
            Target::Remote(http) => http.clone(),
            Target::Embedded(faults) => crate::embedded::transport(faults),
        }
    }

    /// As [`Target::transport`], for a scripted run: the embedded clinic
    /// holds the whole run's data, so it keeps most of it out of memory.
    pub fn run_transport(&self) -> Arc<dyn Transport> {
        match self {
            Target::Remote(http) => http.clone(),
            Target::Embedded(faults) => crate::embedded::run_transport(faults),
        }
    }
}
