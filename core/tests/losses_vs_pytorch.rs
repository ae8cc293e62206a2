//! The losses (`dmtl_core::losses`) and metrics (`dmtl_core::metrics`) against
//! reference values from PyTorch (losses and their gradients, float32) and NumPy
//! (metrics, float64), computed on seeded random inputs with ignored pixels (255)
//! and invalid depth (0), stored in `tests/fixtures/losses_torch.json`.
//!
//! Regenerate the fixture with `make fixtures`, which runs, from the repository root,
//!
//! ```text
//! .venv/bin/python core/tests/fixtures/make_loss_fixtures.py core/tests/fixtures
//! ```
//!
//! (the argument is the output folder). The fixture's header names the torch
//! version and the command that wrote it.
//!
//! Tolerances: losses `1e-5` (absolute and relative), gradients `1e-5` relative and
//! `1e-7` absolute (they are of order `1e-3`), metrics `1e-9`.

use std::path::PathBuf;

use dmtl_core::losses::{depth_l1, distill_depth, distill_seg, seg_cross_entropy};
use dmtl_core::metrics::{delta_m, ConfusionMatrix, DepthAccumulator, DepthMetrics, EvalMetrics, SegMetrics};
use serde::Deserialize;
use tch::Tensor;

const LOSS_TOL: f64 = 1e-5;
const GRAD_RTOL: f64 = 1e-5;
const GRAD_ATOL: f64 = 1e-7;
const METRIC_TOL: f64 = 1e-9;

#[derive(Deserialize)]
struct Floats {
    shape: Vec<i64>,
    data: Vec<f64>,
}

impl Floats {
    fn tensor(&self) -> Tensor {
        let data: Vec<f32> = self.data.iter().map(|&v| v as f32).collect();
        Tensor::from_slice(&data).reshape(&self.shape)
    }
}

#[derive(Deserialize)]
struct Ints {
    shape: Vec<i64>,
    data: Vec<i64>,
}

impl Ints {
    fn tensor(&self) -> Tensor {
        Tensor::from_slice(&self.data).reshape(&self.shape)
    }
}

#[derive(Deserialize)]
struct Bools {
    shape: Vec<i64>,
    data: Vec<bool>,
}

impl Bools {
    fn tensor(&self) -> Tensor {
        Tensor::from_slice(&self.data).reshape(&self.shape)
    }
}

#[derive(Deserialize)]
struct Header {
    torch: String,
    command: String,
}

#[derive(Deserialize)]
struct CrossEntropyCase {
    name: String,
    logits: Floats,
    target: Ints,
    ignored_pixels: i64,
    loss: f64,
    grad: Floats,
}

#[derive(Deserialize)]
struct DepthL1Case {
    name: String,
    pred: Floats,
    target: Floats,
    invalid_pixels: i64,
    loss: f64,
}

#[derive(Deserialize)]
struct DistillSegInputs {
    student: Floats,
    teacher: Floats,
    cases: Vec<DistillSegCase>,
}

#[derive(Deserialize)]
struct DistillSegCase {
    temperature: f64,
    loss: f64,
    grad: Floats,
}

#[derive(Deserialize)]
struct DistillDepthCase {
    name: String,
    student: Floats,
    teacher: Floats,
    mask: Option<Bools>,
    loss: f64,
}

#[derive(Deserialize)]
struct SegBatch {
    pred: Ints,
    target: Ints,
}

#[derive(Deserialize)]
struct ConfusionCase {
    name: String,
    classes: usize,
    batches: Vec<SegBatch>,
    /// Row-major `classes × classes`, rows: truth.
    confusion: Vec<u64>,
    miou: f64,
    pixel_acc: f64,
    per_class_iou: Vec<Option<f64>>,
}

#[derive(Deserialize)]
struct DepthBatch {
    pred: Floats,
    target: Floats,
}

#[derive(Deserialize)]
struct DepthMetricsCase {
    batches: Vec<DepthBatch>,
    valid_pixels: i64,
    abs_err: f64,
    rel_err: f64,
    delta1: f64,
}

#[derive(Deserialize)]
struct Scores {
    miou: f64,
    pixel_acc: f64,
    abs_err: f64,
    rel_err: f64,
    delta1: f64,
}

