//! The validated configuration of a run. Built from TOML by [`super::load`].
//!
//! Every struct here has declared defaults; the TOML file only needs the keys
//! that differ. The resolved configuration is saved as `config.toml` in the
//! run directory.

use serde::{Deserialize, Serialize};

use crate::data::{DepthTarget, LabelSet};

/// The config format version this build reads and writes.
pub const CONFIG_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Config format version; must be [`CONFIG_VERSION`].
    pub version: u32,
    /// Seed of the split, the weight initialisation, the batch order and the augmentation.
    pub seed: u64,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub method: MethodConfig,
    pub distill: DistillConfig,
    pub train: TrainConfig,
    pub eval: EvalConfig,
    /// The distributed engine (`dmtl coordinator`, `dmtl worker`, `dmtl local`);
    /// ignored by `dmtl train`.
    pub distributed: DistributedConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: CONFIG_VERSION,
            seed: 0,
            data: DataConfig::default(),
            model: ModelConfig::default(),
            method: MethodConfig::default(),
            distill: DistillConfig::default(),
            train: TrainConfig::default(),
            eval: EvalConfig::default(),
            distributed: DistributedConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Dataset root in the Cityscapes layout (`leftImg8bit/`, `gtFine/`, `disparity/`, `camera/`).
    pub root: String,
    /// 19 (train ids) or 7 (categories).
    pub classes: LabelSet,
    /// Training and evaluation resolution; both must be multiples of the encoder stride.
    pub height: usize,
    pub width: usize,
    /// What the depth head regresses: `disparity` (pixels) or `depth` (metres, from camera.json).
    pub depth: DepthTarget,
    /// Use at most this many training / validation images (0 = all).
    pub train_limit: usize,
    pub val_limit: usize,
    /// Threads that decode the dataset into memory at start-up.
    pub load_threads: usize,
    /// Batches prepared ahead of the training step by the background loader.
    pub prefetch: usize,
    /// Threads that augment the images of each batch (the batch is the same
    /// whatever the count). 1 suits CPU training, which needs the cores; on a
    /// GPU machine give it the spare cores: one thread prepares about 600
    /// images/s at 128×256.
    pub batch_threads: usize,
    pub augment: AugmentConfig,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            root: "data/synthetic".into(),
            classes: LabelSet::Categories7,
            height: 64,
            width: 128,
            depth: DepthTarget::Disparity,
            train_limit: 0,
            val_limit: 0,
            load_threads: 2,
            prefetch: 4,
            batch_threads: 1,
            augment: AugmentConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Random horizontal flip with probability 0.5.
    pub flip: bool,
    /// Random scale-crop: zoom factor drawn uniformly from `[1, max_scale]` (1 = off).
    pub max_scale: f64,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig { flip: true, max_scale: 1.5 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Channels of the first encoder stage; stage i has `width · 2^i`.
    pub width: i64,
    /// Residual blocks per encoder stage; the encoder stride is `2^len(blocks)`.
    pub blocks: Vec<usize>,
    /// Channels of the decoders' stages relative to the matching encoder stage.
    pub decoder_ratio: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig { width: 16, blocks: vec![1, 1, 1, 1], decoder_ratio: 1.0 }
    }
}

/// The training method (`method.kind`), see DESIGN §1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MethodKind {
    /// All images with both labels (upper bound).
    Full,
    /// The segmentation half with both labels (lower baseline).
    Half,
    /// Phases of `switch_every` steps on one task's half with that task's loss.
    Alternate,
    /// `alternate` plus distillation of the other task from the teacher.
    Distill,
    /// Batches mixing both halves; each image contributes its own task's loss.
    Masked,
    /// `masked` plus distillation of each image's missing task.
    MaskedDistill,
}

impl MethodKind {
    pub const ALL: [MethodKind; 6] = [
        MethodKind::Full,
        MethodKind::Half,
        MethodKind::Alternate,
        MethodKind::Distill,
        MethodKind::Masked,
        MethodKind::MaskedDistill,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::Full => "full",
            MethodKind::Half => "half",
            MethodKind::Alternate => "alternate",
            MethodKind::Distill => "distill",
            MethodKind::Masked => "masked",
            MethodKind::MaskedDistill => "masked-distill",
        }
    }

    /// Whether the method distils the missing task from a teacher.
    pub fn uses_teacher(self) -> bool {
        matches!(self, MethodKind::Distill | MethodKind::MaskedDistill)
    }
}

impl std::fmt::Display for MethodKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MethodConfig {
    pub kind: MethodKind,
    /// Phase length in steps (`alternate`, `distill`; the teacher refresh period of `phase`
    /// teachers in the masked methods).
    pub switch_every: usize,
}

impl Default for MethodConfig {
    fn default() -> Self {
        MethodConfig { kind: MethodKind::Distill, switch_every: 50 }
    }
}

/// Where the distillation targets come from (`distill.teacher`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TeacherKind {
    /// A snapshot of the model taken when a phase ends.
    Phase,
    /// An exponential moving average of the weights (`distill.ema_decay`).
    Ema,
    /// The merged model of the previous round (distributed mode; in a single process,
    /// the model before the current step).
    Round,
}

