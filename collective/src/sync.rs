//! Bringing the members of a new group generation to one state: the weights
//! and optimizer state of one member (the *source*, a survivor of the
//! previous generation) copied to every member, as sum all-reduces to which
//! only the source contributes. With the nccl plane the workers own the
//! optimizer, so a worker that joins (or rejoins) a running group needs both.

use std::collections::BTreeMap;

use dmtl_core::method::Teacher;
use dmtl_core::model::Model;
use dmtl_core::optim::Optimizer;
use tch::{Device, Kind, Tensor};

use crate::collective::{Collective, CollectiveError};

fn floats(t: &Tensor) -> Vec<f32> {
    Vec::try_from(t.to_device(Device::Cpu)).expect("a float32 tensor")
}

/// Makes every member's `model` and `optimizer` equal to those of rank
/// `source`. Every member calls it with a model of the same architecture
/// and an optimizer of the same kind; the others' state is replaced.
pub fn broadcast_state(
    c: &dyn Collective,
    source: usize,
    model: &Model,
    optimizer: &mut Optimizer,
    device: Device,
) -> Result<(), CollectiveError> {
    let is_source = c.rank() == source;
    let params = model.parameters();
    let state = if is_source { optimizer.state_tensors() } else { BTreeMap::new() };

    // 1. Per parameter: its optimizer step count and whether it has a second moment.
    let mut header: Vec<f32> = Vec::with_capacity(2 * params.len());
    for name in params.keys() {
        let t = state.get(&format!("{name}.t")).map_or(0, |t| t.int64_value(&[0]));
        header.push(t as f32);
        header.push(if state.contains_key(&format!("{name}.v")) { 1.0 } else { 0.0 });
    }
    let mut head = Tensor::from_slice(&header).to_device(device);
    if !is_source {
        let _ = head.zero_();
    }
    c.all_reduce_sum(&mut head)?;
    let header = floats(&head);
    let slots: Vec<(&String, i64, bool)> = params
        .keys()
        .zip(header.chunks(2))
        .filter(|(_, h)| h[0] > 0.0)
        .map(|(n, h)| (n, h[0].round() as i64, h[1] > 0.0))
        .collect();

    // 2. Every variable, then the moments of the parameters that have a slot.
    let variables = model.variables();
    let mut pieces: Vec<Tensor> = variables.values().map(|t| t.detach().to_kind(Kind::Float).flatten(0, -1)).collect();
    for (name, _, has_v) in &slots {
        let p = &params[*name];
        for field in if *has_v { &["m", "v"][..] } else { &["m"][..] } {
            let t = state.get(&format!("{name}.{field}")).map_or_else(|| p.zeros_like(), |t| t.shallow_clone());
            pieces.push(t.to_device(device).to_kind(Kind::Float).flatten(0, -1));
        }
    }
    let mut body = Tensor::cat(&pieces, 0).to_device(device);
    if !is_source {
        let _ = body.zero_();
    }
    c.all_reduce_sum(&mut body)?;
    if is_source {
        return Ok(());
    }

    let mut offset = 0i64;
    let mut take = |like: &Tensor| {
        let n = like.numel() as i64;
        let t = body.narrow(0, offset, n).view(like.size().as_slice()).to_kind(like.kind());
        offset += n;
        t
    };
    let loaded: BTreeMap<String, Tensor> = variables.iter().map(|(n, t)| (n.clone(), take(t))).collect();
    let mut opt_state = BTreeMap::new();
    for (name, t, has_v) in &slots {
        let p = &params[*name];
        opt_state.insert(format!("{name}.t"), Tensor::from_slice(&[*t]));
        opt_state.insert(format!("{name}.m"), take(p));
        if *has_v {
            opt_state.insert(format!("{name}.v"), take(p));
        }
    }
    model.load_tensors(&loaded).map_err(|e| CollectiveError::Buffer(format!("loading the broadcast weights: {e}")))?;
    optimizer
        .load_state_tensors(&opt_state, &params)
        .map_err(|e| CollectiveError::Buffer(format!("loading the broadcast optimizer state: {e}")))?;
    Ok(())
}

/// Makes every member's teacher equal to that of rank `source` (its
/// variables and the step it was refreshed at), as [`broadcast_state`] does
/// for the model: the teacher of a distilling method lives on the workers.
pub fn broadcast_teacher(
    c: &dyn Collective,
    source: usize,
    teacher: &mut Teacher,
    device: Device,
) -> Result<(), CollectiveError> {
    let variables = teacher.model.variables();
    let mut pieces: Vec<Tensor> =
        variables.values().map(|t| t.detach().to_kind(Kind::Float).flatten(0, -1).to_device(device)).collect();
    pieces.push(Tensor::from_slice(&[teacher.refreshed_at as f32]).to_device(device));
    let mut body = Tensor::cat(&pieces, 0);
    if c.rank() != source {
        let _ = body.zero_();
    }
    c.all_reduce_sum(&mut body)?;
    if c.rank() == source {
        return Ok(());
    }
    let mut offset = 0i64;
    let mut loaded = BTreeMap::new();
    for (name, like) in &variables {
        let n = like.numel() as i64;
        loaded.insert(name.clone(), body.narrow(0, offset, n).view(like.size().as_slice()).to_kind(like.kind()));
        offset += n;
    }
    teacher
        .model
        .load_tensors(&loaded)
        .map_err(|e| CollectiveError::Buffer(format!("loading the broadcast teacher: {e}")))?;
    teacher.refreshed_at = floats(&body.narrow(0, offset, 1))[0].round() as usize;
    Ok(())
}
