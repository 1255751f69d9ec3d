//! Evidence in place: an excerpt with the foreign value marked where it
//! sits, every character of it escaped. The harness keeps no byte offsets
//! in a finding, so the value is found again: a canary by its shape (the
//! run id and fourteen characters), an identifier as the whole excerpt
//! the oracle kept of it.

use std::sync::LazyLock;

use maud::{Markup, PreEscaped, html};
use regex::Regex;

use crate::findings::{Finding, FindingKind};
use crate::oracle::Marker;

/// A canary in any case: `ct`, then 20 characters of its alphabet.
static CANARY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("(?i)ct[a-km-np-z2-9]{20}").expect("a valid pattern"));

/// Where the oracle puts the match in a canary's excerpt: after 40 bytes
/// of context (fewer when the match is near the start).
const CONTEXT: usize = 40;

/// `text` with each span marked by its class (spans in order, apart).
fn marked(text: &str, spans: &[(std::ops::Range<usize>, &str)]) -> Markup {
    let mut out = String::with_capacity(text.len() + 32 * spans.len());
    let mut at = 0;
    for (range, class) in spans {
        let piece = html! { (text[at..range.start]) mark class=(class) { (text[range.clone()]) } };
        out.push_str(&piece.into_string());
        at = range.end;
    }
    out.push_str(&html! { (text[at..]) }.into_string());
    PreEscaped(out)
}

/// Every canary of `run_id` in `text` (any canary when `run_id` is empty).
fn canaries(text: &str, run_id: &str) -> Vec<std::ops::Range<usize>> {
    CANARY
        .find_iter(text)
        .filter(|m| {
            run_id.is_empty()
                || m.as_str()[..run_id.len().min(m.len())].eq_ignore_ascii_case(run_id)
        })
        .map(|m| m.range())
        .collect()
}

/// Text with the run's canaries marked: whose they are is not known here.
pub fn with_canaries(text: &str, run_id: &str) -> Markup {
    let spans: Vec<_> = canaries(text, run_id)
        .into_iter()
        .map(|r| (r, "canary"))
        .collect();
    marked(text, &spans)
}

/// A finding's response excerpt, the foreign value marked `foreign`
/// and any other canary `canary`.
pub fn response(finding: &Finding) -> Markup {
    let text = finding.exchange.response_excerpt.as_str();
    if finding.kind != FindingKind::Leak {
        return with_canaries(text, &finding.run_id);
    }
    match &finding.marker {
        Some(Marker::Identifier { .. }) => marked(text, &[(0..text.len(), "foreign")]),
        _ => {
            let found = canaries(text, &finding.run_id);
            let evidence = found
                .iter()
                .min_by_key(|r| r.start.abs_diff(CONTEXT))
                .cloned();
            let spans: Vec<_> = found
                .into_iter()
                .map(|r| {
                    let class = if Some(&r) == evidence.as_ref() {
                        "foreign"
                    } else {
                        "canary"
                    };
                    (r, class)
                })
                .collect();
            marked(text, &spans)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canary_nearest_the_match_is_the_foreign_one() {
        let text =
            "{\"a\":\"ctabcdefabcdefghijkmnp\",\"title\":\"Audio · ctabcdefzzzzzzzzzzzzzz\"}";
        let found = canaries(text, "ctabcdef");
        assert_eq!(found.len(), 2);
        let nearest = found.iter().min_by_key(|r| r.start.abs_diff(CONTEXT));
        assert_eq!(&text[nearest.unwrap().clone()], "ctabcdefzzzzzzzzzzzzzz");
    }

    #[test]
    fn marked_text_is_escaped() {
        let text = "<b>ctabcdefzzzzzzzzzzzzzz</b>";
        let html = with_canaries(text, "ctabcdef").into_string();
        assert_eq!(
            html,
            "&lt;b&gt;<mark class=\"canary\">ctabcdefzzzzzzzzzzzzzz</mark>&lt;/b&gt;"
        );
    }
}
