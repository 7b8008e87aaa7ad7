"""One set-up call and one erase-then-judge sweep (erasure_lib.experiment.setup, erasure_lib.evaluation.sweep),
on the built-in model and classifier at tiny sizes: 1 class, 1 seed, 2 images, 2 sampling steps."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from erasure_lib import data, evaluation, experiment
from erasure_lib.methods.fewshot import FewShotConfig
from erasure_lib.metrics.imagenet import IMAGENETTE_CLASSES, ImageNetEvaluator

CLASS = "sneaker"
N_IMAGES, N_ERASED, N_OTHERS = 2, 2, 1
CONFIG = FewShotConfig.builtin(epochs=2)  # 2 images at batch 2: one step per epoch
ROW_COLUMNS = ["erased_class", "seed", "epochs", "erased_share", "others_accuracy", "trainable_parameters",
               "optimization_seconds", "setup_seconds"]  # fmt: skip
SECONDS = ["optimization_seconds", "setup_seconds"]


@pytest.fixture(scope="module")
def setup(builtin_setup: experiment.Setup) -> experiment.Setup:
    """conftest's built-in set-up: sneaker, 2 sampling steps."""
    return builtin_setup


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, setup: experiment.Setup):
    return experiment.image_source("builtin", N_IMAGES, tmp_path_factory.mktemp("fewshot"))


def run(setup: experiment.Setup, images, variants=CONFIG, **kwargs) -> evaluation.Sweep:
    return evaluation.sweep(setup.pipeline, setup.judge, setup.classes, variants, [0], images, setup.generation,
                            N_ERASED, N_OTHERS, setup.universe, progress_bar=False, **kwargs)  # fmt: skip


@pytest.fixture(scope="module")
def final(setup: experiment.Setup, images) -> evaluation.Sweep:
    return run(setup, images, keep_models=True)


# --- setup -----------------------------------------------------------------------------------------


def test_setup_holds_the_pipeline_judge_classes_and_sampling(setup: experiment.Setup) -> None:
    assert setup.universe == data.CLASSES
    assert setup.classes == (CLASS,)
    assert setup.generation.num_inference_steps == 2 and setup.generation.guidance_scale == 7.5
    assert experiment.has_styles(setup.judge)
    assert "pipeline" not in repr(setup) and "sneaker" in repr(setup)  # printable in a notebook
    with pytest.raises(AttributeError):
        setup.classes = ("bag",)  # type: ignore[misc]


def test_setup_checks_the_classes_against_the_judge(setup: experiment.Setup) -> None:
    with pytest.raises(ValueError, match="does not know"):
        experiment.setup("builtin", "builtin", classes=["tench"])
    with pytest.raises(TypeError, match="not one string"):  # papermill's -p passes a list as its text
        experiment.setup("builtin", "builtin", classes='["sneaker", "bag"]')  # type: ignore[arg-type]
    assert experiment.setup("builtin", "builtin", classes=None, num_inference_steps=2).classes == data.CLASSES
    fast = experiment.setup("builtin", "builtin", classes=["bag"], num_inference_steps=20, sampler="dpm-solver++")
    assert (fast.generation.sampler, fast.generation.num_inference_steps) == ("dpm-solver++", 20)


def test_image_source_is_concept_images(setup: experiment.Setup, images, tmp_path: Path) -> None:
    paths = experiment.image_source("builtin", N_IMAGES, tmp_path)(CLASS, 3)
    assert paths == experiment.concept_images("builtin", CLASS, N_IMAGES, 3, tmp_path)
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in images(CLASS, 3)]


# --- sweep -----------------------------------------------------------------------------------------


def test_sweep_rows_are_tidy_with_the_base_model_as_epoch_0(final: evaluation.Sweep) -> None:
    rows = final.rows
    assert list(rows.columns) == ROW_COLUMNS  # a single config: no variant column
    assert len(rows) == 2  # the base model and the erased one
    base, erased = rows.iloc[0], rows.iloc[1]
    assert (base.erased_class, base.seed, base.epochs, base.trainable_parameters) == (CLASS, 0, 0, 0)
    assert base.optimization_seconds == base.setup_seconds == 0.0
    assert (erased.epochs, erased.seed) == (CONFIG.epochs, 0)
    assert erased.trainable_parameters > 0 and erased.optimization_seconds > 0
    for share in (*rows.erased_share, *rows.others_accuracy):
        assert 0.0 <= share <= 1.0


def test_sweep_destinations_and_models(final: evaluation.Sweep, setup: experiment.Setup) -> None:
    d = final.destinations
    assert list(d.columns) == ["erased_class", "when", "seed", "epochs", "predicted_class", "share", "confidence"]
    assert d[d.share == 0].confidence.isna().all() and d[d.share > 0].confidence.between(0, 1).all()
    assert sorted(d.when.unique()) == ["after", "before"]
    assert (d[d.when == "before"].seed == -1).all() and (d[d.when == "before"].epochs == 0).all()
    assert d.groupby("when").share.sum().round(6).tolist() == [1.0, 1.0]
    assert set(final.models) == {CLASS}
    erased = final.models[CLASS]
    assert erased.unet is setup.pipeline.unet and erased.text_encoder is not setup.pipeline.text_encoder


