//! Range checks of every value, each failure naming its key.

use super::schema::*;
use super::ConfigError;
use crate::device::parse_device;

type R = Result<(), ConfigError>;

fn check(ok: bool, key: &str, message: impl FnOnce() -> String) -> R {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(key, message()))
    }
}

fn positive(key: &str, v: usize) -> R {
    check(v >= 1, key, || format!("must be at least 1 (got {v})"))
}

fn finite_in(key: &str, v: f64, lo: f64, hi: f64, hi_inclusive: bool) -> R {
    let ok = v.is_finite() && v >= lo && if hi_inclusive { v <= hi } else { v < hi };
    let close = if hi_inclusive { ']' } else { ')' };
    check(ok, key, || format!("must be in [{lo}, {hi}{close} (got {v})"))
}

/// Checks every value of a parsed config.
pub fn validate(c: &Config) -> R {
    check(c.version == CONFIG_VERSION, "version", || {
        format!("this dmtl reads version {CONFIG_VERSION} (got {})", c.version)
    })?;

    let m = &c.model;
    check(m.width >= 1 && m.width <= 1024, "model.width", || format!("must be in [1, 1024] (got {})", m.width))?;
    check(!m.blocks.is_empty() && m.blocks.len() <= 6, "model.blocks", || {
        format!("must list 1 to 6 stages (got {})", m.blocks.len())
    })?;
    for (i, &b) in m.blocks.iter().enumerate() {
        check((1..=16).contains(&b), "model.blocks", || format!("stage {i} must have 1 to 16 blocks (got {b})"))?;
    }
    check(m.decoder_ratio > 0.0 && m.decoder_ratio <= 4.0, "model.decoder_ratio", || {
        format!("must be in (0, 4] (got {})", m.decoder_ratio)
    })?;

    let d = &c.data;
    let stride = 1usize << m.blocks.len();
    for (key, v) in [("data.height", d.height), ("data.width", d.width)] {
        check(v >= stride && v % stride == 0, key, || {
            format!("must be a positive multiple of the encoder stride {stride} (2^len(model.blocks)) (got {v})")
        })?;
    }
    positive("data.load_threads", d.load_threads)?;
    positive("data.batch_threads", d.batch_threads)?;
    positive("data.prefetch", d.prefetch)?;
    finite_in("data.augment.max_scale", d.augment.max_scale, 1.0, 4.0, true)?;

    positive("method.switch_every", c.method.switch_every)?;

    let s = &c.distill;
    finite_in("distill.weight", s.weight, 0.0, 1e6, true)?;
    if let Some(w) = s.seg_weight {
        finite_in("distill.seg_weight", w, 0.0, 1e6, true)?;
    }
    if let Some(w) = s.depth_weight {
        finite_in("distill.depth_weight", w, 0.0, 1e6, true)?;
    }
    check(s.temperature.is_finite() && s.temperature > 0.0, "distill.temperature", || {
        format!("must be > 0 (got {})", s.temperature)
    })?;
    finite_in("distill.ema_decay", s.ema_decay, 0.0, 1.0, false)?;

    let t = &c.train;
    positive("train.steps", t.steps)?;
    // BatchNorm needs at least two images in every batch part.
    let min_batch = if matches!(c.method.kind, MethodKind::Masked | MethodKind::MaskedDistill) { 4 } else { 2 };
    check(t.batch_size >= min_batch, "train.batch_size", || {
        format!(
            "must be at least {min_batch} for method `{}` (BatchNorm needs two images per batch part) (got {})",
            c.method.kind, t.batch_size
        )
    })?;
    check(t.lr.is_finite() && t.lr > 0.0, "train.lr", || format!("must be > 0 (got {})", t.lr))?;
    finite_in("train.weight_decay", t.weight_decay, 0.0, 1.0, true)?;
    finite_in("train.momentum", t.momentum, 0.0, 1.0, false)?;
    parse_device(&t.device).map_err(|e| ConfigError::invalid("train.device", e))?;
    check(t.threads <= 1024, "train.threads", || format!("must be at most 1024 (got {})", t.threads))?;
    positive("train.eval_every", t.eval_every)?;
    positive("train.checkpoint_every", t.checkpoint_every)?;
    positive("train.keep_checkpoints", t.keep_checkpoints)?;
    positive("train.log_every", t.log_every)?;
    positive("eval.batch_size", c.eval.batch_size)?;

    let d = &c.distributed;
    check((1..=100_000).contains(&d.local_steps), "distributed.local_steps", || {
        format!("must be in [1, 100000] (got {})", d.local_steps)
    })?;
    check((1..=4096).contains(&d.min_workers_per_task), "distributed.min_workers_per_task", || {
        format!("must be in [1, 4096] (got {})", d.min_workers_per_task)
    })?;
    finite_in("distributed.round_timeout_s", d.round_timeout_s, 0.001, 86_400.0, true)?;
    check((10..=600_000).contains(&d.heartbeat_interval_ms), "distributed.heartbeat_interval_ms", || {
        format!("must be in [10, 600000] (got {})", d.heartbeat_interval_ms)
    })?;
    check(d.heartbeat_timeout_ms >= 2 * d.heartbeat_interval_ms, "distributed.heartbeat_timeout_ms", || {
        format!(
            "must be at least twice distributed.heartbeat_interval_ms ({}) (got {})",
            d.heartbeat_interval_ms, d.heartbeat_timeout_ms
        )
    })?;
    check((1024..=MAX_CHUNK_BYTES).contains(&d.chunk_bytes), "distributed.chunk_bytes", || {
        format!("must be in [1024, {MAX_CHUNK_BYTES}] (got {})", d.chunk_bytes)
    })?;
    Ok(())
}
