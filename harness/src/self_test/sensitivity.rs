//! The sensitivity: what share of the planted defects the judges named,
//! by kind and by step, and the blind spots with their reasons.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Defect, Outcome, Planted};

/// Detected of planted.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Ratio {
    pub planted: usize,
    pub detected: usize,
}

impl Ratio {
    /// The share detected; `None` when nothing was planted.
    pub fn value(self) -> Option<f64> {
        (self.planted > 0).then(|| self.detected as f64 / self.planted as f64)
    }

    fn add(&mut self, planted: &Planted) {
        match planted.outcome {
            Outcome::Detected { .. } => {
                self.planted += 1;
                self.detected += 1;
            }
            Outcome::Missed { .. } | Outcome::Pending => self.planted += 1,
            Outcome::Void { .. } => {}
        }
    }

    fn text(self) -> String {
        match self.value() {
            Some(v) => format!("{:.2} ({} of {})", v, self.detected, self.planted),
            None => "nothing planted".into(),
        }
    }
}

/// One step's line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct StepLine {
    pub scenario: String,
    pub step: String,
    pub endpoint: String,
    #[serde(flatten)]
    pub ratio: Ratio,
    /// Judge → defects it named here.
    pub detected_by: BTreeMap<String, usize>,
    /// Why defects were missed here, each reason once with its count.
    pub missed: BTreeMap<String, usize>,
    /// Redirected writes that did not land, not counted, with why.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub void: BTreeMap<String, usize>,
    /// Why nothing could be planted here, when nothing was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_planted: Option<String>,
}

/// A self-test's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Sensitivity {
    #[serde(flatten)]
    pub overall: Ratio,
    pub sensitivity: Option<f64>,
    /// Below it, the run fails as incomplete.
    pub min: f64,
    pub by_kind: BTreeMap<Defect, Ratio>,
    pub steps: Vec<StepLine>,
    /// Every planted defect, with its detecting finding or its reason.
    pub planted: Vec<Planted>,
}

impl Sensitivity {
    pub(super) fn new(
        planted: Vec<Planted>,
        unplanted: &BTreeMap<(String, String, String), String>,
        min: f64,
    ) -> Sensitivity {
        let mut overall = Ratio::default();
        let mut by_kind: BTreeMap<Defect, Ratio> = BTreeMap::new();
        let mut steps: BTreeMap<(String, String, String), StepLine> = BTreeMap::new();
        for one in &planted {
            overall.add(one);
            let plant = &one.plant;
            by_kind.entry(plant.defect).or_default().add(one);
            let key = (
                plant.scenario.clone(),
                plant.step.clone(),
                plant.endpoint.clone(),
            );
            let line = steps.entry(key).or_insert_with(|| StepLine::empty(one));
            line.ratio.add(one);
            match &one.outcome {
                Outcome::Detected { judge, .. } => {
                    *line.detected_by.entry(judge.clone()).or_default() += 1
                }
                Outcome::Missed { reason } => {
                    let reason = format!("{}: {reason}", plant.defect.as_str());
                    *line.missed.entry(reason).or_default() += 1;
                }
                Outcome::Void { reason } => {
                    let reason = format!("{}: {reason}", plant.defect.as_str());
                    *line.void.entry(reason).or_default() += 1;
                }
                Outcome::Pending => {}
            }
        }
        for ((scenario, step, endpoint), reason) in unplanted {
            let key = (scenario.clone(), step.clone(), endpoint.clone());
            steps.entry(key).or_insert_with(|| StepLine {
                scenario: scenario.clone(),
                step: step.clone(),
                endpoint: endpoint.clone(),
                ratio: Ratio::default(),
                detected_by: BTreeMap::new(),
                missed: BTreeMap::new(),
                void: BTreeMap::new(),
                not_planted: Some(reason.clone()),
            });
        }
        Sensitivity {
            overall,
            sensitivity: overall.value(),
            min,
            by_kind,
            steps: steps.into_values().collect(),
            planted,
        }
    }

    /// Whether the judges saw enough: something planted, and at least
    /// `min` of it named.
    pub fn passed(&self) -> bool {
        self.sensitivity.is_some_and(|s| s >= self.min)
    }

    /// The terminal's lines: the figures, then each step's line.
    pub fn lines(&self) -> Vec<String> {
        let verdict = match self.passed() {
            true => "the judges see",
            false => "BLIND: below the minimum",
        };
        let mut out = vec![format!(
            "sensitivity {} (minimum {:.2}): {verdict}",
            self.overall.text(),
            self.min
        )];
        for (defect, ratio) in &self.by_kind {
            out.push(format!("  {}: {}", defect.as_str(), ratio.text()));
        }
        for line in &self.steps {
            out.push(format!("  {}", line.text()));
        }
        out
    }

    /// The blind spots: each step and reason a planted defect was missed.
    pub fn blind_spots(&self) -> Vec<String> {
        (self.steps.iter())
            .flat_map(|line| {
                (line.missed.iter()).map(move |(reason, n)| {
                    format!(
                        "{} `{}` ({}): {n} missed, {reason}",
                        line.scenario, line.step, line.endpoint
                    )
                })
            })
            .collect()
    }

    /// The Markdown section.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "\n### Self-test\n\nSensitivity {} (minimum {:.2}).\n\n| defect | planted | detected |\n|---|---|---|\n",
            self.overall.text(),
            self.min
        );
        for (defect, ratio) in &self.by_kind {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                defect.as_str(),
                ratio.planted,
                ratio.detected
            ));
        }
        out.push_str("\n| scenario | step | endpoint | planted | detected | by | missed or not planted |\n|---|---|---|---|---|---|---|\n");
        for line in &self.steps {
            let by = join(&line.detected_by);
            let missed = match &line.not_planted {
                Some(reason) => format!("not planted: {reason}"),
                None => join(&line.missed),
            };
            out.push_str(&format!(
                "| {} | {} | `{}` | {} | {} | {by} | {missed} |\n",
                line.scenario,
                line.step.replace('|', "\\|"),
                line.endpoint,
                line.ratio.planted,
                line.ratio.detected,
            ));
        }
        out
    }
}

impl StepLine {
    fn empty(planted: &Planted) -> StepLine {
        StepLine {
            scenario: planted.plant.scenario.clone(),
            step: planted.plant.step.clone(),
            endpoint: planted.plant.endpoint.clone(),
            ratio: Ratio::default(),
            detected_by: BTreeMap::new(),
            missed: BTreeMap::new(),
            void: BTreeMap::new(),
            not_planted: None,
        }
    }

    fn text(&self) -> String {
        let head = format!("{} `{}` ({})", self.scenario, self.step, self.endpoint);
        if let Some(reason) = &self.not_planted {
            return format!("{head}: not planted, {reason}");
        }
        let by = match self.detected_by.is_empty() {
            true => String::new(),
            false => format!(", by {}", join(&self.detected_by)),
        };
        let missed = match self.missed.is_empty() {
            true => String::new(),
            false => format!("; missed: {}", join(&self.missed)),
        };
        let void = match self.void.is_empty() {
            true => String::new(),
            false => format!("; not counted: {}", join(&self.void)),
        };
        format!(
            "{head}: {} of {} detected{by}{missed}{void}",
            self.ratio.detected, self.ratio.planted
        )
    }
}

fn join(counts: &BTreeMap<String, usize>) -> String {
    (counts.iter())
        .map(|(what, n)| format!("{what} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