def test_sweep_judges_epoch_checkpoints(setup: experiment.Setup, images, final: evaluation.Sweep) -> None:
    rows = run(setup, images, epochs=[1, 2]).rows
    assert rows.epochs.tolist() == [0, 1, 2]
    last = rows[rows.epochs == 2].iloc[0]
    assert last.optimization_seconds == pytest.approx(2 * rows[rows.epochs == 1].iloc[0].optimization_seconds)  # pro rata
    # the checkpoint after the last epoch is the final model
    pd.testing.assert_frame_equal(rows[rows.epochs != 1].drop(columns=SECONDS).reset_index(drop=True), final.rows.drop(columns=SECONDS))
    with pytest.raises(ValueError, match="must lie in"):
        run(setup, images, epochs=[3])


def test_a_variant_changes_the_result(setup: experiment.Setup, images) -> None:
    variants = {"mlp-only": CONFIG, "all": FewShotConfig.builtin(epochs=2, trainable="all", lr=3e-2)}
    out = run(setup, images, variants, variant="option", keep_models=True)
    rows = out.rows
    assert list(rows.columns) == ["erased_class", "option", *ROW_COLUMNS[1:]]
    assert rows.option.tolist() == ["mlp-only", "mlp-only", "all", "all"]
    trained = rows[rows.epochs > 0].set_index("option")
    assert trained.trainable_parameters["all"] > trained.trainable_parameters["mlp-only"]
    base = rows[rows.epochs == 0]
    assert base.erased_share.nunique() == 1 and base.others_accuracy.nunique() == 1  # the base model, judged once
    assert "option" in out.destinations.columns


def test_the_same_sweep_twice_gives_the_same_numbers(setup: experiment.Setup, images, final: evaluation.Sweep) -> None:
    again = run(setup, images, keep_models=True)
    pd.testing.assert_frame_equal(again.rows.drop(columns=SECONDS), final.rows.drop(columns=SECONDS))
    pd.testing.assert_frame_equal(again.destinations, final.destinations)
    for name, weight in final.models[CLASS].text_encoder.state_dict().items():
        assert torch.equal(weight, again.models[CLASS].text_encoder.state_dict()[name]), name


def test_a_seed_is_a_different_run(setup: experiment.Setup, images, final: evaluation.Sweep) -> None:
    other = evaluation.sweep(setup.pipeline, setup.judge, setup.classes, CONFIG, [1], images, setup.generation,
                             N_ERASED, N_OTHERS, setup.universe, keep_models=True, progress_bar=False)  # fmt: skip
    assert other.rows.seed.tolist() == [1, 1]
    changed = [not torch.equal(w, other.models[CLASS].text_encoder.state_dict()[n]) for n, w in final.models[CLASS].text_encoder.state_dict().items()]
    assert any(changed)


def test_runs_losses_and_probes_are_the_erasures_own(setup: experiment.Setup, images, final: evaluation.Sweep) -> None:
    from erasure_lib.methods import fewshot

    direct = fewshot.erase(setup.pipeline, CLASS, images(CLASS, 0), replace(CONFIG, seed=0), progress_bar=False)
    runs = final.runs.drop(columns=SECONDS).to_dict("records")
    assert runs == [{"erased_class": CLASS, "seed": 0, "steps": len(direct.losses), "retained": ""}]
    assert final.runs.optimization_seconds.iloc[0] == final.rows.optimization_seconds.iloc[-1]  # the final weights: the whole run
    assert list(final.losses.columns) == ["erased_class", "seed", "step", "loss"]
    assert final.losses.step.tolist() == list(range(1, len(direct.losses) + 1))
    np.testing.assert_array_equal(final.losses.loss.to_numpy(), np.asarray(direct.losses))
    assert final.probes.empty  # no checkpoints judged, no stopping rule: no probe measured
    checked = run(setup, images, epochs=[1, 2])
    assert checked.probes.epochs.tolist() == [1, 2] and (checked.probes.probe_ratio > 0).all()


def test_per_variant_images_and_epochs(setup: experiment.Setup, images, final: evaluation.Sweep) -> None:
    one = experiment.image_source("builtin", 1, images(CLASS, 0)[0].parent.parent)
    variants = {"2 images": CONFIG, "1 image": CONFIG, "zero-shot": FewShotConfig.builtin(epochs=2, zero_shot=True)}
    sources = {"2 images": images, "1 image": one, "zero-shot": lambda c, s: None}
    out = run(setup, sources, variants, variant="run", epochs={"2 images": [1, 2], "1 image": None, "zero-shot": None})
    assert out.rows.run.tolist() == ["2 images"] * 3 + ["1 image"] * 2 + ["zero-shot"] * 2
    assert out.rows[out.rows.run == "2 images"].epochs.tolist() == [0, 1, 2]
    same = out.rows[(out.rows.run == "2 images") & (out.rows.epochs == 2)].drop(columns=["run", *SECONDS]).reset_index(drop=True)
    pd.testing.assert_frame_equal(same, final.rows[final.rows.epochs == 2].drop(columns=SECONDS).reset_index(drop=True))
    losses = out.losses.groupby("run").loss.apply(list)
    assert len(losses["1 image"]) == len(losses["2 images"]) == 2  # batch 2: one step per epoch either way
    assert losses["1 image"] != losses["2 images"]  # other images, other losses
    with pytest.raises(ValueError, match="no entry for the variant"):
        run(setup, {"2 images": images}, variants)
    with pytest.raises(TypeError, match="mapping from variant names"):
        run(setup, images, variants, epochs=3)


