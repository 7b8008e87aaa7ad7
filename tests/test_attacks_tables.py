"""The attack tables of notebooks 08 and 12 (erasure_lib.attacks: wording_attacks, inversion_attacks,
robustness, attack_summary) on the tiny random-weight pipeline, judged by a deterministic stand-in
ImageNet judge (a fixed random projection decides "church" or not), 2 sampling steps, 4 images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from erasure_lib import attacks, evaluation
from erasure_lib.generate import GenerationConfig, generate_from_embeddings
from erasure_lib.methods import uce
from erasure_lib.metrics.imagenet import IMAGENETTE_CLASSES, ImageNetEvaluator

CONCEPT = "church"
N_EVAL = 4
GENERATION = GenerationConfig(num_inference_steps=2, batch_size=8)
INVERSION = attacks.InversionConfig(steps=2, lr=1e-1, batch_size=2)
CONDITIONING = attacks.ConditioningAttackConfig(steps=2, lr=1e-1, batch_size=2)
COLUMNS = ["erased_class", "attack", "target", "share"]


class Projection(torch.nn.Module):
    """ImageNet-1k logits: 0 for every class but CONCEPT, whose logit is a fixed random projection of
    the centred image; so an image is judged CONCEPT or not by its content, the same way every call."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.w = torch.randn(3 * size * size, generator=torch.Generator().manual_seed(0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = (x - x.mean(dim=(1, 2, 3), keepdim=True)).flatten(1)
        logits = torch.zeros(len(x), 1000)
        logits[:, IMAGENETTE_CLASSES[CONCEPT]] = centred @ self.w
        return logits


@pytest.fixture(scope="module")
def judge() -> ImageNetEvaluator:
    return ImageNetEvaluator(Projection(16), image_size=16)


@pytest.fixture(scope="module")
def universe(judge: ImageNetEvaluator) -> tuple[str, ...]:
    return tuple(judge.classes)


@pytest.fixture(scope="module")
def shots() -> list[Image.Image]:
    """Four noise images standing in for the few real images of the concept."""
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for _ in range(4)]


@pytest.fixture(scope="module")
def targets(tiny_pipeline) -> dict[str, object]:
    """The base model and a UCE erasure of the concept (closed form, cheap)."""
    erased = uce.erase(tiny_pipeline, CONCEPT, None, uce.UCEConfig(), progress_bar=False).apply(tiny_pipeline)
    return {attacks.BASE: tiny_pipeline, "uce": erased}


@pytest.fixture(scope="module")
def wordings(targets, judge, universe) -> pd.DataFrame:
    return attacks.wording_attacks(targets, CONCEPT, judge, GENERATION, N_EVAL, universe, paraphrase="chapel")


def share(pipeline, judge, universe, wording: str) -> float:
    """The notebook's former arithmetic for one wording and one target."""
    table = evaluation.wording_table(CONCEPT, wording, N_EVAL, classes=universe)
    classified = evaluation.classify_generated(pipeline, judge, table, GENERATION)
    return evaluation.summarize(classified, [CONCEPT])["erased_share"]


# --- wording_attacks -------------------------------------------------------------------------------


def test_wording_rows_are_one_per_wording_and_target(wordings: pd.DataFrame, targets) -> None:
    variants = attacks.prompt_variants(CONCEPT, "chapel")
    assert list(wordings.columns) == COLUMNS
    assert len(wordings) == len(variants) * len(targets)
    expected = [(f"wording: {v}", name) for v in variants for name in targets]  # wording by wording, targets in order
    assert list(zip(wordings.attack, wordings.target)) == expected
    assert "wording: paraphrase" in set(wordings.attack)
    assert set(wordings.erased_class) == {CONCEPT}
    assert wordings.share.between(0, 1).all()
    assert np.allclose(wordings.share * N_EVAL, np.round(wordings.share * N_EVAL))  # a share of N_EVAL images


def test_wording_shares_are_summarize_of_classify_generated(wordings: pd.DataFrame, targets, judge, universe) -> None:
    for variant, wording in attacks.prompt_variants(CONCEPT, "chapel").items():
        for name in targets:
            row = wordings[(wordings.attack == f"wording: {variant}") & (wordings.target == name)]
            assert row.share.item() == share(targets[name], judge, universe, wording), (variant, name)
    # the stand-in judge draws some wordings as the concept and not others: the equality above is not 0 == 0
    assert wordings.share.gt(0).any() and wordings.share.lt(1).any()


def test_no_paraphrase_no_paraphrase_row(tiny_pipeline, judge, universe) -> None:
    table = attacks.wording_attacks({attacks.BASE: tiny_pipeline}, CONCEPT, judge, GENERATION, 1, universe)
    assert list(table.attack) == [f"wording: {v}" for v in attacks.prompt_variants(CONCEPT)]


