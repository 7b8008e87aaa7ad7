"""Figures: sample grids, loss curves, trade-off plots (matplotlib; ``results.save_figure`` writes them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from erasure_lib.data import wordings_in


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


def tradeoff(
    summary, group: str, step: str, x: str = "erased_share", y: str = "others_accuracy", chosen: Mapping[str, float] | None = None
) -> plt.Figure:
    """Erasure against preservation: one line per ``group`` value, points along ``step``; ``chosen``
    (a ``{group: value, step: value}`` mapping, e.g. :func:`erasure_lib.evaluation.choose_setting`'s
    answer) is marked with a star."""
    fig, ax = plt.subplots(figsize=(5, 4))
    for value, part in summary.groupby(group):
        part = part.sort_values(step)
        ax.plot(part[x], part[y], marker="o", ms=3, label=f"{group}={value:g}" if isinstance(value, float) else f"{group}={value}")
        last = part.iloc[-1]
        ax.annotate(f"{step}={last[step]:g}", (last[x], last[y]), fontsize=6)
    if chosen is not None:
        point = summary[np.isclose(summary[group], chosen[group]) & (summary[step] == chosen[step])]
        if len(point) != 1:
            raise ValueError(f"chosen setting {dict(chosen)} is not one row of the summary")
        ax.plot(point[x], point[y], marker="*", ms=14, color="k", ls="none", zorder=5,
                label=f"chosen: {group}={chosen[group]:g}, {step}={chosen[step]:g}")
    ax.set_xlabel(f"{x} (lower is better: more erased)")
    ax.set_ylabel(f"{y} (higher is better: better kept)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def before_after_bars(table) -> plt.Figure:
    """Per erased class: erased share and other classes' accuracy, before (grey bar) and after (the
    mean over seeds as a bar, each seed as a point)."""
    g = table.groupby("erased_class")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    x = np.arange(len(g))
    labels = {"erased_share": "erased share (lower is better)", "others_accuracy": "other classes' accuracy (higher is better)"}
    for ax, metric in zip(axes, ("erased_share", "others_accuracy")):
        color = "tab:red" if metric == "erased_share" else "tab:blue"
        ax.bar(x - 0.2, g[f"{metric}_before"].mean().to_numpy(), 0.4, label="before", color="0.7")
        ax.bar(x + 0.2, g[f"{metric}_after"].mean().to_numpy(), 0.4, label="after (mean over seeds)", color=color, alpha=0.6)
        for i, (_, part) in enumerate(g):
            ax.plot(np.full(len(part), x[i] + 0.2), part[f"{metric}_after"], "o", ms=3, color="k",
                    label="after, one seed" if i == 0 else None)  # fmt: skip
        ax.set_xticks(x, list(g.groups), rotation=45, ha="right", fontsize=8)
        ax.set_title(labels[metric], fontsize=9)
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("share of generated images")
    fig.tight_layout()
    return fig


def transition_heatmaps(transitions, classes: Sequence[str], panels: Sequence[str] = ("before", "after")) -> plt.Figure:
    """One heatmap per value of ``when`` in ``panels`` (before / after erasure by default): rows =
    prompted (erased) class, columns = predicted class (mean over seeds)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 5.4), squeeze=False)
    axes = axes[0]
    # Verdicts outside ``classes`` (an ImageNet judge's "none of them") get their own columns.
    classes = [*classes, *sorted(set(transitions["predicted_class"]) - set(classes))]
    rows = [c for c in classes if c in set(transitions["erased_class"])]  # the same rows in every panel
    for k, (ax, when) in enumerate(zip(axes, panels)):
        part = transitions[transitions["when"] == when]
        matrix = part.groupby(["erased_class", "predicted_class"])["share"].mean().unstack(fill_value=0.0)
        matrix = matrix.reindex(index=rows, columns=list(classes), fill_value=0.0)
        im = ax.imshow(matrix.to_numpy(), vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(classes)), list(classes), rotation=45, ha="right", fontsize=9)
        ax.set_yticks(range(len(rows)), rows if k == 0 else [], fontsize=9)
        ax.set_xlabel("classified as")
        if k == 0:
            ax.set_ylabel("prompted class (erased)")
        ax.set_title(f"{when} erasure" if when in ("before", "after") else when, fontsize=10)
        for i in range(len(rows)):
            for j in range(len(classes)):
                value = matrix.iat[i, j]
                if value >= 0.05:
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="w" if value < 0.6 else "k")
    fig.colorbar(im, ax=axes, shrink=0.8, label="share of the prompted class's images")
    return fig


