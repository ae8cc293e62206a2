//! Validation metrics of DESIGN §1: mIoU and pixel accuracy from a confusion
//! matrix; absolute error, relative error and δ < 1.25 over valid depth
//! pixels (all averaged over pixels of the whole split); Δm against a baseline.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::data::IGNORE;

/// Segmentation quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegMetrics {
    /// Mean IoU over the classes that occur in the ground truth or the predictions.
    pub miou: f64,
    pub pixel_acc: f64,
    /// IoU per class; `null` for a class absent from both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_class_iou: Vec<Option<f64>>,
}

/// Depth quality over valid pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepthMetrics {
    pub abs_err: f64,
    pub rel_err: f64,
    /// Share of pixels with `max(pred/gt, gt/pred) < 1.25`.
    pub delta1: f64,
}

/// Both tasks' metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    pub seg: SegMetrics,
    pub depth: DepthMetrics,
}

/// A `classes × classes` confusion matrix (rows: ground truth, columns: prediction).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfusionMatrix {
    classes: usize,
    counts: Vec<u64>,
}

impl ConfusionMatrix {
    pub fn new(classes: usize) -> Self {
        ConfusionMatrix { classes, counts: vec![0; classes * classes] }
    }

    pub fn get(&self, truth: usize, pred: usize) -> u64 {
        self.counts[truth * self.classes + pred]
    }

    /// Adds predictions `pred [B, H, W]` against `target [B, H, W]` (int64; 255
    /// ignored; pairs with a class outside `0..classes` skipped, as in `add_pairs`).
    pub fn add(&mut self, pred: &Tensor, target: &Tensor) {
        let n = self.classes as i64;
        let valid =
            target.ne(IGNORE as i64).logical_and(&target.lt(n)).logical_and(&pred.ge(0)).logical_and(&pred.lt(n));
        let index = (target.masked_select(&valid) * n + pred.masked_select(&valid)).to_kind(Kind::Int64);
        let counts = index.bincount::<Tensor>(None, n * n).to_device(tch::Device::Cpu).to_kind(Kind::Int64);
        let counts: Vec<i64> = Vec::try_from(&counts).expect("bincount is a 1-d int64 tensor");
        for (c, k) in self.counts.iter_mut().zip(counts) {
            *c += k as u64;
        }
    }

    /// Adds a plain list of (truth, prediction) pairs (used by tests and tools).
    pub fn add_pairs(&mut self, pairs: impl IntoIterator<Item = (u8, u8)>) {
        for (t, p) in pairs {
            if t != IGNORE && (t as usize) < self.classes && (p as usize) < self.classes {
                self.counts[t as usize * self.classes + p as usize] += 1;
            }
        }
    }

    pub fn merge(&mut self, other: &ConfusionMatrix) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    pub fn metrics(&self) -> SegMetrics {
        let n = self.classes;
        let mut ious = Vec::with_capacity(n);
        let (mut correct, mut total) = (0u64, 0u64);
        for c in 0..n {
            let tp = self.get(c, c);
            let row: u64 = (0..n).map(|p| self.get(c, p)).sum();
            let col: u64 = (0..n).map(|t| self.get(t, c)).sum();
            let union = row + col - tp;
            ious.push((union > 0).then(|| tp as f64 / union as f64));
            correct += tp;
            total += row;
        }
        let present: Vec<f64> = ious.iter().flatten().copied().collect();
        let miou = if present.is_empty() { 0.0 } else { present.iter().sum::<f64>() / present.len() as f64 };
        let pixel_acc = if total == 0 { 0.0 } else { correct as f64 / total as f64 };
        SegMetrics { miou, pixel_acc, per_class_iou: ious }
    }
}

/// Sums for the depth metrics over many batches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DepthAccumulator {
    abs: f64,
    rel: f64,
    within: f64,
    count: f64,
}

impl DepthAccumulator {
    /// Adds `pred` and `target` (`[B, 1, H, W]`, target 0 = invalid). Predictions
    /// are clamped to ≥ 1e-6 for the ratio in δ.
    pub fn add(&mut self, pred: &Tensor, target: &Tensor) {
        let valid = target.gt(0.0);
        let p = pred.masked_select(&valid).to_kind(Kind::Double);
        let g = target.masked_select(&valid).to_kind(Kind::Double);
        let err = (&p - &g).abs();
        let pc = p.clamp_min(1e-6);
        let ratio = (&pc / &g).maximum(&(&g / &pc));
        self.abs += err.sum(Kind::Double).double_value(&[]);
        self.rel += (err / &g).sum(Kind::Double).double_value(&[]);
        self.within += ratio.lt(1.25).sum(Kind::Double).double_value(&[]);
        self.count += g.numel() as f64;
    }

