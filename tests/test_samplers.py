"""Sampler agreement (erasure_lib.samplers): the verdicts of one setting against a reference setting's,
by hand on small tables, and the judging loop on the built-in model at tiny sizes."""

from __future__ import annotations

import pandas as pd
import pytest

from erasure_lib import experiment, samplers, window
from erasure_lib.data import CLASSES
from erasure_lib.methods.fewshot import FewShotConfig


def judged_rows(sampler: str, steps: int, predicted: list[int]) -> pd.DataFrame:
    """One concept ("bag", index 8), two models, two images each: its own prompt, then a sneaker (7)."""
    return pd.DataFrame({"concept": "bag", "model": ["base", "base", "erased", "erased"], "sampler": sampler,
                         "sampling_steps": steps, "case_number": [0, 1, 0, 1], "class": ["bag", "sneaker"] * 2,
                         "class_index": [8, 7] * 2, "predicted": predicted})  # fmt: skip


def test_agreement_by_hand() -> None:
    reference = judged_rows("model", 50, [8, 7, 0, 7])  # base: both right; erased: the bag left, the sneaker kept
    fast = judged_rows("dpm-solver++", 20, [8, 7, 8, 7])  # the erased model's bag comes back under the fast sampler
    seconds = pd.DataFrame({"sampler": ["model", "dpm-solver++"], "sampling_steps": [50, 20], "images": [4, 4], "seconds": [10.0, 4.0]})
    table = samplers.agreement(pd.concat([reference, fast]), seconds, ("model", 50)).set_index("sampler")
    assert table.loc["model", ["label_agreement", "erased_share_change", "others_accuracy_change", "speedup"]].tolist() == [1.0, 0.0, 0.0, 1.0]
    fast_row = table.loc["dpm-solver++"]
    assert fast_row.label_agreement == pytest.approx(0.75)  # per model: base 1.0, erased 0.5
    assert fast_row.erased_share_change == pytest.approx(0.5)  # base 1 -> 1, erased 0 -> 1
    assert fast_row.others_accuracy_change == 0.0 and fast_row.speedup == pytest.approx(2.5) and fast_row.images == 4
    with pytest.raises(ValueError, match="reference setting"):
        samplers.agreement(fast, seconds, ("model", 50))


def test_judged_settings_on_the_built_in_model(builtin_setup: experiment.Setup, tmp_path) -> None:
    images = experiment.image_source("builtin", 2, tmp_path)
    prompts_for = lambda concept: window.heldout_prompts(concept, CLASSES, n_erased=2, n_others=1)  # noqa: E731
    settings = [("model", 2), ("dpm-solver++", 2)]
    judged, seconds = samplers.judged_settings(builtin_setup.pipeline, builtin_setup.judge, images, ["sneaker"], 3,
                                               FewShotConfig.builtin(epochs=1), prompts_for, settings, 7.5)  # fmt: skip
    n = len(prompts_for("sneaker"))
    assert len(judged) == 2 * 2 * n and list(seconds.images) == [2 * n, 2 * n]
    assert set(judged.model) == {"base", "erased"} and list(judged.columns[:4]) == ["concept", "model", "sampler", "sampling_steps"]
    again, _ = samplers.judged_settings(builtin_setup.pipeline, builtin_setup.judge, images, ["sneaker"], 3,
                                        FewShotConfig.builtin(epochs=1), prompts_for, settings[:1], 7.5)  # fmt: skip
    pd.testing.assert_frame_equal(again, judged[judged.sampler == "model"].reset_index(drop=True))  # seeded: the same verdicts
    table = samplers.agreement(judged, seconds, ("model", 2))
    assert table.label_agreement.iloc[0] == 1.0 and 0.0 <= table.label_agreement.iloc[1] <= 1.0