impl TeacherKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TeacherKind::Phase => "phase",
            TeacherKind::Ema => "ema",
            TeacherKind::Round => "round",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistillConfig {
    pub teacher: TeacherKind,
    /// λ, the weight of both distillation terms unless `seg_weight` or
    /// `depth_weight` says otherwise.
    pub weight: f64,
    /// The weight of the segmentation distillation term (default: `weight`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seg_weight: Option<f64>,
    /// The weight of the depth distillation term (default: `weight`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth_weight: Option<f64>,
    /// Steps over which the weights ramp up linearly from the first step that
    /// distils (0: full weight at once).
    pub ramp_steps: usize,
    /// T, the softmax temperature of the segmentation distillation (whose
    /// loss includes the factor T², so its gradients keep their scale).
    pub temperature: f64,
    /// Decay of the `ema` teacher (warmed up as min(decay, (1+t)/(10+t))).
    pub ema_decay: f64,
}

impl Default for DistillConfig {
    fn default() -> Self {
        DistillConfig {
            teacher: TeacherKind::Phase,
            weight: 1.0,
            seg_weight: None,
            depth_weight: None,
            ramp_steps: 0,
            temperature: 2.0,
            ema_decay: 0.99,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Adam,
    Sgd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    Constant,
    /// Cosine decay from `lr` to 0 over `steps`, after `warmup_steps` of linear warm-up.
    Cosine,
}

/// The number format of the forward and backward passes (`train.precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in float32.
    #[default]
    Fp32,
    /// Convolutions, activations and their gradients in bfloat16; parameters, their
    /// gradients, BatchNorm statistics, optimizer state, losses and checkpoints stay float32.
    Bf16,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(format!("expected `fp32` or `bf16` (got `{s}`)")),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Optimizer steps.
    pub steps: usize,
    /// Images per step (for masked methods: half from each task's half).
    pub batch_size: usize,
    pub optimizer: OptimizerKind,
    pub lr: f64,
    pub lr_schedule: LrSchedule,
    pub warmup_steps: usize,
    pub weight_decay: f64,
    /// SGD momentum (ignored by Adam).
    pub momentum: f64,
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// Intra-op threads of libtorch (0 = libtorch's default).
    pub threads: usize,
    /// `fp32` or `bf16` (bf16 compute with fp32 master weights), for training,
    /// the teacher and evaluation.
    pub precision: Precision,
    /// Activations and 4-D convolution weights in channels-last (NHWC) memory
    /// layout; shapes, names and checkpoints are unchanged.
    pub channels_last: bool,
    /// cuDNN benchmark mode on CUDA devices (picks the fastest convolution
    /// algorithm per shape; ignored on the CPU).
    pub cudnn_benchmark: bool,
    /// Evaluate on the validation split every this many steps (and at the end).
    pub eval_every: usize,
    /// Write a checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
    /// Checkpoints kept in `checkpoints/` (the newest ones).
    pub keep_checkpoints: usize,
    /// Log train losses every this many steps.
    pub log_every: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            steps: 1000,
            batch_size: 16,
            optimizer: OptimizerKind::Adam,
            lr: 2e-3,
            lr_schedule: LrSchedule::Cosine,
            warmup_steps: 20,
            weight_decay: 1e-4,
            momentum: 0.9,
            device: "cpu".into(),
            threads: 2,
            precision: Precision::Fp32,
            channels_last: false,
            cudnn_benchmark: true,
            eval_every: 250,
            checkpoint_every: 250,
            keep_checkpoints: 2,
            log_every: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    pub batch_size: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig { batch_size: 32 }
    }
}

/// How tensors travel between the coordinator and its workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataPlane {
    /// Through the coordinator over gRPC (any machine).
    Grpc,
    /// All-reduce between the workers' GPUs (cargo feature `nccl`).
    Nccl,
}

impl std::fmt::Display for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DataPlane::Grpc => "grpc",
            DataPlane::Nccl => "nccl",
        })
    }
}

/// The distributed engine's knobs (DESIGN §2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistributedConfig {
    /// `grpc` or `nccl`.
    pub data_plane: DataPlane,
    /// Training steps a worker runs per round: 1 is synchronous SGD (workers
    /// push gradients, the coordinator applies the optimizer); more is local
    /// SGD (workers push weight deltas, the coordinator averages them).
    pub local_steps: usize,
    /// Live workers each active task needs for a round to begin, and pushes it
    /// needs for a round to complete without its stragglers.
    pub min_workers_per_task: usize,
    /// Seconds after its start that a round may complete without its stragglers.
    pub round_timeout_s: f64,
    /// How often a worker sends a heartbeat.
    pub heartbeat_interval_ms: u64,
    /// Silence after which a worker is dropped from the round.
    pub heartbeat_timeout_ms: u64,
    /// Payload bytes per chunk of a snapshot or update stream (at most 4 MiB).
    pub chunk_bytes: usize,
}

/// The largest `distributed.chunk_bytes` (the proto crate's `MAX_CHUNK_BYTES`).
pub const MAX_CHUNK_BYTES: usize = 4 << 20;

impl Default for DistributedConfig {
    fn default() -> Self {
        DistributedConfig {
            data_plane: DataPlane::Grpc,
            local_steps: 1,
            min_workers_per_task: 1,
            round_timeout_s: 60.0,
            heartbeat_interval_ms: 1000,
            heartbeat_timeout_ms: 10_000,
            chunk_bytes: 1 << 20,
        }
    }
}
