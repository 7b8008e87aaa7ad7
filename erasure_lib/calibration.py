"""The U-Net baselines at their own best trade-off (issue 14): ESD and SPM calibrated the way
few-shot unlearning is.

Few-shot unlearning's built-in settings come from a sweep of learning rate x epochs (notebook 02);
ESD's published settings (1000 iterations at lr 1e-5, Gandikota et al. 2023) and SPM's (3000 at
1e-4, Lyu et al. 2024) were tuned for SD's U-Net. To compare fairly on the built-in model (Sec. 4.3
of the paper), each baseline gets the same treatment: one run per (learning rate, class, seed) to
the largest iteration count, its weights judged after each of several iteration counts, on the same
prompts and seeds as the base model. Each run's judged rows are cached (written atomically), so a
sweep resumes and can be split across processes that share the cache (each given its own classes).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
from diffusers import StableDiffusionPipeline
from tqdm.auto import tqdm

from erasure_lib import results
from erasure_lib.evaluation import choose_setting, classify_generated, erased_and_others
from erasure_lib.generate import GenerationConfig
from erasure_lib.methods import REVISIONS, get_method
from erasure_lib.methods.base import model_digest
from erasure_lib.methods.esd import ESDConfig
from erasure_lib.methods.spm import SPMConfig
from erasure_lib.metrics.classifier import GarmentStyleClassifier
from erasure_lib.metrics.imagenet import ImageNetEvaluator
from erasure_lib.window import WindowThresholds, window_bounds

Judge = GarmentStyleClassifier | ImageNetEvaluator  # what :func:`erasure_lib.experiment.load_evaluator` gives
MEASURES = ("erased_share", "others_accuracy")
BaselineConfig = ESDConfig | SPMConfig  # the iterative U-Net baselines a sweep calibrates


def baseline_config(method: str, esd_train_method: str = "noxattn") -> BaselineConfig:
    """The options a sweep of ``method`` shares across its runs: ESD's published ones (``train_method``
    given), or SPM's at a constant rate (:meth:`SPMConfig.constant_lr`: a checkpoint after k
    iterations is then the run of k iterations)."""
    if method == "esd":
        return ESDConfig(train_method=esd_train_method)  # type: ignore[arg-type]
    if method == "spm":
        return SPMConfig.constant_lr()
    raise ValueError(f"method must be 'esd' or 'spm', got {method!r}")


def baseline_name(config: BaselineConfig) -> str:
    """The method a config belongs to: ``"esd"`` or ``"spm"``."""
    if isinstance(config, ESDConfig):
        return "esd"
    if isinstance(config, SPMConfig):
        return "spm"
    raise TypeError(f"a calibration sweep takes an ESDConfig or an SPMConfig, got {type(config).__name__}")


def judge_baseline_run(
    pipeline: StableDiffusionPipeline,
    judge: Judge,
    concept: str,
    config: BaselineConfig,
    judged_iterations: Sequence[int],
    prompts: pd.DataFrame,
    generation: GenerationConfig,
) -> pd.DataFrame:
    """One ESD or SPM erasure of ``concept`` run to ``max(judged_iterations)`` iterations, its U-Net
    judged after each of ``judged_iterations`` on ``prompts`` (``prompt``, ``evaluation_seed``,
    ``class``, ``class_index``): one row per judged count with ``iterations``, the erased share, the
    other classes' accuracy and ``optimization_seconds`` (the loop's time up to that checkpoint).
    SPM's default schedule (cosine with restarts over the whole run) makes a checkpoint differ from
    a shorter run; give it :meth:`SPMConfig.constant_lr` for a sweep whose counts are runs of their own."""
    steps = sorted({int(k) for k in judged_iterations})
    if not steps or steps[0] < 1:
        raise ValueError(f"judged_iterations must be positive iteration counts, got {list(judged_iterations)}")
    run_config = replace(config, iterations=steps[-1], checkpoint_iterations=tuple(steps))
    result = get_method(baseline_name(config))(pipeline, concept, None, run_config, progress_bar=False)
    rows = []
    for k in steps:
        classified = classify_generated(result.apply(pipeline, step=k), judge, prompts, generation)
        rows.append({"iterations": k, **erased_and_others(classified, concept),
                     "optimization_seconds": result.info.checkpoint_seconds[k]})  # fmt: skip
    return pd.DataFrame(rows, columns=["iterations", *MEASURES, "optimization_seconds"])


def cached_baseline_run(
    pipeline: StableDiffusionPipeline,
    judge: Judge,
    concept: str,
    config: BaselineConfig,
    judged_iterations: Sequence[int],
    prompts: pd.DataFrame,
    generation: GenerationConfig,
    cache: str | Path,
    model: str,
) -> pd.DataFrame:
    """:func:`judge_baseline_run`, its rows cached in the folder ``cache`` with a key of everything they
    depend on (``model``, a digest of the base weights, the method and its revision, the config, the
    judged counts, the prompts and the sampling settings); read back when the key matches, recomputed (and the folder replaced
    whole) when it does not. The judge is not in the key: give each judge its own cache folder."""
    cache = Path(cache)
    method = baseline_name(config)
    key = json.dumps({"model": model, "concept": concept, "method": method, "revision": REVISIONS[method], "config": asdict(config),
                      "iterations": sorted({int(k) for k in judged_iterations}),
                      "prompts": prompts.to_dict(orient="list"), "generation": asdict(generation)},
                     sort_keys=True, default=str)  # fmt: skip
    compute = lambda: {"judged": judge_baseline_run(pipeline, judge, concept, config, judged_iterations, prompts, generation)}  # noqa: E731
    return results.cached_tables(cache, key, compute)["judged"]


def baseline_sweep(
    pipeline: StableDiffusionPipeline,
    judge: Judge,
    concepts: Sequence[str],
    seeds: Sequence[int],
    learning_rates: Sequence[float],
    judged_iterations: Sequence[int],
    config: BaselineConfig,
    prompts_for: Callable[[str], pd.DataFrame],
    generation: GenerationConfig,
    cache_dir: str | Path,
    progress_bar: bool = True,
) -> pd.DataFrame:
    """ESD's or SPM's trade-off: every (learning rate, concept, seed) run to ``max(judged_iterations)`` and
    judged after each of them on ``prompts_for(concept)``, the base model judged once per concept on
    the same prompts as ``iterations == 0``.

    Parameters
    ----------
    config
        The method's options shared by every run (ESD's ``train_method`` above all; an
        :class:`SPMConfig` makes it an SPM sweep); each run replaces its ``lr``, ``seed``,
        ``iterations`` and ``checkpoint_iterations``.
    cache_dir
        One folder per run (``<method>-lr<lr>-<concept>-seed<seed>``) holds its judged rows: an interrupted
        sweep resumes, and processes given different classes (or learning rates) fill one cache side
        by side (there is no lock: two processes given the same run both compute it).

    Returns
    -------
    pandas.DataFrame
        Tidy rows ``lr, erased_class, seed, iterations, erased_share, others_accuracy,
        optimization_seconds``; ``iterations == 0`` (seconds 0) is the base model, repeated for
        every learning rate and seed.
    """
    if not concepts or not seeds or not learning_rates:
        raise ValueError("give at least one concept, one seed and one learning rate")
    model = model_digest(pipeline)
    base = {c: erased_and_others(classify_generated(pipeline, judge, prompts_for(c), generation), c) for c in concepts}
    runs = [(float(lr), c, int(s)) for lr in learning_rates for c in concepts for s in seeds]
    tables = []
    for lr, concept, seed in tqdm(runs, desc=f"{baseline_name(config).upper()} sweep", disable=not progress_bar):
        folder = Path(cache_dir) / f"{baseline_name(config)}-lr{lr:g}-{concept.replace(' ', '_')}-seed{seed}"
        judged = cached_baseline_run(pipeline, judge, concept, replace(config, lr=lr, seed=seed), judged_iterations,
                                prompts_for(concept), generation, folder, model)  # fmt: skip
        start = pd.DataFrame([{"iterations": 0, **base[concept], "optimization_seconds": 0.0}])
        tables.append(pd.concat([start, judged], ignore_index=True).assign(lr=lr, erased_class=concept, seed=seed))
    columns = ["lr", "erased_class", "seed", "iterations", *MEASURES, "optimization_seconds"]
    return pd.concat(tables, ignore_index=True)[columns]


def sweep_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """The mean over classes and seeds per (learning rate, iterations) of :func:`baseline_sweep`'s rows, with
    the number of runs: the table :func:`erasure_lib.evaluation.choose_setting` chooses from
    (``step="iterations"``, ``group="lr"``)."""
    return (rows.groupby(["lr", "iterations"])
            .agg(erased_share=("erased_share", "mean"), others_accuracy=("others_accuracy", "mean"),
                 optimization_seconds=("optimization_seconds", "mean"), runs=("erased_share", "size"))
            .reset_index())  # fmt: skip


def chosen_setting(summary_file: str | Path, manifest: str | Path | None = None) -> dict[str, float]:
    """The setting a baseline's calibration chose: :func:`erasure_lib.evaluation.choose_setting` applied
    again to ``summary_file`` (:func:`sweep_summary`'s table, as notebook 17 writes it) with the
    thresholds its run recorded in ``manifest`` (by default the ``manifest.json`` beside the summary),
    so every reader applies the one rule. Adds the calibration's ``seed``, which an evaluation must
    keep out of its own seeds."""
    manifest = results.resolve(summary_file).parent / "manifest.json" if manifest is None else manifest
    recorded = results.recorded_parameters(summary_file, manifest)
    summary = pd.read_csv(results.resolve(summary_file))
    choice = choose_setting(summary, float(recorded["max_erased_share"]), float(recorded["max_others_drop"]),
                            step="iterations", group="lr")  # fmt: skip
    return choice | {"seed": int(recorded["seed"])}


def chosen_fewshot_setting(
    summary_file: str | Path = "results/fewshot_calibration_summary.csv",
    manifest: str | Path | None = None,
    max_erased_share: float = 0.10,
    max_others_drop: float = 0.10,
) -> dict[str, float]:
    """The few-shot setting notebook 02 chose (``FewShotConfig.builtin()``'s lr and epochs):
    :func:`erasure_lib.evaluation.choose_setting` applied again to its summary with the notebook's
    targets and the ``min_epochs`` its run recorded in ``manifest`` (by default the ``manifest.json``
    beside the summary), so that notebook 03's check applies the rule notebook 02 applied. Adds the
    calibration's ``seed``, which an evaluation must keep out of its own seeds."""
    manifest = results.resolve(summary_file).parent / "manifest.json" if manifest is None else manifest
    recorded = results.recorded_parameters(summary_file, manifest)
    summary = pd.read_csv(results.resolve(summary_file))
    choice = choose_setting(summary, max_erased_share, max_others_drop, min_step=int(recorded["min_epochs"]))
    return choice | {"seed": int(recorded["seed"])}


def baseline_windows(rows: pd.DataFrame, thresholds: WindowThresholds = WindowThresholds()) -> pd.DataFrame:
    """A baseline's erasure window per (lr, class, seed), read off :func:`baseline_sweep`'s rows as notebook 15
    reads few-shot's (:func:`erasure_lib.window.window_bounds`): ``erased_iterations``, the first judged
    count whose erased share is at most the threshold; ``damage_iterations``, the first whose other
    classes fell more than the threshold below the base model; ``clean`` when some judged count is
    erased and not damaged (the first such: ``clean_iterations``). NaN: not reached within the sweep."""
    trajectories = rows.rename(columns={"erased_class": "concept", "iterations": "step"})
    bounds = window_bounds(trajectories, thresholds, keys=("lr", "concept", "seed"))
    return bounds.rename(columns={"concept": "erased_class", "erased_step": "erased_iterations", "damage_step": "damage_iterations",
                                  "clean_step": "clean_iterations", "last_step": "last_iterations"})  # fmt: skip
