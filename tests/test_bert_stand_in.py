"""The MiniLM stand-in's code path: a BERT text encoder in a vanilla ``StableDiffusionPipeline``.

The paper's parameter options mapped onto BERT's modules, the U-Net made to read a wider text state,
and the method end to end (erase, save, load back, install), on a tiny random BERT with a
hand-written WordPiece vocabulary (no download, no dependence on the MiniLM package).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import CONCEPT, state, tiny_config
from transformers import BertConfig, BertModel, BertTokenizerFast

from erasure_lib.builtin import (
    assemble_pipeline,
    build_unet,
    build_vae,
    save_builtin,
    stand_in_text_encoder,
    unet_reading,
)
from erasure_lib.methods import base
from erasure_lib.methods.fewshot import TRAINABLE_OPTIONS, FewShotConfig, erase, trainable_parameter_names
from erasure_lib.models import install_text_encoder, load_pipeline

BERT_WIDTH = 48  # wider than the tiny U-Net's cross-attention (32): unet_reading must adapt it
BERT_LAYERS = 3


def tiny_bert() -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=80, hidden_size=BERT_WIDTH, num_hidden_layers=BERT_LAYERS, num_attention_heads=4,
                        intermediate_size=96, max_position_embeddings=32)  # fmt: skip
    return BertModel(config).eval()


@pytest.fixture(scope="module")
def bert_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> BertTokenizerFast:
    """WordPiece over single letters: every lowercase prompt tokenizes, none to [UNK]."""
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *[f"##{c}" for c in letters]]
    path = tmp_path_factory.mktemp("bert-vocab") / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    return BertTokenizerFast(vocab_file=str(path), do_lower_case=True, model_max_length=32)


def layer_kind(name: str) -> tuple[int, str] | None:
    """(layer, 'mlp' | 'attn' | 'norm') of a BERT layer parameter, from BERT's module names (written
    independently of the library's regex): feed-forward = intermediate.dense and output.dense."""
    parts = name.split(".")
    if parts[:2] != ["encoder", "layer"]:
        return None
    layer, rest = int(parts[2]), ".".join(parts[3:])
    if "LayerNorm" in rest:
        return layer, "norm"
    return layer, "attn" if rest.startswith("attention.") else "mlp"


@pytest.mark.parametrize("option", TRAINABLE_OPTIONS)
def test_the_papers_options_map_onto_berts_modules(option: str) -> None:
    encoder = tiny_bert()
    names = trainable_parameter_names(encoder, option)  # type: ignore[arg-type]
    params = dict(encoder.named_parameters())
    if option == "all":
        assert set(names) == set(params)
        return
    kinds = {layer_kind(n) for n in names}
    assert None not in kinds and all(kind != "norm" for _, kind in kinds)  # no embeddings, pooler or norms
    mlp = sorted(layer for layer, kind in kinds if kind == "mlp")
    attn = sorted(layer for layer, kind in kinds if kind == "attn")
    every, last = list(range(BERT_LAYERS)), [BERT_LAYERS - 1]
    assert (mlp, attn) == {"mlp-only": (every, []), "attn-only": ([], every), "mlp-attn": (every, every),
                           "mlp-final-attn": (every, last)}[option]  # fmt: skip
    h, i = BERT_WIDTH, 96
    per_layer = {"mlp": (h * i + i) + (i * h + h), "attn": 4 * (h * h + h)}  # two dense layers; q, k, v, out
    assert sum(params[n].numel() for n in names) == len(mlp) * per_layer["mlp"] + len(attn) * per_layer["attn"]
    assert "encoder.layer.0.attention.output.dense.weight" not in names or option != "mlp-final-attn"


def test_unet_reading_keeps_every_weight_but_the_cross_attention_keys_and_values() -> None:
    torch.manual_seed(0)
    unet = build_unet(tiny_config())
    reader = unet_reading(unet, BERT_WIDTH, seed=0)
    assert reader.config.cross_attention_dim == BERT_WIDTH
    old, new = unet.state_dict(), reader.state_dict()
    changed = {k for k in old if old[k].shape != new[k].shape or not torch.equal(old[k], new[k])}
    assert changed and all(".attn2.to_k." in k or ".attn2.to_v." in k for k in changed)
    assert all(new[k].shape[1] == BERT_WIDTH for k in changed)
    same = unet_reading(unet, unet.config.cross_attention_dim, seed=0)  # width unchanged: a plain copy
    assert all(torch.equal(v, same.state_dict()[k]) for k, v in old.items()) and same is not unet


def test_a_bert_pipeline_erases_saves_and_loads_back(bert_tokenizer: BertTokenizerFast, concept_dir: Path, tmp_path: Path) -> None:
    config = tiny_config()
    torch.manual_seed(0)
    unet = unet_reading(build_unet(config), BERT_WIDTH, seed=0)
    pipeline = assemble_pipeline(config, build_vae(config), unet, tiny_bert(), bert_tokenizer)
    save_builtin(pipeline, tmp_path / "stand-in", config, {"recipe": "test"})
    loaded = load_pipeline(tmp_path / "stand-in")
    assert isinstance(loaded.text_encoder, BertModel) and loaded.tokenizer.model_max_length == 32
    assert all(torch.equal(v, loaded.text_encoder.state_dict()[k]) for k, v in pipeline.text_encoder.state_dict().items())

    before = state(loaded.text_encoder)
    result = erase(loaded, CONCEPT, concept_dir, FewShotConfig(epochs=1, lr=1e-3), progress_bar=False)
    erased = result.components["text_encoder"].state_dict()
    changed = {k for k in before if not torch.equal(before[k], erased[k])}
    assert changed == set(trainable_parameter_names(loaded.text_encoder, "mlp-final-attn"))
    assert state(loaded.text_encoder).keys() == before.keys() and all(torch.equal(before[k], state(loaded.text_encoder)[k]) for k in before)

    result.save(tmp_path / "erased", base_model="tiny-bert")
    install_text_encoder(loaded, tmp_path / "erased")
    assert isinstance(loaded.text_encoder, BertModel)
    assert all(torch.equal(v, loaded.text_encoder.state_dict()[k]) for k, v in erased.items())
    image = loaded("a photo of a sneaker", num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="np").images
    assert image.shape == (1, 16, 16, 3) and bool(torch.isfinite(torch.from_numpy(image)).all())


def test_stand_in_text_encoder_reads_a_local_minilm_folder(bert_tokenizer: BertTokenizerFast, tmp_path: Path) -> None:
    folder = tmp_path / "minilm"
    tiny_bert().save_pretrained(folder)
    bert_tokenizer.save_pretrained(folder)
    encoder, tokenizer = stand_in_text_encoder("frozen-minilm", folder, clip_tokenizer=None, max_length=12)  # type: ignore[arg-type]
    assert isinstance(encoder, BertModel) and not any(p.requires_grad for p in encoder.parameters())
    assert tokenizer.model_max_length == 12 and len(base.tokenize(tokenizer, ["a photo of a sneaker"], "cpu")[0]) == 12
    with pytest.raises(ValueError, match="recipe must be one of"):
        stand_in_text_encoder("minilm", folder, clip_tokenizer=None, max_length=12)  # type: ignore[arg-type]
