"""The optional preservation term of few-shot unlearning (off by default; not in the paper)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from erasure_lib.methods import fewshot


def _embedding(pipeline, encoder, prompt):
    ids = pipeline.tokenizer([prompt], padding="max_length", max_length=pipeline.tokenizer.model_max_length, return_tensors="pt").input_ids
    with torch.no_grad():
        return encoder(ids)[0]


def test_nearest_concepts_match_a_direct_cosine_ranking(tiny_pipeline):
    vocabulary = ("sandal", "bag", "ankle boot", "sneaker", "dress")
    got = fewshot.nearest_concepts(tiny_pipeline, "sneaker", vocabulary, k=2)
    assert len(got) == 2 and "sneaker" not in got
    pooled = {}
    for c in ("sneaker", *vocabulary):
        ids = tiny_pipeline.tokenizer([f"a photo of a {c}"], padding="max_length", max_length=tiny_pipeline.tokenizer.model_max_length, return_tensors="pt").input_ids
        with torch.no_grad():
            pooled[c] = F.normalize(tiny_pipeline.text_encoder(ids).pooler_output[0], dim=0)
    ranked = sorted((c for c in vocabulary if c != "sneaker"), key=lambda c: -float(pooled[c] @ pooled["sneaker"]))
    assert got == ranked[:2]
    assert fewshot.nearest_concepts(tiny_pipeline, "sneaker", vocabulary, k=0) == []


def test_preservation_keeps_retained_embeddings_closer(tiny_pipeline, concept_dir):
    plain = fewshot.FewShotConfig(lr=3e-3, epochs=3, trainable="all")
    kept = fewshot.FewShotConfig(lr=3e-3, epochs=3, trainable="all", preserve_weight=100.0, preserve=("sandal",))
    erased_plain = fewshot.erase(tiny_pipeline, "sneaker", concept_dir, plain, progress_bar=False)
    erased_kept = fewshot.erase(tiny_pipeline, "sneaker", concept_dir, kept, progress_bar=False)
    assert erased_kept.info["retained"] == ["sandal"] and erased_plain.info["retained"] == []
    reference = _embedding(tiny_pipeline, tiny_pipeline.text_encoder, "a photo of a sandal")
    drift_plain = (_embedding(tiny_pipeline, erased_plain.components["text_encoder"], "a photo of a sandal") - reference).pow(2).mean()
    drift_kept = (_embedding(tiny_pipeline, erased_kept.components["text_encoder"], "a photo of a sandal") - reference).pow(2).mean()
    assert drift_kept < drift_plain


def test_neighbours_are_retained_and_off_by_default(tiny_pipeline, concept_dir):
    config = fewshot.FewShotConfig(lr=1e-3, epochs=1, preserve_weight=1.0, preserve_neighbours=2, preserve_vocabulary=("sandal", "bag", "sneaker"))
    result = fewshot.erase(tiny_pipeline, "sneaker", concept_dir, config, progress_bar=False)
    assert sorted(result.info["retained"]) == ["bag", "sandal"]
    assert fewshot.FewShotConfig().preserve_weight == 0.0


@pytest.mark.parametrize(
    "options",
    [{"preserve_weight": -1.0}, {"preserve": "sandal"}, {"preserve_neighbours": 3, "preserve_vocabulary": ("a",)}, {"flip_p": 1.5}, {"resolution": 2}],
)
def test_bad_preservation_options(options):
    with pytest.raises(ValueError):
        fewshot.FewShotConfig(**options)
