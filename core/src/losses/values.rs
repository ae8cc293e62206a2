//! Loss values of a step and their running sums between evaluations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Loss values of a step (means over the pixels each covers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LossValues {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub seg: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub depth: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub distill_seg: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub distill_depth: Option<f64>,
    /// The optimised objective: task losses + the weighted distillation losses.
    pub total: f64,
}

/// Running sums of loss values between two evaluations (checkpointed, so that
/// a resumed run logs the same means as an uninterrupted one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LossSums(pub BTreeMap<String, (f64, u64)>);

impl LossSums {
    pub fn add(&mut self, l: &LossValues) {
        let fields = [
            ("seg", l.seg),
            ("depth", l.depth),
            ("distill_seg", l.distill_seg),
            ("distill_depth", l.distill_depth),
            ("total", Some(l.total)),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                let e = self.0.entry(k.to_string()).or_default();
                e.0 += v;
                e.1 += 1;
            }
        }
    }

    /// The means since the last `take`, and a reset.
    pub fn take(&mut self) -> LossValues {
        let mean = |k: &str| self.0.get(k).map(|(s, n)| s / *n as f64);
        let out = LossValues {
            seg: mean("seg"),
            depth: mean("depth"),
            distill_seg: mean("distill_seg"),
            distill_depth: mean("distill_depth"),
            total: mean("total").unwrap_or(0.0),
        };
        self.0.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taking_the_sums_gives_each_term_its_own_mean_and_resets() {
        let mut s = LossSums::default();
        s.add(&LossValues { seg: Some(1.0), total: 1.0, ..Default::default() });
        s.add(&LossValues { seg: Some(3.0), depth: Some(2.0), total: 5.0, ..Default::default() });
        let m = s.take();
        assert_eq!((m.seg, m.depth, m.distill_seg, m.total), (Some(2.0), Some(2.0), None, 3.0));
        assert_eq!(s.take(), LossValues::default());
    }
}
