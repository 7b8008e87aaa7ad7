"""The baselines' own trade-off sweep (erasure_lib.calibration): one ESD or SPM run per (lr, class,
seed) judged after several iteration counts, cached per run; on the built-in model and classifier at
tiny sizes (1 class, 3-4 DDIM steps inside the method, 2 sampling steps, 2 + 1 x 9 judged images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from erasure_lib import calibration, evaluation, experiment
from erasure_lib.methods import esd, spm
from erasure_lib.methods.esd import ESDConfig
from erasure_lib.methods.fewshot import FewShotConfig
from erasure_lib.methods.spm import SPMConfig

CLASS = "sneaker"
CONFIG = ESDConfig(train_method="noxattn", ddim_steps=4)
LRS, ITERATIONS = [1e-3], [1, 3]


@pytest.fixture(scope="module")
def setup(builtin_setup: experiment.Setup) -> experiment.Setup:
    """conftest's built-in set-up: sneaker, 2 sampling steps."""
    return builtin_setup


def prompts_for(concept: str) -> pd.DataFrame:
    return evaluation.erasure_prompt_table([concept], 2, 1)


def sweep(setup: experiment.Setup, cache: Path, **overrides: object) -> pd.DataFrame:
    options = {"concepts": [CLASS], "seeds": [0], "learning_rates": LRS, "judged_iterations": ITERATIONS, "config": CONFIG} | overrides
    return calibration.baseline_sweep(setup.pipeline, setup.judge, prompts_for=prompts_for, generation=setup.generation,
                                      cache_dir=cache, progress_bar=False, **options)  # type: ignore[arg-type]  # fmt: skip


