"""The built-in world's training: the small Stable Diffusion and the two evaluators that judge it.

Scoring is not here: :mod:`erasure_lib.metrics.classifier` and :mod:`erasure_lib.metrics.clip_score`
load the trained evaluators and apply them to images.

- :mod:`erasure_lib.builtin.model`: the pipeline recipe (SD 1.x's architecture, scaled down) and its
  training (VAE, then U-Net and text encoder; or a U-Net that reads a frozen text encoder: the
  small CLIP's text tower, or the pretrained MiniLM-L6).
- :mod:`erasure_lib.builtin.classifier`: training of the garment and style classifier.
- :mod:`erasure_lib.builtin.clip`: training of the small CLIP.
- :mod:`erasure_lib.builtin.training`: what they share (rendered batches, lr schedule, EMA, timing).
"""

from erasure_lib.builtin.model import (
    STAND_IN_RECIPES,
    BuiltinConfig,
    StandInRecipe,
    assemble_pipeline,
    build_inference_scheduler,
    build_noise_scheduler,
    build_text_encoder,
    build_unet,
    build_vae,
    compact_token_embedding,
    encode_dataset,
    frozen_sentence_encoder,
    frozen_text_encoder_from_clip,
    minilm_dir,
    save_builtin,
    set_vae_scaling_factor,
    stand_in_text_encoder,
    train_diffusion,
    train_unet_to_read,
    train_vae,
    unet_reading,
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
    "frozen_sentence_encoder",
    "frozen_text_encoder_from_clip",
    "minilm_dir",
    "parameter_ema",
    "render_batch",
    "STAND_IN_RECIPES",
    "StandInRecipe",
    "save_builtin",
    "set_vae_scaling_factor",
    "stand_in_text_encoder",
    "timed",
    "train_diffusion",
    "train_unet_to_read",
    "train_vae",
    "unet_reading",
    "warmup_cosine",
]
