"""Generate-then-classify: the one evaluation every method goes through (same prompts, same seeds)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from diffusers import StableDiffusionPipeline
from PIL import Image

from erasure_lib.data import CLASSES, OBJECT_TEMPLATES, object_prompt
from erasure_lib.generate import GenerationConfig, generate
from erasure_lib.metrics.classifier import GarmentStyleClassifier, classify
from erasure_lib.metrics.imagenet import ImageNetEvaluator

if TYPE_CHECKING:  # annotations only: the style loop imports the method where it runs
    from erasure_lib.methods.fewshot import FewShotConfig
    from erasure_lib.metrics.style_judge import StyleJudge

NONE_OF_THEM = "none of them"  # an ImageNet judge's verdict when its top-1 is none of the evaluated classes


@dataclass(frozen=True)
class ClassPromptSet:
    """``n_per_class`` prompts for each class, cycling through the paper's object templates, with
    evaluation seeds ``seed_offset + k`` (the same for every class and every method).
    ``class_index`` indexes ``universe``, the classes the judge names (the garment classes built in)."""

    classes: tuple[str, ...] = CLASSES
    n_per_class: int = 32
    seed_offset: int = 10_000
    style: str = "plain"
    templates: tuple[str, ...] = OBJECT_TEMPLATES
    universe: tuple[str, ...] = CLASSES

    def table(self) -> pd.DataFrame:
        rows = []
        for c, name in enumerate(self.classes):
            for k in range(self.n_per_class):
                template = self.templates[k % len(self.templates)]
                rows.append(
                    {
                        "case_number": c * self.n_per_class + k,
                        "prompt": object_prompt(name, self.style, template),
                        "evaluation_seed": self.seed_offset + k,
                        "class": name,
                        "class_index": self.universe.index(name),
                    }
                )
        return pd.DataFrame(rows)


def classify_generated(
    pipeline: StableDiffusionPipeline,
    classifier: GarmentStyleClassifier | ImageNetEvaluator,
    prompts: pd.DataFrame,
    generation: GenerationConfig,
    progress_bar: bool = False,
) -> pd.DataFrame:
    """Generate one image per row of ``prompts`` and add the classifier's ``predicted`` class and style."""
    images = generate(pipeline, list(prompts["prompt"]), list(prompts["evaluation_seed"]), generation, progress_bar)
    return classify_images(classifier, prompts, images)


def classify_images(
    classifier: GarmentStyleClassifier | ImageNetEvaluator, prompts: pd.DataFrame, images: Sequence[Image.Image]
) -> pd.DataFrame:
    """Add the classifier's ``predicted`` class, ``predicted_style`` and ``confidence`` to ``prompts``, one image per row.

    With an ImageNet judge (the paper's EVA02, Sec. 4.1) ``predicted`` is the evaluated class that is
    the 1000-way top-1, or -1 when the top-1 is none of them; ``predicted_style`` is -1.
    """
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images for {len(prompts)} prompts")
    out = prompts.copy()
    if isinstance(classifier, ImageNetEvaluator):
        verdict = classifier.predict(images)
        out["predicted"] = np.where(verdict.in_classes, verdict.predicted, -1)
        out["predicted_style"] = -1
        out["confidence"] = verdict.probabilities.max(1) if len(images) else np.zeros(0)
        return out
    class_probs, style_probs = classify(classifier, images)
    out["predicted"] = class_probs.argmax(1)
    out["predicted_style"] = style_probs.argmax(1)
    out["confidence"] = class_probs.max(1)
    return out


def per_class_accuracy(classified: pd.DataFrame) -> pd.Series:
    """Share of each class's images predicted as that class."""
    hit = classified["predicted"] == classified["class_index"]
    return hit.groupby(classified["class"]).mean()


def summarize(classified: pd.DataFrame, erased: Sequence[str]) -> dict[str, float]:
    """``erased_share`` (still detected as the erased class) and ``others_accuracy`` (mean over the other classes)."""
    acc = per_class_accuracy(classified)
    unknown = [e for e in erased if e not in acc.index]
    if unknown:
        raise ValueError(f"erased classes {unknown} have no prompts in the evaluation set")
    others = [c for c in acc.index if c not in erased]
    return {
        "erased_share": float(np.mean([acc[e] for e in erased])),
        "others_accuracy": float(acc[others].mean()) if others else float("nan"),
    }


