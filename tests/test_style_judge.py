"""The zero-shot style judge (erasure_lib.metrics.style_judge) on a hand-made CLIP whose answers are
known and on the built-in CLIP with real renders; notebook 07's erase-then-judge loop
(evaluation.style_erasure_table) against the loop it replaced, and its helpers in experiment."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from diffusers import StableDiffusionPipeline
from PIL import Image
from transformers import CLIPTokenizer

from erasure_lib import data, evaluation, experiment
from erasure_lib.generate import GenerationConfig
from erasure_lib.methods import fewshot
from erasure_lib.metrics import classifier as clf
from erasure_lib.metrics.style_judge import NO_STYLE, StyleJudge, load_style_judge, zero_shot
from erasure_lib.paths import CLASSIFIER_PATH, REPO_ROOT

COLOURS = ("red", "green", "blue")


# --- a hand-made CLIP: the answer is known -------------------------------------------------------


class ColourClip(torch.nn.Module):
    """A CLIP-shaped model in 3 dimensions: an image's embedding is its mean colour; a prompt's is the
    sum of its words' vectors, where "red", "green", "blue" are the axes, "photo" is grey, and every
    other token is zero. So a pure red image is nearest "... in the style of red" and a grey one
    nearest "a photo" (the no-style option)."""

    def __init__(self, tokenizer: CLIPTokenizer) -> None:
        super().__init__()
        table = torch.zeros(len(tokenizer), 3)
        for axis, word in enumerate(COLOURS):
            table[tokenizer.convert_tokens_to_ids(f"{word}</w>"), axis] = 1.0
        table[tokenizer.convert_tokens_to_ids("photo</w>")] = 1.0
        self.table = torch.nn.Parameter(table, requires_grad=False)
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(100.0)), requires_grad=False)
        self.config = SimpleNamespace(
            text_config=SimpleNamespace(max_position_embeddings=32),
            vision_config=SimpleNamespace(image_size=4),
            image_mean=[0.0, 0.0, 0.0],
            image_std=[1.0, 1.0, 1.0],
        )

    @property
    def device(self) -> torch.device:
        return self.table.device

    @property
    def dtype(self) -> torch.dtype:
        return self.table.dtype

    def get_text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return (self.table[input_ids] * attention_mask[..., None]).sum(1)

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return pixel_values.mean(dim=(2, 3))


def _flat(rgb: tuple[int, int, int], size: int = 8) -> Image.Image:
    return Image.new("RGB", (size, size), rgb)


@pytest.fixture(scope="module")
def clip_tokenizer() -> CLIPTokenizer:
    folder = REPO_ROOT / "models" / "clip"
    if not (folder / "tokenizer_config.json").is_file():
        pytest.skip(f"the built-in CLIP's tokenizer is missing from {folder}")
    return CLIPTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def colour_judge(clip_tokenizer: CLIPTokenizer) -> StyleJudge:
    return StyleJudge(ColourClip(clip_tokenizer), None, COLOURS, tokenizer=clip_tokenizer)


def test_zero_shot_by_hand() -> None:
    images = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    classes = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    predicted, probabilities = zero_shot(images, classes, logit_scale=10.0)
    assert predicted.tolist() == [0, 1, 0]  # a tie goes to the first class
    assert probabilities[0] == pytest.approx([1 / (1 + math.exp(-10)), 1 / (1 + math.exp(10))])
    assert probabilities[2] == pytest.approx([0.5, 0.5])
    with pytest.raises(ValueError, match="embeddings"):
        zero_shot(images, torch.ones(2, 3), 1.0)


def test_a_known_answer_through_tokenizer_and_pixels(colour_judge: StyleJudge) -> None:
    images = [_flat((255, 0, 0)), _flat((0, 200, 0)), _flat((10, 10, 250)), _flat((128, 128, 128)), _flat((200, 40, 40))]
    verdict = colour_judge.predict(images)
    assert verdict.classes == (*COLOURS, NO_STYLE)
    assert [verdict.classes[k] for k in verdict.predicted] == ["red", "green", "blue", NO_STYLE, "red"]
    assert verdict.probabilities.shape == (5, 4)
    assert verdict.probabilities.sum(1) == pytest.approx(np.ones(5))
    assert verdict.probabilities[0, 0] > 0.99 and verdict.probabilities[3, 3] > 0.99  # temperature 100
    assert verdict.share("red") == pytest.approx(0.4) and verdict.share(NO_STYLE) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="not a judged style"):
        verdict.share("sepia")
    tensor = torch.stack([torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1) for im in images])
    assert colour_judge.predict(tensor).predicted.tolist() == verdict.predicted.tolist()
    assert colour_judge.predict([]).predicted.shape == (0,)


def test_without_the_no_style_option_a_grey_image_must_take_a_style(clip_tokenizer: CLIPTokenizer) -> None:
    judge = StyleJudge(ColourClip(clip_tokenizer), None, COLOURS, none_prompts=(), tokenizer=clip_tokenizer)
    assert judge.classes == COLOURS
    assert judge.predict([_flat((128, 128, 128))]).predicted[0] in (0, 1, 2)


def test_bad_arguments_are_named(clip_tokenizer: CLIPTokenizer) -> None:
    model = ColourClip(clip_tokenizer)
    for styles, match in (([], "at least one"), (["red", "red"], "distinct"), (["red", NO_STYLE], "distinct")):
        with pytest.raises(ValueError, match=match):
            StyleJudge(model, None, styles, tokenizer=clip_tokenizer)
    with pytest.raises(ValueError, match="templates"):
        StyleJudge(model, None, COLOURS, templates=("a painting",), tokenizer=clip_tokenizer)
    with pytest.raises(ValueError, match="tokenizer"):
        StyleJudge(model, None, COLOURS)


# --- the built-in CLIP on real renders --------------------------------------------------------------


@pytest.fixture(scope="module")
def builtin_clip_judge(fashion_mnist_available: None) -> StyleJudge:
    if not (REPO_ROOT / "models" / "clip" / "model.safetensors").is_file():
        pytest.skip("the built-in CLIP (models/clip) is missing")
    return load_style_judge("models/clip", ["sketch", "sepia"])


def test_builtin_clip_judges_real_renders_by_their_style(builtin_clip_judge: StyleJudge) -> None:
    """Held-out Fashion-MNIST test images rendered in each style: chance is 1/3 (sketch, sepia, none)."""
    test = data.load_fashion_mnist("test")
    index = np.random.default_rng(0).choice(len(test.labels), size=60, replace=False)
    expected = {"sketch": "sketch", "sepia": "sepia", "plain": NO_STYLE}
    for style, verdict in expected.items():
        renders = [data.to_pil(data.render(test.images[i], style)) for i in index]
        share = builtin_clip_judge.predict(renders).share(verdict)
        assert share >= 0.9, f"{style} renders judged {verdict} only {share:.2f} of the time"


# --- the erase-then-judge loop (notebook 07) --------------------------------------------------------

FAST = GenerationConfig(num_inference_steps=2, guidance_scale=7.5)


def _style_images(tmp: Path, style: str, seed: int) -> list[Path]:
    return experiment.style_images("builtin", style, 2, seed, tmp)


def _config(seed: int) -> fewshot.FewShotConfig:
    return fewshot.FewShotConfig.builtin(concept_type="style", seed=seed, epochs=1)


def _old_notebook_loop(pipeline: StableDiffusionPipeline, classifier: clf.GarmentStyleClassifier, styles: list[str],
                       seeds: list[int], tables: dict[str, pd.DataFrame], tmp: Path) -> pd.DataFrame:
    """Notebook 07's loop before it moved into the library, verbatim but for the images and config."""
    rows = []
    for erased_style in styles:
        for seed in seeds:
            images = _style_images(tmp, erased_style, seed)
            erased = fewshot.erase(pipeline, erased_style, images, _config(seed), progress_bar=False).apply(pipeline)
            for prompt_style, table in tables.items():
                for when, p in (("before", pipeline), ("after", erased)):
                    if when == "before" and seed != seeds[0]:
                        continue
                    out = evaluation.classify_generated(p, classifier, table, FAST)
                    rows.append({"erased_style": erased_style, "seed": seed, "prompt_style": prompt_style, "when": when,
                                 "style_share": float((out.predicted_style == data.STYLES.index(prompt_style)).mean()),
                                 "class_accuracy": float((out.predicted == out.class_index).mean())})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def classifier() -> clf.GarmentStyleClassifier:
    if not CLASSIFIER_PATH.is_file():
        pytest.skip("the shipped classifier is missing")
    return clf.load_classifier(CLASSIFIER_PATH)


