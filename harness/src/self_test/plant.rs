//! Planting: which exchanges get a defect, from whom, and the planted
//! answer itself. Pure functions of the seed and the answers, so the same
//! seed plants the same defects on the same traffic.

use serde_json::Value;

use super::Defect;
use crate::canary::mix;
use crate::transport::Response;
use crate::world::InstanceId;

/// Instances of an actor that plant one kind of defect at one step: a
/// seeded few, so a self-test costs little more than the run.
pub const PER_STEP: u64 = 3;

/// Redirected writes per step: they really land, so fewer.
pub const REDIRECTS_PER_STEP: u64 = 2;

/// Answers kept per step to plant into others' (the latest, one per
/// instance).
pub const DONORS_PER_STEP: usize = 8;

/// Whether the instance at `local` of `count` plants `defect` at the step
/// keyed `step`: `per_step` consecutive instances from a seeded start.
pub fn chosen(seed: u64, defect: Defect, step: u64, local: u64, count: u64, per_step: u64) -> bool {
    if count < 2 {
        return false;
    }
    let start = mix(seed, &[0x5e1f, defect as u64, step]) % count;
    (local + count - start) % count < per_step.min(count - 1)
}

/// A seeded pick among `candidates` (sorted), for `local` at `step`.
pub fn pick<T: Copy>(
    seed: u64,
    defect: Defect,
    step: u64,
    local: u64,
    candidates: &[T],
) -> Option<T> {
    if candidates.is_empty() {
        return None;
    }
    let at = mix(seed, &[0xd0, defect as u64, step, local]) % candidates.len() as u64;
    candidates.get(at as usize).copied()
}

/// The latest answers of one step, one per instance, oldest first.
#[derive(Default)]
pub struct Donors(Vec<(InstanceId, Response)>);

impl Donors {
    /// `id`'s latest answer; the oldest other one goes past the bound.
    pub fn keep(&mut self, id: InstanceId, response: &Response) {
        self.0.retain(|(other, _)| *other != id);
        self.0.push((id, response.clone()));
        if self.0.len() > DONORS_PER_STEP {
            self.0.remove(0);
        }
    }

    /// The instances whose answers are kept and hold data, sorted.
    pub fn instances(&self) -> Vec<InstanceId> {
        let holding = self.0.iter().filter(|(_, r)| holds_data(r));
        let mut ids: Vec<InstanceId> = holding.map(|(id, _)| *id).collect();
        ids.sort();
        ids
    }

    pub fn of(&self, id: InstanceId) -> Option<&Response> {
        self.0
            .iter()
            .find(|(other, _)| *other == id)
            .map(|(_, r)| r)
    }
}

/// Whether an answer holds any data to show another: a JSON answer with
/// some text in it (an empty page, `{"items": [], "next": null}`, holds
/// none, and swapping it in shows nobody's), or any other non-empty body.
pub fn holds_data(response: &Response) -> bool {
    fn text(value: &Value) -> bool {
        match value {
            Value::String(s) => !s.is_empty(),
            Value::Array(items) => items.iter().any(text),
            Value::Object(fields) => fields.values().any(text),
            _ => false,
        }
    }
    match serde_json::from_slice::<Value>(&response.body) {
        Ok(json) => text(&json),
        Err(_) => !response.body.is_empty(),
    }
}

/// A *foreign item*: `own` with the first element of the donor's list
/// appended to the list at the same place; `None` when the two answers
/// hold no list at one place with something in the donor's.
pub fn foreign_item(own: &Response, donor: &Response) -> Option<Response> {
    let mut mine: Value = serde_json::from_slice(&own.body).ok()?;
    let theirs: Value = serde_json::from_slice(&donor.body).ok()?;
    let pointer = first_list(&mine, &theirs, String::new())?;
    let item = theirs.pointer(&pointer)?.as_array()?.first()?.clone();
    mine.pointer_mut(&pointer)?.as_array_mut()?.push(item);
    let mut planted = own.clone();
    planted.body = serde_json::to_vec(&mine).ok()?.into();
    planted.headers.remove(http::header::CONTENT_LENGTH);
    Some(planted)
}

/// The JSON pointer of the first list (depth first, in key order) that is
/// a list in both answers and not empty in the donor's.
fn first_list(mine: &Value, theirs: &Value, at: String) -> Option<String> {
    match (mine, theirs) {
        (Value::Array(_), Value::Array(items)) if !items.is_empty() => Some(at),
        (Value::Object(a), Value::Object(b)) => a.iter().find_map(|(key, value)| {
            let escaped = key.replace('~', "~0").replace('/', "~1");
            first_list(value, b.get(key)?, format!("{at}/{escaped}"))
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str) -> Response {
        Response {
            status: 200,
            headers: http::HeaderMap::new(),
            body: body.as_bytes().to_vec().into(),
            truncated: false,
        }
    }

    #[test]
    fn a_foreign_item_joins_the_list_at_the_same_place() {
        let own = answer(r#"{"meta":{"n":1},"data":{"items":[{"id":"a"}]}}"#);
        let donor = answer(r#"{"meta":{"n":2},"data":{"items":[{"id":"b"},{"id":"c"}]}}"#);
        let planted = foreign_item(&own, &donor).unwrap();
        let json: Value = serde_json::from_slice(&planted.body).unwrap();
        assert_eq!(
            json["data"]["items"],
            serde_json::json!([{"id":"a"},{"id":"b"}])
        );
        assert_eq!(json["meta"]["n"], 1);
    }

    #[test]
    fn no_list_in_common_plants_no_item() {
        let own = answer(r#"{"items":[]}"#);
        assert!(foreign_item(&own, &answer(r#"{"items":[]}"#)).is_none());
        assert!(foreign_item(&own, &answer(r#"{"other":[1]}"#)).is_none());
        assert!(foreign_item(&answer("not json"), &answer("[1]")).is_none());
        let top = foreign_item(&answer("[1]"), &answer("[2]")).unwrap();
        assert_eq!(&top.body[..], b"[1,2]");
    }

    #[test]
    fn an_empty_page_holds_no_data_to_swap_in() {
        assert!(!holds_data(&answer(
            r#"{"items":[],"next_after":null,"n":0}"#
        )));
        assert!(holds_data(&answer(r#"{"items":[{"title":"x"}]}"#)));
        assert!(holds_data(&answer("raw bytes")));
        assert!(!holds_data(&answer("")));
    }

    #[test]
    fn a_seeded_few_plant_at_each_step() {
        let planting = (0..50)
            .filter(|local| chosen(7, Defect::ResponseSwap, 3, *local, 50, PER_STEP))
            .count();
        assert_eq!(planting as u64, PER_STEP);
        assert!(!chosen(7, Defect::ResponseSwap, 3, 0, 1, PER_STEP));
        let two = (0..2).filter(|l| chosen(1, Defect::SessionSwap, 1, *l, 2, PER_STEP));
        assert_eq!(two.count(), 1);
    }
}
