"""What the notebooks run on (erasure_lib.experiment): the image source, the judge, the method's
settings, and the evaluation tables with an ImageNet judge (the sd14 path)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from erasure_lib import data, evaluation, experiment, plots
from erasure_lib.methods.fewshot import FewShotConfig
from erasure_lib.methods.spm import SPMConfig
from erasure_lib.metrics.classifier import GarmentStyleClassifier
from erasure_lib.metrics.imagenet import IMAGENETTE_CLASSES, ImageNetEvaluator
from erasure_lib.paths import REPO_ROOT

IMAGENETTE = tuple(IMAGENETTE_CLASSES)


def _write_images(folder: Path, n: int, size: int = 24) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{k}.png")


def not_a_judge(device: str = "cpu") -> str:
    return "a judge"


class _FixedLogits:
    """An ImageNet-1k "classifier" whose top-1 for the i-th image it is called on is ``top1[i]``."""

    def __init__(self, top1: list[int]) -> None:
        self.top1 = top1
        self.calls = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros((len(x), 1000))
        for i in range(len(x)):
            out[i, self.top1[self.calls + i]] = 5.0
        self.calls += len(x)
        return out


# --- images ------------------------------------------------------------------------------------


def test_concept_images_from_a_folder_are_drawn_by_seed(tmp_path: Path) -> None:
    _write_images(tmp_path / "imgs" / "tench", 6)
    a = experiment.concept_images(str(tmp_path / "imgs"), "tench", 4, seed=0, work_dir=tmp_path / "work")
    b = experiment.concept_images(str(tmp_path / "imgs"), "tench", 4, seed=0, work_dir=tmp_path / "work")
    c = experiment.concept_images(str(tmp_path / "imgs"), "tench", 4, seed=1, work_dir=tmp_path / "work")
    assert a == b and len(a) == 4 and all(p.parent == tmp_path / "imgs" / "tench" for p in a)
    assert a != c
    assert not (tmp_path / "work").exists()  # nothing written for a user's folder


def test_concept_images_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="images_dir .* does not exist"):
        experiment.concept_images(str(tmp_path / "nowhere"), "tench", 4, 0, tmp_path)
    (tmp_path / "imgs").mkdir()
    with pytest.raises(FileNotFoundError, match="no image folder"):
        experiment.concept_images(str(tmp_path / "imgs"), "tench", 4, 0, tmp_path)
    _write_images(tmp_path / "imgs" / "tench", 2)
    with pytest.raises(ValueError, match="holds 2 images; 4 are needed"):
        experiment.concept_images(str(tmp_path / "imgs"), "tench", 4, 0, tmp_path)


def test_attack_images_are_none_of_the_erasures(tmp_path: Path) -> None:
    _write_images(tmp_path / "imgs" / "tench", 6)
    shots = experiment.concept_images(str(tmp_path / "imgs"), "tench", 4, seed=0, work_dir=tmp_path / "work")
    source = experiment.attack_image_source(str(tmp_path / "imgs"), 2, seed=0)
    others = source("tench", shots)
    left = sorted(p for p in (tmp_path / "imgs" / "tench").iterdir() if p not in shots)
    assert [np.asarray(im).tobytes() for im in others] == [np.asarray(Image.open(p).convert("RGB")).tobytes() for p in left]
    with pytest.raises(ValueError, match="holds 2 images besides the 4 excluded; 3 are needed"):
        experiment.other_images(str(tmp_path / "imgs"), "tench", 3, shots)
    assert experiment.attack_image_source(str(tmp_path / "imgs"), 2, 0, "erasure") is None  # the erasure's own
    with pytest.raises(ValueError, match="'other' or 'erasure'"):
        experiment.attack_image_source(str(tmp_path / "imgs"), 2, 0, "mine")  # type: ignore[arg-type]


def test_builtin_attack_images_are_test_renders(tmp_path: Path) -> None:
    shots = experiment.concept_images("builtin", "sneaker", 4, seed=3, work_dir=tmp_path)
    others = experiment.other_images("builtin", "sneaker", 4, shots)
    assert [np.asarray(im).tobytes() for im in others] == [np.asarray(im).tobytes() for im in experiment.real_images("builtin", "sneaker", 4)]
    assert not {np.asarray(im).tobytes() for im in others} & {np.asarray(Image.open(p).convert("RGB")).tobytes() for p in shots}


def test_relative_folders_are_relative_to_the_repository(tmp_path: Path) -> None:
    assert experiment.model_source("builtin") == "builtin"
    assert experiment.model_source("models/builtin") == str(REPO_ROOT / "models" / "builtin")
    hub_id = "CompVis/stable-diffusion-v1-4@133a221b8aa7292a167afc5127cb63fb5005638b"
    assert experiment.model_source(hub_id) == hub_id


def test_builtin_concept_images_are_the_exported_renders(tmp_path: Path) -> None:
    paths = experiment.concept_images("builtin", "sneaker", 4, seed=3, work_dir=tmp_path)
    expected = data.export_concept_images(tmp_path / "direct", "sneaker", n=4, seed=3)
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in expected]
    assert all(p.parent == tmp_path / "sneaker-seed3-n4" for p in paths)


def test_builtin_reference_images_are_the_first_test_renders_with_their_classes() -> None:
    images, classes = experiment.reference_images("builtin", 12)
    test = data.load_fashion_mnist("test")
    assert classes == [data.CLASSES[int(label)] for label in test.labels[:12]]
    assert [np.asarray(im).tobytes() for im in images] == [
        np.asarray(data.to_pil(data.render(test.images[i], "plain"))).tobytes() for i in range(12)
    ]


def test_reference_images_are_drawn_from_the_whole_folder(tmp_path: Path) -> None:
    for name in ("tench", "church"):
        _write_images(tmp_path / name, 5)
    images, classes = experiment.reference_images(str(tmp_path), 6, seed=0)
    assert len(images) == 6 and all(isinstance(im, Image.Image) for im in images)
    assert len(classes) == 6 and set(classes) <= {"tench", "church"}  # each named by its sub-folder
    everything, classes = experiment.reference_images(str(tmp_path), 50)
    assert len(everything) == 10 and sorted(classes) == ["church"] * 5 + ["tench"] * 5  # capped by what there is
    _write_images(tmp_path / "loose", 2)
    loose, classes = experiment.reference_images(str(tmp_path / "loose"), 2)
    assert len(loose) == 2 and classes == ["", ""]  # files directly in the folder have no class
    assert len(experiment.real_images(str(tmp_path), "tench", 50)) == 5
    with pytest.raises(FileNotFoundError, match="fid_reference"):
        experiment.reference_images(str(tmp_path / "nowhere"), 3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        experiment.reference_images(str(tmp_path / "empty"), 3)


def test_quality_prompts(tmp_path: Path) -> None:
    assert experiment.quality_prompts("", 10) is None
    csv = tmp_path / "coco.csv"
    pd.DataFrame({"case_number": range(5), "prompt": [f"p{k}" for k in range(5)], "evaluation_seed": range(5)}).to_csv(csv, index=False)
    table = experiment.quality_prompts(str(csv), 3)
    assert list(table.prompt) == ["p0", "p1", "p2"]
    with pytest.raises(FileNotFoundError, match="case_number,prompt,evaluation_seed"):
        experiment.quality_prompts(str(tmp_path / "missing.csv"), 3)


# --- the judge and the method's settings -------------------------------------------------------


def test_load_evaluator_builtin_and_factories() -> None:
    judge = experiment.load_evaluator("builtin")
    assert isinstance(judge, GarmentStyleClassifier)
    assert experiment.evaluator_classes(judge) == data.CLASSES and experiment.has_styles(judge)
    stand_in = experiment.load_evaluator("tools.sd14_tiny:stand_in_evaluator")
    assert isinstance(stand_in, ImageNetEvaluator)
    assert experiment.evaluator_classes(stand_in) == IMAGENETTE and not experiment.has_styles(stand_in)


@pytest.mark.parametrize("spec", ["", "nonsense", "erasure_lib.data:", ":x"])
def test_load_evaluator_rejects_bad_names(spec: str) -> None:
    with pytest.raises(ValueError, match="evaluator must be"):
        experiment.load_evaluator(spec)


def test_load_evaluator_rejects_a_factory_returning_something_else() -> None:
    with pytest.raises(ValueError, match="has no attribute"):
        experiment.load_evaluator("erasure_lib.data:no_such_function")
    with pytest.raises(TypeError, match="returned str, not an ImageNetEvaluator"):
        experiment.load_evaluator("test_experiment:not_a_judge")


def test_check_classes_names_the_unknown_ones() -> None:
    judge = experiment.load_evaluator("builtin")
    assert experiment.check_classes(["bag"], judge) == ["bag"]
    with pytest.raises(ValueError, match=r"does not know \['tench'\]"):
        experiment.check_classes(["bag", "tench"], judge)


def test_fewshot_settings() -> None:
    assert experiment.fewshot_config("paper", seed=2) == FewShotConfig(seed=2)
    assert experiment.fewshot_config("paper").lr == 1e-5 and experiment.fewshot_config("paper").epochs == 4
    assert experiment.fewshot_config("builtin", seed=2) == FewShotConfig.builtin(seed=2)
    with pytest.raises(ValueError, match="'builtin' or 'paper'"):
        experiment.fewshot_config("sd14")  # type: ignore[arg-type]
    assert experiment.torch_dtype("bfloat16") == torch.bfloat16
    with pytest.raises(ValueError, match="dtype must be one of"):
        experiment.torch_dtype("half")


# --- evaluation tables with an ImageNet judge --------------------------------------------------


def test_prompt_table_indexes_the_judges_classes() -> None:
    table = evaluation.erasure_prompt_table(["church"], 2, 1, classes=IMAGENETTE)
    assert set(table["class"]) == set(IMAGENETTE)
    assert all(IMAGENETTE[i] == c for i, c in zip(table["class_index"], table["class"]))
    garments = evaluation.erasure_prompt_table(["bag"], 2, 1)
    assert all(data.CLASSES[i] == c for i, c in zip(garments["class_index"], garments["class"]))


def test_imagenet_judge_top1_outside_the_classes_counts_as_none() -> None:
    table = evaluation.erasure_prompt_table(["church"], 3, 1, classes=IMAGENETTE).iloc[:4]
    # church (497), a 1000-way top-1 outside the 10 classes (1), tench (0), church again
    judge = ImageNetEvaluator(_FixedLogits([497, 1, 0, 497]), image_size=8)
    images = [Image.new("RGB", (8, 8))] * 4
    classified = evaluation.classify_images(judge, table, images)
    church, tench = IMAGENETTE.index("church"), IMAGENETTE.index("tench")
    assert list(classified["predicted"]) == [church, -1, tench, church]
    assert (classified["predicted_style"] == -1).all()
    rows = pd.DataFrame(evaluation.destinations(classified.iloc[:3], "church", "after", 0, classes=IMAGENETTE))
    shares = dict(zip(rows.predicted_class, rows.share))
    assert shares["church"] == pytest.approx(1 / 3) and shares[evaluation.NONE_OF_THEM] == pytest.approx(1 / 3)
    assert shares["tench"] == pytest.approx(1 / 3) and rows.share.sum() == pytest.approx(1.0)
    assert evaluation.summarize(classified.iloc[:3], ["church"])["erased_share"] == pytest.approx(1 / 3)
    fig = plots.transition_heatmaps(rows.assign(when="after"), list(IMAGENETTE), panels=["after"])
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[-1] == evaluation.NONE_OF_THEM and len(labels) == 11


def test_destinations_without_outsiders_keep_the_class_columns() -> None:
    table = evaluation.erasure_prompt_table(["bag"], 2, 1)
    classified = table.assign(predicted=table["class_index"])
    rows = evaluation.destinations(classified, "bag", "before", -1)
    assert [r["predicted_class"] for r in rows] == list(data.CLASSES)


def test_wording_table_takes_the_judges_classes() -> None:
    table = evaluation.wording_table("church", "churhc", 3, classes=IMAGENETTE)
    assert list(table["class_index"]) == [IMAGENETTE.index("church")] * 3
    with pytest.raises(ValueError, match="unknown class"):
        evaluation.wording_table("church", "churhc", 3)


def test_run_src_injects_parameters_after_the_parameters_cell() -> None:
    from tools.run_src import with_parameters

    source = "# %%\nimport x\n\n# %% tags=parameters\na: int = 1\nb: str = 'x'\n\n# %%\nprint(a, b)\n"
    out = with_parameters(source, {"a": 2, "c": [1, "y"]})
    namespace: dict = {}
    exec(out.replace("import x\n", ""), namespace)
    assert (namespace["a"], namespace["b"], namespace["c"]) == (2, "x", [1, "y"])
    assert out.index("a = 2") > out.index("a: int = 1") and out.index("a = 2") < out.index("print(a, b)")
    with pytest.raises(ValueError, match="no '# %% tags=parameters' cell"):
        with_parameters("print(1)\n", {})


def test_the_calibration_front_marks_the_chosen_setting() -> None:
    summary = pd.DataFrame({"lr": [1e-3, 1e-3, 1e-3, 3e-3, 3e-3, 3e-3], "epochs": [0, 1, 2, 0, 1, 2],
                            "erased_share": [0.9, 0.5, 0.3, 0.9, 0.2, 0.1], "others_accuracy": [0.95, 0.92, 0.9, 0.95, 0.8, 0.6]})
    choice = evaluation.choose_setting(summary, max_erased_share=0.10, max_others_drop=0.10, min_step=2)
    fig = plots.tradeoff(summary, group="lr", step="epochs", chosen=choice)
    star = [line for line in fig.axes[0].get_lines() if line.get_marker() == "*"]
    assert len(star) == 1 and (star[0].get_xdata()[0], star[0].get_ydata()[0]) == (0.3, 0.9)  # 1e-3 after 2 epochs
    assert "chosen: lr=0.001, epochs=2" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    with pytest.raises(ValueError, match="not one row"):
        plots.tradeoff(summary, group="lr", step="epochs", chosen={"lr": 1e-4, "epochs": 2})


def test_timed_methods_label_one_esd_per_setting() -> None:
    variants = experiment.timed_methods("builtin", 3, ["fewshot", "esd", "uce"], "noxattn", [[1000, 1e-5], [200, 1e-4]])
    assert list(variants) == ["fewshot", "esd 1000 it, lr 1e-05", "esd 200 it, lr 0.0001", "uce"]
    method, config = variants["esd 200 it, lr 0.0001"]
    assert method == "esd" and (config.iterations, config.lr, config.seed, config.train_method) == (200, 1e-4, 3, "noxattn")
    assert variants["fewshot"][1] == FewShotConfig.builtin(seed=3)
    with pytest.raises(ValueError, match="esd_settings is empty"):
        experiment.timed_methods("builtin", 0, ["esd"], "noxattn", [])
    with pytest.raises(ValueError, match="unknown methods"):
        experiment.timed_methods("builtin", 0, ["fewshot", "ESD"], "noxattn", [[1, 1e-5]])
    method, config = experiment.timed_methods("builtin", 4, ["spm"], spm_iterations=7)["spm"]
    assert method == "spm" and config == SPMConfig(iterations=7, seed=4)  # the paper's third baseline, published defaults
    assert experiment.method_configs("builtin", 4)["spm"] == SPMConfig(seed=4)
    # SPM at notebook 17's choice too: that constant rate, beside the published schedule.
    variants = experiment.timed_methods("builtin", 4, ["fewshot", "spm"], spm_iterations=7, spm_settings=[[200, 1e-3]])
    assert list(variants) == ["fewshot", "spm", "spm 200 it, lr 0.001 constant"]
    assert variants["spm 200 it, lr 0.001 constant"] == ("spm", SPMConfig.constant_lr(iterations=200, lr=1e-3, seed=4))
    assert variants["spm"][1] == SPMConfig(iterations=7, seed=4)
    with pytest.raises(ValueError, match="lacks 'spm'"):
        experiment.timed_methods("builtin", 4, ["fewshot"], spm_settings=[[200, 1e-3]])
    assert list(experiment.method_configs("builtin", 4, only=["uce", "fewshot"])) == ["uce", "fewshot"]
    with pytest.raises(ValueError, match="must be some of"):
        experiment.method_configs("builtin", 4, only=["ESD"])


def test_spm_at_a_calibrated_lr_runs_at_that_constant_rate() -> None:
    """Notebook 17 sweeps SPM at a constant lr; the setting it chooses must run on that schedule."""
    config = experiment.method_configs("builtin", 5, spm_iterations=50, spm_lr=1e-3)["spm"]
    assert (config.iterations, config.lr, config.seed, config.lr_scheduler, config.lr_warmup_steps) == (50, 1e-3, 5, "constant", 0)
    assert config == SPMConfig.constant_lr(iterations=50, lr=1e-3, seed=5)
    published = SPMConfig()
    assert (published.lr_scheduler, published.lr_warmup_steps) == ("cosine_with_restarts", 500)  # the default stays the paper's
    assert SPMConfig.constant_lr() == replace(published, lr_scheduler="constant", lr_warmup_steps=0)  # nothing else changes


def test_time_summary_compares_each_method_with_fewshot_on_the_same_classes() -> None:
    from erasure_lib import benchmark

    runs = pd.DataFrame({"method": ["fewshot", "fewshot", "fewshot", "uce", "uce", "uce", "esd 2 it, lr 1e-05"],
                         "erased_class": ["bag", "coat", "shirt", "bag", "coat", "shirt", "shirt"],
                         "optimization_seconds": [0.2, 0.3, 0.9, 0.01, 0.02, 0.03, 90.0],
                         "total_seconds": [0.5, 0.6, 1.0, 0.1, 0.1, 0.1, 91.0], "peak_memory_mb": [500.0, 520.0, 510.0, 400, 400, 400, 700.0]})
    summary = benchmark.time_summary(runs).set_index("method")
    assert summary.loc["fewshot", "seconds_median"] == pytest.approx(0.3) and summary.loc["fewshot", "classes"] == "bag coat shirt"
    assert summary.loc["uce", "ratio_to_fewshot"] == pytest.approx(0.02 / 0.3)
    # ESD was timed on shirt only: its ratio is to few-shot's shirt (0.9 s), not to few-shot's median (0.3 s).
    assert summary.loc["esd 2 it, lr 1e-05", "ratio_to_fewshot"] == pytest.approx(100.0)
    assert summary.loc["esd 2 it, lr 1e-05", "classes"] == "shirt" and summary.loc["fewshot", "total_seconds_median"] == 0.6
    with pytest.raises(ValueError, match="needs few-shot unlearning"):
        benchmark.time_summary(runs[(runs.method != "fewshot") | (runs.erased_class != "shirt")])


def test_time_methods_times_each_variant_on_its_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    from erasure_lib import benchmark

    calls = []
    monkeypatch.setattr(benchmark, "measure_erasure", lambda model, method, concept, images, config, **kw: calls.append((method, concept))
                        or {"optimization_seconds": 1.0, "total_seconds": 1.5, "peak_memory_mb": 100.0})
    variants = {"fewshot": ("fewshot", None), "esd 2 it, lr 1e-05": ("esd", None)}
    runs = benchmark.time_methods("m", variants, ["bag", "coat"], lambda c: None, classes_of={"esd 2 it, lr 1e-05": ["coat"]})
    assert calls == [("fewshot", "bag"), ("fewshot", "coat"), ("esd", "coat")]
    assert list(runs.method) == ["fewshot", "fewshot", "esd 2 it, lr 1e-05"] and list(runs.erased_class) == ["bag", "coat", "coat"]
    with pytest.raises(ValueError, match="not timed"):
        benchmark.time_methods("m", variants, ["bag"], lambda c: None, classes_of={"esd": ["bag"]})


def test_time_bars_label_every_ratio_readably() -> None:
    summary = pd.DataFrame({"method": ["esd", "fewshot", "uce"], "seconds_median": [510.0, 0.25, 0.0086],
                            "ratio_to_fewshot": [2040.0, 1.0, 0.0344]})
    fig = plots.time_bars(summary)
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == ["2,040x", "1x", "0.034x"]  # UCE's ratio printed as 0.0x once
    assert fig.axes[0].get_ylim()[1] > 510.0 * 2  # the top label stays inside the axes


def test_method_comparison_shows_means_intervals_and_per_seed_points() -> None:
    rows = pd.DataFrame({"method": ["base model"] * 4 + ["fewshot"] * 4, "erased_class": ["bag", "coat"] * 4,
                         "seed": [3, 3, 4, 4] * 2, "erased_share": [0.9, 1.0, 0.9, 1.0, 0.0, 0.2, 0.8, 1.0]})  # fmt: skip
    fig = plots.method_comparison(rows)
    (ax,) = fig.axes
    assert [round(b.get_height(), 3) for b in ax.patches] == [0.95, 0.5]  # means over the 4 runs each
    points = [line for line in ax.lines if line.get_marker() == "o"]
    assert [list(np.round(p.get_ydata(), 3)) for p in points] == [[0.95, 0.95], [0.1, 0.9]]  # per-seed means
    assert "lower is better" in ax.get_title()


def test_epoch_curves_draw_a_mean_per_wording() -> None:
    table = pd.DataFrame({"erased_class": "bag", "seed": 3, "wording": ["held-out", "held-out", "paper", "paper"],
                          "epochs": [0, 2] * 2, "erased_share": [1.0, 0.6, 1.0, 0.2], "others_accuracy": [0.9, 0.8, 0.9, 0.7]})  # fmt: skip
    left = plots.epoch_curves(table).axes[0]
    means = {line.get_label(): list(line.get_ydata()) for line in left.lines if line.get_label().startswith("mean")}
    assert means == {"mean, paper wordings": [1.0, 0.2], "mean, held-out wordings": [1.0, 0.6]}  # paper first
    (mean,) = [line for line in plots.epoch_curves(table.drop(columns="wording")).axes[0].lines if line.get_label() == "mean"]
    assert list(mean.get_ydata()) == [1.0, 0.4]  # no wording column: one mean over every run


def test_style_measures_draw_each_wording_paper_solid() -> None:
    summary = pd.DataFrame({"erased_style": "sketch", "wording": ["held-out", "paper"], "epochs": [4, 4],
                            **{f"{m}{s}": v for m, v in (("UA", 0.8), ("IRA", 0.9), ("CRA", 0.6)) for s in ("", "_low", "_high")},
                            "UA_before": 0.0, "IRA_before": 1.0, "CRA_before": 0.7})  # fmt: skip
    summary.loc[0, "UA"] = 0.3  # held-out erases less
    (ax,) = plots.style_measures(summary).axes
    ua = {line.get_label(): (line.get_linestyle(), list(line.get_ydata())) for line in ax.lines if line.get_label().startswith("UA")}
    assert ua == {"UA: own style gone (higher is better), paper wordings": ("-", [0.0, 0.8]), "UA, held-out wordings": ("--", [0.0, 0.3])}
    assert len(ax.lines) == 6 and len(ax.collections) == 3  # a band per measure, the paper wording's only
    (one,) = plots.style_measures(summary.iloc[1:].drop(columns="wording")).axes
    assert len(one.lines) == 3 and one.lines[0].get_label() == "UA: own style gone (higher is better)"


def test_option_fronts_draw_each_wording_in_the_options_colour() -> None:
    summary = pd.DataFrame({"option": ["a", "a", "b", "b"], "wording": ["held-out", "paper"] * 2, "epochs": 4, "trainable_parameters": 1e6,
                            "UA_before": 0.0, "IRA_before": 1.0, "UA": [0.3, 0.5, 0.6, 0.7], "IRA": 0.8})  # fmt: skip
    summary = summary.assign(UA_low=summary.UA - 0.1, UA_high=summary.UA + 0.1, IRA_low=0.7, IRA_high=0.9)
    (ax,) = plots.option_fronts(summary, [0.4]).axes
    lines = {line.get_label(): (line.get_linestyle(), line.get_color(), list(line.get_xdata())) for line in ax.lines if line.get_label()[0] in "ab"}
    assert lines["a (1.00M weights)"] == ("-", "C0", [0.0, 0.5]) and lines["a, held-out wordings"] == ("--", "C0", [0.0, 0.3])
    assert lines["b, held-out wordings"][:2] == ("--", "C1") and "paper wordings solid" in ax.get_title()



def test_neighbour_front_draws_each_wording_in_the_methods_colour() -> None:
    table = pd.DataFrame({"method": ["plain"] * 4 + ["UCE"] * 2, "lr": [1e-3] * 4 + [0.0] * 2, "epochs": [2, 4, 2, 4, -1, -1],
                          "wording": ["paper", "paper", "held-out", "held-out", "paper", "held-out"],
                          "erased_share": [0.5, 0.1, 0.6, 0.3, 0.2, 0.4], "related_accuracy": 0.8, "unrelated_accuracy": 0.9})  # fmt: skip
    ax = plots.neighbour_front(table).axes[0]
    lines = {line.get_label(): (line.get_linestyle(), line.get_color(), list(line.get_xdata()), line.get_markerfacecolor()) for line in ax.lines}
    assert lines["plain, lr 0.001"][:3] == ("-", "C0", [0.5, 0.1])
    assert lines["plain, lr 0.001, held-out wordings"][:4] == ("--", "C0", [0.6, 0.3], "none")
    assert lines["UCE, held-out wordings"][1:3] == ("C1", [0.4]) and lines["UCE"][1:3] == ("C1", [0.2])
    one = plots.neighbour_front(table[table.wording == "paper"].drop(columns="wording")).axes[0]
    assert [line.get_label() for line in one.lines] == ["plain, lr 0.001", "UCE"]

def test_method_comparison_draws_a_bar_per_method_and_wording() -> None:
    rows = pd.DataFrame({"method": ["fewshot"] * 4, "erased_class": ["bag"] * 4, "seed": [3, 3, 4, 4],
                         "wording": ["paper", "held-out"] * 2, "erased_share": [0.0, 0.5, 0.2, 0.9]})  # fmt: skip
    (ax,) = plots.method_comparison(rows).axes
    assert [round(b.get_height(), 3) for b in ax.patches] == [0.1, 0.7]  # per wording, over the seeds
    assert [b.get_hatch() for b in ax.patches] == [None, "//"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fewshot, paper", "fewshot, held-out"]


def test_evaluation_seeds_refuse_the_calibration_seed(tmp_path: Path) -> None:
    """The built-in settings were chosen on the seed the calibration's manifest entry records."""
    from erasure_lib.results import record_run

    calibration, manifest = tmp_path / "calibration.csv", tmp_path / "manifest.json"
    calibration.write_text("lr,epochs\n")
    record_run("02.ipynb", {"seed": 5}, [calibration], 1.0, manifest=manifest)
    assert experiment.evaluation_seeds([3, 4], "builtin", str(calibration), manifest) == [3, 4]
    with pytest.raises(ValueError, match=r"calibration seed\(s\) \[5\]"):
        experiment.evaluation_seeds([4, 5], "builtin", str(calibration), manifest)
    assert experiment.evaluation_seeds([5], "paper", str(calibration), manifest) == [5]  # chosen on none of ours
    # another calibration the evaluation reads (notebook 17's, for ESD) keeps its seed out too
    with pytest.raises(ValueError, match=r"calibration seed\(s\) \[5, 4\]"):
        experiment.evaluation_seeds([3, 4], "builtin", str(calibration), manifest, also_calibrated_on=[4, None])
    assert experiment.evaluation_seeds([3], "paper", str(calibration), manifest, also_calibrated_on=[None]) == [3]


