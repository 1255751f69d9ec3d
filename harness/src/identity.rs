//! Identity: who is whom, decided from evidence and in one place.
//!
//! Every judge asks the same questions: which identity did the server
//! answer, which instances are one account, whose is a credential the
//! server hands back. A wrong guess blinds the judges (two patients taken
//! for one account see each other's data legitimately) or invents leaks (a
//! session credited to the wrong instance sees "another's" data that is its
//! own). So each answer here rests on evidence the run actually has:
//!
//! - **Account names.** An instance's own request that the server accepted
//!   (sign-up, login) *claims* the account names it sent (`email`,
//!   `username`, `login`, `phone` fields) for that instance, when the step
//!   rendered them from the instance's own values (not `peer.x`, a pick or
//!   a fuzz program's borrowed value). A later login naming a claimed
//!   name, in any case, is about that instance, whoever sent it.
//! - **Issued credentials.** A token or session the server hands back is
//!   the identity's the request was about: the one whose canary it carried,
//!   whose claimed account name it named, or whose own earlier credential it
//!   sent in its body (a refresh grant); else the sender's, when it sent its
//!   own credential. Otherwise nobody's, and that is counted.
//! - **Accounts.** Two instances are one account only when both logged in
//!   naming the same account (the same name, any case). A request that
//!   names no account (a logout, a refresh) is never evidence of one, and
//!   an answer that sets no live session (a cookie cleared, `Max-Age=0`) is
//!   never a login.
//!
//! What could not be told is kept for the run's detection health.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::Value;

use crate::plan::{Body, Credentials, Payload, PlanStep};
use crate::safety::is_secret_name;
use crate::template::{Expr, Template};
use crate::texts::TextMap;
use crate::transport::{Request, Response};
use crate::world::InstanceId;

/// The shortest credential whose second issue to another account is a
/// finding: long enough to be a session or token, not a shared constant.
const HANDOVER_LEN: usize = 16;

/// What the run knows of who is whom: claimed account names, issued
/// credentials and accounts, for every instance of the run (every
/// scenario file, every fuzz program).
#[derive(Debug, Default)]
pub struct Identities {
    /// Account name, lowercased → its claims.
    names: RwLock<TextMap<Claims>>,
    /// A credential the server issued → the identity it was issued to.
    issued: RwLock<Issued>,
    /// Where credentials are issued (`capture token`, `cookie sid`) → the
    /// one value seen there, or `None` once two differed: a place that
    /// hands everyone one constant issues no sessions to mix up.
    places: RwLock<HashMap<String, Option<String>>>,
    accounts: RwLock<Accounts>,
    /// Credentials issued that could be attributed to no identity.
    unattributed: AtomicU64,
}

/// The credentials the server issued, each by a 128-bit keyed hash of it →
/// the identity it was issued to. A run issues hundreds of thousands (each
/// login, the witness's included, each refresh) and only ever looks one up
/// whole; a hash is a quarter of a 64-character token, and no two
/// credentials share one but by a chance of one in 2^128.
#[derive(Debug)]
struct Issued {
    hasher: siphasher::sip128::SipHasher13,
    by_hash: HashMap<u128, InstanceId, foldhash::fast::FixedState>,
}

impl Default for Issued {
    fn default() -> Self {
        // Keys of the run's own: a target cannot aim two credentials at one hash.
        let (k0, k1) = uuid::Uuid::new_v4().as_u64_pair();
        Issued {
            hasher: siphasher::sip128::SipHasher13::new_with_keys(k0, k1),
            by_hash: HashMap::default(),
        }
    }
}

impl Issued {
    fn hash(&self, credential: &str) -> u128 {
        self.hasher.hash(credential.as_bytes()).as_u128()
    }

    fn insert(&mut self, credential: &str, id: InstanceId) {
        let hash = self.hash(credential);
        self.by_hash.insert(hash, id);
    }

    fn get(&self, credential: &str) -> Option<&InstanceId> {
        self.by_hash.get(&self.hash(credential))
    }

    fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// The instances that claimed one account name (lowercased): nearly
/// always one, held in place (a run claims hundreds of thousands).
type Claims = smallvec::SmallVec<[Claim; 1]>;

/// An instance's claim of an account name.
#[derive(Debug, PartialEq)]
struct Claim {
    /// The name as sent, when it is not the lowercased name itself.
    text: Option<Box<str>>,
    id: InstanceId,
}

#[derive(Debug, Default)]
struct Accounts {
    /// Account name, lowercased → the first instance that logged in with it.
    by_name: TextMap<InstanceId>,
    /// Instance → the first instance of its account, when another.
    first: HashMap<InstanceId, InstanceId>,
    merges: Vec<Merge>,
}

/// Two instances found to be one account, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Merge {
    pub id: InstanceId,
    pub into: InstanceId,
    /// The account name both logged in with.
    pub name: String,
}

impl Identities {
    /// `id`'s own request, accepted by the server, named these accounts:
    /// they are `id`'s, unless another instance claimed the very same text.
    pub fn claim(&self, id: InstanceId, request: &Request) {
        let names = account_names(request);
        if names.is_empty() {
            return;
        }
        let mut claimed = self.names.write().unwrap_or_else(|p| p.into_inner());
        for (_, value) in names {
            let name = value.to_lowercase();
            let text = (value != name).then(|| value.into_boxed_str());
            let entry = claimed.entry(&name, Claims::new);
            if !entry.iter().any(|claim| claim.text == text) {
                entry.push(Claim { text, id });
            }
        }
    }

    /// The instance among `ids` whose claimed account name `request`
    /// sends: the one that claimed the very text, else the one instance
    /// that claimed it in another case.
    pub fn named(
        &self,
        request: &Request,
        ids: &std::ops::Range<InstanceId>,
    ) -> Option<InstanceId> {
        let names = account_names(request);
        if names.is_empty() {
            return None;
        }
        let claimed = self.names.read().unwrap_or_else(|p| p.into_inner());
        let mut found = None;
        for (_, value) in &names {
            let name = value.to_lowercase();
            let Some(claims) = claimed.get(name.as_str()) else {
                continue;
            };
            let mine: Vec<&Claim> = claims.iter().filter(|c| ids.contains(&c.id)).collect();
            let exact = mine
                .iter()
                .find(|c| c.text.as_deref().unwrap_or(&name) == value)
                .map(|c| c.id);
            let only = match mine.as_slice() {
                [claim] => Some(claim.id),
                _ => None,
            };
            match (found, exact.or(only)) {
                (_, None) => {}
                (None, Some(id)) => found = Some(id),
                // Two fields naming two instances: it cannot be told.
                (Some(a), Some(b)) if a != b => return None,
                _ => {}
            }
        }
        found
    }

    /// The server issued `credential` to `id`, at `place` (`capture
    /// token`, `cookie sid`).
    pub fn issued(&self, place: &str, credential: &str, id: InstanceId) {
        if credential.len() < 8 {
            return;
        }
        let mut places = self.places.write().unwrap_or_else(|p| p.into_inner());
        let seen = places
            .entry(place.to_string())
            .or_insert_with(|| Some(credential.to_string()));
        if seen.as_deref().is_some_and(|first| first != credential) {
            *seen = None;
        }
        drop(places);
        let mut issued = self.issued.write().unwrap_or_else(|p| p.into_inner());
        issued.insert(credential, id);
    }

    /// Whom the server issued `credential` to before, when that is another
    /// account than `id`'s: a login or refresh handing `id` someone else's
    /// session. Short values (a flag, a counter) say nothing, nor does a
    /// place that has only ever issued one value (a constant).
    pub fn issued_before(
        &self,
        place: &str,
        credential: &str,
        id: InstanceId,
    ) -> Option<InstanceId> {
        if credential.len() < HANDOVER_LEN {
            return None;
        }
        let places = self.places.read().unwrap_or_else(|p| p.into_inner());
        if !matches!(places.get(place), Some(None)) {
            return None;
        }
        drop(places);
        let issued = self.issued.read().unwrap_or_else(|p| p.into_inner());
        let before = *issued.get(credential)?;
        drop(issued);
        (self.account(before) != self.account(id)).then_some(before)
    }

