//! The loss functions. Every loss is a mean over the pixels it covers and is
//! 0 (not NaN) when it covers none.

use tch::{Kind, Reduction, Tensor};

use crate::data::IGNORE;

/// Pixel cross-entropy. `logits [B, C, H, W]`, `target [B, H, W]` (int64,
/// class index or 255 = ignore). Mean over non-ignored pixels.
pub fn seg_cross_entropy(logits: &Tensor, target: &Tensor) -> Tensor {
    let sum = logits.cross_entropy_loss::<Tensor>(target, None, Reduction::Sum, IGNORE as i64, 0.0);
    let count = target.ne(IGNORE as i64).sum(Kind::Float).clamp_min(1.0);
    sum / count
}

/// L1 over the pixels where `mask` is true. `pred`, `target`, `mask`: `[B, 1, H, W]`.
pub fn masked_l1(pred: &Tensor, target: &Tensor, mask: &Tensor) -> Tensor {
    let mask = mask.to_kind(Kind::Float);
    let sum = ((pred - target).abs() * &mask).sum(Kind::Float);
    sum / mask.sum(Kind::Float).clamp_min(1.0)
}

/// L1 over valid pixels only: `target [B, 1, H, W]`, invalid where `target == 0`.
pub fn depth_l1(pred: &Tensor, target: &Tensor) -> Tensor {
    masked_l1(pred, target, &target.gt(0.0))
}

/// Segmentation distillation (Hinton et al., as in Learning without Forgetting):
/// `T² · KL(softmax(z_T / T) ‖ softmax(z / T))`, summed over classes and
/// averaged over pixels. `student`, `teacher`: logits `[B, C, H, W]`; the teacher
/// is treated as a constant.
pub fn distill_seg(student: &Tensor, teacher: &Tensor, temperature: f64) -> Tensor {
    let t = temperature;
    let log_p_student = (student / t).log_softmax(1, Kind::Float);
    let log_p_teacher = (teacher.detach() / t).log_softmax(1, Kind::Float);
    let kl = (log_p_teacher.exp() * (&log_p_teacher - log_p_student)).sum_dim_intlist(1, false, Kind::Float);
    kl.mean(Kind::Float) * (t * t)
}

/// Depth distillation: L1 between the student's and the teacher's predictions
/// (`[B, 1, H, W]`), over `mask` where one exists, else over all pixels.
pub fn distill_depth(student: &Tensor, teacher: &Tensor, mask: Option<&Tensor>) -> Tensor {
    match mask {
        Some(m) => masked_l1(student, &teacher.detach(), m),
        None => (student - teacher.detach()).abs().mean(Kind::Float),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn t(data: &[f32], shape: &[i64]) -> Tensor {
        Tensor::from_slice(data).reshape(shape)
    }

    fn v(x: Tensor) -> f64 {
        x.double_value(&[])
    }

    #[test]
    fn cross_entropy_matches_a_hand_computed_case_and_skips_ignored_pixels() {
        // Two pixels, two classes: logits (0, ln 3) with target 1, and an ignored pixel.
        let logits = t(&[0.0, 5.0, 3f32.ln(), -5.0], &[1, 2, 1, 2]);
        let target = Tensor::from_slice(&[1i64, 255]).reshape([1, 1, 2]);
        let expected = -(0.75f64).ln();
        assert!((v(seg_cross_entropy(&logits, &target)) - expected).abs() < 1e-6);
    }

    #[test]
    fn cross_entropy_is_zero_when_every_pixel_is_ignored() {
        let logits = Tensor::zeros([1, 3, 2, 2], (Kind::Float, Device::Cpu));
        let target = Tensor::full([1, 2, 2], 255, (Kind::Int64, Device::Cpu));
        assert_eq!(v(seg_cross_entropy(&logits, &target)), 0.0);
    }

    #[test]
    fn depth_l1_averages_over_valid_pixels_only() {
        let pred = t(&[1.0, 2.0, 3.0, 100.0], &[1, 1, 2, 2]);
        let target = t(&[2.0, 2.0, 1.0, 0.0], &[1, 1, 2, 2]);
        assert!((v(depth_l1(&pred, &target)) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn seg_distillation_is_zero_for_identical_logits_and_positive_otherwise() {
        let a = t(&[0.3, -1.0, 2.0, 0.5], &[1, 2, 1, 2]);
        let b = t(&[1.3, 1.0, -2.0, 0.5], &[1, 2, 1, 2]);
        assert!(v(distill_seg(&a, &a, 2.0)).abs() < 1e-7);
        assert!(v(distill_seg(&a, &b, 2.0)) > 0.0);
    }

    #[test]
    fn seg_distillation_matches_a_hand_computed_case() {
        // One pixel, two classes, T = 1: teacher p = (0.5, 0.5), student q = softmax(0, ln 3) = (0.25, 0.75).
        let student = t(&[0.0, 3f32.ln()], &[1, 2, 1, 1]);
        let teacher = t(&[0.0, 0.0], &[1, 2, 1, 1]);
        let expected = 0.5 * (0.5f64 / 0.25).ln() + 0.5 * (0.5f64 / 0.75).ln();
        assert!((v(distill_seg(&student, &teacher, 1.0)) - expected).abs() < 1e-6);
        // T = 2 divides the logits by 2 and multiplies the KL by 4.
        let q2 = [1.0 / (1.0 + 3f64.sqrt()), 3f64.sqrt() / (1.0 + 3f64.sqrt())];
        let expected2 = 4.0 * (0.5 * (0.5 / q2[0]).ln() + 0.5 * (0.5 / q2[1]).ln());
        assert!((v(distill_seg(&student, &teacher, 2.0)) - expected2).abs() < 1e-6);
    }

    #[test]
    fn depth_distillation_uses_the_mask_when_given() {
        let s = t(&[1.0, 5.0], &[1, 1, 1, 2]);
        let te = t(&[2.0, 1.0], &[1, 1, 1, 2]);
        assert!((v(distill_depth(&s, &te, None)) - 2.5).abs() < 1e-6);
        let mask = Tensor::from_slice(&[true, false]).reshape([1, 1, 1, 2]);
        assert!((v(distill_depth(&s, &te, Some(&mask))) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn no_gradient_flows_into_the_teacher() {
        let s = t(&[0.1, 0.2], &[1, 2, 1, 1]).set_requires_grad(true);
        let te = t(&[0.3, -0.2], &[1, 2, 1, 1]).set_requires_grad(true);
        distill_seg(&s, &te, 2.0).backward();
        assert!(s.grad().defined());
        assert!(!te.grad().defined());
    }
}