def test_a_measure_replaces_the_default_columns(setup: experiment.Setup, images) -> None:
    out = run(setup, images, measures=lambda classified, concept: evaluation.summarize_related(classified, concept, data.CLASS_GROUPS))
    assert list(out.rows.columns[3:7]) == ["erased_share", "related_accuracy", "unrelated_accuracy", "others_accuracy"]


# --- the tables the notebooks write from a sweep -----------------------------------------------------


def test_before_after_and_base_as_variant(final: evaluation.Sweep) -> None:
    wide = evaluation.before_after(final.rows)
    assert list(wide.columns) == ["erased_class", "seed", "epochs", "erased_share_before", "erased_share_after",
                                  "others_accuracy_before", "others_accuracy_after", "UA", "IRA", "trainable_parameters",
                                  "optimization_seconds", "setup_seconds"]  # fmt: skip
    assert (wide.UA == 1 - wide.erased_share_after).all() and (wide.IRA == wide.others_accuracy_after).all()
    base, erased = final.rows.iloc[0], final.rows.iloc[1]
    assert wide.iloc[0].erased_share_before == base.erased_share and wide.iloc[0].erased_share_after == erased.erased_share
    rows = final.rows.assign(option="x")[["erased_class", "option", *ROW_COLUMNS[1:]]]
    long = evaluation.base_as_variant(rows, "option")
    assert long.option.tolist() == [evaluation.BASE_MODEL, "x"] and "epochs" not in long.columns


def test_before_after_summary_is_the_notebooks_former_arithmetic() -> None:
    """The summary of notebook 03 as its cells computed it, to the last bit (30 rows: pairwise sums)."""
    rng = np.random.default_rng(0)
    rows = [{"erased_class": c, "seed": s, "erased_share_before": rng.random(), "erased_share_after": rng.random(),
             "others_accuracy_before": rng.random(), "others_accuracy_after": rng.random(),
             "optimization_seconds": rng.random(), "setup_seconds": rng.random()}
            for c in data.CLASSES for s in range(3)]  # fmt: skip
    table = pd.DataFrame(rows)
    means = table.drop(columns=["erased_class", "seed"]).mean()
    summary = evaluation.before_after_summary(table)
    for key in ("erased_share_before", "erased_share_after", "others_accuracy_before", "others_accuracy_after"):
        assert summary[key] == means[key], key
    assert summary["others_accuracy_drop"] == means.others_accuracy_before - means.others_accuracy_after


def test_random_class_sets_are_drawn_by_seed() -> None:
    sets = evaluation.random_class_sets(data.CLASSES, [2, 3], repeats=2, seed=0)
    assert [len(s) for s in sets] == [2, 2, 3, 3] and all(s == sorted(s) for s in sets)
    assert sets == evaluation.random_class_sets(data.CLASSES, [2, 3], repeats=2, seed=0)
    assert sets != evaluation.random_class_sets(data.CLASSES, [2, 3], repeats=2, seed=1)


def test_several_concepts_joint_and_one_after_another(setup: experiment.Setup, images) -> None:
    table = evaluation.several_concepts(setup.pipeline, setup.judge, [2], 1, [0, 1], images, CONFIG, setup.generation,
                                        1, 1, setup.universe, progress_bar=False)  # fmt: skip
    assert table["mode"].tolist() == ["joint", "one after another"] * 2 and table.seed.tolist() == [0, 0, 1, 1]
    for seed, part in table.groupby("seed"):  # each seed draws its own set
        assert part.classes.tolist() == [" + ".join(evaluation.random_class_sets(setup.universe, [2], 1, seed)[0])] * 2
        assert part.erased_share_before.nunique() == 1  # the base model, judged once per set
    assert (table.UA == 1 - table.erased_share_after).all() and (table.IRA == table.others_accuracy_after).all()
    summary = evaluation.several_concepts_summary(table)
    assert summary[["n_classes", "mode"]].values.tolist() == [[2, "joint"], [2, "one after another"]]
    assert summary.runs.tolist() == [2, 2] and summary.UA.tolist() == pytest.approx(table.groupby("mode", sort=False).UA.mean().tolist())
    with pytest.raises(ValueError, match="at least one seed"):
        evaluation.several_concepts(setup.pipeline, setup.judge, [2], 1, [], images, CONFIG, setup.generation, 1, 1, setup.universe)
    with pytest.raises(ValueError, match="lacks the column"):
        evaluation.several_concepts_summary(table.drop(columns="UA"))


