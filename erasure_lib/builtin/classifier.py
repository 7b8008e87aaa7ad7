"""Training of the built-in world's evaluator, the garment and style classifier.

The model class, loading and scoring live in :mod:`erasure_lib.metrics.classifier`; its
:func:`~erasure_lib.metrics.classifier.real_accuracy` is re-exported here for the training notebook.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm.auto import tqdm

from erasure_lib.builtin.training import render_batch
from erasure_lib.data import CLASSES, STYLES, FashionMNIST
from erasure_lib.io import atomic_directory
from erasure_lib.metrics.classifier import GarmentStyleClassifier, real_accuracy

__all__ = ["ClassifierConfig", "real_accuracy", "save_classifier", "train_classifier"]


@dataclass(frozen=True)
class ClassifierConfig:
    seed: int = 0
    steps: int = 2500
    batch_size: int = 128
    lr: float = 2e-3
    width: int = 32
    image_size: int = 32


def _augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Shifts of up to 2 px, mild blur and noise: generated images are not pixel-perfect."""
    dx, dy = rng.integers(-2, 3, size=2)
    x = torch.roll(x, shifts=(int(dy), int(dx)), dims=(2, 3))
    if rng.random() < 0.3:
        x = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1) * 0.5 + x * 0.5
    return x + 0.05 * rng.random() * torch.randn_like(x)


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
        x = _augment(render_batch(train, idx, styles, rng.random(len(idx)) < 0.5, config.image_size), rng)
        class_logits, style_logits = model(x)
        y = torch.from_numpy(train.labels[idx].astype(np.int64))
        loss = F.cross_entropy(class_logits, y) + F.cross_entropy(style_logits, torch.from_numpy(styles))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return model.eval(), losses


def save_classifier(model: GarmentStyleClassifier, config: ClassifierConfig, path: Path, extra: dict) -> None:
    """Write the weights (safetensors) and ``classifier.json`` (config, classes, styles, ``extra``), atomically."""
    with atomic_directory(path.parent) as tmp:
        save_file(model.state_dict(), tmp / path.name)
        record = {"config": asdict(config), "classes": list(CLASSES), "styles": list(STYLES), **extra}
        (tmp / "classifier.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
