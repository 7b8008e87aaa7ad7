"""The erasure window (beyond the paper): for one concept, the range of optimizer steps between
"erased" and "other concepts damaged".

Gradient ascent on the denoising loss has no fixed point (Sec. 3: the loss is maximised, not
minimised), so every erasure passes through three phases: the concept intact, the concept erased with
the rest kept, everything damaged. This module judges an erasure after many optimizer steps from one
run (checkpoints kept with ``FewShotConfig(checkpoint_steps=...)``) and reads the window off the
trajectory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from diffusers import StableDiffusionPipeline
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from erasure_lib.data import CLASS_GROUPS, CLASSES, HELDOUT_OBJECT_TEMPLATES, image_digest
from erasure_lib.evaluation import ClassPromptSet, classify_images, per_class_accuracy, spread
from erasure_lib.generate import GenerationConfig, generate_from_embeddings
from erasure_lib.methods import fewshot
from erasure_lib.methods.base import ErasureResult, model_digest, tokenize
from erasure_lib.methods.fewshot import FewShotConfig
from erasure_lib.metrics.classifier import GarmentStyleClassifier
from erasure_lib.metrics.transitions import related_classes
from erasure_lib.results import cached_tables


@dataclass(frozen=True)
class WindowThresholds:
    """When a concept counts as erased, and when the others count as damaged (Sec. "the window")."""

    max_erased_share: float = 0.10  # erased: at most this share of its images still judged as it
    max_others_drop: float = 0.10  # damaged: the other classes' accuracy fell by more than this


def heldout_prompts(
    concept: str, classes: Sequence[str] = CLASSES, n_erased: int = 6, n_others: int = 3, seed_offset: int = 20_000,
    templates: Sequence[str] = HELDOUT_OBJECT_TEMPLATES,
) -> pd.DataFrame:
    """Prompts that judge the erasure of ``concept``: ``n_erased`` of it and ``n_others`` of every other
    class, in wordings the erasure never used (the held-out templates), seeds ``seed_offset + k``."""
    if concept not in classes:
        raise ValueError(f"unknown concept {concept!r}; expected one of {tuple(classes)}")
    kept = tuple(c for c in classes if c != concept)
    table = pd.concat([
        ClassPromptSet((concept,), n_erased, seed_offset, templates=tuple(templates), universe=tuple(classes)).table(),
        ClassPromptSet(kept, n_others, seed_offset, templates=tuple(templates), universe=tuple(classes)).table(),
    ], ignore_index=True)  # fmt: skip
    return table.assign(case_number=range(len(table)))


@torch.no_grad()
def prompt_embeddings(
    pipeline: StableDiffusionPipeline, text_encoder: PreTrainedModel, prompts: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The conditional and unconditional (empty-prompt) embeddings that ``pipeline(prompts)`` would
    compute with ``text_encoder`` in its place (classifier-free guidance encodes both with it)."""

    def encode(texts: list[str]) -> torch.Tensor:
        return text_encoder(tokenize(pipeline.tokenizer, texts, pipeline.device))[0].to(pipeline.unet.dtype)

    return encode(list(prompts)), encode([""] * len(prompts))


@torch.no_grad()
def generate_with_encoders(
    pipeline: StableDiffusionPipeline,
    encoders: Mapping[int, PreTrainedModel],
    prompts: pd.DataFrame,
    generation: GenerationConfig,
    progress_bar: bool = True,
) -> dict[int, list]:
    """Every row of ``prompts`` (``prompt``, ``evaluation_seed``) under every text encoder of
    ``encoders``, the U-Net shared: the images of all encoders are sampled in common batches.
    Each image depends only on its prompt, its seed and its encoder, as with :func:`generate`."""
    keys = list(encoders)
    pos, neg, seeds = [], [], []
    for k in keys:
        p, u = prompt_embeddings(pipeline, encoders[k], list(prompts["prompt"]))
        pos.append(p), neg.append(u), seeds.extend(int(s) for s in prompts["evaluation_seed"])
    images = generate_from_embeddings(pipeline, torch.cat(pos), torch.cat(neg), seeds, generation, progress_bar)
    n = len(prompts)
    return {k: images[i * n : (i + 1) * n] for i, k in enumerate(keys)}