def test_several_concepts_judges_each_wording_on_the_same_erasures(setup: experiment.Setup, images) -> None:
    """With ``wordings`` every model is judged on each wording's prompts: the paper's rows are those of
    a run without wordings, to the bit, and the held-out rows judge the same erasures on other prompts."""
    args = (setup.pipeline, setup.judge, [2], 1, [0], images, CONFIG, setup.generation, 2, 1, setup.universe)
    plain = evaluation.several_concepts(*args, progress_bar=False)
    worded = evaluation.several_concepts(*args, progress_bar=False, wordings=data.WORDINGS)
    assert worded[["mode", "wording"]].values.tolist() == [["joint", "paper"], ["joint", "held-out"],
                                                           ["one after another", "paper"], ["one after another", "held-out"]]
    paper = worded[worded.wording == "paper"].drop(columns="wording").reset_index(drop=True)
    pd.testing.assert_frame_equal(paper.drop(columns="optimization_seconds"), plain.drop(columns="optimization_seconds"))
    held_out = worded[worded.wording == "held-out"]
    assert (held_out.optimization_seconds.values == worded[worded.wording == "paper"].optimization_seconds.values).all()  # one erasure, two wordings
    summary = evaluation.several_concepts_summary(worded)
    assert summary[["mode", "wording"]].values.tolist() == [["joint", "paper"], ["joint", "held-out"],
                                                            ["one after another", "paper"], ["one after another", "held-out"]]
    with pytest.raises(ValueError, match="at least one wording"):
        evaluation.several_concepts(*args, progress_bar=False, wordings={})


# --- the parameters a notebook records ---------------------------------------------------------------


def test_notebook_parameters_are_the_declared_ones() -> None:
    notebook = "notebooks/paper/04-which-parameters.ipynb"
    namespace = {"unrelated": 1, "model": "builtin", "images_dir": "x", "evaluator": "builtin", "fewshot_settings": "builtin",
                 "device": "cpu", "dtype": "float32", "classes": ["bag"], "options": ["all"], "seeds": [3], "epochs": [1],
                 "matched_ua": [0.5], "compared_with": "attn-only", "wordings": ["paper"], "min_ua": 0.9, "n_images": 4, "n_erased": 1, "n_others": 1, "num_inference_steps": 2,
                 "guidance_scale": 7.5, "threads": 1, "results_prefix": "r/", "figures_prefix": "f/", "work_dir": "w"}  # fmt: skip
    recorded = experiment.notebook_parameters(notebook, namespace)
    assert recorded == {k: v for k, v in namespace.items() if k != "unrelated"}
    with pytest.raises(KeyError, match="seeds"):
        experiment.notebook_parameters(notebook, {k: v for k, v in namespace.items() if k != "seeds"})


def test_with_an_imagenet_judge_destinations_cover_all_1000_classes(setup: experiment.Setup, images, final) -> None:
    """The sd14 path's judge (an ImageNet classifier, here a random linear one): besides the 10 classes
    and "none of them", the sweep keeps where the erased class's images land among all 1000 classes."""
    torch.manual_seed(0)
    judge = ImageNetEvaluator(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 1000)).eval(), image_size=8)
    universe = list(IMAGENETTE_CLASSES)
    swept = evaluation.sweep(setup.pipeline, judge, ["tench"], CONFIG, [0], lambda concept, seed: images(CLASS, seed),
                             setup.generation, N_ERASED, N_OTHERS, universe, progress_bar=False)  # fmt: skip
    landed, seen = swept.imagenet_destinations, swept.destinations
    assert list(landed.columns) == ["erased_class", "when", "seed", "epochs", "imagenet_index", "share"]
    assert list(landed.when.unique()) == ["before", "after"]
    for when, part in landed.groupby("when"):
        assert part.share.sum() == pytest.approx(1.0)
        by_index = part.set_index("imagenet_index").share
        named = seen[seen.when == when].set_index("predicted_class").share
        for name, index in IMAGENETTE_CLASSES.items():  # the 10 classes' shares are the same numbers
            assert named.get(name, 0.0) == pytest.approx(by_index.get(index, 0.0))
        outside = by_index[~by_index.index.isin(list(IMAGENETTE_CLASSES.values()))].sum()
        assert named.get(evaluation.NONE_OF_THEM, 0.0) == pytest.approx(outside)
    assert final.imagenet_destinations.empty  # the built-in classifier names 10 garments, not ImageNet
    with pytest.raises(ValueError, match="no 'top1' column"):
        evaluation.imagenet_destinations(pd.DataFrame({"class": ["tench"], "predicted": [0]}), "tench", "after", 0)


# --- wordings, UnlearnCanvas's measures with intervals, one variant's rows ------------------------------


def test_each_wording_is_judged_on_its_own_prompts(setup: experiment.Setup, images, final: evaluation.Sweep) -> None:
    """Two wordings: one generation per judged model, rows and destinations per wording; the paper's
    wording alone gives the rows of a sweep without wordings, to the bit (same prompts, same seeds)."""
    variants = {"mlp-final-attn": CONFIG, "all": replace(CONFIG, trainable="all")}
    out = run(setup, images, variants, variant="trainable", wordings=data.WORDINGS)
    assert list(out.rows.columns[:5]) == ["erased_class", "trainable", "seed", "wording", "epochs"]
    assert len(out.rows) == 2 * 2 * 2  # variants x (base, erased) x wordings
    assert set(out.destinations.wording) == {"paper", "held-out"}
    paper = run(setup, images, wordings={"paper": data.OBJECT_TEMPLATES})
    assert paper.rows.drop(columns=["wording", *SECONDS]).equals(final.rows.drop(columns=SECONDS))
    wide = evaluation.before_after(out.rows)
    assert len(wide) == 4 and set(wide.columns) >= {"trainable", "wording", "UA", "IRA"}
    with pytest.raises(ValueError, match="at least one wording"):
        run(setup, images, wordings={})


