//! The teacher: a second copy of the model that provides distillation targets.

use crate::config::{DistillConfig, ModelConfig, TeacherKind};
use crate::model::Model;

/// A frozen copy of the model (`phase`, `round`) or an EMA of it (`ema`).
#[derive(Debug)]
pub struct Teacher {
    pub model: Model,
    pub kind: TeacherKind,
    pub ema_decay: f64,
    /// The step at which the teacher was last refreshed.
    pub refreshed_at: usize,
}

impl Teacher {
    /// A teacher of kind `distill.teacher` that starts as a copy of `student`
    /// and computes like it (precision and layout).
    pub fn new(student: &Model, config: &ModelConfig, distill: &DistillConfig) -> Self {
        let mut model = Model::new(config, student.classes, student.device(), 0).with_compute(student.compute());
        model.copy_from(student);
        Teacher { model, kind: distill.teacher, ema_decay: distill.ema_decay, refreshed_at: 0 }
    }

    /// The teacher hook after every applied step (`step` steps done): an
    /// `ema` teacher moves towards the student; the others change only when
    /// refreshed.
    pub fn after_step(&mut self, student: &Model, step: usize) {
        if self.kind == TeacherKind::Ema {
            self.ema_update(student, step);
        }
    }

    /// Replaces the teacher by the student's current weights.
    pub fn refresh(&mut self, student: &Model, step: usize) {
        self.model.copy_from(student);
        self.refreshed_at = step;
    }

    /// The EMA decay after `step` steps: `min(ema_decay, (1 + step) / (10 + step))`.
    /// The warm-up keeps an early teacher close to the student (a randomly
    /// initialised teacher is not averaged in for long) and reaches the
    /// configured decay after a few hundred steps, before distillation
    /// starts at the end of the first phase.
    pub fn ema_decay_at(&self, step: usize) -> f64 {
        self.ema_decay.min((1.0 + step as f64) / (10.0 + step as f64))
    }

    /// `teacher ← d · teacher + (1 − d) · student` over the parameters, with
    /// `d` the warmed-up decay of `step` (steps done). BatchNorm buffers are
    /// copied from the student, not averaged: an average of running variances
    /// is not the variance of the averaged weights' activations, and the
    /// distillation targets normalise with the batch's own statistics anyway
    /// ([`Model::forward_batch_stats`]); the buffers matter only when the teacher
    /// itself is evaluated.
    pub fn ema_update(&mut self, student: &Model, step: usize) {
        let d = self.ema_decay_at(step);
        let (student_params, student_buffers) = (student.parameters(), student.buffers());
        tch::no_grad(|| {
            for (name, mut t) in self.model.parameters() {
                let _ = t.g_mul_scalar_(d).g_add_(&(&student_params[&name] * (1.0 - d)));
            }
            for (name, mut t) in self.model.buffers() {
                t.copy_(&student_buffers[&name]);
            }
        });
        self.refreshed_at = step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn distill(teacher: TeacherKind, ema_decay: f64) -> DistillConfig {
        DistillConfig { teacher, ema_decay, ..Default::default() }
    }

    fn cfg() -> ModelConfig {
        ModelConfig { width: 4, blocks: vec![1, 1], decoder_ratio: 1.0 }
    }

    #[test]
    fn ema_moves_the_teacher_parameters_part_of_the_way_and_copies_the_buffers() {
        let student = Model::new(&cfg(), 3, Device::Cpu, 1);
        let mut teacher =
            Teacher::new(&Model::new(&cfg(), 3, Device::Cpu, 2), &cfg(), &distill(TeacherKind::Ema, 0.75));
        tch::no_grad(|| {
            for (_, mut b) in student.buffers() {
                let _ = b.fill_(3.0);
            }
        });
        let before = teacher.model.parameters().into_iter().map(|(n, t)| (n, t.copy())).collect::<Vec<_>>();
        // Past the warm-up, the configured decay holds: min(0.75, 1001/1010) = 0.75.
        teacher.ema_update(&student, 1000);
        let (s, after) = (student.variables(), teacher.model.variables());
        for (name, b) in before {
            let expected = &b * 0.75 + &s[&name] * 0.25;
            assert!(after[&name].allclose(&expected, 1e-6, 1e-6, false), "{name}");
        }
        for name in student.buffers().keys() {
            assert!(after[name].equal(&s[name]), "buffer {name} is the student's");
        }
    }

    #[test]
    fn the_ema_decay_warms_up_from_a_close_follower_to_the_configured_decay() {
        let student = Model::new(&cfg(), 3, Device::Cpu, 1);
        let teacher = Teacher::new(&student, &cfg(), &distill(TeacherKind::Ema, 0.99));
        assert!((teacher.ema_decay_at(0) - 0.1).abs() < 1e-12);
        assert!((teacher.ema_decay_at(90) - 0.91).abs() < 1e-12);
        assert_eq!(teacher.ema_decay_at(100_000), 0.99);
        let decays: Vec<f64> = (0..2000).map(|t| teacher.ema_decay_at(t)).collect();
        assert!(decays.windows(2).all(|w| w[0] <= w[1]), "the decay never falls");
    }

    #[test]
    fn refresh_copies_the_student_exactly() {
        let student = Model::new(&cfg(), 3, Device::Cpu, 1);
        let mut teacher =
            Teacher::new(&Model::new(&cfg(), 3, Device::Cpu, 2), &cfg(), &distill(TeacherKind::Phase, 0.0));
        teacher.refresh(&student, 10);
        let (s, t) = (student.variables(), teacher.model.variables());
        assert!(s.iter().all(|(n, x)| x.equal(&t[n])));
        assert_eq!(teacher.refreshed_at, 10);
    }
}
