"""CLIP score against a direct computation, the small CLIP's training, resume and save/load round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPModel, CLIPTokenizer

from erasure_lib.builtin.clip import (
    TRAIN_CONFIG_FILE,
    ClipTrainConfig,
    build_small_clip,
    save_small_clip,
    train_small_clip,
)
from erasure_lib.data import FashionMNIST, load_fashion_mnist, render, to_pil
from erasure_lib.metrics.clip_score import clip_score, load_clip, reported_clip_score

TINY_CLIP = ClipTrainConfig(
    vision_hidden_size=32,
    vision_layers=1,
    vision_heads=2,
    vision_intermediate_size=64,
    text_hidden_size=32,
    text_layers=1,
    text_heads=2,
    text_intermediate_size=64,
    projection_dim=16,
    steps=3,
    batch_size=8,
    warmup_steps=1,
)
PROMPTS = (
    "a photo of a sneaker",
    "a photo of a bag",
    "a painting in the style of sketch",
    "a photo of a t-shirt in the style of sepia",
    "a photo of the small ankle boot",
)


@pytest.fixture(scope="module")
def tiny_clip() -> CLIPModel:
    torch.manual_seed(0)
    return build_small_clip(TINY_CLIP).eval()


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    garments = (rng.random((len(PROMPTS), 28, 28)) * 255).astype(np.uint8)
    return [to_pil(render(g, style)) for g, style in zip(garments, ("plain", "sketch", "sepia", "plain", "sepia"))]


@pytest.fixture(scope="module")
def data(fashion_mnist_available: None) -> FashionMNIST:
    return load_fashion_mnist("test").subset(200)


def direct_cosines(
    model: CLIPModel, tokenizer: CLIPTokenizer, images: list[Image.Image], prompts: tuple[str, ...]
) -> np.ndarray:
    """The CLIP score written out: towers, pooled outputs, projections, L2 norms, dot products."""
    x = torch.stack([torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1) for im in images])
    x = (x - 0.5) / 0.5  # the small CLIP's fixed mean and std
    ids = tokenizer(list(prompts), padding="max_length", max_length=TINY_CLIP.max_length, return_tensors="pt")
    with torch.no_grad():
        image_embeds = model.visual_projection(model.vision_model(pixel_values=x).pooler_output)
        text = model.text_model(input_ids=ids["input_ids"], attention_mask=ids["attention_mask"]).pooler_output
        text_embeds = model.text_projection(text)
    image_embeds = image_embeds.double() / image_embeds.double().norm(dim=-1, keepdim=True)
    text_embeds = text_embeds.double() / text_embeds.double().norm(dim=-1, keepdim=True)
    return (image_embeds * text_embeds).sum(-1).numpy()


def test_clip_score_equals_the_direct_cosine(
    tiny_clip: CLIPModel, tokenizer: CLIPTokenizer, images: list[Image.Image]
) -> None:
    scores = clip_score(tiny_clip, None, images, PROMPTS, tokenizer=tokenizer)
    np.testing.assert_allclose(scores, direct_cosines(tiny_clip, tokenizer, images, PROMPTS), rtol=0, atol=1e-6)


def test_clip_score_shape_range_and_batching(
    tiny_clip: CLIPModel, tokenizer: CLIPTokenizer, images: list[Image.Image]
) -> None:
    scores = clip_score(tiny_clip, None, images, PROMPTS, batch_size=64, tokenizer=tokenizer)
    assert scores.shape == (len(PROMPTS),) and scores.dtype == np.float64
    assert np.all(np.abs(scores) <= 1.0)
    np.testing.assert_allclose(
        clip_score(tiny_clip, None, images, PROMPTS, batch_size=2, tokenizer=tokenizer), scores, atol=1e-6
    )
    # A (N, 3, H, W) tensor in [0, 1] scores like the PIL images it came from.
    tensor = torch.stack([torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1) for im in images])
    np.testing.assert_allclose(clip_score(tiny_clip, None, tensor, PROMPTS, tokenizer=tokenizer), scores, atol=1e-6)


def test_clip_score_rejects_bad_input(
    tiny_clip: CLIPModel, tokenizer: CLIPTokenizer, images: list[Image.Image]
) -> None:
    with pytest.raises(ValueError, match="one prompt per image"):
        clip_score(tiny_clip, None, images, PROMPTS[:2], tokenizer=tokenizer)
    with pytest.raises(ValueError, match="tokenizer"):
        clip_score(tiny_clip, None, images, PROMPTS)


def test_reported_clip_score_is_100_times_the_clipped_cosine() -> None:
    assert reported_clip_score(np.array([0.3, -0.2, 0.1])) == pytest.approx(100 * 0.4 / 3)
    assert reported_clip_score(np.array([0.3]), scale=2.5) == pytest.approx(0.75)


def test_small_clip_trains_three_steps(data: FashionMNIST, tokenizer: CLIPTokenizer) -> None:
    model, losses = train_small_clip(TINY_CLIP, data, tokenizer)
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert model.logit_scale.item() <= np.log(100.0) + 1e-6


def test_training_resumes_where_it_stopped(data: FashionMNIST, tokenizer: CLIPTokenizer, tmp_path: Path) -> None:
    straight, straight_losses = train_small_clip(TINY_CLIP, data, tokenizer)
    checkpoint = tmp_path / "clip.pt"
    _, first = train_small_clip(TINY_CLIP, data, tokenizer, checkpoint=checkpoint, stop_at=2)
    assert len(first) == 2 and checkpoint.is_file()
    resumed, losses = train_small_clip(TINY_CLIP, data, tokenizer, checkpoint=checkpoint)
    np.testing.assert_allclose(losses, straight_losses, rtol=1e-5)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_save_load_round_trip_gives_identical_scores(
    tiny_clip: CLIPModel, tokenizer: CLIPTokenizer, images: list[Image.Image], tmp_path: Path
) -> None:
    folder = save_small_clip(tiny_clip, tokenizer, tmp_path / "clip", TINY_CLIP, {"losses": [1.0]}, storage_dtype=torch.float32)
    assert (folder / "model.safetensors").is_file() and (folder / "preprocessor_config.json").is_file()
    assert json.loads((folder / TRAIN_CONFIG_FILE).read_text())["train_config"]["patch_size"] == TINY_CLIP.patch_size
    model, processor = load_clip(folder)
    before = clip_score(tiny_clip, None, images, PROMPTS, tokenizer=tokenizer)
    np.testing.assert_array_equal(clip_score(model, None, images, PROMPTS, tokenizer=processor.tokenizer), before)
    # The saved processor (PIL backend) reproduces the direct path.
    np.testing.assert_allclose(clip_score(model, processor, images, PROMPTS), before, atol=1e-6)
    save_small_clip(tiny_clip, tokenizer, folder)  # an existing folder is replaced
    assert not (folder / TRAIN_CONFIG_FILE).exists()


def test_load_clip_reports_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_clip(tmp_path / "no-such-clip")


def test_float16_storage_loads_as_float32_with_close_scores(
    tiny_clip: CLIPModel, tokenizer: CLIPTokenizer, images: list[Image.Image], tmp_path: Path
) -> None:
    """The default storage halves the folder; load_clip gives a float32 model whose scores move by float16 rounding only."""
    model, _ = load_clip(save_small_clip(tiny_clip, tokenizer, tmp_path / "clip"))
    assert model.dtype == torch.float32
    before = clip_score(tiny_clip, None, images, PROMPTS, tokenizer=tokenizer)
    after = clip_score(model, None, images, PROMPTS, tokenizer=tokenizer)
    assert not np.array_equal(after, before)  # the weights were rounded
    np.testing.assert_allclose(after, before, atol=5e-3)


def test_load_clip_from_the_hub_fails_clearly_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    from erasure_lib import hub

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(CLIPModel, "from_pretrained", offline)
    with pytest.raises(hub.HubUnavailableError, match="hf download openai/clip-vit-large-patch14"):
        load_clip("openai/clip-vit-large-patch14")