    pub fn merge(&mut self, other: &DepthAccumulator) {
        self.abs += other.abs;
        self.rel += other.rel;
        self.within += other.within;
        self.count += other.count;
    }

    pub fn metrics(&self) -> DepthMetrics {
        let n = self.count.max(1.0);
        DepthMetrics { abs_err: self.abs / n, rel_err: self.rel / n, delta1: self.within / n }
    }
}

/// Δm: the mean relative change of mIoU, pixel accuracy, abs err and rel err
/// against `baseline`, in percent, signed so that higher is better (errors count
/// negatively when they grow).
pub fn delta_m(metrics: &EvalMetrics, baseline: &EvalMetrics) -> f64 {
    let rel = |m: f64, b: f64, higher_is_better: bool| {
        let change = if b.abs() < 1e-12 { 0.0 } else { (m - b) / b };
        if higher_is_better {
            change
        } else {
            -change
        }
    };
    let terms = [
        rel(metrics.seg.miou, baseline.seg.miou, true),
        rel(metrics.seg.pixel_acc, baseline.seg.pixel_acc, true),
        rel(metrics.depth.abs_err, baseline.depth.abs_err, false),
        rel(metrics.depth.rel_err, baseline.depth.rel_err, false),
    ];
    100.0 * terms.iter().sum::<f64>() / terms.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miou_and_pixel_accuracy_match_a_hand_computed_matrix() {
        let mut cm = ConfusionMatrix::new(3);
        // truth 0: 3 right, 1 as class 1; truth 1: 2 right; class 2 never occurs; one ignored.
        cm.add_pairs([(0, 0), (0, 0), (0, 0), (0, 1), (1, 1), (1, 1), (255, 2)]);
        let m = cm.metrics();
        // IoU0 = 3 / (4 + 3 - 3) = 0.75, IoU1 = 2 / (2 + 3 - 2) = 2/3, class 2 absent.
        assert!((m.miou - (0.75 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert!((m.pixel_acc - 5.0 / 6.0).abs() < 1e-12);
        assert_eq!(m.per_class_iou[2], None);
    }

    #[test]
    fn the_tensor_path_counts_like_the_pair_path() {
        let pred = Tensor::from_slice(&[0i64, 1, 1, 2, 0, 0]).reshape([1, 2, 3]);
        let target = Tensor::from_slice(&[0i64, 1, 0, 255, 2, 0]).reshape([1, 2, 3]);
        let mut a = ConfusionMatrix::new(3);
        a.add(&pred, &target);
        let mut b = ConfusionMatrix::new(3);
        b.add_pairs([(0, 0), (1, 1), (0, 1), (255, 2), (2, 0), (0, 0)]);
        assert_eq!(a, b);
    }

    #[test]
    fn depth_metrics_match_a_hand_computed_case() {
        let pred = Tensor::from_slice(&[1.0f32, 2.0, 4.0, 9.0]).reshape([1, 1, 2, 2]);
        let gt = Tensor::from_slice(&[1.0f32, 1.0, 4.0, 0.0]).reshape([1, 1, 2, 2]);
        let mut acc = DepthAccumulator::default();
        acc.add(&pred, &gt);
        let m = acc.metrics();
        assert!((m.abs_err - 1.0 / 3.0).abs() < 1e-12);
        assert!((m.rel_err - 1.0 / 3.0).abs() < 1e-12);
        assert!((m.delta1 - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn delta_m_is_zero_against_itself_and_positive_for_a_better_run() {
        let base = EvalMetrics {
            seg: SegMetrics { miou: 0.5, pixel_acc: 0.8, per_class_iou: vec![] },
            depth: DepthMetrics { abs_err: 2.0, rel_err: 0.2, delta1: 0.7 },
        };
        assert_eq!(delta_m(&base, &base), 0.0);
        let mut better = base.clone();
        better.seg.miou = 0.6; // +20 %
        better.depth.abs_err = 1.0; // −50 % error = +50 %
        assert!((delta_m(&better, &base) - 70.0 / 4.0).abs() < 1e-9);
    }
}