def erasure_prompt_table(
    erased: Sequence[str],
    n_erased: int,
    n_others: int,
    seed_offset: int = 10_000,
    classes: Sequence[str] = CLASSES,
    style: str = "plain",
) -> pd.DataFrame:
    """Prompts for judging one erasure: ``n_erased`` per erased class and ``n_others`` per other class,
    cycling through the object templates, seeds ``seed_offset + k``."""
    unknown = [e for e in erased if e not in classes]
    if unknown:
        raise ValueError(f"unknown class(es) {unknown}; expected names from {list(classes)}")
    kept = tuple(c for c in classes if c not in erased)
    parts = [
        ClassPromptSet(tuple(erased), n_erased, seed_offset, style, universe=tuple(classes)).table(),
        ClassPromptSet(kept, n_others, seed_offset, style, universe=tuple(classes)).table(),
    ]
    table = pd.concat(parts, ignore_index=True)
    table["case_number"] = range(len(table))
    return table


def choose_setting(
    summary: pd.DataFrame, max_erased_share: float, max_others_drop: float, step: str = "epochs", group: str = "lr", min_step: int = 1
) -> dict[str, float]:
    """Pick a setting from a calibration summary (mean over classes, one row per ``group`` x ``step``,
    ``step == 0`` being the base model).

    Among the settings whose erased share is at most ``max_erased_share`` and whose other-class
    accuracy is within ``max_others_drop`` of the base model, the one with the smallest
    ``erased_share + others_drop`` (ties: fewer steps, then the smaller ``group`` value). When none qualifies, the one closest to the target: the smallest
    ``erased_share + max(0, drop - max_others_drop)``. Only settings with at least ``min_step``
    steps are considered.
    """
    base = summary.loc[summary[step] == 0, "others_accuracy"].mean()
    trained = summary[summary[step] >= max(1, min_step)].copy()
    trained["others_drop"] = base - trained["others_accuracy"]
    ok = trained[(trained.erased_share <= max_erased_share) & (trained.others_drop <= max_others_drop)]
    if len(ok):
        best = ok.assign(cost=ok.erased_share + ok.others_drop).sort_values(["cost", step, group]).iloc[0]
        met = True
    else:
        trained["gap"] = trained.erased_share + (trained.others_drop - max_others_drop).clip(lower=0)
        best = trained.sort_values(["gap", step, group]).iloc[0]
        met = False
    return {group: float(best[group]), step: int(best[step]), "erased_share": float(best.erased_share),
            "others_drop": float(best.others_drop), "meets_target": met}


def destinations(
    classified: pd.DataFrame, concept: str, when: str, seed: int, classes: Sequence[str] = CLASSES
) -> list[dict[str, object]]:
    """The classifier's distribution over ``classes`` for the images of ``concept``'s prompts (a transition
    row); an ImageNet judge's images of none of them are counted as ``NONE_OF_THEM``."""
    own = classified[classified["class"] == concept]
    if own.empty:
        raise ValueError(f"no images of {concept!r} in the classified table")
    predicted = own["predicted"].to_numpy()
    names = [*classes, NONE_OF_THEM] if (predicted < 0).any() else list(classes)
    shares = np.bincount(np.where(predicted < 0, len(classes), predicted), minlength=len(names)) / len(own)
    return [
        {"erased_class": concept, "when": when, "seed": seed, "predicted_class": names[k], "share": float(share)}
        for k, share in enumerate(shares)
    ]


def judge(
    pipeline: StableDiffusionPipeline,
    classifier: GarmentStyleClassifier | ImageNetEvaluator,
    prompts: pd.DataFrame,
    erased: Sequence[str],
    generation: GenerationConfig,
) -> dict[str, float]:
    """Generate ``prompts``, classify, and summarize against the ``erased`` classes."""
    return summarize(classify_generated(pipeline, classifier, prompts, generation), erased)


def wording_table(
    concept: str,
    wording: str,
    n: int,
    seed_offset: int = 10_000,
    templates: Sequence[str] = OBJECT_TEMPLATES,
    classes: Sequence[str] = CLASSES,
) -> pd.DataFrame:
    """``n`` prompts that name ``concept`` as ``wording`` (e.g. a misspelling), labelled as ``concept``."""
    if concept not in classes:
        raise ValueError(f"unknown class {concept!r}; expected one of {tuple(classes)}")
    return pd.DataFrame({
        "case_number": range(n),
        "prompt": [templates[k % len(templates)].format(wording) for k in range(n)],
        "evaluation_seed": [seed_offset + k for k in range(n)],
        "class": concept,
        "class_index": list(classes).index(concept),
    })  # fmt: skip


