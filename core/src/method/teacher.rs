//! The teacher: a second copy of the model that provides distillation targets.

use crate::config::{ModelConfig, TeacherKind};
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
    /// A teacher that starts as a copy of `student` and computes like it
    /// (precision and layout).
    pub fn new(student: &Model, config: &ModelConfig, kind: TeacherKind, ema_decay: f64) -> Self {
        let mut model = Model::new(config, student.classes, student.device(), 0).with_compute(student.compute());
        model.copy_from(student);
        Teacher { model, kind, ema_decay, refreshed_at: 0 }
    }

    /// Replaces the teacher by the student's current weights.
    pub fn refresh(&mut self, student: &Model, step: usize) {
        self.model.copy_from(student);
        self.refreshed_at = step;
    }

    /// `teacher ← decay · teacher + (1 − decay) · student`, over every variable
    /// (BatchNorm statistics included).
    pub fn ema_update(&mut self, student: &Model, step: usize) {
        let student_vars = student.variables();
        let d = self.ema_decay;
        tch::no_grad(|| {
            for (name, mut t) in self.model.variables() {
                let s = &student_vars[&name];
                let _ = t.g_mul_scalar_(d).g_add_(&(s * (1.0 - d)));
            }
        });
        self.refreshed_at = step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn cfg() -> ModelConfig {
        ModelConfig { width: 4, blocks: vec![1, 1], decoder_ratio: 1.0 }
    }

    #[test]
    fn ema_moves_the_teacher_part_of_the_way_to_the_student() {
        let student = Model::new(&cfg(), 3, Device::Cpu, 1);
        let mut teacher = Teacher::new(&Model::new(&cfg(), 3, Device::Cpu, 2), &cfg(), TeacherKind::Ema, 0.75);
        let before = teacher.model.variables().into_iter().map(|(n, t)| (n, t.copy())).collect::<Vec<_>>();
        teacher.ema_update(&student, 1);
        let s = student.variables();
        let after = teacher.model.variables();
        for (name, b) in before {
            let expected = &b * 0.75 + &s[&name] * 0.25;
            assert!(after[&name].allclose(&expected, 1e-6, 1e-6, false), "{name}");
        }
    }

    #[test]
    fn refresh_copies_the_student_exactly() {
        let student = Model::new(&cfg(), 3, Device::Cpu, 1);
        let mut teacher = Teacher::new(&Model::new(&cfg(), 3, Device::Cpu, 2), &cfg(), TeacherKind::Phase, 0.0);
        teacher.refresh(&student, 10);
        let (s, t) = (student.variables(), teacher.model.variables());
        assert!(s.iter().all(|(n, x)| x.equal(&t[n])));
        assert_eq!(teacher.refreshed_at, 10);
    }
}