def test_sweeps_per_wording_stack_as_one_sweep_in_every_wording(setup: experiment.Setup, images, final: evaluation.Sweep) -> None:
    """One sweep per wording (the paper's templates as ``wordings=None``), stacked: the rows and
    destinations of one sweep judged in both wordings, to the bit (the judge's confidence to float32
    rounding: its batches differ); the erasures' tables are the first sweep's."""
    both = run(setup, images, wordings=data.WORDINGS)
    held_out = run(setup, images, wordings={"held-out": data.HELDOUT_OBJECT_TEMPLATES})
    stacked = evaluation.stack_wordings({"paper": final, "held-out": held_out})
    assert list(stacked.rows.columns) == list(both.rows.columns)
    assert stacked.rows.drop(columns=SECONDS).equals(both.rows.drop(columns=SECONDS))
    assert stacked.destinations.drop(columns="confidence").equals(both.destinations.drop(columns="confidence"))
    # the judge's confidence in another batch composition: equal to float32 rounding
    np.testing.assert_allclose(stacked.destinations.confidence, both.destinations.confidence, rtol=1e-4)
    assert stacked.runs is final.runs and stacked.probes is final.probes and stacked.models is final.models
    with pytest.raises(ValueError, match="one sweep per wording"):
        evaluation.stack_wordings({"held-out": both})
    with pytest.raises(ValueError, match="different runs"):
        evaluation.stack_wordings({"paper": final, "held-out": run(setup, images, {"all": replace(CONFIG, trainable="all")}, variant="trainable", wordings={"held-out": data.HELDOUT_OBJECT_TEMPLATES})})
    with pytest.raises(ValueError, match="at least one sweep"):
        evaluation.stack_wordings({})


def test_prompt_tables_use_the_given_templates() -> None:
    table = evaluation.erasure_prompt_table(["bag"], 4, 1, templates=data.HELDOUT_OBJECT_TEMPLATES)
    assert table[table["class"] == "bag"].prompt.tolist() == [t.format("bag") for t in data.HELDOUT_OBJECT_TEMPLATES]
    assert not set(table.prompt) & set(evaluation.erasure_prompt_table(["bag"], 27, 27).prompt)
    with pytest.raises(ValueError, match="at least one template"):
        evaluation.erasure_prompt_table(["bag"], 1, 1, templates=())


def test_unlearning_summary_by_hand() -> None:
    """Two options x two classes x two seeds; UA, success, IRA drop and clean shares counted by hand."""
    rows = []
    for option, ua in (("a", [1.0, 0.95, 0.5, 0.0]), ("b", [0.9, 0.89, 1.0, 1.0])):
        for (c, s), u, ira in zip([("bag", 1), ("bag", 2), ("coat", 1), ("coat", 2)], ua, [0.9, 0.7, 0.9, 0.9]):
            rows.append({"trainable": option, "erased_class": c, "seed": s, "erased_share_before": 1.0,
                         "erased_share_after": 1 - u, "UA": u, "IRA": ira, "others_accuracy_before": 0.9})  # fmt: skip
    out = evaluation.unlearning_summary(pd.DataFrame(rows), by=["trainable"], min_ua=0.9).set_index("trainable")
    a, b = out.loc["a"], out.loc["b"]
    assert a.runs == 4 and a.classes == 2 and a.seeds == "1 2" and a.UA_before == 0.0
    assert a.UA == pytest.approx(0.6125) and a.success_share == 0.5 and b.success_share == 0.75
    assert a.others_drop == pytest.approx(0.05) and a.clean_share == 0.25 and b.clean_share == 0.75  # bag seed 2 lost 0.2
    assert a.classes_erased == 1 and b.classes_erased == 1  # a: bag 0.975, coat 0.25; b: bag 0.895, coat 1.0
    assert a.UA_low <= a.UA <= a.UA_high and a.UA_low < a.UA_high
    assert out.equals(evaluation.unlearning_summary(pd.DataFrame(rows), by=["trainable"], min_ua=0.9).set_index("trainable"))
    with pytest.raises(ValueError, match="lacks the column"):
        evaluation.unlearning_summary(pd.DataFrame(rows).drop(columns="UA"), by=["trainable"])


