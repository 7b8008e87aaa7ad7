"""The built-in world's evaluator: a CNN that names the garment class and the style of a 32 px image.

It plays the role of the paper's ImageNet classifier (EVA02) for the built-in model: the detection
rate of a class is the share of generated images it assigns to that class (paper, Sec. 4.1).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from erasure_lib.data import CLASSES, STYLES, FashionMNIST
from erasure_lib.io import atomic_directory


@dataclass(frozen=True)
class ClassifierConfig:
    seed: int = 0
    steps: int = 2500
    batch_size: int = 128
    lr: float = 2e-3
    width: int = 32
    image_size: int = 32


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


def _augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Shifts of up to 2 px, mild blur and noise: generated images are not pixel-perfect."""
    dx, dy = rng.integers(-2, 3, size=2)
    x = torch.roll(x, shifts=(int(dy), int(dx)), dims=(2, 3))
    if rng.random() < 0.3:
        x = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1) * 0.5 + x * 0.5
    return x + 0.05 * rng.random() * torch.randn_like(x)


def _batch(data: FashionMNIST, idx: np.ndarray, styles: np.ndarray, flips: np.ndarray, size: int) -> torch.Tensor:
    from erasure_lib.builtin import render_batch

    return render_batch(data, idx, styles, flips, size)


def train_classifier(config: ClassifierConfig, train: FashionMNIST) -> tuple[GarmentStyleClassifier, list[float]]:
    """Train on real Fashion-MNIST renders of every style, with flips and light augmentation."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = GarmentStyleClassifier(config.width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.steps)
    losses = []
    model.train()
    for _ in tqdm(range(config.steps), desc="classifier", mininterval=10):
        idx = rng.integers(len(train.labels), size=config.batch_size)
        styles = rng.integers(len(STYLES), size=len(idx))
        x = _augment(_batch(train, idx, styles, rng.random(len(idx)) < 0.5, config.image_size), rng)
        class_logits, style_logits = model(x)
        y = torch.from_numpy(train.labels[idx].astype(np.int64))
        loss = F.cross_entropy(class_logits, y) + F.cross_entropy(style_logits, torch.from_numpy(styles))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return model.eval(), losses


@torch.no_grad()
def real_accuracy(model: GarmentStyleClassifier, test: FashionMNIST, image_size: int = 32) -> dict[str, dict[str, float]]:
    """Per-style, per-class accuracy on real held-out test images, and style accuracy."""
    out: dict[str, dict[str, float]] = {}
    n = len(test.labels)
    for s, style in enumerate(STYLES):
        preds, style_preds = [], []
        for start in range(0, n, 1000):
            idx = np.arange(start, min(n, start + 1000))
            c, st = model(_batch(test, idx, np.full(len(idx), s), np.zeros(len(idx), bool), image_size))
            preds.append(c.argmax(1).numpy())
            style_preds.append(st.argmax(1).numpy())
        pred, style_pred = np.concatenate(preds), np.concatenate(style_preds)
        row = {name: float((pred[test.labels == k] == k).mean()) for k, name in enumerate(CLASSES)}
        row["all"] = float((pred == test.labels).mean())
        row["style_accuracy"] = float((style_pred == s).mean())
        out[style] = row
    return out


def save_classifier(model: GarmentStyleClassifier, config: ClassifierConfig, path: Path, extra: dict) -> None:
    with atomic_directory(path.parent) as tmp:
        save_file(model.state_dict(), tmp / path.name)
        record = {"config": asdict(config), "classes": list(CLASSES), "styles": list(STYLES), **extra}
        (tmp / "classifier.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


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
