//! The exposure graph: who saw (or changed) whose data. Identities are
//! nodes; a leak is an edge from its victim to its observer, a tampering
//! from its writer to its victim, weighted by how many findings it stands
//! for. Laid out here, in Rust, as inline SVG, so a reader with scripts
//! blocked still sees it; the page's script only filters on a click.

use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::fmt::Write as _;

use maud::{Markup, html};

use crate::findings::{Finding, FindingKind};

/// Past this many identities the graph shows actors, not instances: a
/// circle of hundreds of labels says nothing.
pub const MAX_NODES: usize = 40;

/// An edge of the graph: `from` exposed to (or changed by) `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EdgeKey {
    pub kind: FindingKind,
    pub from: String,
    pub to: String,
}

/// The graph of a run's leaks and tamperings.
pub struct Graph {
    /// Node names, actors together, in circle order.
    pub nodes: Vec<String>,
    /// Each edge with its weight (findings), in a stable order; an edge's
    /// id is `e` and its index.
    pub edges: Vec<(EdgeKey, usize)>,
    /// Whether nodes are actors (too many instances to show each).
    pub grouped: bool,
}

/// The edge a finding stands for, with instance names: leaks point from
/// victim to observer, tamperings from writer to victim.
pub fn edge_of(finding: &Finding) -> Option<EdgeKey> {
    let victim = finding.victim.clone()?;
    let observer = finding.observer.clone();
    let (from, to) = match finding.kind {
        FindingKind::Leak => (victim, observer),
        FindingKind::Tamper => (observer, victim),
        _ => return None,
    };
    Some(EdgeKey {
        kind: finding.kind,
        from,
        to,
    })
}

/// The actor of an instance's label: `patient` of `patient#3` and of
/// `p17/patient#0` (another fuzz program's).
pub fn actor(label: &str) -> &str {
    let local = label.rsplit_once('/').map_or(label, |(_, l)| l);
    local.split_once('#').map_or(local, |(actor, _)| actor)
}

impl Graph {
    /// The graph of `findings`, grouped by actor when they involve more
    /// than [`MAX_NODES`] identities.
    pub fn of(findings: &[Finding]) -> Graph {
        let edges: Vec<EdgeKey> = findings.iter().filter_map(edge_of).collect();
        let mut names: Vec<&str> = edges
            .iter()
            .flat_map(|e| [e.from.as_str(), e.to.as_str()])
            .collect();
        names.sort_unstable();
        names.dedup();
        let grouped = names.len() > MAX_NODES;
        let mut weights: BTreeMap<EdgeKey, usize> = BTreeMap::new();
        for edge in edges {
            *weights.entry(Self::node_edge(edge, grouped)).or_default() += 1;
        }
        let mut nodes: Vec<String> = weights
            .keys()
            .flat_map(|e| [e.from.clone(), e.to.clone()])
            .collect();
        nodes.sort_by_cached_key(|n| order(n));
        nodes.dedup();
        Graph {
            nodes,
            edges: weights.into_iter().collect(),
            grouped,
        }
    }

    /// A finding's edge as this graph draws it (actors when grouped).
    pub fn edge_for(&self, finding: &Finding) -> Option<usize> {
        let key = Self::node_edge(edge_of(finding)?, self.grouped);
        self.edges.binary_search_by(|(k, _)| k.cmp(&key)).ok()
    }

    fn node_edge(edge: EdgeKey, grouped: bool) -> EdgeKey {
        if !grouped {
            return edge;
        }
        EdgeKey {
            kind: edge.kind,
            from: actor(&edge.from).to_string(),
            to: actor(&edge.to).to_string(),
        }
    }

