//! Local SGD (`distributed.local_steps > 1`) on the training thread: the
//! round's steps with the worker's own optimizer, and the weight delta they
//! add up to. The one loop both data planes run.

use std::collections::BTreeMap;

use dmtl_core::losses::LossSums;
use dmtl_core::model::Model;
use dmtl_core::optim::{learning_rate, Optimizer};
use dmtl_core::train::{apply, weight_delta, Batch, Update};
use tch::Tensor;

use super::{RoundWork, State};
use crate::WorkerError;

/// Where a member's local-SGD round started: copies of the model's variables
/// and, where the round may have to be undone, of the optimizer's state.
pub(super) struct RoundStart {
    variables: BTreeMap<String, Tensor>,
    optimizer: Option<BTreeMap<String, Tensor>>,
}

impl RoundStart {
    fn of(model: &Model, optimizer: &Optimizer, keep_optimizer: bool) -> Self {
        let copy = |m: BTreeMap<String, Tensor>| m.into_iter().map(|(n, t)| (n, t.detach().copy())).collect();
        RoundStart {
            variables: copy(model.variables()),
            optimizer: keep_optimizer.then(|| copy(optimizer.state_tensors())),
        }
    }

    /// Back to the start: every variable of the model.
    pub(super) fn restore_weights(&self, model: &Model) {
        // The same model's own tensors: these cannot mismatch.
        if let Err(e) = model.load_tensors(&self.variables) {
            tracing::error!(error = %e, "restoring the round's start weights");
        }
    }

    /// Back to the start: every variable and (when kept) the optimizer state.
    pub(super) fn restore(&self, model: &Model, optimizer: &mut Optimizer) {
        self.restore_weights(model);
        if let Some(state) = &self.optimizer {
            if let Err(e) = optimizer.load_state_tensors(state, &model.parameters()) {
                tracing::error!(error = %e, "restoring the round's start optimizer state");
            }
        }
    }
}

impl State {
    /// Local SGD: the round's `work.steps` steps on this worker's batches (the
    /// first one `first` when it was built ahead) with its own optimizer and
    /// the schedule's learning rates. Returns the weight delta (with the
    /// round's samples and mean losses) and where the round started;
    /// `keep_optimizer` also keeps the optimizer state, to undo the round.
    pub(super) fn local_steps(
        &mut self,
        work: &RoundWork,
        first: Option<Batch>,
        keep_optimizer: bool,
    ) -> Result<(Update, RoundStart), WorkerError> {
        let start = RoundStart::of(&self.ts.model, &self.ts.optimizer, keep_optimizer);
        let mut sampler = self.sampler(work);
        let mut first = first;
        let mut sums = LossSums::default();
        let mut samples = 0;
        for j in 0..u64::from(work.steps.max(1)) {
            let batch = match first.take() {
                Some(b) => b,
                None => self.draw(&mut sampler, work, j),
            };
            let step = (work.first_step + j) as usize;
            let update = self.part_update(work, &batch, step)?;
            samples += update.samples;
            sums.add(&update.losses);
            apply(&self.ts.model, &mut self.ts.optimizer, &update, learning_rate(&self.config.train, step));
        }
        Ok((weight_delta(&self.ts.model, &start.variables, samples, sums.take()), start))
    }
}