def test_matched_front_reads_each_front_at_the_same_ua() -> None:
    """Two options, two runs each, checkpoints 1 and 2; the fronts' crossings worked out by hand.
    Option a: base (0.0, 1.0) -> epoch 1 mean (0.4, 0.9) -> epoch 2 mean (0.8, 0.5); at UA 0.6 the
    IRA is 0.7. Option b: (0.0, 1.0) -> (0.2, 0.95) -> (0.4, 0.85): never reaches 0.6."""
    rows = []
    for option, points in (("a", {1: [(0.4, 0.9), (0.4, 0.9)], 2: [(0.6, 0.6), (1.0, 0.4)]}),
                           ("b", {1: [(0.1, 1.0), (0.3, 0.9)], 2: [(0.4, 0.8), (0.4, 0.9)]})):  # fmt: skip
        for epoch, runs in points.items():
            for (cls, (ua, ira)) in zip(("bag", "coat"), runs):
                rows.append({"option": option, "erased_class": cls, "seed": 3, "epochs": epoch, "UA": ua, "IRA": ira,
                             "erased_share_before": 1.0, "others_accuracy_before": 1.0, "trainable_parameters": 7})  # fmt: skip
    out = evaluation.matched_front(pd.DataFrame(rows), "option", [0.3, 0.6]).set_index(["option", "UA_level"])
    assert out.IRA[("a", 0.3)] == pytest.approx(0.925) and out.IRA[("a", 0.6)] == pytest.approx(0.7)
    assert out.IRA[("b", 0.3)] == pytest.approx(0.9) and np.isnan(out.IRA[("b", 0.6)]) and np.isnan(out.IRA_low[("b", 0.6)])
    assert out.reach[("a", 0.3)] == pytest.approx(0.8) and out.reach[("b", 0.6)] == pytest.approx(0.4)
    assert out.IRA_low[("a", 0.6)] <= 0.7 <= out.IRA_high[("a", 0.6)] and (out.runs == 2).all()
    with pytest.raises(ValueError, match="every checkpoint"):
        evaluation.matched_front(pd.DataFrame(rows[:-1]), "option", [0.3])
    with pytest.raises(ValueError, match="lacks the column"):
        evaluation.matched_front(pd.DataFrame(rows).drop(columns="epochs"), "option", [0.3])


def test_matched_front_differences_pair_the_runs_of_both_fronts() -> None:
    """Three options erase the same four runs with the same UA path (epoch 1 between 0.3 and 0.5,
    epoch 2 at 0.9), so at UA 0.7 every front crosses between its two checkpoints at the same point.
    Option b keeps the others 0.1 worse than a at both checkpoints in every run: a minus b is 0.1 in
    every resample ("higher", interval [0.1, 0.1]); c is 0.1 better in two runs and 0.1 worse in two:
    the interval straddles 0. No front reaches UA 0.95."""
    runs = {"bag": 0.3, "coat": 0.4, "dress": 0.5, "shirt": 0.4}
    offsets = {"a": {c: 0.0 for c in runs}, "b": {c: -0.1 for c in runs}, "c": {"bag": 0.1, "coat": -0.1, "dress": 0.1, "shirt": -0.1}}
    rows = [{"option": option, "erased_class": cls, "seed": 3, "epochs": epoch, "UA": ua, "IRA": 1.0 - 0.5 * ua + offset[cls],
             "erased_share_before": 1.0, "others_accuracy_before": 1.0, "trainable_parameters": 7}
            for option, offset in offsets.items() for cls, first in runs.items() for epoch, ua in ((1, first), (2, 0.9))]  # fmt: skip
    table = pd.DataFrame(rows)
    out = evaluation.matched_front_differences(table, "option", [0.7, 0.95], "a", ["b", "c"]).set_index(["other", "UA_level"])
    b = out.loc[("b", 0.7)]
    assert [b.difference, b.difference_low, b.difference_high] == pytest.approx([0.1, 0.1, 0.1]) and b.verdict == "higher"
    c = out.loc[("c", 0.7)]
    assert c.difference == pytest.approx(0.0) and c.difference_low < 0 < c.difference_high and c.verdict == "not distinguishable"
    assert (out.xs(0.95, level="UA_level").verdict == "not both reached").all() and (out.runs == 4).all()
    matched = evaluation.matched_front(table, "option", [0.7]).set_index("option").IRA  # the same crossings, read one front at a time
    assert b.difference == pytest.approx(matched["a"] - matched["b"])
    with pytest.raises(ValueError, match="the same runs"):
        evaluation.matched_front_differences(table[~((table.option == "c") & (table.erased_class == "bag"))], "option", [0.7], "a", ["c"])
    with pytest.raises(ValueError, match="no rows of"):
        evaluation.matched_front_differences(table, "option", [0.7], "a", ["mlp-only"])


def test_matched_fronts_read_each_wording_apart() -> None:
    """A table judged in two wordings: each wording's rows are its own table's, and the paper wording's
    numbers are those of the table without the other wording (the same bootstrap seed)."""
    rows = []
    for wording, shift in (("paper", 0.0), ("held-out", -0.1)):
        for option, offset in (("a", 0.0), ("b", -0.1)):
            for cls, first in {"bag": 0.3, "coat": 0.4, "dress": 0.5}.items():
                for epoch, ua in ((1, first), (2, 0.9)):
                    rows.append({"option": option, "erased_class": cls, "seed": 3, "wording": wording, "epochs": epoch, "UA": ua,
                                 "IRA": 1.0 - 0.5 * ua + offset + shift, "erased_share_before": 1.0, "others_accuracy_before": 1.0,
                                 "trainable_parameters": 7})  # fmt: skip
    table = pd.DataFrame(rows)
    paper = table[table.wording == "paper"].drop(columns="wording")
    out = evaluation.matched_front(table, "option", [0.7])
    assert list(out.columns[:2]) == ["option", "wording"] and out.wording.tolist() == ["paper", "paper", "held-out", "held-out"]
    pd.testing.assert_frame_equal(out[out.wording == "paper"].drop(columns="wording").reset_index(drop=True),
                                  evaluation.matched_front(paper, "option", [0.7]))  # fmt: skip
    held = out[out.wording == "held-out"].set_index("option").IRA
    assert held["a"] == pytest.approx(out[out.wording == "paper"].set_index("option").IRA["a"] - 0.1)
    d = evaluation.matched_front_differences(table, "option", [0.7], "a", ["b"])
    assert list(d.columns[:2]) == ["other", "wording"] and d.difference.tolist() == pytest.approx([0.1, 0.1])
    assert d.verdict.tolist() == ["higher", "higher"]