def summarize_step(
    classified: pd.DataFrame, concept: str, groups: Mapping[str, Sequence[str]] = CLASS_GROUPS
) -> dict[str, float]:
    """``erased_share``, ``others_accuracy`` (all other classes), ``related_accuracy`` (the concept's
    group, e.g. the other footwear; NaN when it has none) and ``unrelated_accuracy``."""
    acc = per_class_accuracy(classified)
    related = [c for c in related_classes(concept, groups) if c in acc.index]
    others = [c for c in acc.index if c != concept]
    unrelated = [c for c in others if c not in related]
    return {
        "erased_share": float(acc[concept]),
        "others_accuracy": float(acc[others].mean()),
        "related_accuracy": float(acc[related].mean()) if related else float("nan"),
        "unrelated_accuracy": float(acc[unrelated].mean()) if unrelated else float("nan"),
    }


def judge_trajectory(
    pipeline: StableDiffusionPipeline,
    result: ErasureResult,
    judge: GarmentStyleClassifier,
    prompts: pd.DataFrame,
    generation: GenerationConfig,
    groups: Mapping[str, Sequence[str]] = CLASS_GROUPS,
    include_base: bool = True,
    progress_bar: bool = True,
) -> pd.DataFrame:
    """Judge the kept checkpoints of one few-shot erasure (``result.step_checkpoints``), and the base
    model as step 0: one row per step with :func:`summarize_step`'s measures."""
    encoders: dict[int, PreTrainedModel] = {0: pipeline.text_encoder} if include_base else {}
    for step in sorted(result.step_checkpoints):
        encoders[step] = result.component_after_step("text_encoder", step)
    images = generate_with_encoders(pipeline, encoders, prompts, generation, progress_bar)
    rows = []
    for step, imgs in images.items():
        rows.append({"step": step, **summarize_step(classify_images(judge, prompts, imgs), result.concept, groups)})
    return pd.DataFrame(rows)


def _first_step(run: pd.DataFrame, mask: pd.Series) -> float:
    return float(run.step[mask].iloc[0]) if mask.any() else np.nan


def window_bounds(trajectories: pd.DataFrame, thresholds: WindowThresholds = WindowThresholds(),
                  keys: Sequence[str] = ("stand_in", "lr", "concept", "seed")) -> pd.DataFrame:
    """Per run: ``erased_step``, the first judged step whose erased share is at most the threshold, and
    ``damage_step``, the first whose others' accuracy fell more than the threshold below step 0's;
    ``clean`` when some judged step is erased and not damaged (its first such step: ``clean_step``).
    Missing steps are NaN (not reached within the run)."""
    rows = []
    for key, run in trajectories.groupby(list(keys), sort=True):
        run = run.sort_values("step")
        base = run[run.step == 0]
        if base.empty:
            raise ValueError(f"run {dict(zip(keys, key))} has no step 0 (the base model) to measure the drop from")
        drop = float(base.others_accuracy.iloc[0]) - run.others_accuracy
        erased = run.erased_share <= thresholds.max_erased_share
        damaged = drop > thresholds.max_others_drop
        clean = erased & ~damaged & (run.step > 0)
        rows.append({**dict(zip(keys, key)), "erased_step": _first_step(run, erased & (run.step > 0)),
                     "damage_step": _first_step(run, damaged), "clean": bool(clean.any()),
                     "clean_step": _first_step(run, clean), "last_step": float(run.step.max())})  # fmt: skip
    return pd.DataFrame(rows)


def fixed_step_outcomes(trajectories: pd.DataFrame, thresholds: WindowThresholds = WindowThresholds(),
                        group: Sequence[str] = ("stand_in", "lr")) -> pd.DataFrame:
    """What one fixed number of steps does to every concept (the paper's fixed epochs): per ``group``
    and judged step, the share of runs erased and not damaged there (``clean_share``), and the means
    of the erased share and of the others' drop. A shared window exists where ``clean_share`` is high."""
    base = trajectories[trajectories.step == 0].set_index(["stand_in", "lr", "concept", "seed"]).others_accuracy
    t = trajectories[trajectories.step > 0].copy()
    t["others_drop"] = base.reindex(pd.MultiIndex.from_frame(t[["stand_in", "lr", "concept", "seed"]])).to_numpy() - t.others_accuracy
    t["clean"] = (t.erased_share <= thresholds.max_erased_share) & (t.others_drop <= thresholds.max_others_drop)
    out = t.groupby([*group, "step"], as_index=False).agg(
        runs=("clean", "size"), clean_share=("clean", "mean"), erased_share=("erased_share", "mean"), others_drop=("others_drop", "mean"))
    return out


