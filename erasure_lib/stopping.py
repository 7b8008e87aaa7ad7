"""A classifier-free stopping rule for few-shot unlearning (beyond the paper, which trains a fixed
number of epochs and leaves the choice of checkpoint to the user, Sec. 3).

The rule watches two probes after every optimizer step (``FewShotConfig(stop_check="step")``):
the concept probe (the denoising loss of the concept's prompts on its own images, relative to its
start: it rises as the concept is erased) and the retain drift (how far the U-Net's prediction for
other concepts' prompts has moved: it rises as they are damaged). It stops at the first step where
the concept probe reaches ``r`` or the retain drift reaches ``s``. ``r`` and ``s`` are calibrated
here on judged trajectories (notebook 15) of some concepts and seeds, and reported on others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import pandas as pd
from diffusers import StableDiffusionPipeline
from tqdm.auto import tqdm

from erasure_lib.evaluation import classify_images, spread
from erasure_lib.generate import GenerationConfig
from erasure_lib.methods import fewshot
from erasure_lib.methods.fewshot import FewShotConfig
from erasure_lib.metrics.classifier import GarmentStyleClassifier
from erasure_lib.window import WindowThresholds, generate_with_encoders, judge_base, summarize_step

RUN_KEYS = ["stand_in", "lr", "concept", "seed"]


def rule_stop_step(trace: pd.DataFrame, ratio: float, drift: float, max_step: int) -> int:
    """The optimizer step at which the rule stops one run: the first step whose concept probe is at
    least ``ratio`` or whose retain drift is at least ``drift`` (``np.inf`` switches a probe off);
    ``max_step`` when neither fires. ``trace`` has ``step, concept_loss_ratio, retain_drift``."""
    trace = trace[trace.step <= max_step].sort_values("step")
    fired = (trace.concept_loss_ratio >= ratio) | (trace.retain_drift >= drift)
    return int(trace.step[fired].iloc[0]) if fired.any() else int(max_step)


def outcome_at(run: pd.DataFrame, step: int) -> pd.Series:
    """The judged outcome of a run at ``step``: the first judged step at or after it (the last one
    when ``step`` lies beyond), so a stop between judged steps is read conservatively for erasure."""
    judged = run[run.step >= step].sort_values("step")
    return (judged if len(judged) else run.sort_values("step")).iloc[0 if len(judged) else -1]


def rule_grid(
    trajectories: pd.DataFrame, traces: pd.DataFrame, ratios: Sequence[float], drifts: Sequence[float],
    thresholds: WindowThresholds = WindowThresholds(),
) -> pd.DataFrame:
    """Every (ratio, drift) setting of the rule on every run: the step it stops at and the judged
    outcome there (``erased_share``, ``others_drop`` from step 0, ``clean``). Runs are keyed by
    ``stand_in, lr, concept, seed``; ``np.inf`` in ``drifts`` (or ``ratios``) gives the one-probe rules."""
    rows = []
    run_traces = {key: part for key, part in traces.groupby(RUN_KEYS, sort=True)}
    for key, run in trajectories.groupby(RUN_KEYS, sort=True):
        if key not in run_traces:
            raise ValueError(f"run {dict(zip(RUN_KEYS, key))} has no probe trace")
        trace = run_traces[key]
        base = float(run[run.step == 0].others_accuracy.iloc[0])
        max_step = int(run.step.max())
        for r in ratios:
            for s in drifts:
                stop = rule_stop_step(trace, r, s, max_step)
                out = outcome_at(run[run.step > 0], stop)
                drop = base - float(out.others_accuracy)
                rows.append({**dict(zip(RUN_KEYS, key)), "ratio": r, "drift": s, "stop_step": stop,
                             "judged_step": int(out.step), "erased_share": float(out.erased_share), "others_drop": drop,
                             "clean": bool(out.erased_share <= thresholds.max_erased_share and drop <= thresholds.max_others_drop)})  # fmt: skip
    return pd.DataFrame(rows)


def summarize_settings(table: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Mean over runs of each setting: ``clean_share`` (erased and not damaged), ``erased_share``,
    ``others_drop``; sorted best first (most clean runs, then the smallest erased + drop)."""
    out = table.groupby(list(by), as_index=False).agg(
        runs=("clean", "size"), clean_share=("clean", "mean"), erased_share=("erased_share", "mean"), others_drop=("others_drop", "mean"))
    out["cost"] = out.erased_share + out.others_drop.clip(lower=0)
    return out.sort_values(["clean_share", "cost", *by], ascending=[False, True, *[True] * len(by)], ignore_index=True)


def fixed_step_table(trajectories: pd.DataFrame, thresholds: WindowThresholds = WindowThresholds()) -> pd.DataFrame:
    """The paper's fixed count, on the same footing as :func:`rule_grid`: every judged step as a
    setting, its outcome on every run."""
    rows = []
    for key, run in trajectories.groupby(RUN_KEYS, sort=True):
        base = float(run[run.step == 0].others_accuracy.iloc[0])
        for _, out in run[run.step > 0].iterrows():
            drop = base - float(out.others_accuracy)
            rows.append({**dict(zip(RUN_KEYS, key)), "step": int(out.step), "erased_share": float(out.erased_share), "others_drop": drop,
                         "clean": bool(out.erased_share <= thresholds.max_erased_share and drop <= thresholds.max_others_drop)})  # fmt: skip
    return pd.DataFrame(rows)


