"""The built-in model's architecture facts and its training loop, at toy size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config
from transformers import CLIPTokenizer

from erasure_lib import builtin
from erasure_lib.builtin import BuiltinConfig
from erasure_lib.data import load_fashion_mnist, render
from erasure_lib.models import model_resolution


def test_default_config_is_an_f4_sd_at_32_px(tokenizer: CLIPTokenizer) -> None:
    config = BuiltinConfig()
    torch.manual_seed(0)
    pipeline = builtin.assemble_pipeline(
        config, builtin.build_vae(config), builtin.build_unet(config), builtin.build_text_encoder(config), tokenizer
    )
    assert pipeline.vae_scale_factor == 4
    assert pipeline.unet.config.sample_size == 8
    assert model_resolution(pipeline) == 32
    assert pipeline.unet.config.cross_attention_dim == pipeline.text_encoder.config.hidden_size
    assert pipeline.text_encoder.config.vocab_size == len(tokenizer) == 49408
    assert pipeline.text_encoder.config.max_position_embeddings == tokenizer.model_max_length


def test_schedulers_are_sds() -> None:
    config = BuiltinConfig()
    train, infer = builtin.build_noise_scheduler(config), builtin.build_inference_scheduler(config)
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2
    torch.testing.assert_close(train.betas, betas)
    torch.testing.assert_close(infer.betas, betas)
    assert train.config.prediction_type == infer.config.prediction_type == "epsilon"
    assert infer.config.skip_prk_steps and infer.config.steps_offset == 1 and not infer.config.set_alpha_to_one


def test_render_batch(fashion_mnist_available: None) -> None:
    data = load_fashion_mnist("test").subset(4)
    x = builtin.render_batch(data, np.arange(4), np.array([0, 1, 2, 0]), np.array([False, False, False, True]), 32)
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    plain = torch.from_numpy(render(data.images[0], "plain")).permute(2, 0, 1) * 2 - 1
    torch.testing.assert_close(x[0], plain)
    flipped = torch.from_numpy(render(data.images[3], "plain")).permute(2, 0, 1).flip(-1) * 2 - 1
    torch.testing.assert_close(x[3], flipped)


@pytest.fixture(scope="module")
def toy_training(fashion_mnist_available: None, tokenizer: CLIPTokenizer) -> dict[str, object]:
    # 32 px with a 2-level VAE: 16x16 latents (render() needs size >= 28).
    config = tiny_config(image_size=32, vae_channels=(32, 32, 32), steps=4, batch_size=2, warmup_steps=1)
    data = load_fashion_mnist("test").subset(20)
    torch.manual_seed(0)
    vae = builtin.build_vae(config).eval()
    latents = builtin.encode_dataset(vae, config, data, batch=20)
    return {"config": config, "data": data, "latents": latents, "tokenizer": tokenizer}


def _train(toy: dict, **kwargs: object) -> tuple[dict[str, torch.Tensor], list[float]]:
    unet, text_encoder, losses = builtin.train_diffusion(
        kwargs.pop("config", toy["config"]),
        toy["data"],
        toy["latents"],
        toy["tokenizer"],
        **kwargs,  # type: ignore[arg-type]
    )
    return {**unet.state_dict(), **{"te." + k: v for k, v in text_encoder.state_dict().items()}}, losses


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_training_is_deterministic_and_checkpointing_does_not_change_it(toy_training: dict, tmp_path: Path) -> None:
    a, la = _train(toy_training)
    b, lb = _train(toy_training, checkpoint=tmp_path / "ck.pt", checkpoint_every=2)
    assert len(la) == 4 and all(np.isfinite(la))
    assert la == lb and _same(a, b)
    assert (tmp_path / "ck.pt").is_file()


def test_resumed_training_equals_uninterrupted(toy_training: dict, tmp_path: Path) -> None:
    full, full_losses = _train(toy_training)
    checkpoint = tmp_path / "ck.pt"
    _train(toy_training, checkpoint=checkpoint, checkpoint_every=3, stop_at=2)  # interrupted after 2 of 4 steps
    resumed, resumed_losses = _train(toy_training, checkpoint=checkpoint, checkpoint_every=2)
    assert resumed_losses == full_losses
    assert _same(resumed, full)


def test_a_checkpoint_of_the_hand_written_ema_resumes_like_an_uninterrupted_run(toy_training: dict, tmp_path: Path) -> None:
    """Checkpoints written before diffusers' EMAModel kept the EMA as ``ema`` (weights) and ``ema_step``."""
    full, full_losses = _train(toy_training)
    checkpoint = tmp_path / "ck.pt"
    _train(toy_training, checkpoint=checkpoint, checkpoint_every=3, stop_at=2)
    state = torch.load(checkpoint, weights_only=False)
    state["ema"], state["ema_step"] = state["ema"]["shadow_params"], state["ema"]["optimization_step"]
    assert state["ema_step"] == 2
    torch.save(state, checkpoint)
    resumed, resumed_losses = _train(toy_training, checkpoint=checkpoint)
    assert resumed_losses == full_losses
    assert _same(resumed, full)