def test_style_erasure_table_gives_the_old_loops_rows(
    tiny_pipeline: StableDiffusionPipeline, classifier: clf.GarmentStyleClassifier, fashion_mnist_available: None, tmp_path: Path
) -> None:
    styles, seeds = ["sketch", "sepia"], [0, 1]
    tables = experiment.style_prompt_tables(classifier, 1, ["sneaker", "bag"])
    assert list(tables) == ["sketch", "sepia"]
    table, erased = evaluation.style_erasure_table(
        tiny_pipeline, classifier, styles, seeds, lambda style, seed: _style_images(tmp_path, style, seed), _config, tables, FAST
    )
    pd.testing.assert_frame_equal(table.drop(columns="epochs"), _old_notebook_loop(tiny_pipeline, classifier, styles, seeds, tables, tmp_path))
    assert len(table) == len(styles) * len(tables) * (len(seeds) + 1)
    assert set(table[table["when"] == "before"]["epochs"]) == {0} and set(table[table["when"] == "after"]["epochs"]) == {_config(0).epochs}
    assert set(table[table["when"] == "before"]["seed"]) == {0}
    assert list(erased) == styles and all(isinstance(p, StableDiffusionPipeline) for p in erased.values())


def test_style_erasure_table_with_the_clip_judge(
    tiny_pipeline: StableDiffusionPipeline, builtin_clip_judge: StyleJudge, tmp_path: Path
) -> None:
    tables = experiment.style_prompt_tables(builtin_clip_judge, 1, ["village"])
    assert list(tables) == ["sketch", "sepia"] and tables["sepia"]["prompt"][0] == "a photo of a village in the style of sepia"
    table, erased = evaluation.style_erasure_table(
        tiny_pipeline, builtin_clip_judge, ["sepia"], [0], lambda style, seed: _style_images(tmp_path, style, seed), _config, tables, FAST
    )
    assert list(table.columns) == ["erased_style", "seed", "prompt_style", "when", "epochs", "style_share", "class_accuracy"]
    assert len(table) == 4 and table["class_accuracy"].isna().all()
    assert table["style_share"].between(0, 1).all()
    grid, labels = evaluation.before_after_grid(tiny_pipeline, erased, data.STYLE_TEMPLATES[0], [1, 2, 3], FAST)
    assert labels == ["sepia before", "sepia after"] and [len(row) for row in grid] == [3, 3]