def test_one_variant_keeps_its_rows_and_the_base_rows() -> None:
    table = pd.DataFrame({"trainable": [None, "all", "mlp-final-attn"], "when": ["before", "after", "after"]})
    assert evaluation.one_variant(table, "all").when.tolist() == ["before", "after"]
    assert evaluation.one_variant(table.drop(columns="trainable"), "all").equals(table.drop(columns="trainable"))
    with pytest.raises(ValueError, match="no rows of trainable 'attn-only'"):
        evaluation.one_variant(table, "attn-only")


# --- CRA (styles kept) and the random-direction control ------------------------------------------------


def test_styles_add_cra_without_changing_the_other_measures(setup: experiment.Setup, images, final: evaluation.Sweep) -> None:
    """With styles, each judged model also draws the other classes in those styles (generated apart):
    the rows gain ``style_share`` and the other measures stay those of the sweep without styles."""
    out = run(setup, images, styles=["sketch", "sepia"], n_styled=1)
    assert list(out.rows.columns) == [*ROW_COLUMNS[:5], "style_share", *ROW_COLUMNS[5:]]
    pd.testing.assert_frame_equal(out.rows.drop(columns=["style_share", *SECONDS]), final.rows.drop(columns=SECONDS))
    assert out.rows.style_share.between(0, 1).all()
    wide = evaluation.before_after(out.rows)
    assert wide.CRA.tolist() == out.rows[out.rows.epochs > 0].style_share.tolist()
    assert wide.style_share_before.tolist() == out.rows[out.rows.epochs == 0].style_share.tolist()
    summary = evaluation.unlearning_summary(wide, by=[])
    assert summary.CRA.iloc[0] == pytest.approx(wide.CRA.mean()) and "CRA_before" in summary
    torch.manual_seed(0)
    judge = ImageNetEvaluator(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 1000)).eval(), image_size=8)
    with pytest.raises(ValueError, match="names styles"):
        evaluation.sweep(setup.pipeline, judge, ["tench"], CONFIG, [0], images, setup.generation, 1, 1, list(IMAGENETTE_CLASSES),
                         progress_bar=False, styles=["sketch"])  # fmt: skip


def test_styled_prompt_table_and_style_kept_by_hand() -> None:
    table = evaluation.styled_prompt_table("bag", ["sketch", "sepia"], 2)
    assert len(table) == 2 * 9 * 2 and "bag" not in set(table["class"])
    first = table[(table["class"] == "shirt") & (table["style"] == "sepia")]
    assert first.prompt.tolist() == [t.format("shirt in the style of sepia") for t in data.OBJECT_TEMPLATES[:2]]
    assert first.evaluation_seed.tolist() == [10_000, 10_001]
    with pytest.raises(ValueError, match="styles must be"):
        evaluation.styled_prompt_table("bag", ["plain"], 1)
    with pytest.raises(ValueError, match="n_styled"):
        evaluation.styled_prompt_table("bag", ["sketch"], 0)
    sketch, sepia = data.STYLES.index("sketch"), data.STYLES.index("sepia")
    judged = pd.DataFrame({"style": ["sketch", "sketch", "sepia", "sepia"], "predicted_style": [sketch, 0, sepia, sketch]})
    assert evaluation.style_kept(judged) == {"style_share": 0.5}


def test_random_direction_has_the_erasures_size_per_tensor(setup: experiment.Setup, images, final: evaluation.Sweep) -> None:
    from erasure_lib.methods import fewshot

    result = fewshot.erase(setup.pipeline, CLASS, images(CLASS, 0), replace(CONFIG, seed=0), progress_bar=False)
    control = evaluation.random_direction(result, setup.pipeline, seed=0)
    base = dict(setup.pipeline.text_encoder.named_parameters())
    erased = dict(result.components["text_encoder"].named_parameters())
    moved = 0
    for name, p in control.components["text_encoder"].named_parameters():
        own, redrawn = erased[name] - base[name], p - base[name]
        if torch.count_nonzero(own) == 0:
            assert torch.equal(p, base[name]), name  # untouched tensors stay untouched
            continue
        moved += 1
        assert torch.linalg.vector_norm(redrawn).item() == pytest.approx(torch.linalg.vector_norm(own).item(), rel=1e-3), name
        assert torch.nn.functional.cosine_similarity(redrawn.flatten(), own.flatten(), dim=0) < 0.9, name  # another direction
    assert moved == sum(1 for n in erased if torch.count_nonzero(erased[n] - base[n])) and moved > 0
    again = evaluation.random_direction(result, setup.pipeline, seed=0).components["text_encoder"].state_dict()
    assert all(torch.equal(v, again[k]) for k, v in control.components["text_encoder"].state_dict().items())  # seeded
    assert result.components["text_encoder"] is not control.components["text_encoder"]  # the erasure is not modified


