"""The built-in world's training: the small Stable Diffusion and the two evaluators that judge it.

Scoring is not here: :mod:`erasure_lib.metrics.classifier` and :mod:`erasure_lib.metrics.clip_score`
load the trained evaluators and apply them to images.

- :mod:`erasure_lib.builtin.model`: the pipeline recipe (SD 1.x's architecture, scaled down) and its
  training (VAE, then U-Net and text encoder; or a U-Net that reads a frozen CLIP text tower).
- :mod:`erasure_lib.builtin.classifier`: training of the garment and style classifier.
- :mod:`erasure_lib.builtin.clip`: training of the small CLIP.
- :mod:`erasure_lib.builtin.training`: what they share (rendered batches, lr schedule, EMA, timing).
"""

from erasure_lib.builtin.model import (
    BuiltinConfig,
    assemble_pipeline,
    build_inference_scheduler,
    build_noise_scheduler,
    build_text_encoder,
    build_unet,
    build_vae,
    compact_token_embedding,
    encode_dataset,
    frozen_text_encoder_from_clip,
    save_builtin,
    set_vae_scaling_factor,
    train_diffusion,
    train_unet_to_read,
    train_vae,
)
from erasure_lib.builtin.training import parameter_ema, render_batch, timed, warmup_cosine

__all__ = [
    "BuiltinConfig",
    "assemble_pipeline",
    "build_inference_scheduler",
    "build_noise_scheduler",
    "build_text_encoder",
    "build_unet",
    "build_vae",
    "compact_token_embedding",
    "encode_dataset",
    "frozen_text_encoder_from_clip",
    "parameter_ema",
    "render_batch",
    "save_builtin",
    "set_vae_scaling_factor",
    "timed",
    "train_diffusion",
    "train_unet_to_read",
    "train_vae",
    "warmup_cosine",
]
