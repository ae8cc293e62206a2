//! The distillation settings of a step: the weight of each task's
//! distillation term (with its ramp-up), the temperature, and which pixels
//! depth distillation covers.
//!
//! Conventions (DESIGN §1):
//! - The segmentation term is `T² · KL(softmax(z_T/T) ‖ softmax(z/T))`. The
//!   `T²` is part of the loss itself ([`crate::losses::distill_seg`]), as in
//!   Hinton et al. and Learning without Forgetting, so that its gradients keep
//!   their scale when `T` changes; `distill.seg_weight` multiplies the whole.
//! - The depth term is the L1 distance to the teacher's depth over the pixels
//!   that can carry depth: on a D_seg image every pixel whose segmentation
//!   label is neither void (255) nor sky. Disparity is never defined there
//!   (Cityscapes leaves sky and void at 0), so a teacher's guess on those
//!   pixels is noise the student should not be pulled towards.
//! - Each weight ramps up linearly over `distill.ramp_steps` steps from the
//!   first step that distils ([`Schedule::distill_start`]).

use crate::config::Config;
use crate::data::IGNORE;

use super::Schedule;

/// Distillation settings of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DistillParams {
    /// The weight of the segmentation distillation term (already ramped).
    pub seg_weight: f64,
    /// The weight of the depth distillation term (already ramped).
    pub depth_weight: f64,
    /// T.
    pub temperature: f64,
    /// The class index of sky: pixels of this class (and void) carry no depth
    /// distillation. `None`: every labelled pixel does.
    pub sky_class: Option<i64>,
}

impl DistillParams {
    /// One weight for both tasks, no ramp, every labelled pixel (tests, benchmarks).
    pub const fn uniform(weight: f64, temperature: f64) -> DistillParams {
        DistillParams { seg_weight: weight, depth_weight: weight, temperature, sky_class: None }
    }

    /// The distillation settings of step `step` (0-based) of a run configured by `config`.
    pub fn of(config: &Config, step: usize) -> DistillParams {
        let d = &config.distill;
        let start = Schedule::of(config).distill_start();
        let ramp = match d.ramp_steps {
            0 => 1.0,
            n => ((step.saturating_sub(start) + 1) as f64 / n as f64).min(1.0),
        };
        DistillParams {
            seg_weight: d.seg_weight.unwrap_or(d.weight) * ramp,
            depth_weight: d.depth_weight.unwrap_or(d.weight) * ramp,
            temperature: d.temperature,
            sky_class: Some(config.data.classes.sky_class() as i64),
        }
    }

    /// The pixels depth distillation covers, from a part's segmentation labels
    /// `[B, H, W]` (int64): `[B, 1, H, W]` bool, false on void and sky.
    pub fn depth_mask(&self, seg: &tch::Tensor) -> tch::Tensor {
        let mut mask = seg.ne(IGNORE as i64);
        if let Some(sky) = self.sky_class {
            mask = mask.logical_and(&seg.ne(sky));
        }
        mask.unsqueeze(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tiny::Tiny;
    use std::path::Path;

    fn config(tail: &str) -> Config {
        let tiny = Tiny { switch_every: 10, tail, ..Tiny::new("distill") };
        tiny.config(Path::new("/unused"), "tiny.toml").unwrap()
    }

    #[test]
    fn each_task_has_its_own_weight_and_the_shared_one_is_the_default() {
        let c = config("[distill]\nweight = 0.5\ndepth_weight = 3.0\n");
        let p = DistillParams::of(&c, 50);
        assert_eq!((p.seg_weight, p.depth_weight), (0.5, 3.0));
    }

    #[test]
    fn the_weights_ramp_up_linearly_from_the_first_distilling_step() {
        let c = config("[distill]\nweight = 2.0\nramp_steps = 4\n");
        let w = |step| DistillParams::of(&c, step).seg_weight;
        // Distillation starts after the first phase (step 10).
        assert_eq!([w(10), w(11), w(12), w(13), w(14), w(500)], [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]);
    }

    #[test]
    fn depth_distillation_skips_void_and_sky_pixels() {
        let c = config("");
        let p = DistillParams::of(&c, 20);
        let sky = c.data.classes.sky_class() as i64;
        let seg = tch::Tensor::from_slice(&[0i64, sky, 255, 3]).reshape([1, 2, 2]);
        let mask = p.depth_mask(&seg);
        assert_eq!(mask.size(), vec![1, 1, 2, 2]);
        let got: Vec<bool> = Vec::<bool>::try_from(mask.flatten(0, -1)).unwrap();
        assert_eq!(got, vec![true, false, false, true]);
    }
}