def stopping_rule_table(epochs: pd.DataFrame, ratios: Sequence[float], max_others_drop: float) -> pd.DataFrame:
    """For each class and threshold: the epoch the probe-loss rule stops at against the classifier's best.

    ``epochs`` has columns ``erased_class, epochs, probe_ratio, erased_share, others_accuracy`` with
    ``epochs == 0`` the base model. The best epoch minimises
    ``erased_share + max(0, others_drop - max_others_drop)``; the rule's epoch is the first whose
    probe ratio reaches the threshold (the last epoch if none does: ``stopped`` is False).
    """
    rows = []
    for concept, part in epochs.groupby("erased_class"):
        part = part.sort_values("epochs")
        base = part[part.epochs == 0].iloc[0]
        trained = part[part.epochs > 0].copy()
        trained["others_drop"] = base.others_accuracy - trained.others_accuracy
        cost = trained.erased_share + (trained.others_drop - max_others_drop).clip(lower=0)
        best = trained.loc[cost.idxmin()]
        for r in ratios:
            reached = trained[trained.probe_ratio >= r]
            rule = reached.iloc[0] if len(reached) else trained.iloc[-1]
            rows.append({
                "erased_class": concept, "ratio": r, "epoch_rule": int(rule.epochs), "epoch_best": int(best.epochs),
                "epoch_gap": abs(int(rule.epochs) - int(best.epochs)), "stopped": bool(len(reached)),
                "erased_share_rule": float(rule.erased_share), "erased_share_best": float(best.erased_share),
                "others_drop_rule": float(rule.others_drop), "others_drop_best": float(best.others_drop),
            })  # fmt: skip
    return pd.DataFrame(rows)