def test_related_groups_garment_groups_and_wordnet() -> None:
    garments = experiment.Setup(None, experiment.load_evaluator("builtin"), data.CLASSES, ("sneaker",), None)  # type: ignore[arg-type]
    same, groups = experiment.related_groups(garments, "garment groups")
    assert same is garments and groups["footwear"] == data.CLASS_GROUPS["footwear"]
    judge = ImageNetEvaluator(_FixedLogits([1]), image_size=8)
    imagenet = experiment.Setup(None, judge, IMAGENETTE, ("tench", "church"), None)  # type: ignore[arg-type]
    extended, groups = experiment.related_groups(imagenet, "wordnet", n_related=2)
    assert list(groups) == ["tench", "church"] and groups["tench"][:2] == ("tench", "goldfish")
    assert extended.universe[:10] == IMAGENETTE and len(extended.universe) == 14 and extended.classes == imagenet.classes
    assert extended.universe == experiment.evaluator_classes(extended.judge) and imagenet.universe == IMAGENETTE
    # A goldfish image is judged as goldfish by the extended set-up, as none of them by the original one.
    table = evaluation.erasure_prompt_table(["tench"], 1, 0, classes=extended.universe)
    classified = evaluation.classify_images(extended.judge, table, [Image.new("RGB", (8, 8))])
    assert extended.universe[classified.predicted[0]] == "goldfish"
    with pytest.raises(ValueError, match="needs an ImageNet judge"):
        experiment.related_groups(garments, "wordnet")
    with pytest.raises(ValueError, match="needs the built-in judge"):
        experiment.related_groups(imagenet, "garment groups")
    with pytest.raises(ValueError, match="must be 'garment groups' or 'wordnet'"):
        experiment.related_groups(imagenet, "wordnett")  # type: ignore[arg-type]


def test_folder_parameters_are_relative_to_the_repository(tmp_path: Path) -> None:
    """Notebooks run with papermill's --cwd /tmp under make: a relative folder must not land there."""
    assert experiment.repo_path("build/sd14/coco-quality") == REPO_ROOT / "build" / "sd14" / "coco-quality"
    assert experiment.repo_path(tmp_path) == tmp_path