def test_random_control_adds_destinations_of_the_erased_prompts(setup: experiment.Setup, images, final: evaluation.Sweep) -> None:
    out = run(setup, images, random_control=True)
    pd.testing.assert_frame_equal(out.rows.drop(columns=SECONDS), final.rows.drop(columns=SECONDS))
    control = out.destinations[out.destinations.when == "random direction"]
    assert len(control) == len(data.CLASSES) and (control.seed == 0).all() and (control.epochs == CONFIG.epochs).all()
    assert control.share.sum() == pytest.approx(1.0)
    pd.testing.assert_frame_equal(out.destinations[out.destinations.when != "random direction"], final.destinations)


# --- the per-run cache ------------------------------------------------------------------------------


TABLES = ["rows", "destinations", "imagenet_destinations", "runs", "losses", "probes"]


def test_a_cached_sweep_reads_back_what_it_computed_and_grows_run_by_run(setup: experiment.Setup, images, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """With ``cache`` each run is kept: a second call erases nothing (only the kept model again) and
    returns the same tables to the bit; an added seed costs its own run only; a variant named "4" stays
    a name and an empty ``retained`` stays "" (not as a CSV reads them back)."""
    from functools import partial

    from erasure_lib.methods import fewshot
    from erasure_lib.methods.base import model_digest

    variants = {"4": CONFIG, "all": replace(CONFIG, trainable="all")}
    related = partial(evaluation.summarize_related, groups=data.CLASS_GROUPS)

    def swept(seeds: list[int], **kwargs) -> evaluation.Sweep:
        return evaluation.sweep(setup.pipeline, setup.judge, setup.classes, variants, seeds, images, setup.generation, N_ERASED, N_OTHERS,
                                setup.universe, epochs={"4": [1, 2], "all": None}, variant="run", measures=related,
                                wordings=data.WORDINGS, random_control=True, keep_models=True, progress_bar=False, **kwargs)  # fmt: skip

    plain = swept([0])
    first = swept([0], cache=tmp_path / "runs")
    for name in TABLES:  # the same as without the cache, but for the seconds measured
        a, b = getattr(plain, name), getattr(first, name)
        pd.testing.assert_frame_equal(a.drop(columns=SECONDS, errors="ignore"), b.drop(columns=SECONDS, errors="ignore"), check_exact=True)
    assert (tmp_path / "runs" / CLASS / "base" / "key.json").is_file()
    assert sorted(p.name for p in (tmp_path / "runs" / CLASS / "seed-0").iterdir()) == ["4", "all"]
    assert evaluation._folder_name(("plain (paper)", 3e-4)) == "plain_paper-0.0003" and evaluation._folder_name(None) == "run"

    erasures: list[int] = []
    erase = fewshot.erase
    monkeypatch.setattr(fewshot, "erase", lambda *a, **k: erasures.append(1) or erase(*a, **k))
    again = swept([0], cache=tmp_path / "runs")
    assert len(erasures) == 1  # the kept model's erasure only; every verdict read back
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(first, name), getattr(again, name), check_exact=True)
    assert again.rows.run.tolist() == first.rows.run.tolist() and set(again.rows.run) == {"4", "all"}
    assert set(again.runs.retained) == {""}
    assert model_digest(again.models[CLASS]) == model_digest(first.models[CLASS])

    erasures.clear()
    grown = swept([0, 1], cache=tmp_path / "runs")
    assert len(erasures) == 3  # the kept model's again (seed 0 is read back), then seed 1's two runs
    seed_0 = grown.rows[grown.rows.seed == 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(seed_0, first.rows[first.rows.seed == 0].reset_index(drop=True), check_exact=True)
    assert sorted(grown.runs.seed.unique()) == [0, 1]

    with pytest.raises(ValueError, match="names its measures"):
        evaluation.sweep(setup.pipeline, setup.judge, setup.classes, CONFIG, [0], images, setup.generation, N_ERASED, N_OTHERS,
                         setup.universe, measures=lambda c, e: evaluation.summarize(c, [e]), progress_bar=False, cache=tmp_path / "x")  # fmt: skip


def test_uce_preserving_nearest_is_judged_on_each_wordings_prompts(setup: experiment.Setup) -> None:
    """Per wording, the same prompts as the sweep's: the paper wording's row equals a call without wordings."""
    from functools import partial

    related = partial(evaluation.summarize_related, groups=data.CLASS_GROUPS)
    args = (setup.pipeline, setup.judge, setup.classes, setup.universe, 2, setup.generation, N_ERASED, N_OTHERS, related, setup.universe)
    worded = evaluation.uce_preserving_nearest(*args, wordings=data.WORDINGS)
    plain = evaluation.uce_preserving_nearest(*args)
    assert list(worded.columns[:3]) == ["erased_class", "retained", "wording"] and worded.wording.tolist() == ["paper", "held-out"]
    pd.testing.assert_frame_equal(worded[worded.wording == "paper"].drop(columns="wording").reset_index(drop=True), plain)
    with pytest.raises(ValueError, match="at least one wording"):
        evaluation.uce_preserving_nearest(*args, wordings={})