def test_style_erasure_table_judges_checkpoints_and_the_summary_names_them(
    tiny_pipeline: StableDiffusionPipeline, classifier: clf.GarmentStyleClassifier, fashion_mnist_available: None, tmp_path: Path
) -> None:
    """Per-epoch checkpoints: the last one is the final weights' verdict; the summary's UA, IRA and
    CRA are the table's shares, grouped by erased style and epochs."""
    tables = experiment.style_prompt_tables(classifier, 1, ["sneaker", "bag"])
    config_for = lambda seed: replace(_config(seed), epochs=2)  # noqa: E731
    source = lambda style, seed: _style_images(tmp_path, style, seed)  # noqa: E731
    table, _ = evaluation.style_erasure_table(tiny_pipeline, classifier, ["sepia"], [0], source, config_for, tables, FAST, epochs=[1, 2])
    final, _ = evaluation.style_erasure_table(tiny_pipeline, classifier, ["sepia"], [0], source, config_for, tables, FAST)
    assert sorted(set(table.epochs)) == [0, 1, 2] and len(table) == 2 * 3
    pd.testing.assert_frame_equal(table[table.epochs != 1].reset_index(drop=True), final)
    with pytest.raises(ValueError, match="must lie in 1..2"):
        evaluation.style_erasure_table(tiny_pipeline, classifier, ["sepia"], [0], source, config_for, tables, FAST, epochs=[3])
    summary = evaluation.style_unlearning_summary(table).set_index("epochs")
    after = table[table.when == "after"].set_index(["epochs", "prompt_style"])
    for e in (1, 2):
        assert summary.UA[e] == pytest.approx(1 - after.style_share[(e, "sepia")])
        assert summary.IRA[e] == pytest.approx(after.style_share[(e, "sketch")])
        assert summary.CRA[e] == pytest.approx(after.class_accuracy[(e, "sketch")])
    assert summary.UA_before.iloc[0] == pytest.approx(1 - table[(table.when == "before") & (table.prompt_style == "sepia")].style_share.iloc[0])


