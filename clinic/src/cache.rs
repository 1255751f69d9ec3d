//! A short-lived response cache for `GET /v1/me`, which the apps poll.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::Caller;
use crate::faults::{Fault, Faults};

const TTL: Duration = Duration::from_secs(30);
const MAX_ENTRIES: usize = 50_000;

pub struct ResponseCache {
    faults: Faults,
    entries: Mutex<HashMap<String, (Instant, Vec<u8>)>>,
}

impl ResponseCache {
    pub fn new(faults: Faults) -> Self {
        Self {
            faults,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cache key of `path` as requested by `caller`.
    pub fn key(&self, caller: &Caller, path: &str) -> String {
        self.key_of(&caller.id, path)
    }

    /// The cache key of `path` as requested by the user `user_id`.
    pub fn key_of(&self, user_id: &str, path: &str) -> String {
        if self.faults.has(Fault::ProfileCache) {
            path.to_string()
        } else {
            format!("{user_id}:{path}")
        }
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(stored, _)| stored.elapsed() < TTL)
            .map(|(_, body)| body.clone())
    }

    pub fn put(&self, key: String, body: Vec<u8>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (stored, _)| stored.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), body));
    }

    pub fn invalidate(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(key);
    }
}
