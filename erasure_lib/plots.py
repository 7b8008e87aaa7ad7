"""Figures: sample grids, loss curves, trade-off plots (matplotlib; ``results.save_figure`` writes them)."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image


def image_grid(
    grid: Sequence[Sequence[Image.Image]],
    row_labels: Sequence[str],
    col_labels: Sequence[str] | None = None,
    cell: float = 0.7,
    title: str | None = None,
) -> plt.Figure:
    """Rows of images with a label per row (and per column)."""
    n_rows, n_cols = len(grid), max(len(r) for r in grid)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell * n_cols + 1.4, cell * n_rows + 0.4), squeeze=False)
    for i, row in enumerate(grid):
        for j in range(n_cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(row):
                ax.imshow(np.asarray(row[j]), interpolation="nearest")
            if j == 0:
                ax.set_ylabel(row_labels[i], rotation=0, ha="right", va="center", fontsize=8)
            if i == 0 and col_labels is not None:
                ax.set_title(col_labels[j], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


def smooth(values: Sequence[float], k: int = 50) -> np.ndarray:
    """Moving average over ``k`` steps (the values unchanged when there are fewer)."""
    values = np.asarray(values, dtype=float)
    return np.convolve(values, np.ones(k) / k, mode="valid") if len(values) > k else values


def loss_curves(curves: dict[str, Sequence[float]], log_scale: bool = True, k: int = 50) -> plt.Figure:
    """One panel per named loss history: raw (faint) and smoothed."""
    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3), squeeze=False)
    for ax, (name, values) in zip(axes[0], curves.items()):
        ax.plot(values, alpha=0.3, lw=0.5)
        ax.plot(smooth(values, k), lw=1.5)
        ax.set_title(name)
        ax.set_xlabel("step")
        if log_scale:
            ax.set_yscale("log")
    fig.tight_layout()
    return fig


def tradeoff(summary, group: str, step: str, x: str = "erased_share", y: str = "others_accuracy") -> plt.Figure:
    """Erasure against preservation: one line per ``group`` value, points along ``step``."""
    fig, ax = plt.subplots(figsize=(5, 4))
    for value, part in summary.groupby(group):
        part = part.sort_values(step)
        ax.plot(part[x], part[y], marker="o", ms=3, label=f"{group}={value:g}" if isinstance(value, float) else f"{group}={value}")
        last = part.iloc[-1]
        ax.annotate(f"{step}={last[step]:g}", (last[x], last[y]), fontsize=6)
    ax.set_xlabel(f"{x} (lower: more erased)")
    ax.set_ylabel(f"{y} (higher: better kept)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def before_after_bars(table) -> plt.Figure:
    """Per erased class: erased share and other classes' accuracy, before and after (mean and range over seeds)."""
    g = table.groupby("erased_class")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), sharey=True)
    x = np.arange(len(g))
    for ax, metric in zip(axes, ("erased_share", "others_accuracy")):
        before, after = g[f"{metric}_before"].mean(), g[f"{metric}_after"]
        ax.bar(x - 0.2, before.to_numpy(), 0.4, label="before", color="0.7")
        mean = after.mean().to_numpy()
        err = np.stack([mean - after.min().to_numpy(), after.max().to_numpy() - mean])
        ax.bar(x + 0.2, mean, 0.4, yerr=err, capsize=2, label="after", color="tab:red" if metric == "erased_share" else "tab:blue")
        ax.set_xticks(x, list(g.groups), rotation=45, ha="right", fontsize=8)
        ax.set_title(metric.replace("_", " "))
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("share of generated images")
    fig.tight_layout()
    return fig