def test_style_erasure_table_judges_each_wording_apart(
    tiny_pipeline: StableDiffusionPipeline, classifier: clf.GarmentStyleClassifier, fashion_mnist_available: None, tmp_path: Path
) -> None:
    """Tables in two wordings: the same evaluation seeds in each, every verdict the one-wording
    table's verdict on that wording's prompts, and the summary one row per wording."""
    wordings = {"paper": data.OBJECT_TEMPLATES, "held-out": data.HELDOUT_OBJECT_TEMPLATES}
    tables = experiment.style_prompt_tables(classifier, 2, ["sneaker", "bag"], wordings=wordings)
    sepia = tables["sepia"]
    assert sepia.wording.tolist() == ["paper"] * 4 + ["held-out"] * 4
    assert sepia[sepia.wording == "held-out"].prompt.iloc[1] == "an image of the sneaker in the style of sepia"
    assert sepia[sepia.wording == "paper"].evaluation_seed.tolist() == sepia[sepia.wording == "held-out"].evaluation_seed.tolist()
    source = lambda style, seed: _style_images(tmp_path, style, seed)  # noqa: E731
    table, _ = evaluation.style_erasure_table(tiny_pipeline, classifier, ["sepia"], [0], source, _config, tables, FAST)
    assert list(table.columns[:5]) == ["erased_style", "seed", "prompt_style", "wording", "when"]
    held_out = {s: t[t.wording == "held-out"].drop(columns="wording") for s, t in tables.items()}
    alone, _ = evaluation.style_erasure_table(tiny_pipeline, classifier, ["sepia"], [0], source, _config, held_out, FAST)
    pd.testing.assert_frame_equal(table[table.wording == "held-out"].drop(columns="wording").reset_index(drop=True), alone)
    summary = evaluation.style_unlearning_summary(table).set_index("wording")
    assert list(summary.index) == ["paper", "held-out"]
    rows = table[(table.prompt_style == "sepia") & (table.wording == "held-out")].set_index("when")
    assert summary.UA["held-out"] == pytest.approx(1 - rows.style_share["after"])
    assert summary.UA_before["held-out"] == pytest.approx(1 - rows.style_share["before"])
    with pytest.raises(ValueError, match="at least one wording"):
        experiment.style_prompt_tables(classifier, 1, ["bag"], wordings={})
    with pytest.raises(ValueError, match="every prompt table has a wording column or none"):
        evaluation.style_erasure_table(tiny_pipeline, classifier, ["sepia"], [0], source, _config, {**tables, "sketch": held_out["sketch"]}, FAST)


