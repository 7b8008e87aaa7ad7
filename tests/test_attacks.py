"""Attacks on erasure: prompt variants and concept inversion (Textual Inversion against the erased model)."""

from __future__ import annotations

import pytest
import torch

from erasure_lib import attacks, data, evaluation


def test_prompt_variants_differ_from_the_concept():
    variants = attacks.prompt_variants("ankle boot")
    assert variants["as erased"] == "ankle boot"
    assert variants["plural"] == "ankle boots" and variants["misspelling"] == "ankle boto"
    assert len(set(variants.values())) == len(variants)
    assert attacks.prompt_variants("sneaker")["misspelling"] == "sneakre"
    assert "paraphrase" not in variants
    with_paraphrase = attacks.prompt_variants("sneaker", data.PARAPHRASES["sneaker"])
    assert with_paraphrase["paraphrase"] == "running shoe" and len(set(with_paraphrase.values())) == len(with_paraphrase)
    assert set(data.PARAPHRASES) == set(data.CLASSES)
    table = evaluation.wording_table("sneaker", "sneakre", 3)
    assert list(table["class"]) == ["sneaker"] * 3 and all("sneakre" in p for p in table.prompt)


def test_inversion_trains_only_the_new_token(tiny_pipeline, concept_dir):
    config = attacks.InversionConfig(steps=3, lr=1e-1, batch_size=2)
    before = {k: v.clone() for k, v in tiny_pipeline.text_encoder.state_dict().items()}
    attacked = attacks.invert_concept(tiny_pipeline, concept_dir, config)
    # The attacked pipeline knows the placeholder; the original pipeline does not and is unchanged.
    token_id = attacked.tokenizer.convert_tokens_to_ids(config.placeholder)
    assert token_id == len(tiny_pipeline.tokenizer)
    assert config.placeholder not in tiny_pipeline.tokenizer.get_vocab()
    assert all(torch.equal(before[k], v) for k, v in tiny_pipeline.text_encoder.state_dict().items())
    new = attacked.text_encoder.get_input_embeddings().weight
    old = tiny_pipeline.text_encoder.get_input_embeddings().weight
    assert torch.equal(new[:token_id], old)
    init = old[tiny_pipeline.tokenizer(config.initializer, add_special_tokens=False).input_ids[0]]
    assert not torch.allclose(new[token_id], init)
    for name, p in attacked.text_encoder.named_parameters():
        if "embeddings.token_embedding" not in name:
            assert torch.equal(p, tiny_pipeline.text_encoder.state_dict()[name])
    assert attacked.unet is tiny_pipeline.unet
    image = attacked(f"a photo of a {config.placeholder}", num_inference_steps=2, generator=torch.Generator().manual_seed(0)).images[0]
    assert image.size == (16, 16)


def test_inversion_rejects_bad_initializer(tiny_pipeline, concept_dir):
    with pytest.raises(ValueError, match="single token"):
        attacks.invert_concept(tiny_pipeline, concept_dir, attacks.InversionConfig(steps=1, initializer="ankle boot"))
