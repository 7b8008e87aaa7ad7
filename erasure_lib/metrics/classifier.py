"""The built-in world's evaluator: a CNN that names the garment class and the style of a 32 px image.

It plays the role of the paper's ImageNet classifier (EVA02) for the built-in model: the detection
rate of a class is the share of generated images it assigns to that class (paper, Sec. 4.1).
This module loads and applies it; :mod:`erasure_lib.builtin.classifier` trains it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from safetensors.torch import load_file

from erasure_lib.data import CLASSES, STYLES, FashionMNIST, render


class GarmentStyleClassifier(nn.Module):
    """Four conv blocks, then two linear heads: class (10) and style (3)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())

        self.features = nn.Sequential(
            block(3, w), block(w, w), nn.MaxPool2d(2),
            block(w, 2 * w), block(2 * w, 2 * w), nn.MaxPool2d(2),
            block(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
        )  # fmt: skip
        self.class_head = nn.Linear(4 * w, len(CLASSES))
        self.style_head = nn.Linear(4 * w, len(STYLES))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.class_head(h), self.style_head(h)


@torch.no_grad()
def real_accuracy(
    model: GarmentStyleClassifier, test: FashionMNIST, image_size: int = 32, styles: Sequence[str] = STYLES
) -> dict[str, dict[str, float]]:
    """Per-style, per-class accuracy on real held-out test images, and style accuracy, for each of
    ``styles`` (each style's numbers are the same whichever others are measured)."""
    unknown = sorted(set(styles) - set(STYLES))
    if unknown:
        raise ValueError(f"unknown styles {unknown}; expected some of {STYLES}")
    out: dict[str, dict[str, float]] = {}
    n = len(test.labels)
    for s, style in enumerate(STYLES):
        if style not in styles:
            continue
        preds, style_preds = [], []
        for start in range(0, n, 1000):
            idx = np.arange(start, min(n, start + 1000))
            x = np.stack([render(test.images[i], style, image_size) for i in idx]).astype(np.float32)
            c, st = model(torch.from_numpy(x).permute(0, 3, 1, 2) * 2.0 - 1.0)  # [-1, 1], as in training
            preds.append(c.argmax(1).numpy())
            style_preds.append(st.argmax(1).numpy())
        pred, style_pred = np.concatenate(preds), np.concatenate(style_preds)
        row = {name: float((pred[test.labels == k] == k).mean()) for k, name in enumerate(CLASSES)}
        row["all"] = float((pred == test.labels).mean())
        row["style_accuracy"] = float((style_pred == s).mean())
        out[style] = row
    return out


def load_classifier(path: Path | str) -> GarmentStyleClassifier:
    """Load the shipped evaluator (``models/classifier/classifier.safetensors``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"classifier weights {path} not found; run notebooks/00-train-base-model.ipynb")
    record = json.loads((path.parent / "classifier.json").read_text())
    model = GarmentStyleClassifier(record["config"]["width"])
    model.load_state_dict(load_file(path))
    return model.eval()


@torch.no_grad()
def classify(
    model: GarmentStyleClassifier, images: Sequence[Image.Image] | torch.Tensor, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Class and style probabilities, (N, 10) and (N, 3), for PIL images or a [0, 1] tensor (N, 3, H, W)."""
    if not isinstance(images, torch.Tensor):
        arrays = [np.asarray(im.convert("RGB").resize((32, 32), Image.BICUBIC), dtype=np.float32) / 255.0 for im in images]
        images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    x = images * 2.0 - 1.0
    class_probs, style_probs = [], []
    for chunk in x.split(batch_size):
        c, s = model(chunk)
        class_probs.append(c.softmax(1))
        style_probs.append(s.softmax(1))
    return torch.cat(class_probs).numpy(), torch.cat(style_probs).numpy()