def summarize_related(classified: pd.DataFrame, erased: str, groups: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """``erased_share`` plus the accuracy on the erased class's related classes and on the unrelated ones."""
    from erasure_lib.metrics.transitions import related_classes

    acc = per_class_accuracy(classified)
    related = [c for c in related_classes(erased, groups) if c in acc.index]
    unrelated = [c for c in acc.index if c != erased and c not in related]
    return {
        "erased_share": float(acc[erased]),
        "related_accuracy": float(acc[related].mean()) if related else float("nan"),
        "unrelated_accuracy": float(acc[unrelated].mean()) if unrelated else float("nan"),
        "others_accuracy": float(acc[[c for c in acc.index if c != erased]].mean()),
    }


def neighbour_summary(table: pd.DataFrame, max_erased: float, max_related_drop: float) -> pd.DataFrame:
    """Mean over erased classes of every (method, lr, epochs) setting, against the base model's means.

    ``table`` has columns ``erased_class, method, lr, epochs, erased_share, related_accuracy,
    unrelated_accuracy`` and rows of ``method == "base model"``. ``related_drop`` and
    ``unrelated_drop`` are the base model's mean accuracy minus the setting's (classes without
    related classes are left out of the related means); ``meets_aim`` is
    ``erased_share <= max_erased and related_drop <= max_related_drop``.
    """
    metrics = ["erased_share", "related_accuracy", "unrelated_accuracy"]
    base = table[table.method == "base model"][metrics].mean()
    summary = table[table.method != "base model"].groupby(["method", "lr", "epochs"], as_index=False)[metrics].mean()
    summary["related_drop"] = base.related_accuracy - summary.related_accuracy
    summary["unrelated_drop"] = base.unrelated_accuracy - summary.unrelated_accuracy
    summary["meets_aim"] = (summary.erased_share <= max_erased) & (summary.related_drop <= max_related_drop)
    base_row = pd.DataFrame([{"method": "base model", "lr": 0.0, "epochs": 0, **base, "related_drop": 0.0, "unrelated_drop": 0.0, "meets_aim": False}])
    return pd.concat([base_row, summary], ignore_index=True)




# --------------------------------------------------------------------------------------------
# Styles (paper, Sec. 4.4): erase a style, judge the style of the images before and after
# --------------------------------------------------------------------------------------------


def style_verdict(
    judge: GarmentStyleClassifier | StyleJudge,
    pipeline: StableDiffusionPipeline,
    prompts: pd.DataFrame,
    prompt_style: str,
    generation: GenerationConfig,
) -> dict[str, float]:
    """Generate ``prompts`` (all in ``prompt_style``) and judge them.

    Returns ``style_share``, the share of images the judge assigns to ``prompt_style``, and
    ``class_accuracy``, the share whose garment class is the prompt's (``class_index``), or NaN for a
    judge that names styles only (:class:`~erasure_lib.metrics.style_judge.StyleJudge`).
    """
    if isinstance(judge, GarmentStyleClassifier):
        from erasure_lib.data import STYLES

        if prompt_style not in STYLES:
            raise ValueError(f"the built-in classifier judges the styles {STYLES}, not {prompt_style!r}")
        out = classify_generated(pipeline, judge, prompts, generation)
        return {"style_share": float((out.predicted_style == STYLES.index(prompt_style)).mean()),
                "class_accuracy": float((out.predicted == out.class_index).mean())}  # fmt: skip
    if prompt_style not in judge.classes:
        raise ValueError(f"the style judge names {judge.classes}, not {prompt_style!r}")
    images = generate(pipeline, list(prompts["prompt"]), list(prompts["evaluation_seed"]), generation, progress_bar=False)
    return {"style_share": judge.predict(images).share(prompt_style), "class_accuracy": float("nan")}


def style_erasure_table(
    pipeline: StableDiffusionPipeline,
    judge: GarmentStyleClassifier | StyleJudge,
    erased_styles: Sequence[str],
    seeds: Sequence[int],
    image_source: Callable[[str, int], Sequence[Path | Image.Image]],
    config_for: Callable[[int], FewShotConfig],
    prompt_tables: Mapping[str, pd.DataFrame],
    generation: GenerationConfig,
) -> tuple[pd.DataFrame, dict[str, StableDiffusionPipeline]]:
    """Erase each style with each seed by few-shot unlearning and judge the prompts of every style.

    For each erased style and seed, in this order: the few-shot images (``image_source(style,
    seed)``), the erasure (``config_for(seed)``, a style config), then for each prompt style of
    ``prompt_tables`` the base model's verdict (first seed only: it does not depend on the seed)
    and the erased model's. The base model's verdict on a prompt style is computed once and reused
    for the other erased styles (generation is seeded per prompt, so it is the same).

    Parameters
    ----------
    pipeline
        The base model; it is not modified.
    judge
        The built-in garment/style classifier, or a CLIP :class:`~erasure_lib.metrics.style_judge.StyleJudge`.
    erased_styles
        The styles erased, one at a time (the concept string of the style templates).
    seeds
        Erasure seeds: each picks its own images (through ``image_source``) and random draws.
    image_source
        ``(style, seed) -> images``: the few real images of the style for that seed.
    config_for
        ``seed -> FewShotConfig`` (``concept_type="style"``).
    prompt_tables
        Prompt style -> prompt table (``prompt``, ``evaluation_seed``, and ``class_index`` for the
        built-in classifier), e.g. from :class:`ClassPromptSet` with ``style``.
    generation
        Sampling settings.

    Returns
    -------
    tuple[pandas.DataFrame, dict[str, StableDiffusionPipeline]]
        One row per (erased style, seed, prompt style, when) with columns ``erased_style, seed,
        prompt_style, when, style_share, class_accuracy`` (``when`` is ``"before"`` or ``"after"``;
        before-rows carry the first seed), in the order computed; and the erased model of the first
        seed for each style (for sample grids).
    """
    from erasure_lib.methods import fewshot

    if not seeds:
        raise ValueError("give at least one seed")
    rows, before, erased_models = [], {}, {}
    for erased_style in erased_styles:
        for seed in seeds:
            images = image_source(erased_style, seed)
            erased = fewshot.erase(pipeline, erased_style, images, config_for(seed), progress_bar=False).apply(pipeline)
            for prompt_style, table in prompt_tables.items():
                for when, p in (("before", pipeline), ("after", erased)):
                    if when == "before" and seed != seeds[0]:
                        continue
                    if when == "before" and prompt_style in before:
                        verdict = before[prompt_style]
                    else:
                        verdict = style_verdict(judge, p, table, prompt_style, generation)
                    if when == "before":
                        before[prompt_style] = verdict
                    rows.append({"erased_style": erased_style, "seed": seed, "prompt_style": prompt_style, "when": when, **verdict})
            if seed == seeds[0]:
                erased_models[erased_style] = erased
    return pd.DataFrame(rows, columns=["erased_style", "seed", "prompt_style", "when", "style_share", "class_accuracy"]), erased_models


def before_after_grid(
    pipeline: StableDiffusionPipeline,
    erased_models: Mapping[str, StableDiffusionPipeline],
    template: str,
    seeds: Sequence[int],
    generation: GenerationConfig,
) -> tuple[list[list[Image.Image]], list[str]]:
    """Sample rows for a qualitative figure: for each erased concept, ``template`` filled with it,
    generated with ``seeds`` by the base model and by the erased one.

    Returns the rows of images (two per concept: before, after) and their labels
    (``"<concept> before"``, ``"<concept> after"``), for :func:`erasure_lib.plots.image_grid`.
    """
    grid, labels = [], []
    for concept, erased in erased_models.items():
        for when, p in (("before", pipeline), ("after", erased)):
            grid.append(generate(p, [template.format(concept)] * len(seeds), list(seeds), generation, progress_bar=False))
            labels.append(f"{concept} {when}")
    return grid, labels
