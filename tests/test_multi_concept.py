"""Erasing several concepts in one run."""

from __future__ import annotations

import pytest
import torch

from erasure_lib.data import export_concept_images
from erasure_lib.methods import fewshot


@pytest.fixture(scope="module")
def bag_dir(tmp_path_factory, fashion_mnist_available):
    folder = tmp_path_factory.mktemp("bag") / "bag"
    export_concept_images(folder, "bag", n=2, seed=0)
    return folder


def _same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_one_concept_is_exactly_erase(tiny_pipeline, concept_dir):
    config = fewshot.FewShotConfig(lr=1e-3, epochs=1)
    single = fewshot.erase(tiny_pipeline, "sneaker", concept_dir, config, progress_bar=False)
    many = fewshot.erase_concepts(tiny_pipeline, {"sneaker": concept_dir}, config, progress_bar=False)
    assert single.losses == many.losses and _same(single.components["text_encoder"], many.components["text_encoder"])


def test_two_concepts_pool_their_images(tiny_pipeline, concept_dir, bag_dir):
    config = fewshot.FewShotConfig(lr=1e-3, epochs=2)
    result = fewshot.erase_concepts(tiny_pipeline, {"sneaker": concept_dir, "bag": bag_dir}, config, progress_bar=False)
    assert result.concept == "sneaker + bag" and result.info["concepts"] == ["sneaker", "bag"]
    assert result.info["n_images"] == 4 + 2 and len(result.losses) == 2 * 3
    again = fewshot.erase_concepts(tiny_pipeline, {"sneaker": concept_dir, "bag": bag_dir}, config, progress_bar=False)
    assert _same(result.components["text_encoder"], again.components["text_encoder"])
    zero = fewshot.erase_concepts(tiny_pipeline, {"sneaker": None, "bag": None}, fewshot.FewShotConfig(zero_shot=True, zero_shot_images=3), progress_bar=False)
    assert zero.info["n_images"] == 6


def test_bad_inputs(tiny_pipeline, concept_dir):
    with pytest.raises(ValueError, match="no concepts"):
        fewshot.erase_concepts(tiny_pipeline, {}, fewshot.FewShotConfig())
    with pytest.raises(ValueError, match="'bag'"):
        fewshot.erase_concepts(tiny_pipeline, {"sneaker": concept_dir, "bag": None}, fewshot.FewShotConfig())
    with pytest.raises(ValueError, match="empty"):
        fewshot.erase_concepts(tiny_pipeline, {"sneaker": concept_dir, " ": concept_dir}, fewshot.FewShotConfig())
