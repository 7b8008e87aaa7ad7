"""The ImageNet evaluator without timm or weights: the 10-class mapping on a stand-in model, and the
clear errors of the real loader."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from erasure_lib import hub
from erasure_lib.metrics import imagenet
from erasure_lib.metrics.imagenet import IMAGENETTE_CLASSES, ImageNetEvaluator, load_eva02, map_logits


def test_imagenette_indices() -> None:
    assert IMAGENETTE_CLASSES == {
        "tench": 0, "English springer": 217, "cassette player": 482, "chain saw": 491, "church": 497,
        "French horn": 566, "garbage truck": 569, "gas pump": 571, "golf ball": 574, "parachute": 701,
    }  # fmt: skip


def _logits(top: list[int], runner_up: list[int] | None = None) -> torch.Tensor:
    logits = torch.zeros((len(top), 1000))
    for i, k in enumerate(top):
        logits[i, k] = 10.0
    for i, k in enumerate(runner_up or []):
        logits[i, k] = 5.0
    return logits


def test_map_logits_top1_and_restricted() -> None:
    # image 0: a tench; 1: a church; 2: a goldfish (1, not a class) whose best class is parachute.
    pred = map_logits(_logits([0, 497, 1], runner_up=[5, 6, 701]))
    assert pred.classes == tuple(IMAGENETTE_CLASSES) and pred.indices == tuple(IMAGENETTE_CLASSES.values())
    assert pred.top1.tolist() == [0, 497, 1]
    assert [pred.classes[k] for k in pred.predicted] == ["tench", "church", "parachute"]
    assert pred.in_classes.tolist() == [True, True, False]
    assert pred.probabilities.shape == (3, 10)
    np.testing.assert_allclose(pred.probabilities.sum(1), 1.0, rtol=1e-6)
    assert pred.detection_rate("parachute", "top1") == 0.0
    assert pred.detection_rate("parachute", "restricted") == pytest.approx(1 / 3)
    assert pred.detection_rate("tench") == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="not an evaluated class"):
        pred.detection_rate("sneaker")
    with pytest.raises(ValueError, match="mode"):
        pred.detection_rate("tench", "top5")


def test_map_logits_checks_shapes_and_indices() -> None:
    with pytest.raises(ValueError, match="1000"):
        map_logits(torch.zeros((2, 10)))
    with pytest.raises(ValueError, match="0..999"):
        map_logits(torch.zeros((1, 1000)), {"nothing": 1000})


class ColourModel(torch.nn.Module):
    """A stand-in classifier: red images are tench (0), green ones church (497), others golf ball (574)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape))
        mean = x.mean(dim=(2, 3))
        logits = torch.zeros((x.shape[0], 1000))
        red, green = mean[:, 0] > mean[:, 1] + 0.5, mean[:, 1] > mean[:, 0] + 0.5
        logits[red, 0] = 1.0
        logits[green, 497] = 1.0
        logits[~(red | green), 574] = 1.0
        return logits


def test_evaluator_with_a_stand_in_model() -> None:
    model = ColourModel()
    evaluator = ImageNetEvaluator(model, image_size=32, batch_size=2)
    images = [Image.new("RGB", (64, 48), c) for c in [(255, 0, 0), (0, 255, 0), (128, 128, 128)]]
    pred = evaluator.predict(images)
    assert model.seen == [(2, 3, 32, 32), (1, 3, 32, 32)]
    assert [pred.classes[k] for k in pred.predicted] == ["tench", "church", "golf ball"]
    assert pred.detection_rate("church") == pytest.approx(1 / 3)
    x = evaluator.preprocess([Image.new("RGB", (8, 8), (255, 255, 255))])
    expected = (1.0 - torch.tensor(imagenet.OPENAI_CLIP_MEAN)) / torch.tensor(imagenet.OPENAI_CLIP_STD)
    torch.testing.assert_close(x[0, :, 0, 0], expected)
    assert evaluator.logits([]).shape == (0, 1000)


def test_load_eva02_without_timm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm -> ImportError
    with pytest.raises(ImportError, match="pip install timm"):
        load_eva02()


def test_load_eva02_without_cached_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_timm = types.ModuleType("timm")
    fake_timm.create_model = lambda *a, **k: pytest.fail("must not build a model without weights")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "timm", fake_timm)
    with pytest.raises(hub.HubUnavailableError, match="hf download timm/eva02_large_patch14_448.mim_m38m_ft_in22k_in1k"):
        load_eva02(cache_dir=str(tmp_path))
