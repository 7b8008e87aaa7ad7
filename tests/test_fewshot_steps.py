"""The named steps of few-shot unlearning (``erasure_lib.methods.fewshot``), each on its own: what
``erase_concepts`` is made of. The tiny pipeline of conftest; no training run longer than one step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONCEPT, N_CONCEPT_IMAGES, TINY_RESOLUTION
from diffusers import DDPMScheduler, StableDiffusionPipeline

from erasure_lib.data import templates_for
from erasure_lib.methods import fewshot
from erasure_lib.methods.fewshot import FewShotConfig


def test_concept_images_and_latents(tiny_pipeline: StableDiffusionPipeline, concept_dir: Path) -> None:
    config = FewShotConfig()
    images, image_concepts = fewshot.concept_images(tiny_pipeline, {CONCEPT: concept_dir, "bag": concept_dir}, config)
    assert len(images) == 2 * N_CONCEPT_IMAGES and image_concepts == [CONCEPT] * 4 + ["bag"] * 4
    draws = {"rng": np.random.default_rng(0), "generator": torch.Generator("cpu").manual_seed(0)}
    z0 = fewshot.encode_concept_latents(tiny_pipeline, images, len(images), config, TINY_RESOLUTION, **draws)
    assert z0.shape == (8, tiny_pipeline.unet.config.in_channels, 8, 8) and not z0.requires_grad

    zero = FewShotConfig(zero_shot=True, zero_shot_images=3)
    images, image_concepts = fewshot.concept_images(tiny_pipeline, {CONCEPT: None}, zero)
    assert images == [] and image_concepts == [CONCEPT] * 3
    z0 = fewshot.encode_concept_latents(tiny_pipeline, images, 3, zero, TINY_RESOLUTION, **draws)
    assert z0.shape == (3, tiny_pipeline.unet.config.in_channels, 8, 8) and 0 <= float(z0.min()) and float(z0.max()) < 1
    with pytest.raises(ValueError, match="no images given"):
        fewshot.concept_images(tiny_pipeline, {CONCEPT: None}, config)
    with pytest.raises(ValueError, match="no concepts"):
        fewshot.concept_images(tiny_pipeline, {}, config)


def test_trainable_parameters_set_the_flags_in_the_encoder_order(tiny_pipeline: StableDiffusionPipeline) -> None:
    import copy

    encoder = copy.deepcopy(tiny_pipeline.text_encoder)
    chosen = fewshot.trainable_parameters(encoder, "mlp-only")
    assert list(chosen) == fewshot.trainable_parameter_names(encoder, "mlp-only")
    assert {n for n, p in encoder.named_parameters() if p.requires_grad} == set(chosen)


def test_frozen_restores_each_flag_even_on_an_error(tiny_pipeline: StableDiffusionPipeline) -> None:
    unet = tiny_pipeline.unet
    flags = [p.requires_grad for p in unet.parameters()]
    with pytest.raises(RuntimeError, match="boom"), fewshot.frozen(unet):
        assert not any(p.requires_grad for p in unet.parameters())
        raise RuntimeError("boom")
    assert [p.requires_grad for p in unet.parameters()] == flags


def test_a_set_up_error_leaves_the_pipeline_flags(tiny_pipeline: StableDiffusionPipeline, concept_dir: Path) -> None:
    flags = {m: [p.requires_grad for p in getattr(tiny_pipeline, m).parameters()] for m in ("unet", "vae")}
    config = FewShotConfig(preserve_weight=1.0, preserve=("a " * 40,), epochs=1)  # too long a retained concept
    with pytest.raises(ValueError, match="too long"):
        fewshot.erase(tiny_pipeline, CONCEPT, concept_dir, config, progress_bar=False)
    assert {m: [p.requires_grad for p in getattr(tiny_pipeline, m).parameters()] for m in flags} == flags


def test_retained_concepts_and_anchor_targets(tiny_pipeline: StableDiffusionPipeline) -> None:
    assert fewshot.retained_concepts(tiny_pipeline, [CONCEPT], FewShotConfig(preserve=("bag",))) == []  # weight 0: off
    config = FewShotConfig(preserve_weight=1.0, preserve=("bag", CONCEPT, "bag"), preserve_neighbours=1,
                           preserve_vocabulary=("sandal",))
    retained = fewshot.retained_concepts(tiny_pipeline, [CONCEPT], config)
    assert retained == ["bag", "sandal"]
    templates = templates_for("object")
    anchors = fewshot.anchor_targets(tiny_pipeline, retained, templates)
    assert anchors is not None and len(anchors.input_ids) == len(anchors.reference) == 2 * len(templates)
    assert fewshot.anchor_targets(tiny_pipeline, [], templates) is None
    # The original encoder is its own anchor: the term is zero, and it draws one template per retained concept.
    rng, expected = np.random.default_rng(0), np.random.default_rng(0)
    with torch.no_grad():
        assert float(anchors.loss(tiny_pipeline.text_encoder, rng)) == 0.0
    [expected.integers(len(templates)) for _ in retained]
    assert rng.integers(1 << 30) == expected.integers(1 << 30)


def test_probes_and_the_stopping_rule(tiny_pipeline: StableDiffusionPipeline) -> None:
    assert not fewshot.needs_probes(FewShotConfig())
    assert fewshot.needs_probes(FewShotConfig(checkpoint_steps=(2,))) and fewshot.needs_probes(FewShotConfig(stop_loss_ratio=2.0))
    config = FewShotConfig(stop_loss_ratio=1.5, stop_retain=("bag", CONCEPT), stop_retain_drift=0.5)
    scheduler = DDPMScheduler.from_config(tiny_pipeline.scheduler.config)
    z0 = torch.randn((2, tiny_pipeline.unet.config.in_channels, 8, 8), generator=torch.Generator("cpu").manual_seed(0))
    probes = fewshot.make_probes(tiny_pipeline, scheduler, z0, [CONCEPT] * 2, [CONCEPT], templates_for("object"), config)
    assert probes.retain is not None and len(probes.retain.input_ids) == 1  # the erased concept is not watched
    entry = fewshot.measure_probes(tiny_pipeline, scheduler, tiny_pipeline.text_encoder, probes, 3)
    assert entry == {"step": 3, "concept_loss_ratio": 1.0, "retain_drift": 0.0}  # the original encoder: no change
    assert fewshot.stop_reason(entry, config) is None
    assert "concept probe" in fewshot.stop_reason({"concept_loss_ratio": 1.5}, config)  # type: ignore[operator]
    assert "retain drift" in fewshot.stop_reason({"concept_loss_ratio": 1.0, "retain_drift": 0.5}, config)  # type: ignore[operator]
