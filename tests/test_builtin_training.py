"""A two-step smoke run of every training stage of the built-in model, and the shipped model's promises."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import tiny_config
from diffusers import StableDiffusionPipeline

from erasure_lib import builtin
from erasure_lib.data import load_fashion_mnist
from erasure_lib.paths import BUILTIN_MODEL_DIR


def test_two_step_training_of_every_stage(tmp_path, tokenizer, fashion_mnist_available):
    train = load_fashion_mnist("train").subset(64)
    config = tiny_config(vae_steps=2, vae_batch_size=4, steps=2, batch_size=4, warmup_steps=1)
    vae, vae_losses = builtin.train_vae(config, train)
    assert len(vae_losses) == 2 and all(np.isfinite(vae_losses))
    factor = builtin.set_vae_scaling_factor(vae, config, train, n=16)
    assert factor > 0 and vae.config.scaling_factor == pytest.approx(factor)
    latents = builtin.encode_dataset(vae, config, train, batch=32)
    assert latents.shape == (64, 3, 2, 4, 8, 8)
    unet, text_encoder, losses = builtin.train_diffusion(config, train, latents, tokenizer)
    assert len(losses) == 2 and all(np.isfinite(losses))
    pipeline = builtin.assemble_pipeline(config, vae, unet, text_encoder, tokenizer)
    builtin.save_builtin(pipeline, tmp_path / "model", config, {"note": "smoke"})
    # Plain diffusers, no project code, loads and runs what was saved.
    loaded = StableDiffusionPipeline.from_pretrained(tmp_path / "model")
    loaded.set_progress_bar_config(disable=True)
    image = loaded("a photo of a sneaker", num_inference_steps=2, generator=torch.Generator().manual_seed(0)).images[0]
    assert image.size == (16, 16)
    assert json.loads((tmp_path / "model" / "training.json").read_text())["note"] == "smoke"
    for name in ("vocab.json", "merges.txt", "tokenizer.json"):
        assert (tmp_path / "model" / "tokenizer" / name).is_file()


def test_shipped_model_meets_the_size_and_format_promises():
    if not (BUILTIN_MODEL_DIR / "model_index.json").is_file():
        pytest.skip("the built-in model has not been trained yet")
    size = sum(p.stat().st_size for p in BUILTIN_MODEL_DIR.rglob("*") if p.is_file())
    assert size <= 50 * 2**20
    assert list(BUILTIN_MODEL_DIR.rglob("*.safetensors")) and not list(BUILTIN_MODEL_DIR.rglob("*.bin"))
    index = json.loads((BUILTIN_MODEL_DIR / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert index["unet"][1] == "UNet2DConditionModel" and index["text_encoder"][1] == "CLIPTextModel"
    assert len(json.loads((BUILTIN_MODEL_DIR / "tokenizer" / "vocab.json").read_text())) == 49408