def shared_steps(trajectories: pd.DataFrame, stand_ins: Sequence[str]) -> dict[float, tuple[int, ...]]:
    """Per learning rate, the judged optimizer steps (> 0) that every one of ``stand_ins`` measured at
    that rate has in common (a learning rate that not all of them measured is left out)."""
    out: dict[float, tuple[int, ...]] = {}
    for lr, part in trajectories[trajectories.stand_in.isin(stand_ins)].groupby("lr", sort=True):
        grids = [set(g.step[g.step > 0].astype(int)) for _, g in part.groupby("stand_in")]
        if len(grids) == len(set(stand_ins)):
            out[float(lr)] = tuple(sorted(set.intersection(*grids)))
    return out


def compare_stand_ins(
    trajectories: pd.DataFrame, compared: Mapping[float, Sequence[str]], thresholds: WindowThresholds = WindowThresholds(),
    min_base_share: float = 0.5, level: float = 0.95, concepts: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The window of several stand-ins side by side, like for like: at each learning rate of
    ``compared`` (learning rate -> the stand-ins compared at it), every run is read on the judged steps
    that all of those stand-ins share (:func:`shared_steps`), so that a finer grid does not find
    windows a coarser one would miss. Returns (per-run :func:`window_bounds` on the shared steps, one
    summary row per stand-in and learning rate): runs, ``clean_share`` (runs with a clean step) with a
    ``level`` bootstrap interval over runs, ``concepts_clean`` (concepts clean in at least one seed),
    the medians of the first erased and first damaged steps (NaN: not reached; ``never_erased`` and
    ``never_damaged`` count those runs), and the best fixed step count (:func:`fixed_step_outcomes`)
    with its clean share, erased share and others' drop. A run whose base model (step 0) draws the
    concept in fewer than ``min_base_share`` of its images is left out (there is nothing to erase:
    it would count as erased at once); ``left_out`` counts those runs and ``left_out_concepts`` names
    their concepts. ``concepts`` (default: all in ``trajectories``) restricts the comparison to those
    concepts, each of which every compared stand-in must have run at the rate (ValueError otherwise:
    a stand-in missing a concept would be compared on fewer runs than the others)."""
    if concepts is not None:
        for lr, stand_ins in compared.items():
            for stand_in in stand_ins:
                ran = trajectories[(trajectories.stand_in == stand_in) & (trajectories.lr == lr)].concept
                absent = sorted(set(concepts) - set(ran))
                if absent:
                    raise ValueError(f"{stand_in} has no window at lr {lr:g} for {absent}: compare fewer concepts or run them (notebook 15)")
        trajectories = trajectories[trajectories.concept.isin(concepts)]
    bounds_parts, rows = [], []
    for lr, stand_ins in compared.items():
        steps = shared_steps(trajectories[trajectories.lr == lr], stand_ins).get(float(lr), ())
        if not steps:
            raise ValueError(f"lr {lr:g}: the stand-ins {list(stand_ins)} share no judged step (or not all were measured at this rate)")
        part = trajectories[(trajectories.lr == lr) & trajectories.stand_in.isin(stand_ins) & trajectories.step.isin((0, *steps))]
        run_keys = ["stand_in", "concept", "seed"]
        drawn = part[part.step == 0].set_index(run_keys).erased_share >= min_base_share
        kept = drawn.reindex(pd.MultiIndex.from_frame(part[run_keys])).fillna(False).to_numpy(dtype=bool)
        left_out = part[~kept & (part.step == 0)]
        part = part[kept]
        bounds = window_bounds(part, thresholds)
        bounds = pd.concat([bounds[bounds.stand_in == s] for s in stand_ins], ignore_index=True)  # in the order asked
        fixed = fixed_step_outcomes(part, thresholds)
        bounds_parts.append(bounds)
        for stand_in in stand_ins:
            b, f = bounds[bounds.stand_in == stand_in], fixed[fixed.stand_in == stand_in]
            if b.empty:
                raise ValueError(f"{stand_in} at lr {lr:g}: no run whose base model draws its concept in >= {min_base_share} of the images")
            best = f.sort_values(["clean_share", "others_drop"], ascending=[False, True]).iloc[0]
            low, high = spread(b.clean.astype(float).to_numpy(), level=level)
            out = left_out[left_out.stand_in == stand_in]
            rows.append({"stand_in": stand_in, "lr": float(lr), "shared_steps": " ".join(map(str, steps)), "runs": len(b),
                         "left_out": len(out), "left_out_concepts": " ".join(sorted(out.concept.unique())),
                         "clean_share": float(b.clean.mean()), "clean_share_low": low, "clean_share_high": high,
                         "concepts": b.concept.nunique(), "concepts_clean": int(b[b.clean].concept.nunique()),
                         "median_erased_step": float(b.erased_step.median()), "never_erased": int(b.erased_step.isna().sum()),
                         "median_damage_step": float(b.damage_step.median()), "never_damaged": int(b.damage_step.isna().sum()),
                         "best_fixed_step": int(best.step), "best_fixed_clean_share": float(best.clean_share),
                         "best_fixed_erased_share": float(best.erased_share), "best_fixed_others_drop": float(best.others_drop)})  # fmt: skip
    return pd.concat(bounds_parts, ignore_index=True), pd.DataFrame(rows)


def run_key(
    model: str, concept: str, config: FewShotConfig, judged_steps: Sequence[int], prompts: pd.DataFrame,
    generation: GenerationConfig, images: Sequence,
) -> str:
    """What a cached window run is read back for: the model's digest, the concept, every option, the
    judged steps, the judging prompts and sampler, and the real images' content."""
    options = asdict(config)
    if config.probe_every == 1:  # the default: runs cached before the option existed stay valid
        del options["probe_every"]
    return json.dumps({"model": model, "concept": concept, "config": options, "steps": sorted(set(judged_steps)),
                       "prompts": prompts.to_dict(orient="list"), "generation": asdict(generation),
                       "images": [image_digest(p) for p in images]}, sort_keys=True, default=str)  # fmt: skip


def run_window(
    pipeline: StableDiffusionPipeline,
    judge: GarmentStyleClassifier,
    concept: str,
    images: Sequence,
    config: FewShotConfig,
    judged_steps: Sequence[int],
    prompts: pd.DataFrame,
    generation: GenerationConfig,
    cache: str | Path,
    model: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One erasure run to ``max(judged_steps)`` optimizer steps, judged after each of ``judged_steps``
    (not step 0: judge the base model once with :func:`judge_base`), with the classifier-free probes
    of every ``config.probe_every``-th step. Returns (judged rows, probe trace); both are cached in ``cache`` (a folder, written
    atomically) and read back when the run's settings and ``model`` (its :func:`model_digest`) are
    unchanged, so a sweep resumes."""
    cache = Path(cache)
    key = run_key(model, concept, config, judged_steps, prompts, generation, images)
    kept = cached_tables(cache, key, lambda: _window_tables(pipeline, judge, concept, images, config, judged_steps, prompts, generation))
    return kept["judged"], kept["trace"]


def _window_tables(pipeline: StableDiffusionPipeline, judge: GarmentStyleClassifier, concept: str, images: Sequence, config: FewShotConfig,
                   judged_steps: Sequence[int], prompts: pd.DataFrame, generation: GenerationConfig) -> dict[str, pd.DataFrame]:  # fmt: skip
    """:func:`run_window`'s run, uncached: its judged rows and probe trace."""
    steps = sorted({int(s) for s in judged_steps})
    steps_per_epoch = -(-len(images) // config.batch_size)
    epochs = -(-steps[-1] // steps_per_epoch)
    run_config = replace(config, epochs=epochs, checkpoint_steps=tuple(steps), stop_check="step",
                         stop_loss_ratio=None, stop_retain_drift=None)  # fmt: skip
    result = fewshot.erase(pipeline, concept, list(images), run_config, progress_bar=False)
    judged = judge_trajectory(pipeline, result, judge, prompts, generation, include_base=False, progress_bar=False)
    return {"judged": judged, "trace": pd.DataFrame(result.info["probe_trace"])}


def judge_base(
    pipeline: StableDiffusionPipeline, judge: GarmentStyleClassifier, prompts_for: Callable[[str], pd.DataFrame],
    concepts: Sequence[str], generation: GenerationConfig, groups: Mapping[str, Sequence[str]] = CLASS_GROUPS,
) -> pd.DataFrame:
    """The base model as step 0 of every concept's window, on that concept's prompts."""
    tables = [prompts_for(c) for c in concepts]
    merged = pd.concat(tables, ignore_index=True)
    images = generate_with_encoders(pipeline, {0: pipeline.text_encoder}, merged, generation, progress_bar=False)[0]
    rows, start = [], 0
    for concept, table in zip(concepts, tables):
        classified = classify_images(judge, table, images[start : start + len(table)])
        rows.append({"concept": concept, "step": 0, **summarize_step(classified, concept, groups)})
        start += len(table)
    return pd.DataFrame(rows)


def sweep(
    pipeline: StableDiffusionPipeline,
    judge: GarmentStyleClassifier,
    concept_images: Callable[[str, int], Sequence],
    concepts: Sequence[str],
    seeds: Sequence[int],
    judged_steps: Mapping[float, Sequence[int]],
    config: FewShotConfig,
    prompts_for: Callable[[str], pd.DataFrame],
    generation: GenerationConfig,
    cache_dir: str | Path,
    progress_bar: bool = True,
    probe_every: Mapping[float, int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The window of every (learning rate, concept, seed): ``judged_steps`` maps each learning rate
    to the optimizer steps judged after (the run goes to the largest), ``probe_every`` a learning rate
    to how often its probes are measured (every step when absent: long, slow runs probe less often). ``concept_images(concept, seed)``
    gives a run's real images and ``prompts_for(concept)`` the prompts that judge it. Returns tidy trajectories (``lr, concept, seed, step`` and the
    measures, step 0 = the base model) and the per-step probe traces; runs are cached under
    ``cache_dir`` so an interrupted sweep resumes."""
    unknown = sorted(set(probe_every or {}) - set(judged_steps))
    if unknown:
        raise ValueError(f"probe_every names learning rates that judged_steps does not run: {unknown}")
    base = judge_base(pipeline, judge, prompts_for, concepts, generation)
    model = model_digest(pipeline)
    runs = [(lr, c, s) for lr in judged_steps for c in concepts for s in seeds]
    rows, traces = [], []
    for lr, concept, seed in tqdm(runs, desc="erasure windows", disable=not progress_bar):
        run_config = replace(config, lr=lr, seed=seed, probe_every=int((probe_every or {}).get(lr, 1)))
        judged, trace = run_window(pipeline, judge, concept, concept_images(concept, seed), run_config, judged_steps[lr],
                                   prompts_for(concept), generation, Path(cache_dir) / f"lr{lr:g}-{concept.replace(' ', '_')}-seed{seed}", model)  # fmt: skip
        tag = {"lr": lr, "concept": concept, "seed": seed}
        rows.append(pd.concat([base[base.concept == concept].drop(columns="concept"), judged]).assign(**tag))
        traces.append(trace.assign(**tag))
    columns = ["lr", "concept", "seed", "step"]
    trajectories = pd.concat(rows, ignore_index=True)
    return trajectories[columns + [c for c in trajectories.columns if c not in columns]], pd.concat(traces, ignore_index=True)


def sampling_convergence(
    pipeline: StableDiffusionPipeline,
    judge: GarmentStyleClassifier,
    concept_images: Callable[[str, int], Sequence],
    runs: Sequence[tuple[str, int, int]],
    config: FewShotConfig,
    prompts_for: Callable[[str], pd.DataFrame],
    sampling_steps: Sequence[int],
    guidance_scale: float,
    batch_size: int = 128,
) -> pd.DataFrame:
    """Do the shares stop moving with the number of sampling steps? For each (concept, seed, optimizer
    step) of ``runs``, the base model and the erased encoder after that step, judged at every count
    of ``sampling_steps`` on the same prompts and seeds: one row per (concept, seed, model, count)."""
    encoders: dict[int, PreTrainedModel] = {}
    tables: list[pd.DataFrame] = []
    for i, (concept, seed, step) in enumerate(runs):
        images = list(concept_images(concept, seed))
        epochs = -(-step // -(-len(images) // config.batch_size))  # enough epochs to reach the step
        result = fewshot.erase(pipeline, concept, images, replace(config, seed=seed, epochs=epochs, checkpoint_steps=(step,)), progress_bar=False)
        encoders[i] = result.component_after_step("text_encoder", step)
        tables.append(prompts_for(concept))
    rows = []
    for n in sampling_steps:
        generation = GenerationConfig(int(n), guidance_scale, batch_size)
        for i, (concept, seed, step) in enumerate(runs):
            for model, encoder in (("base", pipeline.text_encoder), (f"erased after {step} steps", encoders[i])):
                images = generate_with_encoders(pipeline, {0: encoder}, tables[i], generation, progress_bar=False)[0]
                measures = summarize_step(classify_images(judge, tables[i], images), concept)
                rows.append({"concept": concept, "seed": seed, "model": model, "sampling_steps": int(n), **measures})
    columns = ["concept", "seed", "model", "sampling_steps", "erased_share", "others_accuracy", "related_accuracy", "unrelated_accuracy"]
    return pd.DataFrame(rows, columns=columns)