    /// Whether there is nothing to draw: no leak, no tampering.
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }

    /// The graph as inline SVG: nodes on a circle, actors together; each
    /// edge a curve through the middle with an arrow, as thick as its
    /// findings are many.
    pub fn svg(&self) -> Markup {
        let (width, height) = (760.0, 560.0);
        let (cx, cy, radius) = (width / 2.0, height / 2.0, 200.0);
        let at: Vec<(f64, f64, f64)> = (0..self.nodes.len())
            .map(|i| {
                let angle = 2.0 * PI * i as f64 / self.nodes.len().max(1) as f64 - PI / 2.0;
                (cx + radius * angle.cos(), cy + radius * angle.sin(), angle)
            })
            .collect();
        let index: BTreeMap<&str, usize> = (self.nodes.iter().enumerate())
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let view = format!("0 0 {width} {height}");
        html! {
            svg #exposure xmlns="http://www.w3.org/2000/svg" viewBox=(view) role="img"
                aria-labelledby="exposure-title" {
                title #exposure-title { "Exposure graph: an arrow from each victim to whoever saw its data (leak) and from each writer to whose data it changed (tamper)" }
                defs {
                    @for kind in ["leak", "tamper"] {
                        marker id=(format!("arrow-{kind}")) viewBox="0 0 10 10" refX="9" refY="5"
                            markerUnits="userSpaceOnUse" markerWidth="11" markerHeight="11"
                            orient="auto-start-reverse" {
                            path class=(format!("head {kind}")) d="M0,0 L10,5 L0,10 z" {}
                        }
                    }
                }
                @for (i, (edge, weight)) in self.edges.iter().enumerate() {
                    @let (a, b) = (at[index[edge.from.as_str()]], at[index[edge.to.as_str()]]);
                    @let kind = edge.kind.as_str();
                    g.edge data-edge=(format!("e{i}")) data-from=(edge.from) data-to=(edge.to)
                        data-kind=(kind) data-count=(weight) tabindex="0" {
                        title { (edge.from) " → " (edge.to) ": " (weight) " " (kind) " finding(s)" }
                        path class=(kind) d=(curve(a, b, (cx, cy), if edge.kind == FindingKind::Tamper { 34.0 } else { 18.0 }))
                            stroke-width=(format!("{:.1}", thickness(*weight)))
                            marker-end=(format!("url(#arrow-{kind})")) {}
                    }
                }
                @for (i, name) in self.nodes.iter().enumerate() {
                    @let (x, y, angle) = at[i];
                    @let (lx, ly) = (x + 14.0 * angle.cos(), y + 14.0 * angle.sin());
                    @let anchor = if angle.cos() > 0.2 { "start" } else if angle.cos() < -0.2 { "end" } else { "middle" };
                    g.node data-node=(name) {
                        circle cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="7" {}
                        text x=(format!("{lx:.1}")) y=(format!("{:.1}", ly + 4.0)) text-anchor=(anchor) { (name) }
                    }
                }
            }
        }
    }
}

/// A quadratic curve from `a` to `b`, bent toward the centre, stopping
/// short of `b`'s node so the arrow shows.
fn curve(a: (f64, f64, f64), b: (f64, f64, f64), centre: (f64, f64), bend: f64) -> String {
    if a == b {
        // One identity on both ends: a loop outside the circle.
        let (dx, dy) = (a.2.cos() * 40.0, a.2.sin() * 40.0);
        let (px, py) = (-dy * 0.5, dx * 0.5);
        return format!(
            "M{:.1},{:.1} c{:.1},{:.1} {:.1},{:.1} 0,0",
            a.0,
            a.1,
            dx + px,
            dy + py,
            dx - px,
            dy - py
        );
    }
    let (mx, my) = ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
    // Bent to the left of its direction too, so that a → b and b → a part.
    let (ux, uy) = (b.0 - a.0, b.1 - a.1);
    let span = (ux * ux + uy * uy).sqrt().max(1.0);
    let (nx, ny) = (uy / span * bend, -ux / span * bend);
    let (qx, qy) = (
        mx + (centre.0 - mx) * 0.6 + nx,
        my + (centre.1 - my) * 0.6 + ny,
    );
    let (dx, dy) = (b.0 - qx, b.1 - qy);
    let len = (dx * dx + dy * dy).sqrt().max(1.0);
    let (ex, ey) = (b.0 - dx / len * 9.0, b.1 - dy / len * 9.0);
    let mut d = String::new();
    let _ = write!(d, "M{:.1},{:.1} Q{qx:.1},{qy:.1} {ex:.1},{ey:.1}", a.0, a.1);
    d
}

/// Stroke width by the logarithm of the weight: 1.5 for one finding, 5
/// for ten, at most 9.
fn thickness(weight: usize) -> f64 {
    (1.5 + 1.5 * (weight.max(1) as f64).ln()).min(9.0)
}

/// Circle order: by actor, then instance number, then the whole label.
fn order(label: &str) -> (String, u64, String) {
    let number = label
        .rsplit_once('#')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0);
    (actor(label).to_string(), number, label.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_are_read_from_labels() {
        assert_eq!(actor("patient#3"), "patient");
        assert_eq!(actor("p17/patient#0"), "patient");
        assert_eq!(actor("nobody"), "nobody");
    }

    #[test]
    fn thickness_grows_with_weight() {
        assert!(thickness(1) < thickness(10));
        assert!(thickness(1_000_000) <= 9.0);
    }
}