def test_a_style_the_judge_does_not_name_fails(tiny_pipeline: StableDiffusionPipeline, classifier: clf.GarmentStyleClassifier) -> None:
    table = evaluation.ClassPromptSet(("bag",), 1, style="Van Gogh").table()
    with pytest.raises(ValueError, match="Van Gogh"):
        evaluation.style_verdict(classifier, tiny_pipeline, table, "Van Gogh", FAST)


# --- experiment's helpers for notebook 07 -------------------------------------------------------------


def test_builtin_helpers_are_what_the_notebook_used(classifier: clf.GarmentStyleClassifier, fashion_mnist_available: None, tmp_path: Path) -> None:
    tables = experiment.style_prompt_tables(classifier, 4)
    old = {s: evaluation.ClassPromptSet(n_per_class=4, style=s).table() for s in data.STYLES[1:]}
    assert list(tables) == list(old)
    for style in old:
        pd.testing.assert_frame_equal(tables[style], old[style])
    paths = experiment.style_images("builtin", "sepia", 4, 1, tmp_path)
    assert [p.name for p in paths] == [p.name for p in data.export_style_images(tmp_path / "old", "sepia", n=4, seed=1)]
    assert all(p.parent == tmp_path / "sepia-seed1" for p in paths)
    with pytest.raises(ValueError, match="garment classes"):
        experiment.style_prompt_tables(classifier, 1, ["village"])
    with pytest.raises(ValueError, match="style_judge"):
        experiment.load_style_judge("eva02", ["sketch"])  # type: ignore[arg-type]
    assert isinstance(experiment.load_style_judge("builtin", ["Van Gogh"]), clf.GarmentStyleClassifier)


def test_style_images_from_a_folder_are_drawn_by_seed(tmp_path: Path) -> None:
    folder = tmp_path / "styles" / "Van Gogh"
    folder.mkdir(parents=True)
    for k in range(6):
        Image.new("RGB", (8, 8), (k, 0, 0)).save(folder / f"{k}.png")
    a = experiment.style_images(str(tmp_path / "styles"), "Van Gogh", 4, 0, tmp_path / "work")
    assert a == experiment.style_images(str(tmp_path / "styles"), "Van Gogh", 4, 0, tmp_path / "work")
    assert len(set(a)) == 4 and all(p.parent == folder for p in a)
    assert a != experiment.style_images(str(tmp_path / "styles"), "Van Gogh", 4, 1, tmp_path / "work")
    with pytest.raises(FileNotFoundError, match="images_dir"):
        experiment.style_images(str(tmp_path / "nowhere"), "Van Gogh", 4, 0, tmp_path / "work")


def test_base_style_quality_gives_notebook_01s_old_rows(
    tiny_pipeline: StableDiffusionPipeline, classifier: clf.GarmentStyleClassifier
) -> None:
    """Notebook 01's style loop before it moved into evaluation.style_quality, at a small size."""
    styles, n, offset = ["sketch", "sepia"], 1, 500
    rows = []
    for style in styles:
        styled = evaluation.ClassPromptSet(n_per_class=n, seed_offset=offset, style=style, templates=("a photo of a {}",))
        out = evaluation.classify_generated(tiny_pipeline, classifier, styled.table(), FAST)
        rows.append({"style": style, "style_share": float((out.predicted_style == data.STYLES.index(style)).mean()),
                     "class_accuracy": float((out.predicted == out.class_index).mean())})  # fmt: skip
    quality = evaluation.style_quality(tiny_pipeline, classifier, styles, n, offset, FAST)
    pd.testing.assert_frame_equal(quality, pd.DataFrame(rows), check_exact=True)
    assert list(evaluation.style_quality(tiny_pipeline, classifier, [], n, offset, FAST).columns) == list(quality.columns)
