"""The optional stopping rule: stop once the probe denoising loss has risen by a given factor."""

from __future__ import annotations

import pytest

from erasure_lib.methods import fewshot


def test_probe_ratios_are_recorded_with_checkpoints_and_rise(tiny_pipeline, concept_dir):
    config = fewshot.FewShotConfig(lr=1e-2, epochs=3, trainable="all", keep_checkpoints=True)
    result = fewshot.erase(tiny_pipeline, "sneaker", concept_dir, config, progress_bar=False)
    ratios = result.info["probe_ratios"]
    assert len(ratios) == 3 and ratios[-1] > 1.0
    assert fewshot.erase(tiny_pipeline, "sneaker", concept_dir, fewshot.FewShotConfig(epochs=1), progress_bar=False).info["probe_ratios"] == []


def test_stopping_rule_stops_early_and_changes_nothing_else(tiny_pipeline, concept_dir):
    common = dict(lr=1e-2, epochs=5, trainable="all")
    plain = fewshot.erase(tiny_pipeline, "sneaker", concept_dir, fewshot.FewShotConfig(**common), progress_bar=False)
    stopped = fewshot.erase(tiny_pipeline, "sneaker", concept_dir, fewshot.FewShotConfig(**common, stop_loss_ratio=1.000001), progress_bar=False)
    assert stopped.info["epochs_run"] == 1 and len(stopped.losses) == 2
    assert stopped.losses == plain.losses[:2]  # the probe draws from its own generator
    never = fewshot.erase(tiny_pipeline, "sneaker", concept_dir, fewshot.FewShotConfig(**common, stop_loss_ratio=1e9), progress_bar=False)
    assert never.info["epochs_run"] == 5 and never.losses == plain.losses


def test_stop_ratio_must_exceed_one():
    with pytest.raises(ValueError, match="exceed 1"):
        fewshot.FewShotConfig(stop_loss_ratio=0.9)