# --- inversion_attacks -----------------------------------------------------------------------------


def test_inversion_attacks_only_the_given_targets(targets, judge, universe, shots) -> None:
    chosen = {"uce": targets["uce"]}  # a subset, as notebook 12 attacks
    table = attacks.inversion_attacks(chosen, CONCEPT, shots, INVERSION, judge, GENERATION, N_EVAL, universe)
    assert list(table.columns) == COLUMNS
    assert table.to_dict("records") == [
        {"erased_class": CONCEPT, "attack": "concept inversion", "target": "uce", "share": table.share.item()}
    ]
    assert 0 <= table.share.item() <= 1
    attacked = attacks.invert_concept(targets["uce"], shots, INVERSION)
    assert table.share.item() == share(attacked, judge, universe, INVERSION.placeholder)
    assert INVERSION.placeholder not in targets["uce"].tokenizer.get_vocab()  # the target is left alone


# --- robustness ------------------------------------------------------------------------------------


@pytest.fixture
def shot_files(shots: list[Image.Image], tmp_path: Path) -> list[Path]:
    """The few-shot images as files, as :func:`erasure_lib.experiment.image_source` gives them."""
    folder = tmp_path / "shots"
    folder.mkdir()
    for k, image in enumerate(shots):
        image.save(folder / f"{k}.png")
    return sorted(folder.iterdir())


def test_robustness_is_erase_then_both_attacks(tiny_pipeline, judge, universe, shot_files: list[Path], tmp_path: Path) -> None:
    paths = shot_files
    drawn = []

    def images(concept: str, seed: int) -> list[Path]:
        drawn.append((concept, seed))
        return paths

    def run() -> pd.DataFrame:
        return attacks.robustness(tiny_pipeline, judge, [CONCEPT], images, 3, {"uce": uce.UCEConfig()}, tmp_path / "cache",
                                  "tiny", INVERSION, GENERATION, N_EVAL, universe, progress_bar=False)  # fmt: skip

    table = run()
    assert drawn == [(CONCEPT, 3)]
    assert (tmp_path / "cache" / "uce" / CONCEPT / "cache_key.json").is_file()  # saved for notebook 13 and the next run
    erased = uce.erase(tiny_pipeline, CONCEPT, None, uce.UCEConfig(), progress_bar=False).apply(tiny_pipeline)
    expected = pd.concat([
        attacks.wording_attacks({attacks.BASE: tiny_pipeline, "uce": erased}, CONCEPT, judge, GENERATION, N_EVAL, universe),
        attacks.inversion_attacks({attacks.BASE: tiny_pipeline, "uce": erased}, CONCEPT, paths, INVERSION, judge, GENERATION, N_EVAL, universe),
    ], ignore_index=True)  # fmt: skip
    pd.testing.assert_frame_equal(table, expected)
    pd.testing.assert_frame_equal(run(), table)  # read back from the cache: the same numbers


