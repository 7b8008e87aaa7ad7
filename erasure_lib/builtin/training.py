"""What the built-in world's trainers share: batches of rendered images, the learning-rate schedule, the EMA.

The schedule and the EMA are diffusers' own (``get_scheduler("cosine")``, ``EMAModel``). The shipped
models were trained with hand-written versions of both; ``tests/test_builtin_training_tools.py``
states how the two relate, step by step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np
import torch
from diffusers.training_utils import EMAModel
from torch.optim.lr_scheduler import LambdaLR
from transformers.optimization import get_cosine_with_min_lr_schedule_with_warmup

from erasure_lib.data import STYLES, FashionMNIST, render


def render_batch(data: FashionMNIST, indices: np.ndarray, styles: np.ndarray, flips: np.ndarray, size: int) -> torch.Tensor:
    """Render images to a (N, 3, size, size) tensor in [-1, 1] (style index per image, optional horizontal flip)."""
    out = np.empty((len(indices), size, size, 3), dtype=np.float32)
    for k, (i, s, f) in enumerate(zip(indices, styles, flips)):
        image = render(data.images[i], STYLES[s], size)
        out[k] = image[:, ::-1] if f else image
    return torch.from_numpy(out).permute(0, 3, 1, 2) * 2.0 - 1.0


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, min_lr_rate: float = 0.1) -> LambdaLR:
    """transformers' cosine schedule with a floor: at step s the factor is s / warmup_steps during the
    warm-up, then a half cosine from 1 down to ``min_lr_rate`` at ``total_steps``. The floor of 0.1 is
    the recipe the shipped built-in model was trained with (diffusers' ``get_scheduler("cosine")``
    decays to 0: 8.5% less learning rate over a run); the hand-written schedule it replaces warmed
    up one step earlier, (s + 1) / warmup_steps."""
    return get_cosine_with_min_lr_schedule_with_warmup(optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps,
                                                       min_lr_rate=min_lr_rate)


def parameter_ema(parameters: Iterable[torch.nn.Parameter], decay: float) -> EMAModel:
    """diffusers' ``EMAModel``; its n-th update (n = 1, 2, ...) uses the decay min(decay, (1 + n) / (10 + n)).

    That is the warm-up the shipped built-in model was trained with. diffusers counts its steps from
    0 (its first update copies the weights); ``update_after_step=-1`` shifts the count by one.
    """
    return EMAModel(parameters, decay=decay, update_after_step=-1, use_ema_warmup=False)


def timed(fn: Callable, *args, **kwargs) -> tuple[object, float]:
    """``fn(*args, **kwargs)`` and its wall-clock seconds."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0
