"""Loading a pipeline: built-in model, local diffusers folders, and clear errors for everything else."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline

from erasure_lib.models import load_pipeline, model_resolution
from erasure_lib.paths import BUILTIN_MODEL_DIR


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_model_resolution_of_tiny_pipeline(tiny_pipeline: StableDiffusionPipeline) -> None:
    assert tiny_pipeline.vae_scale_factor == 2
    assert model_resolution(tiny_pipeline) == 16


def test_load_saved_folder(saved_pipeline_dir: Path, tiny_pipeline: StableDiffusionPipeline) -> None:
    loaded = load_pipeline(saved_pipeline_dir)
    assert isinstance(loaded, StableDiffusionPipeline)
    for name in ("unet", "vae", "text_encoder"):
        assert _same_weights(getattr(loaded, name), getattr(tiny_pipeline, name)), name
    assert loaded.safety_checker is None
    assert loaded.tokenizer("a photo of a cat").input_ids == tiny_pipeline.tokenizer("a photo of a cat").input_ids
    assert type(loaded.scheduler) is type(tiny_pipeline.scheduler)
    assert model_resolution(loaded) == 16
    assert loaded.device.type == "cpu" and loaded.unet.dtype == torch.float32
    assert loaded._progress_bar_config.get("disable") is True
    # str paths work too
    assert _same_weights(load_pipeline(str(saved_pipeline_dir)).unet, tiny_pipeline.unet)


def test_loaded_pipeline_generates(saved_pipeline_dir: Path) -> None:
    pipeline = load_pipeline(saved_pipeline_dir)
    out = pipeline(
        "a photo of a sneaker", num_inference_steps=2, generator=torch.Generator("cpu").manual_seed(0), output_type="np"
    )
    assert out.images.shape == (1, 16, 16, 3)
    assert np.isfinite(out.images).all()


def test_plain_diffusers_loads_the_saved_folder(saved_pipeline_dir: Path) -> None:
    pipeline = StableDiffusionPipeline.from_pretrained(saved_pipeline_dir, local_files_only=True)
    pipeline.set_progress_bar_config(disable=True)
    out = pipeline(
        "a photo of a sneaker",
        num_inference_steps=2,
        generator=torch.Generator("cpu").manual_seed(0),
        output_type="pil",
    )
    assert out.images[0].size == (16, 16)


def test_folder_without_model_index(tmp_path: Path) -> None:
    folder = tmp_path / "weights"
    (folder / "unet").mkdir(parents=True)
    with pytest.raises(ValueError, match=re.escape(str(folder)) + ".*model_index.json"):
        load_pipeline(folder)


@pytest.mark.parametrize("component", ["unet", "text_encoder", "tokenizer"])
def test_folder_missing_a_component_folder(tmp_path: Path, saved_pipeline_dir: Path, component: str) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(saved_pipeline_dir, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    shutil.rmtree(folder / component)
    with pytest.raises(ValueError, match=re.escape(str(folder)) + f".*{component}"):
        load_pipeline(folder)


def test_folder_whose_index_lacks_a_component(tmp_path: Path, saved_pipeline_dir: Path) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(saved_pipeline_dir, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    index = json.loads((folder / "model_index.json").read_text())
    del index["vae"]
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="vae"):
        load_pipeline(folder)


@pytest.mark.parametrize("name", ["not a model", "sd 1.4", "-x", "owner/"])
def test_unknown_model_name(name: str) -> None:
    with pytest.raises(ValueError, match="unknown model"):
        load_pipeline(name)


def test_empty_name_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # "" is Path("."), the working directory, which is no pipeline
    with pytest.raises(ValueError):
        load_pipeline("")


def test_missing_absolute_path_is_unknown_not_a_hub_id(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown model"):
        load_pipeline(tmp_path / "does-not-exist")


def test_file_path(tmp_path: Path) -> None:
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"\x00")
    with pytest.raises(ValueError, match="is a file"):
        load_pipeline(f)


@pytest.mark.skipif(
    not (BUILTIN_MODEL_DIR / "model_index.json").is_file(), reason="the built-in model has not been trained yet"
)
def test_load_builtin() -> None:
    pipeline = load_pipeline("builtin")
    assert model_resolution(pipeline) == 32
    assert pipeline.text_encoder.config.vocab_size == 49408
    out = pipeline(
        "a photo of a sneaker", num_inference_steps=2, generator=torch.Generator("cpu").manual_seed(0), output_type="np"
    )
    assert out.images.shape == (1, 32, 32, 3)


class _Captured(Exception):
    """Raised by the stand-in loader to stop before any download."""


@pytest.mark.parametrize(
    ("name", "revision", "source", "expected_revision"),
    [
        ("CompVis/stable-diffusion-v1-4", None, "CompVis/stable-diffusion-v1-4", None),
        ("CompVis/stable-diffusion-v1-4@abc123", None, "CompVis/stable-diffusion-v1-4", "abc123"),
        ("CompVis/stable-diffusion-v1-4@abc123", "fff", "CompVis/stable-diffusion-v1-4", "fff"),
    ],
)
def test_hub_id_is_passed_to_diffusers(
    monkeypatch: pytest.MonkeyPatch, name: str, revision: str | None, source: str, expected_revision: str | None
) -> None:
    """No network: the diffusers loader is replaced by a stub that records its arguments."""
    seen: dict[str, object] = {}

    def fake_from_pretrained(src: object, **kwargs: object) -> None:
        seen.update(kwargs, source=src)
        raise _Captured

    monkeypatch.setattr(StableDiffusionPipeline, "from_pretrained", fake_from_pretrained)
    with pytest.raises(_Captured):
        load_pipeline(name, revision=revision)
    assert seen["source"] == source
    assert seen["revision"] == expected_revision
    assert seen["local_files_only"] is False
    assert seen["safety_checker"] is None


def test_local_folder_is_loaded_offline(monkeypatch: pytest.MonkeyPatch, saved_pipeline_dir: Path) -> None:
    seen: dict[str, object] = {}

    def fake_from_pretrained(src: object, **kwargs: object) -> None:
        seen.update(kwargs, source=src)
        raise _Captured

    monkeypatch.setattr(StableDiffusionPipeline, "from_pretrained", fake_from_pretrained)
    with pytest.raises(_Captured):
        load_pipeline(saved_pipeline_dir)
    assert seen["source"] == saved_pipeline_dir and seen["local_files_only"] is True