def option_bars(summary) -> plt.Figure:
    """Erased share and other classes' accuracy per option (one row per option in ``summary``)."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    x = np.arange(len(summary))
    ax.bar(x - 0.2, summary["erased_share"], 0.4, label="erased share (lower: erased)", color="tab:red")
    ax.bar(x + 0.2, summary["others_accuracy"], 0.4, label="other classes' accuracy (higher: kept)", color="tab:blue")
    labels = [f"{o}\n{int(n) / 1e6:.2f}M" if n else str(o) for o, n in zip(summary["option"], summary["trainable_parameters"])]
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def option_fronts(summary, levels: Sequence[float] = ()) -> plt.Figure:
    """Each parameter option's front: mean UA against mean IRA over the runs after each judged epoch
    (from the base model, epochs 0), with 95% bootstrap intervals on both axes (an
    :func:`erasure_lib.evaluation.unlearning_summary` by option and epochs); dashed lines at the
    matched UA ``levels``. With a ``wording`` column, the paper's wording solid with its intervals
    and each other wording dashed, in the option's colour."""
    wordings = wordings_in(summary)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for k, (option, rows) in enumerate(summary.groupby("option", sort=False)):
        for wording, dash in zip(wordings, ("-", "--", ":", "-.")):
            part = (rows if wording is None else rows[rows["wording"] == wording]).sort_values("epochs")
            first = part.iloc[0]
            label = f"{option} ({int(first.trainable_parameters) / 1e6:.2f}M weights)" if wording in (None, wordings[0]) else f"{option}, {wording} wordings"
            ax.plot(np.r_[first.UA_before, part.UA], np.r_[first.IRA_before, part.IRA], dash, color=f"C{k}", marker="o", ms=3, label=label)
            if wording not in (None, wordings[0]):
                continue
            ax.errorbar(part.UA, part.IRA, xerr=[part.UA - part.UA_low, part.UA_high - part.UA],
                        yerr=[part.IRA - part.IRA_low, part.IRA_high - part.IRA], fmt="none", color=f"C{k}", alpha=0.5, lw=0.8)  # fmt: skip
            last = part.iloc[-1]
            ax.annotate(f"{last.epochs:g} ep.", (last.UA, last.IRA), fontsize=6)
    for level in levels:
        ax.axvline(level, ls="--", color="0.5", lw=0.8)
    ax.set_xlabel("UA: share of the erased class's images not judged as it (higher is better)")
    ax.set_ylabel("IRA: other classes' accuracy (higher is better)")
    if len(wordings) > 1:
        ax.set_title(f"{wordings[0]} wordings solid (with 95% intervals), " + ", ".join(wordings[1:]) + " dashed", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6 if len(wordings) > 1 else 7)
    fig.tight_layout()
    return fig