@pytest.fixture(scope="module")
def rows(setup: experiment.Setup, tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    cache = tmp_path_factory.mktemp("esd-sweep")
    return sweep(setup, cache), cache


def test_rows_are_tidy_with_the_base_model_as_iteration_zero(setup: experiment.Setup, rows) -> None:
    table, _ = rows
    assert list(table.columns) == ["lr", "erased_class", "seed", "iterations", "erased_share", "others_accuracy", "optimization_seconds"]
    assert table.iterations.tolist() == [0, 1, 3] and set(table.lr) == {1e-3} and set(table.erased_class) == {CLASS}
    base = evaluation.erased_and_others(
        evaluation.classify_generated(setup.pipeline, setup.judge, prompts_for(CLASS), setup.generation), CLASS)
    assert table.iloc[0][["erased_share", "others_accuracy"]].to_dict() == pytest.approx(base)
    assert table.optimization_seconds.iloc[0] == 0 and 0 < table.optimization_seconds.iloc[1] < table.optimization_seconds.iloc[2]


def test_a_checkpoint_is_judged_as_a_run_that_stopped_there(setup: experiment.Setup, rows) -> None:
    """Iteration 1's row equals judging a separate one-iteration run with the same seed."""
    table, _ = rows
    short = esd.erase(setup.pipeline, CLASS, None, ESDConfig(train_method="noxattn", ddim_steps=4, iterations=1, lr=1e-3), progress_bar=False)
    judged = evaluation.erased_and_others(
        evaluation.classify_generated(short.apply(setup.pipeline), setup.judge, prompts_for(CLASS), setup.generation), CLASS)
    assert table[table.iterations == 1][["erased_share", "others_accuracy"]].iloc[0].to_dict() == pytest.approx(judged)


def test_cached_runs_are_read_back_and_a_changed_setting_reruns(setup: experiment.Setup, rows, monkeypatch: pytest.MonkeyPatch) -> None:
    table, cache = rows
    assert [p.name for p in cache.iterdir()] == ["esd-lr0.001-sneaker-seed0"]
    calls: list[str] = []
    real_erase = esd.erase

    def counting(*args: object, **kwargs: object):
        calls.append("erase")
        return real_erase(*args, **kwargs)

    monkeypatch.setattr(esd, "erase", counting)
    again = sweep(setup, cache)
    assert not calls
    pd.testing.assert_frame_equal(again, table)
    sweep(setup, cache, judged_iterations=[1, 2])  # another set of judged counts: the run is recomputed
    assert calls == ["erase"]


def test_an_spm_sweep_judges_its_checkpoints_as_shorter_runs(setup: experiment.Setup, tmp_path: Path) -> None:
    """SPM at a constant lr: iteration 1's row equals judging a separate one-iteration run; the run's
    folder names the method, so ESD and SPM sweeps can share a cache folder."""
    config = SPMConfig(max_denoising_steps=3, lr_scheduler="constant", lr_warmup_steps=0)
    table = sweep(setup, tmp_path, config=config, judged_iterations=[1, 2])
    assert table.iterations.tolist() == [0, 1, 2] and [p.name for p in tmp_path.iterdir()] == ["spm-lr0.001-sneaker-seed0"]
    short = spm.erase(setup.pipeline, CLASS, None, SPMConfig(max_denoising_steps=3, lr_scheduler="constant", lr_warmup_steps=0,
                                                              iterations=1, lr=1e-3), progress_bar=False)  # fmt: skip
    judged = evaluation.erased_and_others(
        evaluation.classify_generated(short.apply(setup.pipeline), setup.judge, prompts_for(CLASS), setup.generation), CLASS)
    assert table[table.iterations == 1][["erased_share", "others_accuracy"]].iloc[0].to_dict() == pytest.approx(judged)
    with pytest.raises(TypeError, match="ESDConfig or an SPMConfig"):
        calibration.baseline_name(FewShotConfig())  # type: ignore[arg-type]


def test_summary_means_over_classes_and_seeds() -> None:
    rows = pd.DataFrame({"lr": [1e-4] * 4, "erased_class": ["a", "a", "b", "b"], "seed": [0] * 4,
                         "iterations": [0, 10, 0, 10], "erased_share": [1.0, 0.5, 0.8, 0.1],
                         "others_accuracy": [0.9, 0.8, 0.9, 0.6], "optimization_seconds": [0.0, 2.0, 0.0, 4.0]})  # fmt: skip
    summary = calibration.sweep_summary(rows)
    assert summary.iterations.tolist() == [0, 10] and summary.runs.tolist() == [2, 2]
    assert summary.erased_share.tolist() == pytest.approx([0.9, 0.3])
    assert summary.others_accuracy.tolist() == pytest.approx([0.9, 0.7]) and summary.optimization_seconds.tolist() == [0.0, 3.0]
    choice = evaluation.choose_setting(summary, max_erased_share=0.1, max_others_drop=0.1, step="iterations")
    assert (choice["iterations"], choice["meets_target"]) == (10, False)


def test_bad_sweeps_fail_early(setup: experiment.Setup, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        sweep(setup, tmp_path, learning_rates=[])
    with pytest.raises(ValueError, match="positive iteration counts"):
        calibration.judge_baseline_run(setup.pipeline, setup.judge, CLASS, CONFIG, [0, 2], prompts_for(CLASS), setup.generation)


def test_chosen_setting_reapplies_the_recorded_rule(tmp_path: Path) -> None:
    """A reader of the calibration gets the setting its run's thresholds choose, and its seed."""
    from erasure_lib import results

    summary = pd.DataFrame({"lr": [1e-4, 1e-4, 1e-4, 1e-3, 1e-3], "iterations": [0, 50, 100, 50, 100],
                            "erased_share": [0.9, 0.3, 0.05, 0.08, 0.0], "others_accuracy": [0.9, 0.88, 0.85, 0.7, 0.5],
                            "optimization_seconds": [0, 1, 2, 1, 2], "runs": [2] * 5})  # fmt: skip
    summary_file, manifest = tmp_path / "esd_calibration_summary.csv", tmp_path / "manifest.json"
    summary.to_csv(summary_file, index=False)
    results.record_run("17.ipynb", {"max_erased_share": 0.1, "max_others_drop": 0.1, "seed": 0}, [summary_file], 1.0, manifest)
    assert calibration.chosen_setting(summary_file) == pytest.approx(  # the manifest beside the summary
        {"lr": 1e-4, "iterations": 100, "erased_share": 0.05, "others_drop": 0.05, "meets_target": True, "seed": 0})
    # a target that no setting meets, recorded by another run: none keeps the others within 0.01 either,
    # so the setting that harms them least (a drop of 0.02), marked as missing the target
    results.record_run("17.ipynb", {"max_erased_share": 0.01, "max_others_drop": 0.01, "seed": 1}, [summary_file], 1.0, manifest)
    choice = calibration.chosen_setting(summary_file, manifest)
    assert (choice["lr"], choice["iterations"], choice["meets_target"], choice["seed"]) == (1e-4, 50, False, 1)
    with pytest.raises(FileNotFoundError, match="records no run"):
        calibration.chosen_setting(tmp_path / "other.csv", manifest)


def test_chosen_fewshot_setting_takes_the_recorded_min_epochs(tmp_path: Path) -> None:
    """Notebook 03 checks the built-in defaults with the rule notebook 02 ran: its min_epochs, read back."""
    from erasure_lib import results

    summary = pd.DataFrame({"lr": [1e-3, 1e-3, 1e-3, 3e-3, 3e-3], "epochs": [0, 1, 2, 1, 2],
                            "erased_share": [0.95, 0.05, 0.3, 0.2, 0.0], "others_accuracy": [0.9, 0.88, 0.85, 0.6, 0.4]})  # fmt: skip
    summary_file, manifest = tmp_path / "fewshot_calibration_summary.csv", tmp_path / "manifest.json"
    summary.to_csv(summary_file, index=False)
    results.record_run("02.ipynb", {"min_epochs": 1, "seed": 0}, [summary_file], 1.0, manifest)
    choice = calibration.chosen_fewshot_setting(summary_file)
    assert (choice["lr"], choice["epochs"], choice["meets_target"], choice["seed"]) == (1e-3, 1, True, 0)
    results.record_run("02.ipynb", {"min_epochs": 2, "seed": 5}, [summary_file], 1.0, manifest)  # one epoch no longer counts
    choice = calibration.chosen_fewshot_setting(summary_file, manifest)
    assert (choice["lr"], choice["epochs"], choice["meets_target"], choice["seed"]) == (1e-3, 2, False, 5)
    committed = calibration.chosen_fewshot_setting()  # notebook 02's run: the built-in defaults
    assert (committed["lr"], committed["epochs"]) == (FewShotConfig.builtin().lr, FewShotConfig.builtin().epochs)
    # on the committed front the floor does not decide: with one epoch allowed the rule chooses the same
    one_epoch = evaluation.choose_setting(pd.read_csv(results.resolve("results/fewshot_calibration_summary.csv")), 0.10, 0.10, min_step=1)
    assert (one_epoch["lr"], one_epoch["epochs"]) == (committed["lr"], committed["epochs"])


def test_windows_are_read_off_the_sweep() -> None:
    """Class a: erased at 50 while the others hold (clean); class b: the others fall at 50 before it is erased at 100."""
    rows = pd.DataFrame({"lr": [1e-4] * 6, "erased_class": ["a"] * 3 + ["b"] * 3, "seed": [0] * 6,
                         "iterations": [0, 50, 100] * 2, "erased_share": [0.9, 0.05, 0.0, 0.9, 0.5, 0.1],
                         "others_accuracy": [0.9, 0.85, 0.6, 0.9, 0.75, 0.7], "optimization_seconds": [0.0, 1.0, 2.0] * 2})  # fmt: skip
    windows = calibration.baseline_windows(rows).set_index("erased_class")
    assert list(windows.columns) == ["lr", "seed", "erased_iterations", "damage_iterations", "clean", "clean_iterations", "last_iterations"]
    assert windows.loc["a", ["erased_iterations", "damage_iterations", "clean", "clean_iterations"]].tolist() == [50, 100, True, 50]
    assert windows.loc["b", ["erased_iterations", "damage_iterations", "clean"]].tolist() == [100, 50, False]
    assert np.isnan(windows.loc["b", "clean_iterations"]) and windows.last_iterations.tolist() == [100, 100]


def test_baseline_config_names_the_sweep_options():
    """Notebook 17's `method`: ESD's published options, or SPM's at a constant rate; anything else fails."""
    from erasure_lib.methods.esd import ESDConfig
    from erasure_lib.methods.spm import SPMConfig

    assert calibration.baseline_config("esd", "xattn") == ESDConfig(train_method="xattn")
    assert calibration.baseline_config("spm") == SPMConfig.constant_lr()
    with pytest.raises(ValueError, match="'esd' or 'spm'"):
        calibration.baseline_config("uce")