def chosen_settings(
    rule: pd.Series, fixed: pd.Series, max_steps: Mapping[float, int], retain: Sequence[str]
) -> dict[str, FewShotConfig]:
    """The two calibrated settings, as a user runs them (built-in defaults otherwise):

    - ``"stopping rule"``: ``rule`` (a row of :func:`summarize_settings` by ``lr, ratio, drift``) at its
      learning rate, checked after every step against the ``retain`` concepts, and capped at the
      longest calibration run of that learning rate (``max_steps[lr]`` steps, rounded up to whole
      epochs of 2 steps); a threshold of 1e9 or more is off;
    - ``"fixed <n> steps"``: ``fixed`` (a row by ``lr, step``), ``n / 2`` epochs at its learning rate.
    """
    ratio, drift = float(rule.ratio), float(rule.drift)
    stopped = FewShotConfig.builtin(
        lr=float(rule.lr), epochs=-(-int(max_steps[rule.lr]) // 2), stop_check="step", stop_retain=tuple(retain),
        stop_loss_ratio=ratio if ratio < 1e9 else None, stop_retain_drift=drift if drift < 1e9 else None,
    )  # fmt: skip
    n = int(fixed.step)
    return {"stopping rule": stopped, f"fixed {n} steps": FewShotConfig.builtin(lr=float(fixed.lr), epochs=n // 2)}


def evaluate_settings(
    pipeline: StableDiffusionPipeline,
    judge: GarmentStyleClassifier,
    concept_images: Callable[[str, int], Sequence],
    concepts: Sequence[str],
    seeds: Sequence[int],
    settings: Mapping[str, FewShotConfig],
    prompts_for: Callable[[str], pd.DataFrame],
    generation: GenerationConfig,
    progress_bar: bool = True,
) -> pd.DataFrame:
    """Erase every concept with every seed under each named setting (e.g. the calibrated rule and
    the calibrated fixed step count), as a user would run it, and judge the erased model and the
    base model on the same prompts: one row per (setting, concept, seed) with ``steps_run``,
    ``stop_reason``, the measures of :func:`erasure_lib.window.summarize_step` and ``others_drop``."""
    base = judge_base(pipeline, judge, prompts_for, concepts, generation).set_index("concept")
    runs = [(name, c, s) for name in settings for c in concepts for s in seeds]
    rows = []
    for name, concept, seed in tqdm(runs, desc="held-out erasures", disable=not progress_bar):
        result = fewshot.erase(pipeline, concept, list(concept_images(concept, seed)), replace(settings[name], seed=seed), progress_bar=False)
        prompts = prompts_for(concept)
        images = generate_with_encoders(pipeline, {1: result.components["text_encoder"]}, prompts, generation, progress_bar=False)[1]
        measures = summarize_step(classify_images(judge, prompts, images), concept)
        rows.append({"setting": name, "concept": concept, "seed": seed, "steps_run": result.info["steps_run"],
                     "stop_reason": result.info["stop_reason"] or "fixed steps", **measures,
                     "others_drop": float(base.loc[concept, "others_accuracy"]) - measures["others_accuracy"],
                     "base_others_accuracy": float(base.loc[concept, "others_accuracy"]),
                     "base_erased_share": float(base.loc[concept, "erased_share"])})  # fmt: skip
    return pd.DataFrame(rows)


def heldout_summary(heldout: pd.DataFrame, thresholds: WindowThresholds = WindowThresholds()) -> pd.DataFrame:
    """Per setting: runs, the share of runs erased and not damaged (``clean_share``), mean erased share
    and others' drop with 95% bootstrap intervals over runs, mean steps, and ``concepts_clean``: the
    concepts whose mean over seeds is erased (<= the threshold) with others within the threshold."""
    rows = []
    for name, part in heldout.groupby("setting", sort=True):
        clean = (part.erased_share <= thresholds.max_erased_share) & (part.others_drop <= thresholds.max_others_drop)
        per_concept = part.groupby("concept")[["erased_share", "others_drop"]].mean()
        ok = (per_concept.erased_share <= thresholds.max_erased_share) & (per_concept.others_drop <= thresholds.max_others_drop)
        row = {"setting": name, "runs": len(part), "seeds": " ".join(map(str, sorted(part.seed.unique()))),
               "clean_share": float(clean.mean()), "concepts_clean": int(ok.sum()), "concepts": len(per_concept),
               "steps_mean": float(part.steps_run.mean())}  # fmt: skip
        for measure in ("erased_share", "others_drop", "related_accuracy"):
            values = part[measure].dropna()
            low, high = spread(values)
            row |= {measure: float(values.mean()), f"{measure}_low": low, f"{measure}_high": high}
        low, high = spread(clean.astype(float))
        rows.append(row | {"clean_share_low": low, "clean_share_high": high})
    return pd.DataFrame(rows)