def test_robustness_rows_cache_reads_back_the_same_rows_and_recomputes_when_an_input_changes(
    tiny_pipeline, judge, universe, shots, shot_files: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = shot_files
    attacked = []
    wording_attacks = attacks.wording_attacks
    monkeypatch.setattr(attacks, "wording_attacks", lambda targets, concept, *rest: attacked.append(concept) or wording_attacks(targets, concept, *rest))

    def run(n_eval: int, learn_from: list[Image.Image] | None = None) -> pd.DataFrame:
        return attacks.robustness(tiny_pipeline, judge, [CONCEPT], lambda concept, seed: paths, 3, {"uce": uce.UCEConfig()}, tmp_path / "erasures",
                                  "tiny", INVERSION, GENERATION, n_eval, universe, progress_bar=False,
                                  attack_images=None if learn_from is None else (lambda concept, erasure_shots: learn_from),
                                  rows_cache=tmp_path / "rows")  # fmt: skip

    table = run(N_EVAL)
    assert attacked == [CONCEPT] and (tmp_path / "rows" / CONCEPT / "seed-3" / "rows.csv").is_file()
    pd.testing.assert_frame_equal(run(N_EVAL), table, check_dtype=False)  # read back: the same rows, the same numbers
    assert attacked == [CONCEPT]  # nothing was attacked again
    assert len(run(N_EVAL + 2)) == len(table) and attacked == [CONCEPT] * 2  # another image count: computed again
    run(N_EVAL + 2, learn_from=[image.transpose(Image.Transpose.FLIP_TOP_BOTTOM) for image in shots])
    assert attacked == [CONCEPT] * 3  # other attack images: computed again
    run(N_EVAL + 2, learn_from=[image.transpose(Image.Transpose.FLIP_TOP_BOTTOM) for image in shots])
    assert attacked == [CONCEPT] * 3  # the same ones, by content: read back
    monkeypatch.setitem(attacks.REVISIONS, "uce", attacks.REVISIONS["uce"] + 1)  # a fix to the method erasing
    run(N_EVAL + 2, learn_from=[image.transpose(Image.Transpose.FLIP_TOP_BOTTOM) for image in shots])
    assert attacked == [CONCEPT] * 4  # its rows are computed again


def test_robustness_learns_from_other_images_and_adds_the_conditioning_attack(tiny_pipeline, judge, universe, shots, shot_files: list[Path], tmp_path: Path) -> None:
    paths = shot_files
    others = [image.transpose(Image.Transpose.FLIP_TOP_BOTTOM) for image in shots]
    given = []

    def attack_images(concept: str, erasure_shots) -> list[Image.Image]:
        given.append((concept, list(erasure_shots)))
        return others

    table = attacks.robustness(tiny_pipeline, judge, [CONCEPT], lambda concept, seed: paths, 3, {"uce": uce.UCEConfig()}, tmp_path / "cache",
                               "tiny", INVERSION, GENERATION, N_EVAL, universe, progress_bar=False, attack_images=attack_images,
                               conditioning=CONDITIONING)  # fmt: skip
    assert given == [(CONCEPT, paths)]  # the attacks are told which images the erasure used
    targets = {attacks.BASE: tiny_pipeline, "uce": uce.erase(tiny_pipeline, CONCEPT, None, uce.UCEConfig(), progress_bar=False).apply(tiny_pipeline)}
    inverted = attacks.inversion_attacks(targets, CONCEPT, others, INVERSION, judge, GENERATION, N_EVAL, universe)
    conditioned = attacks.conditioning_attacks(targets, CONCEPT, others, CONDITIONING, judge, GENERATION, N_EVAL, universe)
    pd.testing.assert_frame_equal(table[table.attack == attacks.INVERSION].reset_index(drop=True), inverted)
    pd.testing.assert_frame_equal(table[table.attack == attacks.CONDITIONING].reset_index(drop=True), conditioned)
    assert table.attack.tolist()[-2:] == [attacks.CONDITIONING] * 2


# --- the conditioning attack (U-Net side) ----------------------------------------------------------


def test_learn_conditioning_moves_only_the_conditioning(tiny_pipeline, shots) -> None:
    before = {k: v.clone() for k, v in tiny_pipeline.unet.state_dict().items()}
    flags = [p.requires_grad for p in tiny_pipeline.unet.parameters()]
    encoded = tiny_pipeline.text_encoder(tiny_pipeline.tokenizer(["a photo of a church"], padding="max_length",
                                         max_length=tiny_pipeline.tokenizer.model_max_length, return_tensors="pt").input_ids)[0]  # fmt: skip
    start = attacks.learn_conditioning(tiny_pipeline, CONCEPT, shots, attacks.ConditioningAttackConfig(steps=0))
    torch.testing.assert_close(start, encoded.detach())  # zero steps: the target's own encoding of the start prompt
    learned = attacks.learn_conditioning(tiny_pipeline, CONCEPT, shots, CONDITIONING)
    assert learned.shape == start.shape and not learned.requires_grad and not torch.equal(learned, start)
    assert torch.equal(learned, attacks.learn_conditioning(tiny_pipeline, CONCEPT, shots, CONDITIONING))  # seeded
    assert all(torch.equal(before[k], v) for k, v in tiny_pipeline.unet.state_dict().items())
    assert [p.requires_grad for p in tiny_pipeline.unet.parameters()] == flags  # restored
    with pytest.raises(FloatingPointError, match="lower its lr"):
        attacks.learn_conditioning(tiny_pipeline, CONCEPT, shots, attacks.ConditioningAttackConfig(steps=3, lr=float("inf")))


def test_conditioning_attack_judges_images_of_the_learned_conditioning(tiny_pipeline, judge, universe, shots) -> None:
    table = attacks.conditioning_attacks({"base": tiny_pipeline}, CONCEPT, shots, CONDITIONING, judge, GENERATION, N_EVAL, universe)
    assert table.to_dict("records") == [{"erased_class": CONCEPT, "attack": attacks.CONDITIONING, "target": "base", "share": table.share.item()}]
    learned = attacks.learn_conditioning(tiny_pipeline, CONCEPT, shots, CONDITIONING)
    prompts = evaluation.wording_table(CONCEPT, "<learned conditioning>", N_EVAL, classes=universe)
    empty = tiny_pipeline.text_encoder(tiny_pipeline.tokenizer([""], padding="max_length",
                                       max_length=tiny_pipeline.tokenizer.model_max_length, return_tensors="pt").input_ids)[0]  # fmt: skip
    images = generate_from_embeddings(tiny_pipeline, learned.expand(N_EVAL, -1, -1), empty.detach().expand(N_EVAL, -1, -1),
                                      list(prompts.evaluation_seed), GENERATION, progress_bar=False)  # fmt: skip
    assert table.share.item() == evaluation.summarize(evaluation.classify_images(judge, prompts, images), [CONCEPT])["erased_share"]


# --- attack_summary --------------------------------------------------------------------------------


def test_attack_summary_is_the_mean_over_classes_in_the_given_order() -> None:
    table = pd.DataFrame({
        "erased_class": ["a", "a", "b", "b", "a", "b"],
        "attack": ["wording: as erased"] * 4 + ["concept inversion"] * 2,
        "target": ["base", "fewshot", "base", "fewshot", "fewshot", "fewshot"],
        "share": [1.0, 0.5, 0.5, 0.0, 0.25, 0.75],
    })  # fmt: skip
    summary = attacks.attack_summary(table, ["fewshot", "base"])
    assert list(summary.columns) == ["attack", "fewshot", "base"]
    rows = summary.set_index("attack")
    assert rows.loc["wording: as erased"].tolist() == [0.25, 0.75]
    assert rows.loc["concept inversion", "fewshot"] == 0.5 and np.isnan(rows.loc["concept inversion", "base"])
    with pytest.raises(ValueError, match="no rows of the target"):
        attacks.attack_summary(table, ["base", "esd"])


def test_attack_intervals_count_runs_over_classes_and_seeds_and_bracket_the_mean() -> None:
    table = pd.DataFrame({
        "erased_class": ["a", "b", "a", "b", "a", "b", "a", "b"],
        "seed": [3, 3, 4, 4, 3, 3, 4, 4],
        "attack": ["wording: as erased"] * 8,
        "target": ["base"] * 4 + ["fewshot"] * 4,
        "share": [1.0, 1.0, 0.75, 1.0, 0.0, 0.5, 0.25, 1.0],
    })  # fmt: skip
    rows = attacks.attack_intervals(table, ["fewshot", "base"])
    assert list(rows.target) == ["fewshot", "base"] and list(rows.runs) == [4, 4]
    fewshot = rows.iloc[0]
    assert fewshot.share == pytest.approx(0.4375)
    assert fewshot.drawn_share == pytest.approx(0.5)  # 0.5 and 1.0 of four runs reach half the images
    assert 0.0 <= fewshot.share_low < fewshot.share < fewshot.share_high <= 1.0
    base = rows.iloc[1]
    assert base.share == pytest.approx(0.9375) and base.drawn_share == 1.0
    with pytest.raises(ValueError, match="no rows of the target"):
        attacks.attack_intervals(table, ["esd"])


# --- bad input -------------------------------------------------------------------------------------


def test_bad_input_fails_before_generating(tiny_pipeline, judge, universe, shots) -> None:
    one = {attacks.BASE: tiny_pipeline}
    with pytest.raises(ValueError, match="at least one target"):
        attacks.wording_attacks({}, CONCEPT, judge, GENERATION, N_EVAL, universe)
    with pytest.raises(ValueError, match="n_eval must be at least 1"):
        attacks.wording_attacks(one, CONCEPT, judge, GENERATION, 0, universe)
    with pytest.raises(ValueError, match="does not name 'sneaker'"):
        attacks.wording_attacks(one, "sneaker", judge, GENERATION, N_EVAL, universe)
    with pytest.raises(ValueError, match="at least one target"):
        attacks.inversion_attacks({}, CONCEPT, shots, INVERSION, judge, GENERATION, N_EVAL, universe)
    with pytest.raises(ValueError, match="does not name 'sneaker'"):
        attacks.inversion_attacks(one, "sneaker", shots, INVERSION, judge, GENERATION, N_EVAL, universe)

    def robustness(classes, configs):
        return attacks.robustness(tiny_pipeline, judge, classes, lambda c, s: shots, 0, configs, "unused", "tiny",
                                  INVERSION, GENERATION, N_EVAL, universe, progress_bar=False)  # fmt: skip

    with pytest.raises(ValueError, match="at least one class and one method"):
        robustness([], {"uce": uce.UCEConfig()})
    with pytest.raises(ValueError, match="at least one class and one method"):
        robustness([CONCEPT], {})
    with pytest.raises(ValueError, match="names the base model"):
        robustness([CONCEPT], {attacks.BASE: uce.UCEConfig()})
    with pytest.raises(ValueError, match="does not name"):
        robustness(["sneaker"], {"uce": uce.UCEConfig()})