def style_measures(summary) -> plt.Figure:
    """One panel per erased style: UA, IRA and CRA against epochs (an
    :func:`erasure_lib.evaluation.style_unlearning_summary` with ``epochs``), the base model at epoch
    0, the 95% interval over seeds as a band; with a ``wording`` column, the paper's wording solid
    with its bands and each other wording dashed."""
    styles = list(dict.fromkeys(summary["erased_style"]))
    wordings = wordings_in(summary)
    fig, axes = plt.subplots(1, len(styles), figsize=(4.2 * len(styles), 3.4), sharey=True, squeeze=False)
    names = {"UA": "UA: own style gone (higher is better)", "IRA": "IRA: other styles kept (higher is better)",
             "CRA": "CRA: garments kept (higher is better)"}  # fmt: skip
    for ax, style in zip(axes[0], styles):
        for k, (measure, label) in enumerate(names.items()):
            for wording, dash in zip(wordings, ("-", "--", ":", "-.")):
                part = summary[(summary["erased_style"] == style) & (True if wording is None else summary["wording"] == wording)].sort_values("epochs")
                x = np.r_[0, part["epochs"]]
                shown = label if wording is None else f"{label}, {wording} wordings" if wording == wordings[0] else f"{measure}, {wording} wordings"
                ax.plot(x, np.r_[part[f"{measure}_before"].iloc[0], part[measure]], dash, color=f"C{k}", marker="o", ms=3, label=shown)
                if wording == wordings[0]:
                    ax.fill_between(part["epochs"], part[f"{measure}_low"], part[f"{measure}_high"], color=f"C{k}", alpha=0.15)
        ax.set_title(f"erasing {style}", fontsize=10)
        ax.set_xlabel("epochs (0 = base model)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("share of generated images")
    axes[0][0].legend(fontsize=6 if len(wordings) > 1 else 7)
    fig.tight_layout()
    return fig


def epoch_curves(epochs_table) -> plt.Figure:
    """Erased share and other classes' accuracy against epochs: one point per run (class and seed),
    the mean over runs as a line; with a ``wording`` column, one mean line per wording (the points
    of every wording drawn alike)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    labels = {"erased_share": "erased share (lower is better)", "others_accuracy": "other classes' accuracy (higher is better)"}
    wordings = wordings_in(epochs_table)
    for ax, metric in zip(axes, ("erased_share", "others_accuracy")):
        ax.plot(epochs_table["epochs"], epochs_table[metric], "o", ms=3, alpha=0.35, color="0.3", label="one run")
        for wording, style in zip(wordings, ("-", "--", ":", "-.")):
            part = epochs_table if wording is None else epochs_table[epochs_table["wording"] == wording]
            mean = part.groupby("epochs")[metric].mean()
            ax.plot(mean.index, mean, style, marker="o", ms=4, lw=2, label="mean" + ("" if wording is None else f", {wording} wordings"))
        ax.set_xlabel("epochs (0: before erasure)")
        ax.set_title(labels[metric], fontsize=9)
        ax.set_ylim(-0.03, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def loss_by_step(losses) -> plt.Figure:
    """The per-step ascent loss of every run, one faint line per class (and seed), the mean in bold."""
    runs = sorted(losses["run"].unique())
    one_run = ["erased_class", *(["seed"] if "seed" in losses else [])]
    fig, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 3), squeeze=False)
    for ax, run in zip(axes[0], runs):
        part = losses[losses["run"] == run]
        for _, curve in part.groupby(one_run):
            ax.plot(curve["step"], curve["loss"], lw=0.7, alpha=0.4)
        mean = part.groupby("step")["loss"].mean()
        ax.plot(mean.index, mean, lw=2, color="k", label="mean")
        ax.set_title(f"ascent loss (- denoising loss), {run}", fontsize=9)
        ax.set_xlabel("optimizer step")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def related_share_bars(table) -> plt.Figure:
    """Per erased class: the share of leaving images that land in a related class, after erasure,
    under a random update of the same size (when the table has it), in the base model's confusions,
    and by chance."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    x = np.arange(len(table))
    bars = [("related_share_of_leavers_after", "after erasure", "tab:red"),
            ("related_share_of_leavers_random", "random update of the same size", "tab:blue"),
            ("related_share_of_leavers_before", "base model's confusions", "0.6"), ("chance", "chance", "0.85")]  # fmt: skip
    bars = [b for b in bars if b[0] in table]
    width = 0.8 / len(bars)
    for i, (column, label, color) in enumerate(bars):
        ax.bar(x + (i - (len(bars) - 1) / 2) * width, table[column], width, label=label, color=color)
    ax.set_xticks(x, table["erased_class"], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("share of leaving images\nthat land in a related class", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def neighbour_front(table) -> plt.Figure:
    """Erased share against related / unrelated classes' accuracy (mean over classes): one line per
    method (and learning rate, when the table has an ``lr`` column) through its checkpoints; with a
    ``wording`` column, the paper's wording solid and each other wording dashed (hollow markers), in
    the method's colour."""
    keys = ["method", "lr"] if "lr" in table else ["method"]
    wordings = wordings_in(table)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharex=True, sharey=True)
    for ax, y in zip(axes, ("related_accuracy", "unrelated_accuracy")):
        for i, (key, part) in enumerate(table.groupby(keys, dropna=False, sort=False)):
            method, lr = (key[0], key[1]) if len(keys) == 2 else (key[0], float("nan"))
            for wording, dash in zip(wordings, ("-", "--", ":", "-.")):
                mean = (part if wording is None else part[part["wording"] == wording]).groupby("epochs")[["erased_share", y]].mean()
                if mean.empty:
                    continue
                label = method if lr != lr or len(mean) == 1 else f"{method}, lr {lr:g}"
                first = wording in (None, wordings[0])
                style = {"marker": "*", "ms": 12, "ls": "none"} if len(mean) == 1 else {"marker": "o", "ms": 3, "ls": dash}
                ax.plot(mean["erased_share"], mean[y], label=label if first else f"{label}, {wording} wordings", color=f"C{i % 10}",
                        **style, **({} if first else {"mfc": "none"}))  # fmt: skip
                if len(mean) > 1 and first:
                    last = mean.iloc[-1]
                    ax.annotate(f"epoch {mean.index[-1]}", (last["erased_share"], last[y]), fontsize=6)
        ax.set_xlabel("erased share (lower: more erased)")
        ax.set_ylabel(y.replace("_", " ") + " (higher: kept)")
        ax.grid(alpha=0.3)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
    if len(wordings) > 1:
        fig.suptitle(f"{wordings[0]} wordings solid, " + ", ".join(wordings[1:]) + " dashed (hollow markers)", fontsize=8)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def method_comparison(comparison) -> plt.Figure:
    """Per method (and wording, for a comparison judged in several: hatched bars for the second and
    later): erased share (UA's complement), other classes' accuracy, FID, CLIP score and time. Bars
    are means over the runs (erased class x seed) with their 95% bootstrap interval; the points are
    the per-seed means (over classes), so that a spread between seeds shows."""
    from erasure_lib.evaluation import spread

    columns = [c for c in ("erased_share", "others_accuracy", "fid", "clip_score", "optimization_seconds") if c in comparison]
    methods = list(dict.fromkeys(comparison["method"]))
    wordings = list(dict.fromkeys(comparison["wording"])) if "wording" in comparison else [None]
    bars = [(m, w) for m in methods for w in wordings]
    fig, axes = plt.subplots(1, len(columns), figsize=(3.3 * len(columns) * (1 + 0.4 * (len(wordings) - 1)), 3.2))
    names = {"erased_share": "erased share (lower is better)", "others_accuracy": "other classes' accuracy (higher is better)",
             "fid": "FID, other classes (lower is better)", "clip_score": "CLIP score, other classes (higher is better)",
             "optimization_seconds": "optimization seconds, log (lower is better)"}  # fmt: skip
    for ax, column in zip(np.atleast_1d(axes), columns):
        for k, (method, wording) in enumerate(bars):
            runs = comparison[(comparison["method"] == method) & (True if wording is None else comparison["wording"] == wording)]
            values = runs[column].dropna().to_numpy(dtype=float)
            mean = float(values.mean()) if len(values) else float("nan")
            low, high = spread(values)
            ax.bar(k, mean, color=f"C{methods.index(method)}", alpha=0.6, hatch=None if wording == wordings[0] else "//")
            if len(values) > 1:
                ax.errorbar(k, mean, yerr=[[mean - low], [high - mean]], color="black", capsize=3, lw=1)
            if "seed" in runs:
                per_seed = runs.groupby("seed")[column].mean().to_numpy(dtype=float)
                offsets = np.linspace(-0.25, 0.25, len(per_seed)) if len(per_seed) > 1 else np.zeros(1)
                ax.plot(k + offsets, per_seed, "o", color="black", ms=2.5, alpha=0.7)
        labels = [m if w is None else f"{m}, {w}" for m, w in bars]
        ax.set_xticks(range(len(bars)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(names[column], fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        if column == "optimization_seconds":
            ax.set_yscale("log")
    fig.tight_layout()
    return fig


def ratio_label(ratio: float) -> str:
    """A speed ratio as read in the paper: whole numbers from 10x up, two significant digits below
    (UCE's 0.034x must not print as 0.0x)."""
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.2g}x"


def time_bars(summary) -> plt.Figure:
    """Median optimization time per method (log scale), labelled with the ratio to few-shot unlearning."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    x = np.arange(len(summary))
    ax.bar(x, summary["seconds_median"], color=[f"C{i}" for i in range(len(summary))])
    for i, (s, r) in enumerate(zip(summary["seconds_median"], summary["ratio_to_fewshot"])):
        ax.annotate(ratio_label(r), (i, s), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, summary["method"], rotation=20, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(top=float(summary["seconds_median"].max()) * 4)  # room for the top label
    ax.set_ylabel("median optimization seconds\n(lower is better)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def erasure_window(trajectories, bounds, columns: int | None = None) -> plt.Figure:
    """One panel per (stand-in, learning rate), ``columns`` to a row (default: all in one row): for
    each concept and seed, a segment from the first step at which the concept is erased (circle) to
    the first at which the other classes are damaged (cross); green where a clean window exists.
    Lower steps are cheaper; a wide green segment is a forgiving window."""
    panels = list(bounds.groupby(["stand_in", "lr"], sort=False))
    ncols = min(columns or len(panels), len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, (0.42 * bounds.concept.nunique() + 1.6) * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, ((stand_in, lr), part) in zip(axes.flat, panels):
        concepts = sorted(part.concept.unique())
        seeds = sorted(part.seed.unique())
        last = float(trajectories[(trajectories.stand_in == stand_in) & (trajectories.lr == lr)].step.max())
        for i, concept in enumerate(concepts):
            for j, seed in enumerate(seeds):
                row = part[(part.concept == concept) & (part.seed == seed)]
                if row.empty:
                    continue
                row = row.iloc[0]
                y = i + (j - (len(seeds) - 1) / 2) * 0.22
                start = row.erased_step if np.isfinite(row.erased_step) else np.nan
                end = row.damage_step if np.isfinite(row.damage_step) else last * 1.15
                colour = "tab:green" if row.clean else "tab:red"
                if np.isfinite(start):
                    ax.plot([start, max(start, end)], [y, y], color=colour, lw=2, alpha=0.8)
                    ax.plot(start, y, "o", color=colour, ms=4)
                if np.isfinite(row.damage_step):
                    ax.plot(row.damage_step, y, "x", color="black", ms=5)
        ax.set_yticks(range(len(concepts)), concepts, fontsize=8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("optimizer steps (log scale)")
        ax.set_title(f"{stand_in}, lr {lr:g}\n(o erased: share <= 0.10; x others' accuracy fell > 0.10)", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def stopping_rule_outcomes(heldout, max_erased: float = 0.10, max_drop: float = 0.10) -> plt.Figure:
    """Held-out erasures: erased share (lower is better) against the others' accuracy drop (lower is
    better), one point per concept x seed, one colour per setting; the target box dashed."""
    fig, ax = plt.subplots(figsize=(6.2, 4.4))
    for (name, part), marker in zip(heldout.groupby("setting", sort=True), "os^Dv"):
        ax.scatter(part.erased_share, part.others_drop, label=f"{name} ({len(part)} runs)", marker=marker, alpha=0.7, s=28)
    ax.add_patch(plt.Rectangle((-0.02, -1), max_erased + 0.02, 1 + max_drop, fill=False, ls="--", color="grey"))
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("erased share: the concept's images still judged as it (lower is better)")
    ax.set_ylabel("drop of the other classes' accuracy (lower is better)")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_xlim(-0.05, 1.05)
    fig.tight_layout()
    return fig


def sampler_agreement(table, reference: tuple[str, int]) -> plt.Figure:
    """Each (sampler, steps) setting: its verdicts' agreement with the reference setting's (with the
    interval over models) against its speed-up; the dashed line is the reference at twice its steps
    (the agreement "converged" already allows), where that setting was judged."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, (sampler, part) in enumerate(table.groupby("sampler", sort=False)):
        part = part.sort_values("sampling_steps")
        err = [part.label_agreement - part.label_agreement_low, part.label_agreement_high - part.label_agreement]
        ax.errorbar(part.speedup, part.label_agreement, yerr=err, marker="o", ms=4, capsize=2, color=f"C{i}", label=sampler)
        for _, row in part.iterrows():
            ax.annotate(f"{row.sampling_steps}", (row.speedup, row.label_agreement), fontsize=7, xytext=(3, 3), textcoords="offset points")
    floor = table[(table.sampler == reference[0]) & (table.sampling_steps == 2 * reference[1])]
    if len(floor):
        ax.axhline(floor.label_agreement.iloc[0], ls="--", color="grey", lw=1, label=f"{reference[0]} {2 * reference[1]} steps")
    ax.set_xscale("log")
    ax.set_xlabel(f"speed-up over {reference[0]}, {reference[1]} steps (higher is faster)")
    ax.set_ylabel("verdicts equal to the reference's (higher is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