impl Scores {
    fn eval_metrics(&self) -> EvalMetrics {
        EvalMetrics {
            seg: SegMetrics { miou: self.miou, pixel_acc: self.pixel_acc, per_class_iou: vec![] },
            depth: DepthMetrics { abs_err: self.abs_err, rel_err: self.rel_err, delta1: self.delta1 },
        }
    }
}

#[derive(Deserialize)]
struct DeltaMCase {
    name: String,
    metrics: Scores,
    baseline: Scores,
    delta_m: f64,
}

#[derive(Deserialize)]
struct Fixture {
    header: Header,
    seg_cross_entropy: Vec<CrossEntropyCase>,
    depth_l1: Vec<DepthL1Case>,
    distill_seg: Vec<DistillSegInputs>,
    distill_depth: Vec<DistillDepthCase>,
    confusion: Vec<ConfusionCase>,
    depth_metrics: Vec<DepthMetricsCase>,
    delta_m: Vec<DeltaMCase>,
}

fn fixture() -> Fixture {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", "losses_torch.json"].iter().collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let fixture: Fixture = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(!fixture.header.torch.is_empty() && !fixture.header.command.is_empty());
    fixture
}

fn close(actual: f64, expected: f64, rtol: f64, atol: f64) -> bool {
    (actual - expected).abs() <= atol + rtol * expected.abs()
}

fn assert_close(actual: f64, expected: f64, tol: f64, what: &str) {
    assert!(
        close(actual, expected, tol, tol),
        "{what}: rust {actual} vs reference {expected} (difference {:e})",
        actual - expected
    );
}

/// Element-wise `allclose`, reporting the worst element.
fn assert_all_close(actual: &Tensor, expected: &Floats, what: &str) {
    assert_eq!(actual.size(), expected.shape, "{what}: shape");
    let actual: Vec<f64> = Vec::try_from(actual.to_kind(tch::Kind::Double).flatten(0, -1)).expect("a float tensor");
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&a, &e)) in actual.iter().zip(&expected.data).enumerate() {
        if !close(a, e, GRAD_RTOL, GRAD_ATOL) && worst.is_none_or(|(_, d)| (a - e).abs() > d) {
            worst = Some((i, (a - e).abs()));
        }
    }
    if let Some((i, d)) = worst {
        panic!("{what}: element {i}: rust {} vs reference {} (difference {d:e})", actual[i], expected.data[i]);
    }
}

fn scalar(t: &Tensor) -> f64 {
    t.double_value(&[])
}

#[test]
fn seg_cross_entropy_matches_pytorch_with_ignored_pixels() {
    let fixture = fixture();
    for case in &fixture.seg_cross_entropy {
        assert!(case.ignored_pixels > 0, "{}: the case should ignore some pixels", case.name);
        let logits = case.logits.tensor();
        let target = case.target.tensor();
        let loss = seg_cross_entropy(&logits, &target);
        assert_close(scalar(&loss), case.loss, LOSS_TOL, &format!("cross-entropy, {}", case.name));
    }
}

#[test]
fn seg_cross_entropy_gradient_matches_pytorch_autograd() {
    let fixture = fixture();
    for case in &fixture.seg_cross_entropy {
        let logits = case.logits.tensor().set_requires_grad(true);
        seg_cross_entropy(&logits, &case.target.tensor()).backward();
        assert_all_close(&logits.grad(), &case.grad, &format!("cross-entropy gradient, {}", case.name));
    }
}

#[test]
fn depth_l1_matches_pytorch_over_valid_pixels_only() {
    let fixture = fixture();
    for case in &fixture.depth_l1 {
        assert!(case.invalid_pixels > 0, "{}: the case should have invalid pixels", case.name);
        let loss = depth_l1(&case.pred.tensor(), &case.target.tensor());
        assert_close(scalar(&loss), case.loss, LOSS_TOL, &format!("depth L1, {}", case.name));
    }
}

#[test]
fn distill_seg_matches_pytorch_kl_div_at_every_temperature() {
    let fixture = fixture();
    for inputs in &fixture.distill_seg {
        let (student, teacher) = (inputs.student.tensor(), inputs.teacher.tensor());
        for case in &inputs.cases {
            let loss = distill_seg(&student, &teacher, case.temperature);
            assert_close(scalar(&loss), case.loss, LOSS_TOL, &format!("seg distillation, T = {}", case.temperature));
        }
    }
}