    /// The identity whose issued credential `request` sends in its body or
    /// query (a refresh grant, a token exchange), if exactly one.
    pub fn presented(&self, request: &Request) -> Option<InstanceId> {
        let issued = self.issued.read().unwrap_or_else(|p| p.into_inner());
        if issued.is_empty() {
            return None;
        }
        let mut owners = body_fields(request)
            .into_iter()
            .filter_map(|(_, value)| issued.get(&value).copied());
        let first = owners.next()?;
        owners.all(|o| o == first).then_some(first)
    }

    /// A credential was issued that no identity could be credited with.
    pub fn unattributed(&self) {
        self.unattributed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn unattributed_count(&self) -> u64 {
        self.unattributed.load(Ordering::Relaxed)
    }

    /// `id` logged in with `request`: an instance that logged in before
    /// naming the same account is the same account. A request naming no
    /// account says nothing.
    pub fn logged_in(&self, id: InstanceId, request: &Request) {
        let mut names: Vec<String> = (account_names(request).into_iter())
            .map(|(_, value)| value.to_lowercase())
            .collect();
        if names.is_empty() {
            return;
        }
        names.sort();
        let name = names.join(" ");
        let mut accounts = self.accounts.write().unwrap_or_else(|p| p.into_inner());
        let first = *accounts.by_name.entry(&name, || id);
        let first = accounts.first.get(&first).copied().unwrap_or(first);
        if first != id && accounts.first.get(&id) != Some(&first) {
            accounts.first.insert(id, first);
            accounts.merges.push(Merge {
                id,
                into: first,
                name,
            });
        }
    }

    /// The first instance of `id`'s account.
    pub fn account(&self, id: InstanceId) -> InstanceId {
        let accounts = self.accounts.read().unwrap_or_else(|p| p.into_inner());
        accounts.first.get(&id).copied().unwrap_or(id)
    }

    /// Every merge of two instances into one account, in order.
    pub fn merges(&self) -> Vec<Merge> {
        let accounts = self.accounts.read().unwrap_or_else(|p| p.into_inner());
        accounts.merges.clone()
    }
}

/// Whether a field named `key` names an account: an e-mail, a user name,
/// a login, a phone; never an id, never a secret.
pub fn names_account(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    !key.ends_with("id")
        && !is_secret_name(&key)
        && ["email", "user", "login", "account", "phone"]
            .iter()
            .any(|word| key.contains(word))
}

/// The account-naming fields a request sends: (key, value).
pub fn account_names(request: &Request) -> Vec<(String, String)> {
    if request.body.is_empty() {
        return Vec::new();
    }
    let mut names: Vec<(String, String)> = body_fields(request)
        .into_iter()
        .filter(|(key, value)| names_account(key) && !value.is_empty())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Every scalar a request's body sends, with the key it sits under: form
/// pairs, or JSON leaves.
pub fn body_fields(request: &Request) -> Vec<(String, String)> {
    if let Some(pairs) = request.form() {
        return pairs;
    }
    match serde_json::from_slice::<Value>(&request.body) {
        Ok(json) => leaves(&json),
        Err(_) => Vec::new(),
    }
}

/// Every scalar of a JSON value with the key it sits under.
fn leaves(value: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), value)];
    while let Some((key, value)) = stack.pop() {
        match value {
            Value::Object(map) => stack.extend(map.iter().map(|(k, v)| (k.clone(), v))),
            Value::Array(items) => stack.extend(items.iter().map(|v| (key.clone(), v))),
            Value::String(s) => out.push((key, s.clone())),
            Value::Number(n) => out.push((key, n.to_string())),
            _ => {}
        }
    }
    out
}

