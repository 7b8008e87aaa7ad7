"""Detection rates: the share of generated images a classifier assigns to a class (paper, Sec. 4.1)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def detection_rate(predicted: Sequence[int] | np.ndarray, target: int) -> float:
    """Share of images whose predicted class is ``target``."""
    predicted = np.asarray(predicted)
    if predicted.size == 0:
        raise ValueError("no predictions given")
    return float((predicted == target).mean())


def transition_matrix(prompt_class: Sequence[int] | np.ndarray, predicted: Sequence[int] | np.ndarray, n_classes: int) -> np.ndarray:
    """Row ``i``: the distribution of predicted classes over images prompted with class ``i``."""
    prompt_class, predicted = np.asarray(prompt_class), np.asarray(predicted)
    counts = np.zeros((n_classes, n_classes))
    np.add.at(counts, (prompt_class, predicted), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def erased_and_others(prompt_class: np.ndarray, predicted: np.ndarray, erased: Sequence[int]) -> tuple[float, float]:
    """(share of erased-class prompts still detected as their class, accuracy on the other classes' prompts)."""
    prompt_class, predicted = np.asarray(prompt_class), np.asarray(predicted)
    is_erased = np.isin(prompt_class, list(erased))
    if not is_erased.any():
        raise ValueError(f"no prompts of the erased classes {list(erased)}")
    erased_share = float((predicted[is_erased] == prompt_class[is_erased]).mean())
    others = ~is_erased
    others_accuracy = float((predicted[others] == prompt_class[others]).mean()) if others.any() else float("nan")
    return erased_share, others_accuracy