#[test]
fn distill_seg_gradient_matches_pytorch_autograd_at_every_temperature() {
    let fixture = fixture();
    for inputs in &fixture.distill_seg {
        let teacher = inputs.teacher.tensor();
        for case in &inputs.cases {
            let student = inputs.student.tensor().set_requires_grad(true);
            distill_seg(&student, &teacher, case.temperature).backward();
            let what = format!("seg distillation gradient, T = {}", case.temperature);
            assert_all_close(&student.grad(), &case.grad, &what);
        }
    }
}

#[test]
fn distill_depth_matches_pytorch_with_and_without_a_mask() {
    let fixture = fixture();
    assert!(
        fixture.distill_depth.iter().any(|c| c.mask.is_some())
            && fixture.distill_depth.iter().any(|c| c.mask.is_none())
    );
    for case in &fixture.distill_depth {
        let mask = case.mask.as_ref().map(Bools::tensor);
        let loss = distill_depth(&case.student.tensor(), &case.teacher.tensor(), mask.as_ref());
        assert_close(scalar(&loss), case.loss, LOSS_TOL, &format!("depth distillation, {}", case.name));
    }
}

#[test]
fn confusion_matrix_metrics_match_a_numpy_bincount_over_several_batches() {
    let fixture = fixture();
    for case in &fixture.confusion {
        let mut cm = ConfusionMatrix::new(case.classes);
        for batch in &case.batches {
            cm.add(&batch.pred.tensor(), &batch.target.tensor());
        }
        let counts: Vec<u64> =
            (0..case.classes).flat_map(|t| (0..case.classes).map(move |p| (t, p))).map(|(t, p)| cm.get(t, p)).collect();
        assert_eq!(counts, case.confusion, "{}: confusion matrix", case.name);
        let m = cm.metrics();
        assert_close(m.miou, case.miou, METRIC_TOL, &format!("mIoU, {}", case.name));
        assert_close(m.pixel_acc, case.pixel_acc, METRIC_TOL, &format!("pixel accuracy, {}", case.name));
        assert_eq!(m.per_class_iou.len(), case.per_class_iou.len(), "{}: classes", case.name);
        for (c, (a, e)) in m.per_class_iou.iter().zip(&case.per_class_iou).enumerate() {
            match (a, e) {
                (Some(a), Some(e)) => assert_close(*a, *e, METRIC_TOL, &format!("IoU of class {c}, {}", case.name)),
                (None, None) => {}
                _ => panic!("{}: IoU of class {c}: rust {a:?} vs reference {e:?}", case.name),
            }
        }
    }
    // The fixture covers a class that is only predicted (IoU 0) and one absent from both (no IoU).
    let iou = fixture.confusion.iter().flat_map(|c| &c.per_class_iou).collect::<Vec<_>>();
    assert!(iou.contains(&&Some(0.0)) && iou.contains(&&None));
}

#[test]
fn depth_metrics_accumulated_over_batches_match_numpy() {
    let fixture = fixture();
    for case in &fixture.depth_metrics {
        assert!(case.batches.len() > 1);
        let mut acc = DepthAccumulator::default();
        let mut valid = 0;
        for batch in &case.batches {
            let target = batch.target.tensor();
            valid += target.gt(0.0).sum(tch::Kind::Int64).int64_value(&[]);
            acc.add(&batch.pred.tensor(), &target);
        }
        assert_eq!(valid, case.valid_pixels);
        let m = acc.metrics();
        assert_close(m.abs_err, case.abs_err, METRIC_TOL, "abs err");
        assert_close(m.rel_err, case.rel_err, METRIC_TOL, "rel err");
        assert_close(m.delta1, case.delta1, METRIC_TOL, "delta1");
    }
}

#[test]
fn delta_m_matches_the_formula_computed_in_python() {
    let fixture = fixture();
    for case in &fixture.delta_m {
        let actual = delta_m(&case.metrics.eval_metrics(), &case.baseline.eval_metrics());
        assert_close(actual, case.delta_m, METRIC_TOL, &format!("delta_m, {}", case.name));
    }
}