/// Whether `step`, sent by an instance, speaks for that instance alone:
/// its own credentials or none, and a body rendered from no other
/// instance's values. Only such a request claims the names it sends.
pub fn speaks_for_sender(step: &PlanStep) -> bool {
    if !matches!(step.credentials, Credentials::Own | Credentials::Anonymous) {
        return false;
    }
    let mut templates: Vec<&Template> = Vec::new();
    match &step.body {
        Some(Payload::Json(body)) => body.templates(&mut templates),
        Some(Payload::Form(pairs)) => pairs.iter().for_each(|(_, b)| b.templates(&mut templates)),
        _ => {}
    }
    templates
        .iter()
        .flat_map(|t| t.exprs())
        .all(|expr| !matches!(expr, Expr::Peer(_) | Expr::Pick { .. } | Expr::Of { .. }))
}

/// Whether the body of `step` has a field that names an account (known
/// from the plan alone: no request is parsed for steps that have none).
pub fn step_names_account(step: &PlanStep) -> bool {
    fn named(body: &Body) -> bool {
        match body {
            Body::Object(fields) => fields.iter().any(|(k, v)| names_account(k) || named(v)),
            Body::Array(items) => items.iter().any(named),
            _ => false,
        }
    }
    match &step.body {
        Some(Payload::Json(body)) => named(body),
        Some(Payload::Form(pairs)) => pairs.iter().any(|(k, _)| names_account(k)),
        _ => false,
    }
}

/// Whether `response` sets a live session: a cookie with a value that is
/// neither empty nor already expired. A logout's cleared cookie is not one.
pub fn live_session(response: &Response) -> bool {
    response.set_cookies().any(|cookie| live(&cookie))
}

/// Whether one cookie the server set is a live one.
pub fn live(cookie: &cookie::Cookie<'_>) -> bool {
    let expired_age = cookie
        .max_age()
        .is_some_and(|age| age.is_zero() || age.is_negative());
    let expired_date = cookie
        .expires_datetime()
        .is_some_and(|at| at <= cookie::time::OffsetDateTime::now_utc());
    !cookie.value().is_empty() && !expired_age && !expired_date
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN_A: &str = "tok-aaaaaaaaaaaaaaaaaaaa";
    const TOKEN_B: &str = "tok-bbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn a_session_issued_again_to_another_account_is_a_handover() {
        let identities = Identities::default();
        identities.issued("capture token", TOKEN_A, 1);
        identities.issued("capture token", TOKEN_B, 2);
        assert_eq!(
            identities.issued_before("capture token", TOKEN_A, 3),
            Some(1)
        );
        assert_eq!(identities.issued_before("capture token", TOKEN_A, 1), None);
        assert_eq!(
            identities.issued_before("capture token", "tok-never-issued-xx", 3),
            None
        );
    }

    #[test]
    fn a_constant_handed_to_everyone_is_no_session() {
        let identities = Identities::default();
        for id in 0..3 {
            identities.issued("capture tenant", TOKEN_A, id);
        }
        assert_eq!(identities.issued_before("capture tenant", TOKEN_A, 4), None);
    }

    #[test]
    fn one_account_may_be_handed_its_own_session() {
        let identities = Identities::default();
        let login = |email: &str| Request {
            method: http::Method::POST,
            path: "/login".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: format!(r#"{{"email":"{email}"}}"#).into_bytes().into(),
        };
        identities.logged_in(1, &login("desk@clinic.test"));
        identities.logged_in(2, &login("DESK@clinic.test"));
        identities.issued("cookie sid", TOKEN_A, 1);
        identities.issued("cookie sid", TOKEN_B, 3);
        assert_eq!(identities.issued_before("cookie sid", TOKEN_A, 2), None);
        assert_eq!(identities.issued_before("cookie sid", TOKEN_A, 3), Some(1));
    }
}
