"""Generate-then-classify: the one evaluation every method goes through (same prompts, same seeds)."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from functools import partial
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd
import torch
from diffusers import StableDiffusionPipeline
from PIL import Image
from tqdm.auto import tqdm

from erasure_lib import shard
from erasure_lib.data import CLASSES, OBJECT_TEMPLATES, STYLES, image_digest, object_prompt
from erasure_lib.generate import GenerationConfig, generate
from erasure_lib.io import atomic_write_bytes, atomic_write_text
from erasure_lib.methods.base import model_digest, weights_digest
from erasure_lib.metrics.classifier import GarmentStyleClassifier, classify
from erasure_lib.metrics.imagenet import ImageNetEvaluator
from erasure_lib.results import cached_tables, resolve

if TYPE_CHECKING:  # annotations only: the style loop imports the method where it runs
    from erasure_lib.methods.base import ErasureResult
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


def style_quality(
    pipeline: StableDiffusionPipeline,
    classifier: GarmentStyleClassifier,
    styles: Sequence[str],
    n_per_class: int,
    seed_offset: int,
    generation: GenerationConfig,
) -> pd.DataFrame:
    """Does "a photo of a {class} in the style of {style}" draw that style, and still the right class?
    For each style, ``n_per_class`` images of every garment class (seeds ``seed_offset + k``): one row
    per style with ``style_share`` (the classifier's style is that style) and ``class_accuracy``."""
    rows = []
    for style in styles:
        styled = ClassPromptSet(n_per_class=n_per_class, seed_offset=seed_offset, style=style, templates=("a photo of a {}",))
        out = classify_generated(pipeline, classifier, styled.table(), generation)
        rows.append({"style": style, "style_share": float((out.predicted_style == STYLES.index(style)).mean()),
                     "class_accuracy": float((out.predicted == out.class_index).mean())})  # fmt: skip
    return pd.DataFrame(rows, columns=["style", "style_share", "class_accuracy"])


def classify_images(
    classifier: GarmentStyleClassifier | ImageNetEvaluator, prompts: pd.DataFrame, images: Sequence[Image.Image]
) -> pd.DataFrame:
    """Add the classifier's ``predicted`` class, ``predicted_style`` and ``confidence`` to ``prompts``, one image per row.

    With an ImageNet judge (the paper's EVA02, Sec. 4.1) ``predicted`` is the evaluated class that is
    the 1000-way top-1, or -1 when the top-1 is none of them; ``predicted_style`` is -1; and ``top1``
    is the 1000-way top-1 itself (where an erased class goes, :func:`imagenet_destinations`).
    """
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images for {len(prompts)} prompts")
    out = prompts.copy()
    if isinstance(classifier, ImageNetEvaluator):
        verdict = classifier.predict(images)
        out["predicted"] = np.where(verdict.in_classes, verdict.predicted, -1)
        out["predicted_style"] = -1
        out["confidence"] = verdict.probabilities.max(1) if len(images) else np.zeros(0)
        out["top1"] = verdict.top1
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
    templates: Sequence[str] = OBJECT_TEMPLATES,
) -> pd.DataFrame:
    """Prompts for judging one erasure: ``n_erased`` per erased class and ``n_others`` per other class,
    cycling through ``templates`` (the paper's object templates by default), seeds ``seed_offset + k``."""
    if isinstance(erased, str):
        raise TypeError(f"erased is a list of class names, not one string: use [{erased!r}]")
    unknown = [e for e in erased if e not in classes]
    if unknown:
        raise ValueError(f"unknown class(es) {unknown}; expected names from {list(classes)}")
    if not templates:
        raise ValueError("give at least one template")
    kept = tuple(c for c in classes if c not in erased)
    parts = [
        ClassPromptSet(tuple(erased), n_erased, seed_offset, style, tuple(templates), universe=tuple(classes)).table(),
        ClassPromptSet(kept, n_others, seed_offset, style, tuple(templates), universe=tuple(classes)).table(),
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
    ``erased_share + others_drop`` (ties: fewer steps, then the smaller ``group`` value). When none
    meets both, preservation comes first, as the paper's claim is erasure *without* harming the other
    concepts (Sec. 4.3): among the settings within ``max_others_drop``, the one that erases most (the
    smallest erased share; ties: the smaller drop, fewer steps); when none is within it either, the
    one that harms least. (A fallback that minimised ``erased_share + excess drop`` traded a point of
    the others' accuracy for a point of erased share, and chose settings that cost the other classes
    a third of their accuracy: notebook 02 judged at 50 sampling steps instead of 20.) Only settings
    with at least ``min_step`` steps are considered.
    """
    base = summary.loc[summary[step] == 0, "others_accuracy"].mean()
    trained = summary[summary[step] >= max(1, min_step)].copy()
    trained["others_drop"] = base - trained["others_accuracy"]
    tolerance = 1e-9  # means of accuracies: a drop of exactly the bound is within it
    kept = trained[trained.others_drop <= max_others_drop + tolerance]
    ok = kept[kept.erased_share <= max_erased_share + tolerance]
    if len(ok):
        best = ok.assign(cost=ok.erased_share + ok.others_drop).sort_values(["cost", step, group]).iloc[0]
    elif len(kept):
        best = kept.sort_values(["erased_share", "others_drop", step, group]).iloc[0]
    else:
        best = trained.sort_values(["others_drop", "erased_share", step, group]).iloc[0]
    met = bool(len(ok))
    return {group: float(best[group]), step: int(best[step]), "erased_share": float(best.erased_share),
            "others_drop": float(best.others_drop), "meets_target": met}


def destinations(
    classified: pd.DataFrame, concept: str, when: str, seed: int, classes: Sequence[str] = CLASSES
) -> list[dict[str, object]]:
    """The classifier's distribution over ``classes`` for the images of ``concept``'s prompts (a transition
    row); an ImageNet judge's images of none of them are counted as ``NONE_OF_THEM``.

    Each row also carries ``confidence``, the judge's mean top-1 probability over the images that
    landed there (NaN where none did; NaN throughout for a table without a ``confidence`` column):
    a destination drawn as a convincing garment and a blob the judge barely places look alike in
    ``share`` alone (claim 2's transitions, Sec. 4.3)."""
    own = classified[classified["class"] == concept]
    if own.empty:
        raise ValueError(f"no images of {concept!r} in the classified table")
    predicted = own["predicted"].to_numpy()
    names = [*classes, NONE_OF_THEM] if (predicted < 0).any() else list(classes)
    index = np.where(predicted < 0, len(classes), predicted)
    counts = np.bincount(index, minlength=len(names))
    if "confidence" in own:
        summed = np.bincount(index, weights=own["confidence"].to_numpy(dtype=float), minlength=len(names))
        confidence = np.divide(summed, counts, out=np.full(len(names), np.nan), where=counts > 0)
    else:
        confidence = np.full(len(names), np.nan)
    return [
        {"erased_class": concept, "when": when, "seed": seed, "predicted_class": names[k], "share": float(counts[k] / len(own)),
         "confidence": float(confidence[k])}  # fmt: skip
        for k in range(len(names))
    ]


def imagenet_destinations(classified: pd.DataFrame, concept: str, when: str, seed: int) -> list[dict[str, object]]:
    """Where the images of ``concept``'s prompts land among all 1000 ImageNet classes (the ``top1`` of
    an ImageNet judge, :func:`classify_images`): one row per top-1 class seen, with its ``share``."""
    own = classified[classified["class"] == concept]
    if own.empty:
        raise ValueError(f"no images of {concept!r} in the classified table")
    if "top1" not in own:
        raise ValueError("the classified table has no 'top1' column: only an ImageNet judge names all 1000 classes")
    shares = own["top1"].value_counts(normalize=True).sort_index()
    return [{"erased_class": concept, "when": when, "seed": seed, "imagenet_index": int(k), "share": float(v)} for k, v in shares.items()]


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
    """For each run (class, and seed where the table has one) and threshold: the epoch the probe-loss
    rule stops at against the classifier's best.

    ``epochs`` has columns ``erased_class, epochs, probe_ratio, erased_share, others_accuracy`` (and
    optionally ``seed`` and ``wording``) with ``epochs == 0`` the base model. The best judged epoch
    minimises ``erased_share + max(0, others_drop - max_others_drop)``; the rule's epoch is the first
    judged epoch whose probe ratio reaches the threshold (the last if none does: ``stopped`` is
    False). With a ``wording`` column each wording is judged apart: the rule reads the same probe (it
    sees no prompt wording), the best epoch and the shares are the wording's own.
    """
    one_run = ["erased_class", *(c for c in ("seed", "wording") if c in epochs)]
    rows = []
    for key, part in epochs.groupby(one_run):
        run = dict(zip(one_run, key if isinstance(key, tuple) else (key,)))
        part = part.sort_values("epochs")
        base = part[part.epochs == 0].iloc[0]
        trained = part[part.epochs > 0].copy()
        trained["others_drop"] = base.others_accuracy - trained.others_accuracy
        cost = trained.erased_share + (trained.others_drop - max_others_drop).clip(lower=0)
        best = trained.loc[cost.idxmin()]
        for r in ratios:
            reached = trained[trained.probe_ratio >= r]
            rule = reached.iloc[0] if len(reached) else trained.iloc[-1]
            rows.append(run | {
                "ratio": r, "epoch_rule": int(rule.epochs), "epoch_best": int(best.epochs),
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
    """Mean over erased classes (and seeds) of every (method, lr, epochs) setting, against the base model's means.

    ``table`` has columns ``erased_class, method, lr, epochs, erased_share, related_accuracy,
    unrelated_accuracy`` and rows of ``method == "base model"``. ``related_drop`` and
    ``unrelated_drop`` are the base model's mean accuracy minus the setting's (classes without
    related classes are left out of the related means); ``meets_aim`` is
    ``erased_share <= max_erased and related_drop <= max_related_drop``; ``runs`` counts the rows
    averaged (class x seed), and ``*_low`` / ``*_high`` are 95% bootstrap intervals of the erased
    share and the related accuracy over them (:func:`spread`). A table with a ``wording`` column is
    summarized per wording, each against its own base-model rows (a ``wording`` column after ``epochs``).
    """
    if "wording" in table:
        return _per_wording(table, lambda part: neighbour_summary(part, max_erased, max_related_drop), after="epochs")
    metrics = ["erased_share", "related_accuracy", "unrelated_accuracy"]

    def summarized(part: pd.DataFrame) -> dict[str, float]:
        out: dict[str, float] = {m: float(part[m].mean()) for m in metrics} | {"runs": len(part)}
        for m in ("erased_share", "related_accuracy"):
            out[f"{m}_low"], out[f"{m}_high"] = spread(part[m].dropna().to_numpy())
        return out

    base = summarized(table[table.method == "base model"])
    rows = [{"method": method, "lr": lr, "epochs": epochs, **summarized(part)}
            for (method, lr, epochs), part in table[table.method != "base model"].groupby(["method", "lr", "epochs"], sort=True)]  # fmt: skip
    summary = pd.DataFrame(rows)
    summary["related_drop"] = base["related_accuracy"] - summary.related_accuracy
    summary["unrelated_drop"] = base["unrelated_accuracy"] - summary.unrelated_accuracy
    summary["meets_aim"] = (summary.erased_share <= max_erased) & (summary.related_drop <= max_related_drop)
    base_row = pd.DataFrame([{"method": "base model", "lr": 0.0, "epochs": 0, **base, "related_drop": 0.0, "unrelated_drop": 0.0, "meets_aim": False}])
    return pd.concat([base_row, summary], ignore_index=True)[[*base_row.columns]]


# --------------------------------------------------------------------------------------------
# Sweeps (notebooks 02, 03, 04, 10): erase, then judge, over classes, settings, seeds and epochs
def uce_preserving_nearest(
    pipeline: StableDiffusionPipeline,
    judge: GarmentStyleClassifier | ImageNetEvaluator,
    classes: Sequence[str],
    vocabulary: Sequence[str],
    k: int,
    generation: GenerationConfig,
    n_erased: int,
    n_others: int,
    measures: Measures,
    universe: Sequence[str] = CLASSES,
    wordings: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """UCE (Gandikota et al., 2024) with its own preservation term on the ``k`` concepts of
    ``vocabulary`` nearest each erased class in the original encoder's space
    (:func:`~erasure_lib.methods.fewshot.nearest_concepts`: the anchors few-shot's optional
    preservation picks), judged as :func:`sweep` judges, on the same prompt tables: one row per
    class (and wording, with ``wordings``: a ``wording`` column after ``retained``),
    ``erased_class``, ``retained`` (the preserved concepts, joined by ", ") and the ``measures``."""
    from erasure_lib.methods import fewshot, uce

    if wordings is not None and not wordings:
        raise ValueError("give at least one wording, or None for the paper's templates")
    rows = []
    for concept in classes:
        neighbours = fewshot.nearest_concepts(pipeline, concept, vocabulary, k)
        edited = uce.erase(pipeline, concept, None, uce.UCEConfig(preserve=tuple(neighbours)), progress_bar=False).apply(pipeline)
        classified = classify_generated(edited, judge, _prompt_table(concept, n_erased, n_others, universe, wordings), generation)
        worded = [({}, classified)] if wordings is None else [({"wording": w}, classified[classified.wording == w]) for w in wordings]
        rows += [{"erased_class": concept, "retained": ", ".join(neighbours), **wording, **measures(part, concept)} for wording, part in worded]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------

BASE_MODEL = "none (base model)"  # the base model's label where it stands as one more variant


ImageSource: TypeAlias = "Callable[[str, int], Sequence[Path | Image.Image] | None]"
"""``(class, seed) -> images``: the real images of one erasure (``None``: zero-shot, Sec. 4.6)."""

Measures: TypeAlias = "Callable[[pd.DataFrame, str], Mapping[str, float]]"
"""``(classified, erased class) -> {measure: value}``: what a sweep records of each judged model."""


def random_direction(result: ErasureResult, pipeline: StableDiffusionPipeline, seed: int) -> ErasureResult:
    """A control for claim 2 (Sec. 4.3): ``result`` with each changed tensor's update replaced by a
    random direction of the same size.

    Every parameter tensor that the erasure moved (``erased - base != 0``) becomes ``base + d``, with
    ``d`` a standard normal draw (seeded by ``seed``, in the order of ``named_parameters``) rescaled to
    the Frobenius norm of the erasure's own update of that tensor; unmoved tensors stay as they are.
    Where an erased prompt goes under such an update says how much of the erasure's pull towards
    related classes any perturbation of that size would give. The final weights only (no checkpoints).
    """
    generator = torch.Generator("cpu").manual_seed(int(seed))
    components: dict[str, torch.nn.Module] = {}
    for name, erased in result.components.items():
        base = dict(getattr(pipeline, name).named_parameters())
        control = copy.deepcopy(erased)
        with torch.no_grad():
            for key, p in control.named_parameters():
                update = p.detach().float() - base[key].detach().float()
                size = torch.linalg.vector_norm(update)
                if size == 0:
                    continue
                direction = torch.randn(p.shape, generator=generator)
                p.copy_((base[key].detach().float() + direction * (size / torch.linalg.vector_norm(direction))).to(p.dtype))
        components[name] = control
    return replace(result, method=f"{result.method} (random direction)", components=components, checkpoints=[], step_checkpoints={})


def style_kept(classified: pd.DataFrame) -> dict[str, float]:
    """``style_share``: the share of styled prompts' images that the judge sees in the prompted style
    (the ``style`` column, a name of :data:`~erasure_lib.data.STYLES`); CRA for an object erasure
    (UnlearnCanvas: the other kind of concept, kept)."""
    if classified.empty:
        raise ValueError("no styled images to judge")
    wanted = classified["style"].map(STYLES.index)
    return {"style_share": float((classified["predicted_style"] == wanted).mean())}


def styled_prompt_table(
    concept: str, styles: Sequence[str], n_styled: int, universe: Sequence[str] = CLASSES, seed_offset: int = 10_000
) -> pd.DataFrame:
    """``n_styled`` prompts of every class of ``universe`` but ``concept`` in each of ``styles``
    ("a photo of a shirt in the style of sketch"), with a ``style`` column: what an object erasure's
    CRA is judged on."""
    unknown = [s for s in styles if s not in STYLES[1:]]
    if unknown or not styles:
        raise ValueError(f"styles must be names from {STYLES[1:]}, got {list(styles)}")
    if n_styled < 1:
        raise ValueError(f"n_styled must be at least 1, got {n_styled}")
    kept = tuple(c for c in universe if c != concept)
    parts = [ClassPromptSet(kept, n_styled, seed_offset, style, universe=tuple(universe)).table().assign(style=style) for style in styles]
    table = pd.concat(parts, ignore_index=True)
    return table.assign(case_number=range(len(table)))


def erased_and_others(classified: pd.DataFrame, concept: str) -> dict[str, float]:
    """:func:`summarize` for one erased class: ``erased_share`` and ``others_accuracy`` (a sweep's default measures)."""
    return summarize(classified, [concept])


@dataclass(frozen=True, eq=False)
class Sweep:
    """What :func:`sweep` returns.

    Attributes
    ----------
    rows
        Tidy rows, one per (erased class, variant, seed, wording, epochs), in the order run: ``erased_class``,
        the variant column (absent for a single config), ``seed``, ``wording`` (with ``wordings``
        only), ``epochs``, the measures
        (``erased_share`` and ``others_accuracy`` by default), ``trainable_parameters``,
        ``optimization_seconds``, ``setup_seconds``. ``epochs == 0`` is the base model, judged once
        per class and repeated as step 0 of each of its runs (trainable parameters and seconds 0).
        At a checkpoint ``optimization_seconds`` is the run's pro rata (``epochs / config.epochs`` of it).
    destinations
        What the judge sees in the erased class's own prompts (:func:`destinations`): columns
        ``erased_class``, the variant column, ``when``, ``seed``, ``epochs``, ``predicted_class``,
        ``share``; ``when == "after"`` for every judged erased model, and once per class
        ``when == "before"`` for the base model (``seed == -1``, ``epochs == 0``, no variant).
    imagenet_destinations
        With an ImageNet judge, the same over all 1000 classes (:func:`imagenet_destinations`):
        ``predicted_class`` replaced by ``imagenet_index``; empty for the built-in classifier.
    runs
        One row per erasure: ``erased_class``, the variant column, ``seed``, ``steps`` (optimizer
        steps run), ``retained`` (the concepts a preservation term anchored, joined by ", "),
        ``optimization_seconds`` and ``setup_seconds`` of the whole run.
    losses
        The ascent loss of every optimizer step: ``erased_class``, the variant column, ``seed``,
        ``step`` (from 1), ``loss``.
    probes
        The classifier-free concept probe after each epoch, relative to its start, where the run
        measured it (runs with judged checkpoints or a stopping rule): ``erased_class``, the variant
        column, ``seed``, ``epochs``, ``probe_ratio``.
    models
        With ``keep_models``: each class's erased model (final weights) of the first variant and
        the first seed, for sample grids (:func:`before_after_grid`).

    With ``styles``, the rows gain ``style_share`` (:func:`style_kept`, CRA); with ``random_control``
    the destinations gain ``when == "random direction"`` rows (:func:`random_direction`, the final
    weights' update redrawn at random, judged on the erased class's own prompts).
    """

    rows: pd.DataFrame
    destinations: pd.DataFrame
    imagenet_destinations: pd.DataFrame
    runs: pd.DataFrame
    losses: pd.DataFrame
    probes: pd.DataFrame
    models: dict[str, StableDiffusionPipeline] = field(default_factory=dict)


def sweep(
    pipeline: StableDiffusionPipeline,
    judge: GarmentStyleClassifier | ImageNetEvaluator,
    classes: Sequence[str],
    variants: FewShotConfig | Mapping[Hashable, FewShotConfig],
    seeds: Sequence[int],
    images: ImageSource | Mapping[Hashable, ImageSource],
    generation: GenerationConfig,
    n_erased: int,
    n_others: int,
    universe: Sequence[str] = CLASSES,
    epochs: Sequence[int] | None | Mapping[Hashable, Sequence[int] | None] = None,
    variant: str = "variant",
    measures: Measures = erased_and_others,
    keep_models: bool = False,
    progress_bar: bool = True,
    wordings: Mapping[str, Sequence[str]] | None = None,
    styles: Sequence[str] = (),
    n_styled: int = 1,
    random_control: bool = False,
    cache: str | Path | None = None,
) -> Sweep:
    """Erase each class, one at a time, under each variant and seed, and judge the erased model and
    the base model on the same prompts and evaluation seeds (paper, Sec. 4.1).

    For each class: its prompt table (:func:`erasure_prompt_table`: ``n_erased`` prompts of it,
    ``n_others`` of every other class of ``universe``) and the base model's verdict on it; then for
    each seed, the few-shot images ``images(class, seed)`` (drawn once per image source, shared by
    the variants that use it), and for each variant a few-shot erasure with the variant's config and
    that seed, judged after each epoch of ``epochs`` (per-epoch checkpoints) or, for ``None``, with
    the final weights.

    Parameters
    ----------
    pipeline
        The base model; it is not modified.
    judge
        The classifier of the generated images (:func:`erasure_lib.experiment.load_evaluator`).
    classes
        The classes erased, one at a time.
    variants
        One :class:`~erasure_lib.methods.fewshot.FewShotConfig`, or named configs compared (e.g. one
        per learning rate, or per ``trainable`` option); each run replaces the config's ``seed``.
    seeds
        Erasure seeds: each picks its own images and random draws.
    images
        ``(class, seed) -> images``: the real images of a run, e.g.
        :func:`erasure_lib.experiment.image_source`, or ``None`` for a zero-shot config; or one such
        source per variant name (e.g. variants that differ in the number of images, Sec. 4.6).
    generation
        Sampling settings.
    n_erased, n_others
        Prompts of the erased class and of every other class per evaluation.
    universe
        The classes the judge names, in the order of its ``predicted`` indices.
    epochs
        The epochs whose checkpoints are judged (each in ``1..config.epochs``), or ``None``; or one
        such choice per variant name.
    variant
        The name of the column holding the variants' names (no column for a single config).
    measures
        ``(classified, erased class) -> measures`` of each judged model, e.g. :func:`summarize_related`
        with the related groups bound; by default the erased share and the others' accuracy.
    keep_models
        Keep each class's erased model of the first variant and seed (see :class:`Sweep`).
    progress_bar
        Whether to show a progress bar over the runs.
    wordings
        Named template sets (e.g. :data:`erasure_lib.data.WORDINGS`): each judged model is judged on
        ``n_erased`` and ``n_others`` prompts in each wording (generated in one batch), and every row
        and destination gains a ``wording`` column; ``None`` judges on the paper's templates alone,
        without the column.
    styles, n_styled
        Styles (names of :data:`erasure_lib.data.STYLES`) in which each judged model also draws
        ``n_styled`` prompts of every other class (:func:`styled_prompt_table`, generated apart from
        the measured prompts, so that their images do not change): the rows gain ``style_share``, the
        share drawn in the prompted style (CRA, the other kind of concept kept). Empty: none. Needs a
        judge that names styles (the built-in classifier).
    random_control
        For every run, also judge a control on the erased class's own prompts: the final weights'
        update replaced by a random direction of the same size per tensor (:func:`random_direction`,
        seeded by the run's seed); its destinations have ``when == "random direction"``.
    cache
        A folder (relative to the repository root) where each run's rows, destinations, steps,
        losses and probes are kept (``<cache>/<class>/seed-<seed>/<variant>``, the base model's
        verdicts in ``<cache>/<class>/base``) and read back while everything they depend on is
        unchanged (the run's class, seed, variant, config, checkpoints, images by content and prompt
        table, beside what :func:`_sweep_key` names), so that an interrupted sweep resumes run by run and a
        seed, a class or a variant added later costs only its own runs; ``None`` computes every run.
        What is read back equals what was computed. ``measures`` must then be a module-level
        function or a :func:`functools.partial` of one (the key names it).

    Returns
    -------
    Sweep
        Tidy rows, the destinations of the erased class's prompts, each run's steps, losses and
        probes and, optionally, erased models.
    """
    from erasure_lib.methods import fewshot

    named = isinstance(variants, Mapping)
    configs = dict(variants) if named else {None: variants}
    if not classes or not seeds or not configs:
        raise ValueError("give at least one class, one seed and one variant")
    sources = _per_variant(images, configs, "images", callable)
    checkpoints = {
        name: None if e is None else [int(x) for x in e]
        for name, e in _per_variant(epochs, configs, "epochs", lambda e: e is None or _is_sequence(e)).items()
    }
    for name, config in configs.items():
        if checkpoints[name] is not None and not all(1 <= e <= config.epochs for e in checkpoints[name]):
            raise ValueError(f"epochs {checkpoints[name]} must lie in 1..{config.epochs}, the epochs variant {name!r} trains")
    if wordings is not None and not wordings:
        raise ValueError("give at least one wording, or None for the paper's templates")
    if styles and not isinstance(judge, GarmentStyleClassifier):
        raise ValueError("styles need a judge that names styles (the built-in classifier); pass styles=() with this judge")
    tags = {name: {variant: name} if named else {} for name in configs}
    runs = [(concept, seed, name) for concept in classes for seed in seeds for name in configs]
    worded = ["wording"] if wordings is not None else []
    shared = None if cache is None else _sweep_key(pipeline, judge, universe, generation, measures, wordings, styles, n_styled)
    tables: dict[str, pd.DataFrame] = {}
    base: dict[str, list[tuple[dict[str, str], Mapping[str, float]]]] = {}
    image_sets: dict[tuple[int, str, int], Sequence[Path | Image.Image] | None] = {}
    rows: list[dict[str, object]] = []
    seen: list[dict[str, object]] = []
    landed: list[dict[str, object]] = []  # over the 1000 ImageNet classes (an ImageNet judge only)
    run_rows: list[dict[str, object]] = []
    loss_rows: list[dict[str, object]] = []
    probe_rows: list[dict[str, object]] = []
    models: dict[str, StableDiffusionPipeline] = {}
    erased_now: dict[tuple[str, int, Hashable], ErasureResult] = {}  # this call's erasures, for ``keep_models``

    def judged(model: StableDiffusionPipeline, concept: str, own_only: bool = False) -> list[tuple[dict[str, str], pd.DataFrame]]:
        """The judge's verdicts on ``model``'s images of the concept's prompt table (or only of its own
        prompts), per wording."""
        table = tables[concept]
        classified = classify_generated(model, judge, table[table["class"] == concept] if own_only else table, generation)
        if wordings is None:
            return [({}, classified)]
        return [({"wording": w}, classified[classified.wording == w]) for w in wordings]

    def measures_of(model: StableDiffusionPipeline, concept: str) -> list[tuple[dict[str, str], pd.DataFrame, dict[str, float]]]:
        """Per wording: the verdicts and the measures (with ``styles``, the style share beside them)."""
        kept = style_kept(classify_generated(model, judge, styled_prompt_table(concept, styles, n_styled, universe), generation)) if styles else {}
        return [(wording, classified, {**measures(classified, concept), **kept}) for wording, classified in judged(model, concept)]

    def kept(folder: Sequence[str], key: Mapping[str, object], compute: Callable[[], dict[str, list[dict[str, object]]]]) -> dict[str, list[dict[str, object]]]:
        """``compute()``'s records by name, or, with ``cache``, those kept in ``<cache>/<folder>`` under ``key``."""
        if shared is None:
            return compute()
        tables_kept = cached_tables(resolve(cache).joinpath(*folder), {**shared, **key},
                                    lambda: {n: pd.DataFrame(r) for n, r in compute().items() if r})  # fmt: skip
        return {n: t.to_dict("records") for n, t in tables_kept.items()}

    def judge_base(concept: str) -> dict[str, list[dict[str, object]]]:
        """The base model's measures per wording (one record each) and where its images of the concept land."""
        measured, before, before_imagenet = [], [], []
        for wording, classified, values in measures_of(pipeline, concept):
            measured.append(wording | values)
            before += [d | wording | {"epochs": 0} for d in destinations(classified, concept, "before", -1, universe)]
            if "top1" in classified:
                before_imagenet += [d | wording | {"epochs": 0} for d in imagenet_destinations(classified, concept, "before", -1)]
        return {"measures": measured, "destinations": before, "imagenet_destinations": before_imagenet}

    def erase_and_judge(concept: str, seed: int, name: Hashable, shots: Sequence[Path | Image.Image] | None) -> dict[str, list[dict[str, object]]]:
        """One erasure (Sec. 3), judged at each checkpoint: its rows, destinations, steps, losses and probes."""
        config = replace(configs[name], seed=seed, keep_checkpoints=configs[name].keep_checkpoints or checkpoints[name] is not None)
        result = erased_now[concept, seed, name] = fewshot.erase(pipeline, concept, shots, config, progress_bar=False)
        run = {"erased_class": concept, **tags[name], "seed": seed}
        out: dict[str, list[dict[str, object]]] = {"rows": [], "destinations": [], "imagenet_destinations": []}
        out["runs"] = [run | {"steps": len(result.losses), "retained": ", ".join(result.info.retained),
                              "optimization_seconds": result.optimization_seconds, "setup_seconds": result.setup_seconds}]  # fmt: skip
        out["losses"] = [run | {"step": i + 1, "loss": loss} for i, loss in enumerate(result.losses)]
        out["probes"] = [run | {"epochs": e + 1, "probe_ratio": r} for e, r in enumerate(result.info.probe_ratios)]
        for epoch in checkpoints[name] or [None]:
            erased = result.apply(pipeline, epoch=epoch)
            seconds = result.optimization_seconds if epoch is None else result.optimization_seconds * epoch / config.epochs
            after = {"epochs": epoch or result.info.epochs_run}
            for wording, classified, values in measures_of(erased, concept):
                out["rows"].append(run | wording | after | {**values, "trainable_parameters": result.info.trainable_parameters,
                                                            "optimization_seconds": seconds, "setup_seconds": result.setup_seconds})  # fmt: skip
                out["destinations"] += [d | tags[name] | wording | after for d in destinations(classified, concept, "after", seed, universe)]
                if "top1" in classified:
                    out["imagenet_destinations"] += [d | tags[name] | wording | after for d in imagenet_destinations(classified, concept, "after", seed)]
        if random_control:
            control = random_direction(result, pipeline, seed).apply(pipeline)
            for wording, classified in judged(control, concept, own_only=True):
                out["destinations"] += [d | tags[name] | wording | {"epochs": result.info.epochs_run}
                                        for d in destinations(classified, concept, "random direction", seed, universe)]  # fmt: skip
        return out

    for concept, seed, name in tqdm(runs, desc="erase, then judge", disable=not progress_bar):
        if concept not in tables:
            tables[concept] = _prompt_table(concept, n_erased, n_others, universe, wordings)
            judged_base = kept([concept, "base"], {"erased_class": concept, "prompts": _table_fingerprint(tables[concept])},
                               lambda concept=concept: judge_base(concept))  # fmt: skip
            base[concept] = [({k: m[k] for k in worded}, {k: v for k, v in m.items() if k not in worded}) for m in judged_base["measures"]]
            seen += judged_base.get("destinations", [])
            landed += judged_base.get("imagenet_destinations", [])
        source = (id(sources[name]), concept, seed)
        if source not in image_sets:
            image_sets[source] = sources[name](concept, seed)
        shots = image_sets[source]
        key = {"erased_class": concept, "seed": seed, "variant": tags[name], "config": repr(replace(configs[name], seed=seed)),
               "epochs": checkpoints[name], "images": None if shots is None else [image_digest(p) for p in shots],
               "prompts": _table_fingerprint(tables[concept]), "random_control": random_control}  # fmt: skip
        kept_run = kept([concept, f"seed-{seed}", _folder_name(name)], key, lambda c=concept, s=seed, n=name, i=shots: erase_and_judge(c, s, n, i))
        # the run's own names, not as a CSV reads them back (a variant named "4" is not the number 4; "" is not NaN)
        run = {"erased_class": concept, **tags[name], "seed": seed}
        run_rows += [r | run | {"retained": "" if pd.isna(r["retained"]) else r["retained"]} for r in kept_run["runs"]]
        loss_rows += [r | run for r in kept_run.get("losses", [])]
        probe_rows += [r | run for r in kept_run.get("probes", [])]
        rows += [run | wording | {"epochs": 0, **measured, "trainable_parameters": 0, "optimization_seconds": 0.0, "setup_seconds": 0.0}
                 for wording, measured in base[concept]]  # fmt: skip
        rows += [r | run for r in kept_run.get("rows", [])]
        seen += [r | run for r in kept_run.get("destinations", [])]
        landed += [r | run for r in kept_run.get("imagenet_destinations", [])]
        if keep_models and concept not in models:
            result = erased_now.get((concept, seed, name))
            if result is None:  # read back from the cache: erase again (seconds), for the final weights
                result = fewshot.erase(pipeline, concept, shots, replace(configs[name], seed=seed), progress_bar=False)
            models[concept] = result.apply(pipeline)
        erased_now.clear()
    keys = ["erased_class", *([variant] if named else []), "seed"]
    measured = list(next(iter(base.values()))[0][1])
    columns = [*keys, *worded, "epochs", *measured, "trainable_parameters", "optimization_seconds", "setup_seconds"]
    where = ["erased_class", *([variant] if named else []), *worded, "when", "seed", "epochs", "predicted_class", "share", "confidence"]
    return Sweep(
        rows=pd.DataFrame(rows, columns=columns),
        destinations=pd.DataFrame(seen, columns=where),
        imagenet_destinations=pd.DataFrame(landed, columns=[*where[:-3], "imagenet_index", "share"]),
        runs=pd.DataFrame(run_rows, columns=[*keys, "steps", "retained", "optimization_seconds", "setup_seconds"]),
        losses=pd.DataFrame(loss_rows, columns=[*keys, "step", "loss"]),
        probes=pd.DataFrame(probe_rows, columns=[*keys, "epochs", "probe_ratio"]),
        models=models,
    )


def stack_wordings(sweeps: Mapping[str, Sweep]) -> Sweep:
    """Sweeps of the same runs, each judged in its own wording, as one :func:`sweep` judged in all of
    them: one sweep per wording keeps a cache per wording, so that a wording added later costs its own
    judging only. A sweep judged on the paper's templates alone (``wordings=None``, no ``wording``
    column) takes its key as its wording; one with a ``wording`` column must hold that wording only.
    Every sweep erased the same seeded runs, so ``runs``, ``losses``, ``probes`` and ``models`` are
    the first sweep's."""
    if not sweeps:
        raise ValueError("give at least one sweep, keyed by its wording")
    runs = {name: set(map(tuple, s.runs.drop(columns=["steps", "retained", "optimization_seconds", "setup_seconds"]).values.tolist()))
            for name, s in sweeps.items()}  # fmt: skip
    first, *others = sweeps
    if any(runs[name] != runs[first] for name in others):
        raise ValueError(f"the sweeps {list(sweeps)} erased different runs (classes, variants or seeds): only the same runs stack")

    def worded(table: pd.DataFrame, wording: str, before: str) -> pd.DataFrame:
        if "wording" in table:
            if set(table.wording) - {wording}:
                raise ValueError(f"the sweep keyed {wording!r} holds the wordings {sorted(set(table.wording))}: give one sweep per wording")
            return table
        table = table.copy()
        table.insert(table.columns.get_loc(before), "wording", wording)
        return table

    def stacked(kind: str, before: str) -> pd.DataFrame:
        """The sweeps' tables in the order one sweep judged in every wording gives them: per judged
        model (the first sweep's order), each wording's rows in turn."""
        parts = [worded(getattr(s, kind), name, before) for name, s in sweeps.items()]
        table = pd.concat(parts, ignore_index=True)[parts[0].columns]
        columns = list(table.columns)
        model = [*columns[: columns.index("wording")], *(c for c in ("when", "seed", "epochs") if c in columns[columns.index("wording"):])]
        order = pd.DataFrame({"model": table.groupby(model, sort=False, dropna=False).ngroup(), "wording": table.wording.map(list(sweeps).index)})
        return table.loc[order.sort_values(["model", "wording"], kind="stable").index].reset_index(drop=True)

    head = sweeps[first]
    return Sweep(rows=stacked("rows", "epochs"), destinations=stacked("destinations", "when"),
                 imagenet_destinations=stacked("imagenet_destinations", "when"), runs=head.runs, losses=head.losses,
                 probes=head.probes, models=head.models)  # fmt: skip


SWEEP_REVISION = 1  # raise when what a sweep keeps of a run (``cache``), or how it is computed, changes


def _sweep_key(pipeline: StableDiffusionPipeline, judge: GarmentStyleClassifier | ImageNetEvaluator, universe: Sequence[str],
               generation: GenerationConfig, measures: Measures, wordings: Mapping[str, Sequence[str]] | None,
               styles: Sequence[str], n_styled: int) -> dict[str, object]:  # fmt: skip
    """What every cached run of one :func:`sweep` depends on besides its own class, seed, config,
    images and prompts: the code's revision, the base model's and the judge's weights (by digest),
    the judge's classes, the sampling settings, the measures, the wordings' templates and the styles."""
    return {"revision": SWEEP_REVISION, "weights": {"model": model_digest(pipeline), "judge": judge_digest(judge)},
            "universe": list(universe), "generation": asdict(generation), "measures": _callable_name(measures),
            "wordings": None if wordings is None else {w: list(t) for w, t in wordings.items()},
            "styles": list(styles), "n_styled": int(n_styled)}  # fmt: skip


def _callable_name(function: Callable[..., object]) -> str:
    """A function's module and qualified name, or a :func:`functools.partial`'s with its bound arguments:
    how a cache key names the measures (a lambda or a local function has no name that tells two apart)."""
    if isinstance(function, partial):
        return f"{_callable_name(function.func)}(*{function.args!r}, **{dict(sorted(function.keywords.items()))!r})"
    name = f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', '?')}"
    if "<" in name or "?" in name:
        raise ValueError(f"a cached sweep names its measures; give a module-level function or a functools.partial of one, not {name}")
    return name


def _folder_name(name: Hashable) -> str:
    """A variant's folder in a sweep's cache: its name (a tuple's parts joined by "-") in letters, digits
    and ``._+``, other runs of characters as "_" (``run`` for a single config)."""
    if name is None:
        return "run"
    return "-".join(re.sub(r"[^A-Za-z0-9.+]+", "_", str(part)).strip("_") for part in (name if isinstance(name, tuple) else (name,)))


def _prompt_table(
    concept: str, n_erased: int, n_others: int, universe: Sequence[str], wordings: Mapping[str, Sequence[str]] | None
) -> pd.DataFrame:
    """:func:`erasure_prompt_table` of one concept, or one per wording stacked with a ``wording`` column."""
    if wordings is None:
        return erasure_prompt_table([concept], n_erased, n_others, classes=universe)
    parts = [erasure_prompt_table([concept], n_erased, n_others, classes=universe, templates=t).assign(wording=w) for w, t in wordings.items()]
    table = pd.concat(parts, ignore_index=True)
    return table.assign(case_number=range(len(table)))


def _is_sequence(value: object) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, Mapping | str)


def _per_variant(value: object, configs: Mapping[Hashable, object], what: str, is_one: Callable[[object], bool]) -> dict[Hashable, Any]:
    """``value`` for every variant: one shared value, or a mapping with one entry per variant name."""
    if is_one(value):
        return {name: value for name in configs}
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be one value or a mapping from variant names to values, got {value!r}")
    missing = [name for name in configs if name not in value]
    if missing:
        raise ValueError(f"{what} has no entry for the variant(s) {missing}; give one per variant of {list(configs)}")
    return {name: value[name] for name in configs}


def base_as_variant(rows: pd.DataFrame, variant: str, label: str = BASE_MODEL) -> pd.DataFrame:
    """:attr:`Sweep.rows` with the base model as one more variant named ``label`` (one row per class
    and seed, first in each class) and the erased models' final rows; without the ``epochs`` column."""
    base = rows[rows.epochs == 0].drop_duplicates(["erased_class", "seed"]).assign(**{variant: label})
    final = rows[rows.epochs > 0]
    final = final[final.epochs == final.groupby(["erased_class", variant, "seed"]).epochs.transform("max")]
    both = pd.concat([base, final]).sort_values("erased_class", kind="stable")
    return both.drop(columns="epochs").reset_index(drop=True)


def one_variant(table: pd.DataFrame, name: str, variant: str = "trainable") -> pd.DataFrame:
    """The rows of one variant of a :class:`Sweep` table (e.g. notebook 03's ``trainable`` option),
    with the rows that belong to no variant (the base model's destinations, ``when == "before"``);
    a table without the ``variant`` column (one config) is returned as it is."""
    if variant not in table:
        return table
    if name not in set(table[variant].dropna()):
        raise ValueError(f"no rows of {variant} {name!r}; the table has {sorted(set(table[variant].dropna()))}")
    return table[table[variant].isna() | (table[variant] == name)].reset_index(drop=True)


def before_after(rows: pd.DataFrame) -> pd.DataFrame:
    """:attr:`Sweep.rows` as one row per judged erased model, with the base model's measures beside
    its own: ``erased_share_before``, ``erased_share_after``, ``others_accuracy_before``,
    ``others_accuracy_after`` in place of ``erased_share`` and ``others_accuracy`` (and, for a sweep
    with ``styles``, ``style_share_before`` and ``style_share_after``)."""
    measures = [m for m in ("erased_share", "others_accuracy", "style_share") if m in rows]
    keys = [c for c in rows.columns if c not in ("epochs", *measures, "trainable_parameters", "optimization_seconds", "setup_seconds")]
    before = rows[rows.epochs == 0].drop_duplicates(keys).set_index(keys)[measures]
    after = rows[rows.epochs > 0].reset_index(drop=True)
    joined = after.join(before.add_suffix("_before"), on=keys)
    out = after[[*keys, "epochs"]].copy()
    for measure in measures:
        out[f"{measure}_before"] = joined[f"{measure}_before"].to_numpy()
        out[f"{measure}_after"] = after[measure].to_numpy()
    # UnlearnCanvas's names (Zhang et al. 2024): UA, the share of the erased concept's images *not*
    # judged as it (higher = more erased); IRA, the accuracy on the other concepts of the same kind;
    # CRA, the other kind of concept kept (for an object erasure: the styles the others are drawn in).
    out["UA"] = 1.0 - out["erased_share_after"]
    out["IRA"] = out["others_accuracy_after"]
    if "style_share" in measures:
        out["CRA"] = out["style_share_after"]
    for column in ("trainable_parameters", "optimization_seconds", "setup_seconds"):
        out[column] = after[column].to_numpy()
    return out


def spread(values: Sequence[float], n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """A percentile bootstrap interval of the mean of ``values`` (seeded, so repeatable)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(n_boot, len(values)), replace=True).mean(1)
    return (float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, 1 - (1 - level) / 2)))


def unlearning_summary(
    table: pd.DataFrame, by: Sequence[str], min_ua: float = 0.9, max_others_drop: float = 0.10
) -> pd.DataFrame:
    """One row per group of a :func:`before_after` table (e.g. per ``trainable`` option and wording):
    the means of UA, IRA and the others' accuracy drop, each with a 95% bootstrap interval over the
    runs (one run = one class and seed), ``success_share`` (runs with UA >= ``min_ua``: erasure is
    all-or-nothing per run, so the share of runs that succeed says more than the mean),
    ``clean_share`` (succeeded and the others within ``max_others_drop``), ``classes_erased`` (the
    classes whose UA averaged over their seeds reaches ``min_ua``), and the runs, classes and seeds
    behind the row; for a table with ``CRA`` (a sweep judged with styles) its mean, interval and
    ``CRA_before``."""
    if table.empty:
        raise ValueError("the table has no rows")
    missing = [c for c in (*by, "erased_class", "seed", "UA", "IRA", "others_accuracy_before") if c not in table]
    if missing:
        raise ValueError(f"the table lacks the column(s) {missing}; pass the output of before_after")
    rows = []
    for key, part in table.groupby(list(by), sort=False) if by else [((), table)]:
        drop = part.others_accuracy_before - part.IRA
        success = (part.UA >= min_ua).astype(float)
        per_class = part.groupby("erased_class").UA.mean()
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        row |= {"runs": len(part), "classes": part.erased_class.nunique(),
                "seeds": " ".join(map(str, sorted(part.seed.unique()))), "UA_before": float(1 - part.erased_share_before.mean())}  # fmt: skip
        for name, values in (("UA", part.UA), ("success_share", success), ("IRA", part.IRA), ("others_drop", drop),
                             ("clean_share", success * (drop <= max_others_drop))):  # fmt: skip
            low, high = spread(values)
            row |= {name: float(values.mean()), f"{name}_low": low, f"{name}_high": high}
        row |= {"IRA_before": float(part.others_accuracy_before.mean()), "classes_erased": int((per_class >= min_ua).sum())}
        if "CRA" in part:  # an object erasure judged with styles: the other kind kept
            low, high = spread(part.CRA)
            row |= {"CRA": float(part.CRA.mean()), "CRA_low": low, "CRA_high": high, "CRA_before": float(part.style_share_before.mean())}
        rows.append(row | ({"trainable_parameters": int(part.trainable_parameters.max())} if "trainable_parameters" in part else {}))
    return pd.DataFrame(rows)


def style_unlearning_summary(table: pd.DataFrame, min_ua: float = 0.9) -> pd.DataFrame:
    """UnlearnCanvas's measures for styles (Sec. 4.4), one row per erased style of a
    :func:`style_erasure_table`: **UA** (1 - the share of its own prompts' images still judged in
    the style), **IRA** (the share of the *other* styles' prompts still judged in their style),
    **CRA** (the garment accuracy on the other styles' prompts: the other kind of concept, kept) and
    the garment accuracy on the erased style's own prompts (``subject_accuracy``: the garment should
    survive its style's erasure); one row per erased style and judged ``epochs`` (NaN for a table
    without the column). Each after erasure as the mean over seeds with a 95% bootstrap
    interval, beside the base model's value (``*_before``); ``success_share`` = seeds with UA >=
    ``min_ua``. IRA and CRA are NaN when only one style is judged. A table with a ``wording``
    column gives one row per erased style, wording and epochs, each against the base model in the
    same wording."""
    missing = [c for c in ("erased_style", "seed", "prompt_style", "when", "style_share", "class_accuracy") if c not in table]
    if missing:
        raise ValueError(f"the table lacks the column(s) {missing}; pass the output of style_erasure_table")
    worded = "wording" in table
    before_all = table[table.when == "before"].groupby(["prompt_style", *(["wording"] if worded else [])])[["style_share", "class_accuracy"]].mean()
    after = table[table.when == "after"]
    after = after if "epochs" in after else after.assign(epochs=np.nan)  # tables written before checkpoints were judged
    rows = []
    for key, part in after.groupby(["erased_style", *(["wording"] if worded else []), "epochs"], sort=False, dropna=False):
        style, wording, epoch = (key if worded else (key[0], None, key[1]))
        before = before_all.xs(wording, level="wording") if worded else before_all
        own, other = part[part.prompt_style == style], part[part.prompt_style != style]
        per_seed = {"UA": 1.0 - own.groupby("seed").style_share.mean(), "IRA": other.groupby("seed").style_share.mean(),
                    "CRA": other.groupby("seed").class_accuracy.mean(), "subject_accuracy": own.groupby("seed").class_accuracy.mean()}  # fmt: skip
        others = [s for s in before.index if s != style]
        row = {"erased_style": style, **({"wording": wording} if worded else {}), "epochs": epoch,
               "seeds": " ".join(map(str, sorted(part.seed.unique()))), "runs": part.seed.nunique(),
               "UA_before": float(1.0 - before.style_share.get(style, np.nan)),
               "IRA_before": float(before.style_share[others].mean()) if others else np.nan,
               "CRA_before": float(before.class_accuracy[others].mean()) if others else np.nan,
               "subject_accuracy_before": float(before.class_accuracy.get(style, np.nan))}  # fmt: skip
        for name, values in per_seed.items():
            low, high = spread(values)
            row |= {name: float(values.mean()) if len(values) else np.nan, f"{name}_low": low, f"{name}_high": high}
        rows.append(row | {"success_share": float((per_seed["UA"] >= min_ua).mean())})
    return pd.DataFrame(rows)


def matched_front(table: pd.DataFrame, by: str, at: Sequence[float], n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Compare variants at matched erasure, not at one shared setting (Sec. 4.5: the parameter options
    differ in size, so the same steps erase unlike amounts).

    Each variant's front is the path of (mean UA, mean IRA) over its runs (one run = one class and
    seed of a :func:`before_after` table), through the base model (epochs 0) and then its judged
    checkpoints in order of ``epochs``. The IRA at each UA level of ``at`` is read off where the path
    first crosses that level (linear between checkpoints), with a 95% bootstrap interval that
    resamples the runs (the same resample at every checkpoint, so the front stays one curve). NaN
    where the front never reaches the level; ``reach`` is the front's largest mean UA. A table with a
    ``wording`` column is read one wording at a time (each with the same bootstrap seed), the rows
    gaining a ``wording`` column after ``by``."""
    if "wording" in table:
        return _per_wording(table, lambda part: matched_front(part, by, at, n_boot, seed), after=by)
    rng = np.random.default_rng(seed)
    rows = []
    for name, (x, y, parameters, _) in _fronts(table, by).items():
        resamples = rng.integers(0, len(x), size=(n_boot, len(x)))
        for level in at:
            boot = [_crossing(x[i].mean(0), y[i].mean(0), level) for i in resamples]
            low, high = np.nanquantile(boot, (0.025, 0.975)) if np.isfinite(boot).mean() >= 0.95 else (np.nan, np.nan)
            rows.append({by: name, "UA_level": level, "IRA": _crossing(x.mean(0), y.mean(0), level),
                         "IRA_low": float(low), "IRA_high": float(high), "reach": float(x.mean(0).max()), "runs": len(x),
                         "trainable_parameters": parameters})  # fmt: skip
    return pd.DataFrame(rows)


def matched_front_differences(
    table: pd.DataFrame, by: str, at: Sequence[float], reference: str, others: Sequence[str], n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """``reference``'s IRA minus each of ``others``' where their fronts reach the same UA
    (:func:`matched_front`), paired: every variant erased the same runs (class and seed: the same
    images and evaluation seeds), so each bootstrap resample of the runs draws both fronts from the
    same runs, and the interval is the difference's own, narrower than two separate intervals
    suggest where the runs agree (Sec. 4.5, claim 3: does one option keep the others better than
    another at the same erasure?).

    Returns
    -------
    pandas.DataFrame
        One row per (other, UA level): ``other``, ``UA_level``, ``runs``, ``difference`` (NaN where
        either front never reaches the level), ``difference_low`` and ``difference_high`` (a 95%
        bootstrap interval; NaN where either front misses the level in over 5% of the resamples),
        and ``verdict``: ``"higher"`` (the whole interval above 0: the reference keeps the others
        better), ``"lower"``, ``"not distinguishable"``, ``"no interval"`` or ``"not both reached"``;
        for a table with a ``wording`` column, one wording at a time, with a ``wording`` column
        after ``other``.
    """
    if "wording" in table:
        return _per_wording(table, lambda part: matched_front_differences(part, by, at, reference, others, n_boot, seed), after="other")
    fronts = _fronts(table, by)
    missing = [v for v in (reference, *others) if v not in fronts]
    if missing:
        raise ValueError(f"no rows of {missing} in the table ({by}: {sorted(fronts, key=str)})")
    runs = {v: fronts[v][3] for v in (reference, *others)}
    rows = []
    for other in others:
        if not runs[other].equals(runs[reference]):
            raise ValueError(f"{reference} and {other} do not cover the same runs (erased class, seed)")
        (x0, y0, _, _), (x1, y1, _, _) = fronts[reference], fronts[other]
        resamples = np.random.default_rng(seed).integers(0, len(x0), size=(n_boot, len(x0)))
        for level in at:
            point = _crossing(x0.mean(0), y0.mean(0), level) - _crossing(x1.mean(0), y1.mean(0), level)
            boot = np.array([_crossing(x0[i].mean(0), y0[i].mean(0), level) - _crossing(x1[i].mean(0), y1[i].mean(0), level) for i in resamples])
            low, high = np.nanquantile(boot, (0.025, 0.975)) if np.isfinite(boot).mean() >= 0.95 else (np.nan, np.nan)
            verdict = ("not both reached" if np.isnan(point) else "no interval" if np.isnan(low)
                       else "higher" if low > 0 else "lower" if high < 0 else "not distinguishable")  # fmt: skip
            rows.append({"other": other, "UA_level": level, "runs": len(x0), "difference": float(point),
                         "difference_low": float(low), "difference_high": float(high), "verdict": verdict})  # fmt: skip
    return pd.DataFrame(rows)


def _per_wording(table: pd.DataFrame, read: Callable[[pd.DataFrame], pd.DataFrame], after: str) -> pd.DataFrame:
    """``read`` of each wording's rows of ``table`` (in the table's order of wordings), concatenated,
    with a ``wording`` column after the column ``after``."""
    parts = []
    for wording, part in table.groupby("wording", sort=False):
        out = read(part.drop(columns="wording"))
        out.insert(out.columns.get_loc(after) + 1, "wording", wording)
        parts.append(out)
    return pd.concat(parts, ignore_index=True)


def _fronts(table: pd.DataFrame, by: str) -> dict[object, tuple[np.ndarray, np.ndarray, int | None, pd.Index]]:
    """Each variant's runs as the points of its front (:func:`matched_front`): UA and IRA per run
    (rows) at the base model and then each judged checkpoint in order of ``epochs`` (columns), its
    trainable parameters, and the runs (erased class, seed) in the order of the rows."""
    missing = [c for c in (by, "erased_class", "seed", "epochs", "UA", "IRA", "erased_share_before", "others_accuracy_before") if c not in table]
    if missing:
        raise ValueError(f"the table lacks the column(s) {missing}; pass before_after of a sweep with per-epoch checkpoints")
    fronts = {}
    for name, part in table.groupby(by, sort=False):
        ua = part.pivot_table(index=["erased_class", "seed"], columns="epochs", values="UA")
        ira = part.pivot_table(index=["erased_class", "seed"], columns="epochs", values="IRA")
        base = part.groupby(["erased_class", "seed"])[["erased_share_before", "others_accuracy_before"]].first().loc[ua.index]
        if ua.isna().any().any():
            raise ValueError(f"{by} {name!r}: every run needs every checkpoint; some runs lack one")
        x = np.column_stack([1.0 - base.erased_share_before.to_numpy(), ua.to_numpy()])  # runs x (base, checkpoints)
        y = np.column_stack([base.others_accuracy_before.to_numpy(), ira.to_numpy()])
        parameters = int(part.trainable_parameters.max()) if "trainable_parameters" in part else None
        fronts[name] = (x, y, parameters, ua.index)
    return fronts


def _crossing(x: np.ndarray, y: np.ndarray, level: float) -> float:
    """y where the path through the points (x, y), in order, first reaches x = level (linear between points); NaN if never."""
    for (x0, x1), (y0, y1) in zip(zip(x[:-1], x[1:]), zip(y[:-1], y[1:])):
        if min(x0, x1) <= level <= max(x0, x1):
            return float(y0) if x1 == x0 else float(y0 + (level - x0) * (y1 - y0) / (x1 - x0))
    return float("nan")


def before_after_summary(table: pd.DataFrame, max_erased_share: float = 0.10, max_others_drop: float = 0.10) -> dict[str, float | bool]:
    """The means of a :func:`before_after` table over its rows, the others' accuracy drop, the median
    (over classes) of each class's median optimization and set-up seconds, and ``target_met``: mean
    erased share at most ``max_erased_share`` and mean drop at most ``max_others_drop``."""
    means = table[["erased_share_before", "erased_share_after", "others_accuracy_before", "others_accuracy_after"]].mean()
    drop = means.others_accuracy_before - means.others_accuracy_after
    return {
        "erased_share_before": means.erased_share_before,
        "erased_share_after": means.erased_share_after,
        "others_accuracy_before": means.others_accuracy_before,
        "others_accuracy_after": means.others_accuracy_after,
        "others_accuracy_drop": drop,
        "median_optimization_seconds": float(table.groupby("erased_class").optimization_seconds.median().median()),
        "median_setup_seconds": float(table.groupby("erased_class").setup_seconds.median().median()),
        "target_met": bool(means.erased_share_after <= max_erased_share and drop <= max_others_drop),
    }


def random_class_sets(universe: Sequence[str], set_sizes: Sequence[int], repeats: int, seed: int) -> list[list[str]]:
    """``repeats`` random sets of each size of ``set_sizes`` from ``universe``, each sorted, drawn by ``seed``."""
    rng = np.random.default_rng(seed)
    return [sorted(rng.choice(universe, size=k, replace=False).tolist()) for k in set_sizes for _ in range(repeats)]


def several_concepts(
    pipeline: StableDiffusionPipeline,
    judge: GarmentStyleClassifier | ImageNetEvaluator,
    set_sizes: Sequence[int],
    repeats: int,
    seeds: Sequence[int],
    images: Callable[[str, int], Sequence[Path | Image.Image]],
    config: FewShotConfig,
    generation: GenerationConfig,
    n_erased: int,
    n_others: int,
    universe: Sequence[str] = CLASSES,
    progress_bar: bool = True,
    wordings: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Erase sets of classes **jointly** (one run, every image paired with its own class's prompts:
    :func:`~erasure_lib.methods.fewshot.erase_concepts`) and **one after another** (each erasure starts
    from the previous erased model), and judge both and the base model on the same prompts
    (``n_erased`` per erased class, ``n_others`` per other class of ``universe``).

    Each seed draws its own ``repeats`` sets of each size of ``set_sizes`` (:func:`random_class_sets`),
    its images ``images(class, seed)`` and the erasure's random draws (``config.seed``). One row per
    (seed, set, mode): ``seed``, ``classes`` (joined by " + "), ``n_classes``, ``mode`` (``"joint"``
    or ``"one after another"``), ``erased_share_before``, ``erased_share_after``,
    ``others_accuracy_before``, ``others_accuracy_after``, **UA** (1 - erased share after) and **IRA**
    (others' accuracy after), and ``optimization_seconds`` (summed over the steps one after another).

    ``wordings`` (name -> templates, e.g. ``data.WORDINGS``) judges every model on each wording's
    prompts, one row per wording with a ``wording`` column (the same erasures, the same evaluation
    seeds); ``None``: the paper's templates only, and no ``wording`` column.
    """
    from erasure_lib.methods import fewshot

    if not seeds:
        raise ValueError("give at least one seed")
    if wordings is not None and not wordings:
        raise ValueError("give at least one wording, or None for the paper's templates")
    named = {None: OBJECT_TEMPLATES} if wordings is None else dict(wordings)
    runs = [(seed, erased_set) for seed in seeds for erased_set in random_class_sets(universe, set_sizes, repeats, seed)]
    rows = []
    for seed, erased_set in tqdm(runs, desc="several concepts", disable=not progress_bar):
        seeded = replace(config, seed=seed)
        folders = {c: images(c, seed) for c in erased_set}
        tables = {w: erasure_prompt_table(erased_set, n_erased, n_others, classes=universe, templates=t) for w, t in named.items()}
        before = {w: summarize(classify_generated(pipeline, judge, table, generation), erased_set) for w, table in tables.items()}
        joint = fewshot.erase_concepts(pipeline, folders, seeded, progress_bar=False)
        sequential, seconds = pipeline, 0.0
        for c in erased_set:
            step = fewshot.erase(sequential, c, folders[c], seeded, progress_bar=False)
            sequential, seconds = step.apply(sequential), seconds + step.optimization_seconds
        for mode, p, s in (("joint", joint.apply(pipeline), joint.optimization_seconds), ("one after another", sequential, seconds)):
            for w, table in tables.items():
                after = summarize(classify_generated(p, judge, table, generation), erased_set)
                rows.append({"seed": seed, "classes": " + ".join(erased_set), "n_classes": len(erased_set), "mode": mode}
                            | ({} if w is None else {"wording": w})
                            | {"erased_share_before": before[w]["erased_share"], "erased_share_after": after["erased_share"],
                               "others_accuracy_before": before[w]["others_accuracy"], "others_accuracy_after": after["others_accuracy"],
                               "UA": 1.0 - after["erased_share"], "IRA": after["others_accuracy"], "optimization_seconds": s})  # fmt: skip
    return pd.DataFrame(rows)


def several_concepts_summary(table: pd.DataFrame, min_ua: float = 0.9, max_others_drop: float = 0.10) -> pd.DataFrame:
    """:func:`unlearning_summary` of a :func:`several_concepts` table, one row per set size and mode
    (and wording, where the table has them):
    UA, IRA, the others' drop and the share of runs (one run = one set and seed) that succeed, with
    95% bootstrap intervals over the runs."""
    missing = [c for c in ("seed", "classes", "n_classes", "mode", "UA", "IRA") if c not in table]
    if missing:
        raise ValueError(f"the table lacks the column(s) {missing}; pass the output of several_concepts")
    runs = table.rename(columns={"classes": "erased_class"})  # one erased set plays the part of one erased class
    by = ["n_classes", "mode"] + (["wording"] if "wording" in table else [])
    return unlearning_summary(runs, by=by, min_ua=min_ua, max_others_drop=max_others_drop).rename(
        columns={"classes": "sets", "classes_erased": "sets_erased"}
    )


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
    epochs: Sequence[int] | None = None,
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
        built-in classifier), e.g. from :class:`ClassPromptSet` with ``style``. A table with a
        ``wording`` column (:func:`erasure_lib.experiment.style_prompt_tables` with ``wordings``) is
        judged per wording, and the rows gain a ``wording`` column after ``prompt_style``.
    generation
        Sampling settings.
    epochs
        The epochs whose checkpoints are judged (each in ``1..config.epochs``), or ``None`` for the
        final weights only.

    Returns
    -------
    tuple[pandas.DataFrame, dict[str, StableDiffusionPipeline]]
        One row per (erased style, seed, prompt style, when, epochs) with columns ``erased_style,
        seed, prompt_style, when, epochs, style_share, class_accuracy`` (``when`` is ``"before"``
        (epochs 0, carrying the first seed) or ``"after"``), in the order computed; and the final
        erased model of the first seed for each style (for sample grids).
    """
    from erasure_lib.methods import fewshot

    if not seeds:
        raise ValueError("give at least one seed")
    if len({"wording" in table for table in prompt_tables.values()}) > 1:
        raise ValueError("either every prompt table has a wording column or none has")
    rows, before, erased_models = [], {}, {}
    for erased_style in erased_styles:
        for seed in seeds:
            images = image_source(erased_style, seed)
            config = config_for(seed)
            if epochs is not None and not all(1 <= e <= config.epochs for e in epochs):
                raise ValueError(f"epochs {list(epochs)} must lie in 1..{config.epochs}, the epochs the config trains")
            result = fewshot.erase(pipeline, erased_style, images, replace(config, keep_checkpoints=epochs is not None), progress_bar=False)
            judged = [(0, "before", pipeline)] + [(e, "after", result.apply(pipeline, epoch=e)) for e in epochs or []]
            if epochs is None:
                judged.append((result.info.epochs_run, "after", result.apply(pipeline)))
            for prompt_style, table in prompt_tables.items():
                worded = table.groupby("wording", sort=False) if "wording" in table else [(None, table)]
                for wording, prompts in worded:
                    for epoch, when, p in judged:
                        if when == "before" and seed != seeds[0]:
                            continue
                        if when == "before" and (prompt_style, wording) in before:
                            verdict = before[(prompt_style, wording)]
                        else:
                            verdict = style_verdict(judge, p, prompts, prompt_style, generation)
                        if when == "before":
                            before[(prompt_style, wording)] = verdict
                        rows.append({"erased_style": erased_style, "seed": seed, "prompt_style": prompt_style,
                                     **({} if wording is None else {"wording": wording}), "when": when, "epochs": epoch, **verdict})  # fmt: skip
            if seed == seeds[0]:
                erased_models[erased_style] = result.apply(pipeline)
    worded = ["wording"] if any("wording" in table for table in prompt_tables.values()) else []
    columns = ["erased_style", "seed", "prompt_style", *worded, "when", "epochs", "style_share", "class_accuracy"]
    return pd.DataFrame(rows, columns=columns), erased_models


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


# --------------------------------------------------------------------------------------------
# Methods compared (paper, Sec. 4.3): every method's erasure of each class, judged, scored and timed alike
# --------------------------------------------------------------------------------------------

if TYPE_CHECKING:  # annotations only
    from erasure_lib.methods.base import ErasureResult
    from erasure_lib.metrics.quality import QualityScorer

COMPARED_BASE = "base model"  # the base model's label in a comparison of methods
COMPARISON_COLUMNS = ("method", "erased_class", "erased_share", "others_accuracy", "fid", "kid", "clip_score",
                      "clip_score_erased", "optimization_seconds", "total_seconds")  # fmt: skip


def comparison_seed_offset(concept: str, universe: Sequence[str], n_erased: int, n_others: int, stride: int = 1_000) -> int:
    """The first evaluation seed of the judged models of one erased class in :func:`compare_methods`:
    each class of the judge's ``universe`` has a block of ``stride`` seeds of its own, so that images
    pooled over the erased classes (:class:`erasure_lib.metrics.quality.FeaturePool`) are distinct.
    With one block for all, every erased class's models drew the other classes from the same prompts
    and seeds: a pooled set held each image once per erased class (the base model's as exact copies),
    and FID, which rises as a set's distinct images fall, ranked the base model worst."""
    if max(n_erased, n_others) > stride:
        raise ValueError(f"at most {stride} images per class (n_erased={n_erased}, n_others={n_others})")
    return 10_000 + stride * list(universe).index(concept)


JUDGED_REVISION = 1  # raise when what a judged model's saved verdict holds, or how it is computed, changes


@dataclass(frozen=True)
class Judged:
    """What :func:`compare_methods` keeps of one judged model: the judge's summary of its prompt
    table's images (:func:`summarize`), the CLIP score of each of those images against its prompt,
    the Inception features its FID and KID are computed from (of the other classes' images, or of the
    quality prompts' images), and the CLIP scores of the quality prompts' images (``None`` without)."""

    summary: dict[str, float]
    clip: np.ndarray
    features: np.ndarray
    clip_quality: np.ndarray | None = None

    def save(self, folder: Path, key: Mapping[str, object]) -> None:
        """Write the verdict, then its key (last, atomically: a folder without a key is not read)."""
        arrays = {"clip": self.clip, "features": self.features} | ({} if self.clip_quality is None else {"clip_quality": self.clip_quality})
        buffer = BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(folder / "judged.npz", buffer.getvalue())
        atomic_write_text(folder / "summary.json", json.dumps({k: float(v) for k, v in self.summary.items()}, indent=1))
        atomic_write_text(folder / "judged_key.json", json.dumps(dict(key), indent=1, sort_keys=True, default=str))

    @classmethod
    def load(cls, folder: Path, key: Mapping[str, object]) -> Judged | None:
        """The verdict saved in ``folder`` under the same ``key``, or ``None``."""
        key_file = folder / "judged_key.json"
        if not key_file.is_file() or json.loads(key_file.read_text()) != json.loads(json.dumps(dict(key), sort_keys=True, default=str)):
            return None
        with np.load(folder / "judged.npz") as arrays:
            return cls(json.loads((folder / "summary.json").read_text()), arrays["clip"], arrays["features"],
                       arrays["clip_quality"] if "clip_quality" in arrays else None)  # fmt: skip


def _table_fingerprint(table: pd.DataFrame | None) -> str | None:
    """SHA-1 of a prompt table's prompts and evaluation seeds (what decides its images)."""
    if table is None:
        return None
    text = "\n".join(f"{p}\t{s}" for p, s in zip(table.prompt, table.evaluation_seed, strict=True))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def judge_digest(judge: object) -> str | None:
    """A hash of a judge's weights, where it is a torch module or holds one as ``model``, for the
    caches' keys (a retrained judge is not read back); ``None`` for a judge without weights."""
    module = judge if isinstance(judge, torch.nn.Module) else getattr(judge, "model", None)
    return weights_digest({"judge": module}) if isinstance(module, torch.nn.Module) else None


def judged_key(method: str, concept: str, seed: int | None, result: ErasureResult | None, table: pd.DataFrame,
               quality_prompts: pd.DataFrame | None, generation: GenerationConfig, judged_with: Mapping[str, object],
               weights: str | None = None, judge_weights: str | None = None) -> dict[str, object]:  # fmt: skip
    """What decides one judged model's verdict in :func:`compare_methods`: the model (the method, its
    configuration and erased concept, and ``weights``, the digest of the judged model's text encoder
    and U-Net, :func:`erasure_lib.methods.base.model_digest`: a retrained base model or another erasure is
    not read back), the judge (``judge_weights``, its digest where it is a torch module), what the
    caller names in ``judged_with``, its prompt table and quality prompts, and the sampling settings."""
    config = None if result is None or result.config is None else (asdict(result.config) if is_dataclass(result.config) else dict(result.config))
    return {"revision": JUDGED_REVISION, "method": method, "erased_class": concept, "seed": seed, "config": config,
            "prompts": _table_fingerprint(table), "quality_prompts": _table_fingerprint(quality_prompts),
            "generation": asdict(generation), "judged_with": dict(judged_with), "weights": weights,
            "judge_weights": judge_weights}  # fmt: skip


def compare_methods(
    pipeline: StableDiffusionPipeline,
    judge: GarmentStyleClassifier | ImageNetEvaluator,
    classes: Sequence[str],
    erasures: Callable[..., Mapping[str, ErasureResult]],
    generation: GenerationConfig,
    n_erased: int,
    n_others: int,
    quality: QualityScorer,
    universe: Sequence[str] = CLASSES,
    progress_bar: bool = True,
    seeds: Sequence[int] | None = None,
    on_features: Callable[[str, int | None, np.ndarray], None] | None = None,
    quality_dir: str | Path | None = None,
    judged_cache: str | Path | None = None,
    judged_with: Mapping[str, object] | None = None,
    wordings: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Erase each class with every method, then judge, score and time the base model and each erased
    model alike (paper, Sec. 4.3: few-shot unlearning against ESD and UCE).

    For each class, in this order: the erasures ``erasures(class)`` (one per method), its prompt
    table (:func:`erasure_prompt_table`: ``n_erased`` prompts of it, ``n_others`` of every other
    class of ``universe``), then for the base model and each erased model: the images of the prompt
    table (the same prompts and seeds for all), the judge's verdict on them, the CLIP score of each
    image against its prompt, and the Inception features for FID and KID. Without quality prompts
    (``quality.prompts is None``) FID, KID and ``clip_score`` are of the other classes' images only
    (FID and KID against the real images of the other classes: ``quality.real_classes`` must name
    them), so that they measure what an erasure does to what it should keep, not the erasure itself;
    with quality prompts (the paper's COCO-30k) the model generates their images, and FID, KID and
    ``clip_score`` are of those.

    Parameters
    ----------
    pipeline
        The base model; it is not modified.
    judge
        The built-in garment classifier or an ImageNet evaluator (EVA02 for Imagenette, Sec. 4.1).
    classes
        The classes erased, one at a time (each one of ``universe``).
    erasures
        ``class -> {method: erasure}``, e.g. :func:`erasure_lib.experiment.erase_with_methods` with
        the pipeline, images, configs and cache bound; rows follow its order. With ``seeds``:
        ``(class, seed) -> {method: erasure}``, each seed's erasures drawn with that seed.
    generation
        Sampling settings.
    n_erased, n_others
        Generated images of the erased class, and of every other class, per judged model.
    quality
        FID, KID and CLIP score (:func:`erasure_lib.metrics.quality.load_scorer`).
    universe
        The classes the judge names, in the order of its ``predicted`` indices.
    progress_bar
        Show a progress bar over the classes.
    seeds
        Erasure seeds (statistics over seeds, not one lucky seed), or ``None`` for one erasure per
        class and method. With seeds the rows gain a ``seed`` column; the base model, whose images
        do not depend on the erasure seed, is judged once per class and its row repeated for each seed.
    on_features
        Called with ``(method, seed, features)`` for every row (the base model's once per seed,
        ``seed`` None without seeds), the Inception features its FID and KID were computed from:
        :meth:`erasure_lib.metrics.quality.FeaturePool.add` pools them over the classes. With
        ``wordings``, called with ``(method, seed, features, wording)``.
    quality_dir
        With quality prompts: where each judged model's images of them are kept
        (:func:`erasure_lib.shard.quality_folder`: ``base`` once for the base model, then
        ``<method>/<class>[/seed-<seed>]``), generated only where missing and read back otherwise, so
        an interrupted run resumes and a sharded pre-generation (``python -m erasure_lib.shard
        --erasure ...`` across GPUs) is used as is; each folder's stamp refuses another model's
        images. ``None``: generated in memory.
    judged_cache
        Where each judged model's verdict (:class:`Judged`: the judge's summary, CLIP scores and
        Inception features) is kept, ``<method>/<class>[/seed-<seed>]`` (``base-model/<class>`` for
        the base model), keyed by :func:`judged_key`; a verdict saved under the same key is read
        back instead of generated and judged again, so an interrupted run resumes, and runs over
        parts of ``classes`` (side by side) fill it for one run over all. FID and KID are computed
        from the kept features with ``quality``'s real images at read-back. ``None``: nothing kept.
    judged_with
        With ``judged_cache``: what the key cannot see, named by the caller: the base model, the
        judge, the CLIP model, the images the erasures used (e.g. the notebook's parameters).
    wordings
        Named template sets (e.g. :data:`erasure_lib.data.WORDINGS`, the paper's and held-out
        wordings): each judged model is judged on its prompt table in each wording (the same
        evaluation seeds), every row gains a ``wording`` column after ``seed``, and ``judged_cache``
        keeps each wording's verdicts under ``<wording>/``. ``None``: the paper's templates alone,
        without the column.

    Returns
    -------
    pandas.DataFrame
        One row per (class, model[, wording]), in the order run, the base model (:data:`COMPARED_BASE`, 0
        seconds) first within each class (and seed), with the columns of :data:`COMPARISON_COLUMNS`:
        ``method``, ``erased_class``, ``erased_share`` and ``others_accuracy`` (:func:`summarize`),
        ``fid``, ``kid``, ``clip_score`` (:func:`erasure_lib.metrics.clip_score.reported_clip_score`),
        ``clip_score_erased`` (the same over the erased class's prompts), and the erasure's
        ``optimization_seconds`` and ``total_seconds`` (those of the run that saved a cached erasure).
    """
    from erasure_lib.metrics.clip_score import reported_clip_score

    if not classes:
        raise ValueError("give at least one class to erase")
    unknown = [c for c in classes if c not in universe]
    if unknown:
        raise ValueError(f"unknown class(es) {unknown}: the judge names {list(universe)}")
    if n_erased < 1 or n_others < 0:
        raise ValueError(f"n_erased must be at least 1 and n_others at least 0, got {n_erased} and {n_others}")
    if quality.prompts is None and (n_others < 1 or len(universe) < 2):
        raise ValueError("without quality prompts FID, KID and CLIP score are over the other classes' images: give "
                         "n_others >= 1 and a universe of at least two classes, or quality prompts")  # fmt: skip
    if quality.prompts is None and quality.real_classes is None:
        raise ValueError("without quality prompts FID and KID compare the other classes' images with the other classes' "
                         "real images: give the scorer real_classes (experiment.reference_images returns them)")  # fmt: skip
    if seeds is not None and not len(seeds):
        raise ValueError("give at least one seed, or seeds=None for one erasure per class and method")
    if judged_cache is not None and judged_with is None:
        raise ValueError("judged_cache needs judged_with: the base model, judge and CLIP model its verdicts are keyed by")
    if judged_cache is not None:
        judge_weights = judge_digest(judge)
    if wordings is not None and (not wordings or not all(wordings.values())):
        raise ValueError("give at least one wording, each with at least one template, or wordings=None")
    worded = {None: OBJECT_TEMPLATES} if wordings is None else dict(wordings)
    rows: list[dict[str, object]] = []
    runs = [(concept, None) for concept in classes] if seeds is None else [(c, int(s)) for c in classes for s in seeds]
    base: dict[tuple[str, str | None], tuple[dict[str, object], np.ndarray]] = {}  # (class, wording) -> row, features
    for concept, seed in tqdm(runs, desc="compare methods", disable=not progress_bar):
        erased_by = dict(erasures(concept) if seed is None else erasures(concept, seed))
        if COMPARED_BASE in erased_by:
            raise ValueError(f"{COMPARED_BASE!r} labels the base model; give the method another name")
        offset = comparison_seed_offset(concept, universe, n_erased, n_others)
        tables = {w: erasure_prompt_table([concept], n_erased, n_others, offset, universe, templates=t) for w, t in worded.items()}
        for method, result in [(COMPARED_BASE, None), *erased_by.items()]:
            model = digest = None  # the judged model and its weights' digest, built once for all wordings, and only where needed
            scored = None  # with quality prompts: the first wording's verdict, whose quality images every wording shares
            for wording, table in tables.items():
                erased = (table["class"] == concept).to_numpy()
                tag = ({"erased_class": concept} | ({} if seed is None else {"seed": seed})
                       | ({} if wording is None else {"wording": wording}))  # fmt: skip
                if result is None and (concept, wording) in base:  # judged already, for an earlier seed
                    row, features = base[(concept, wording)]
                    rows.append(row | tag)
                else:
                    key = folder = judged = None
                    if judged_cache is not None:
                        model = _judged_model(pipeline, result) if model is None else model
                        digest = model_digest(model) if digest is None else digest
                        key = judged_key(method, concept, None if result is None else seed, result, table, quality.prompts, generation,
                                         judged_with or {}, digest, judge_weights)  # fmt: skip
                        folder = Path(judged_cache) / ("" if wording is None else wording) / ("base-model" if result is None else method) / concept
                        folder = folder if result is None or seed is None else folder / f"seed-{seed}"
                        judged = Judged.load(folder, key)
                    if judged is None:
                        model = _judged_model(pipeline, result) if model is None else model
                        judged = _judge_model(model, judge, table, erased, concept, quality, generation,
                                              None if quality_dir is None else shard.quality_folder(quality_dir, None if result is None else method, concept, seed),
                                              scored)  # fmt: skip
                        if folder is not None and key is not None:
                            judged.save(folder, key)
                    features, clip = judged.features, judged.clip
                    scored = judged if scored is None and quality.prompts is not None else scored
                    clip_quality, leave_out = (clip[~erased], concept) if quality.prompts is None else (judged.clip_quality, None)
                    rows.append({"method": method, **tag, **judged.summary,
                                 "fid": quality.fid(features, leave_out), "kid": quality.kid(features, leave_out),
                                 "clip_score": reported_clip_score(clip_quality), "clip_score_erased": reported_clip_score(clip[erased]),
                                 "optimization_seconds": 0.0 if result is None else result.optimization_seconds,
                                 "total_seconds": 0.0 if result is None else result.total_seconds})  # fmt: skip
                    if result is None:
                        base[(concept, wording)] = rows[-1], features
                if on_features is not None:
                    on_features(method, seed, features) if wording is None else on_features(method, seed, features, wording)
    columns = list(COMPARISON_COLUMNS)
    tags = ([] if seeds is None else ["seed"]) + ([] if wordings is None else ["wording"])
    return pd.DataFrame(rows, columns=[*columns[:2], *tags, *columns[2:]])


def _judged_model(pipeline: StableDiffusionPipeline, result: ErasureResult | None) -> StableDiffusionPipeline:
    """The base model (``result`` None) or the erased model a :func:`compare_methods` row judges."""
    return pipeline if result is None else result.apply(pipeline)


def _judge_model(model: StableDiffusionPipeline, judge: GarmentStyleClassifier | ImageNetEvaluator, table: pd.DataFrame,
                 erased: np.ndarray, concept: str, quality: QualityScorer, generation: GenerationConfig,
                 quality_folder: Path | None, scored: Judged | None = None) -> Judged:
    """One judged model of :func:`compare_methods`: its prompt table's images judged and CLIP-scored,
    and the Inception features of the other classes' images (without quality prompts) or of the
    quality prompts' images (generated, or kept in ``quality_folder``) with their CLIP scores; with
    quality prompts and ``scored`` (the same model's verdict in another wording) those are taken from
    it instead of generated and scored again."""
    generated = generate(model, list(table.prompt), list(table.evaluation_seed), generation, progress_bar=False)
    classified = classify_images(judge, table, generated)
    clip = quality.clip_scores(generated, table.prompt)
    if quality.prompts is None:  # the other classes' images, against the other classes' real images
        others = [image for image, of_concept in zip(generated, erased) if not of_concept]
        return Judged(summarize(classified, [concept]), clip, quality.features(others))
    if scored is not None:  # the quality prompts' images do not depend on the wording
        return Judged(summarize(classified, [concept]), clip, scored.features, scored.clip_quality)
    coco = quality.prompts  # the paper's COCO-30k: quality of the images of other prompts
    if quality_folder is None:
        images = generate(model, list(coco.prompt), list(coco.evaluation_seed), generation, progress_bar=False)
    else:
        images = [Image.open(p).convert("RGB") for p in shard.generate_quality_images(model, coco, quality_folder, generation)]
    return Judged(summarize(classified, [concept]), clip, quality.features(images), quality.clip_scores(images, coco.prompt))


def paired_contrast(
    table: pd.DataFrame,
    by: str,
    reference: str,
    others: Sequence[str],
    margins: Mapping[str, float],
    run: Sequence[str] = ("erased_class", "seed"),
) -> pd.DataFrame:
    """``reference`` minus each of ``others`` (values of the column ``by``: methods, image counts,
    options), paired run by run (the same ``run`` columns, and the same wording where the table has a
    ``wording`` column: the same images and evaluation seeds on both sides), for each measure of
    ``margins`` (a column of ``table``, higher = better): the mean difference with a 95% bootstrap
    interval over the paired runs, and what the interval says against a non-inferiority margin: the
    reference is ``"as good"`` where the whole interval lies above ``-margin``, ``"worse"`` where
    the whole interval lies below it, and ``"unresolved"`` where it straddles the margin. A rule on
    the interval of the difference does not flip on a move of one side's mean that the runs do not
    resolve, as a threshold on the two means does.

    Returns
    -------
    pandas.DataFrame
        One row per (other[, wording], measure): ``other``, ``wording`` (for a table judged in
        several), ``measure``, ``runs``, ``difference``, ``difference_low``, ``difference_high``,
        ``margin``, ``verdict``.
    """
    missing = [c for c in (by, *run, *margins) if c not in table]
    if missing or not margins:
        raise ValueError(f"the table lacks the column(s) {missing or 'of a measure: margins is empty'}")
    values = set(table[by])
    if reference not in values:
        raise ValueError(f"no {reference!r} rows in the table ({by}: {sorted(values, key=str)})")
    unknown = [o for o in others if o not in values]
    if unknown:
        raise ValueError(f"no rows of {unknown} in the table ({by}: {sorted(values, key=str)})")
    run = [*run, *(["wording"] if "wording" in table else [])]
    measured = table.set_index(run)
    ours = measured[measured[by] == reference]
    rows = []
    for other in others:
        theirs = measured[measured[by] == other]
        paired = ours.join(theirs, how="inner", suffixes=("_ours", "_theirs"))
        if len(paired) < len(ours) or len(paired) < len(theirs):
            raise ValueError(f"{reference} and {other} do not cover the same runs ({', '.join(run)})")
        groups = paired.groupby(level="wording", sort=False) if "wording" in table else [(None, paired)]
        for wording, part in groups:
            for measure, margin in margins.items():
                difference = (part[f"{measure}_ours"] - part[f"{measure}_theirs"]).to_numpy(dtype=float)
                low, high = spread(difference)
                verdict = "as good" if low >= -margin else ("worse" if high < -margin else "unresolved")
                rows.append({"other": other, **({} if wording is None else {"wording": wording}), "measure": measure,
                             "runs": len(difference), "difference": float(difference.mean()), "difference_low": low,
                             "difference_high": high, "margin": margin, "verdict": verdict})  # fmt: skip
    return pd.DataFrame(rows)


def paired_differences(
    table: pd.DataFrame, reference: str = "fewshot", margins: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """``reference`` minus each other method of a :func:`compare_methods` table with seeds, paired run
    by run (the same erased class, seed and wording), for UA and IRA (:func:`paired_contrast`, with
    the claims table's margins by default: UA 0.10, IRA 0.05).

    Returns
    -------
    pandas.DataFrame
        One row per (baseline[, wording], measure): ``baseline``, ``wording`` (for a table judged in
        several), ``measure`` (``UA`` or ``IRA``), ``runs``, ``difference``, ``difference_low``,
        ``difference_high``, ``margin``, ``verdict``.
    """
    margins = {"UA": 0.10, "IRA": 0.05} if margins is None else dict(margins)
    unknown = set(margins) - {"UA", "IRA"}
    if unknown or not margins:
        raise ValueError(f"margins are for UA and IRA, got {sorted(margins)}")
    if "seed" not in table:
        raise ValueError("the table has no seed column: compare_methods(..., seeds=[...]) gives one")
    baselines = [m for m in dict.fromkeys(table.method) if m not in (reference, COMPARED_BASE)]
    measured = table.assign(UA=1 - table.erased_share, IRA=table.others_accuracy)[["method", "erased_class", "seed", "UA", "IRA",
                                                                                     *(["wording"] if "wording" in table else [])]]  # fmt: skip
    return paired_contrast(measured, "method", reference, baselines, margins).rename(columns={"other": "baseline"})


def comparison_summary(table: pd.DataFrame, min_ua: float = 0.9, max_others_drop: float = 0.10) -> pd.DataFrame:
    """One row per erasure method (and wording, for a table judged in several) of a
    :func:`compare_methods` table with seeds: UA, IRA, the success and clean shares with 95%
    bootstrap intervals over the runs (:func:`unlearning_summary`, the base model of the same class,
    seed and wording as "before"), and FID, KID and CLIP score of the other classes' images (means
    with intervals, and the base model's mean as ``*_before``), with the median optimization and
    total seconds."""
    if "seed" not in table:
        raise ValueError("the table has no seed column: compare_methods(..., seeds=[...]) gives one")
    run = ["erased_class", "seed", *(["wording"] if "wording" in table else [])]  # what pairs a run with its base model
    by = ["method", *(["wording"] if "wording" in table else [])]
    base = table[table.method == COMPARED_BASE].drop_duplicates(run).set_index(run)
    erased = table[table.method != COMPARED_BASE]
    if erased.empty or base.empty:
        raise ValueError("the table needs the base model's rows and at least one erasure's")
    index = pd.MultiIndex.from_frame(erased[run])
    runs = erased.assign(UA=1 - erased.erased_share, IRA=erased.others_accuracy,
                         erased_share_before=base.erased_share.reindex(index).to_numpy(),
                         others_accuracy_before=base.others_accuracy.reindex(index).to_numpy())  # fmt: skip
    summary = unlearning_summary(runs, by=by, min_ua=min_ua, max_others_drop=max_others_drop).set_index(by)
    for measure in ("fid", "kid", "clip_score"):
        for group, part in runs.groupby(by, sort=False):
            low, high = spread(part[measure].dropna())
            summary.loc[group, [measure, f"{measure}_low", f"{measure}_high", f"{measure}_before"]] = (
                float(part[measure].mean()), low, high, float(base[measure].reindex(pd.MultiIndex.from_frame(part[run])).mean()))
    seconds = runs.groupby(by, sort=False)[["optimization_seconds", "total_seconds"]].median()
    return summary.join(seconds.add_suffix("_median")).reset_index()
