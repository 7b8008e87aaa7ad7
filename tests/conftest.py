"""Shared fixtures: a tiny Stable Diffusion pipeline (random weights, real CLIP tokenizer), a few real
Fashion-MNIST concept images, and the tiny pipeline saved in diffusers format.

Everything is small enough for a 2-core CPU: 16 px images (2-level VAE, 8x8 latents), a 2-layer text
encoder of width 32, a 2-level U-Net of width 32.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import replace
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("agg")
torch.set_num_threads(1)

# Test modules import helpers with ``from conftest import ...``. That works when tests/ is a plain folder
# (pytest puts it on sys.path); when tests/ has an __init__.py this file is ``tests.conftest``, so it is
# also registered under the plain name.
sys.modules.setdefault("conftest", sys.modules[__name__])

from diffusers import StableDiffusionPipeline  # noqa: E402
from transformers import CLIPTokenizer  # noqa: E402

from erasure_lib.builtin import (  # noqa: E402
    BuiltinConfig,
    assemble_pipeline,
    build_text_encoder,
    build_unet,
    build_vae,
)
from erasure_lib.data import export_concept_images, fashion_mnist_dir  # noqa: E402
from erasure_lib.paths import BUILTIN_MODEL_DIR  # noqa: E402

TINY_CONFIG = BuiltinConfig(
    image_size=16,
    vae_channels=(32, 32),
    unet_channels=(32, 32),
    text_hidden_size=32,
    text_layers=2,
    text_heads=2,
    text_intermediate_size=64,
    max_length=32,
)
TINY_RESOLUTION = 16  # unet sample_size 8 x vae_scale_factor 2
CONCEPT = "sneaker"
N_CONCEPT_IMAGES = 4


def tiny_config(**overrides: object) -> BuiltinConfig:
    return replace(TINY_CONFIG, **overrides)


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the committed CLIP tokenizer (immune to a concurrent rewrite of models/)."""
    src = BUILTIN_MODEL_DIR / "tokenizer"
    if not (src / "tokenizer_config.json").is_file():
        pytest.skip(f"the CLIP tokenizer is missing from {src}")
    dst = tmp_path_factory.mktemp("tokenizer") / "tokenizer"
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir: Path) -> CLIPTokenizer:
    return CLIPTokenizer.from_pretrained(tokenizer_dir)


def build_tiny_pipeline(tokenizer: CLIPTokenizer, **overrides: object) -> StableDiffusionPipeline:
    """A tiny pipeline with random weights drawn under ``torch.manual_seed(0)``."""
    config = tiny_config(**overrides)
    torch.manual_seed(0)
    vae, unet, text_encoder = build_vae(config), build_unet(config), build_text_encoder(config)
    pipeline = assemble_pipeline(config, vae, unet, text_encoder, tokenizer)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@pytest.fixture(scope="session")
def tiny_pipeline(tokenizer: CLIPTokenizer) -> StableDiffusionPipeline:
    """The shared tiny pipeline. Tests must not modify it (use ``fresh_pipeline`` to mutate)."""
    return build_tiny_pipeline(tokenizer)


@pytest.fixture
def fresh_pipeline(tiny_pipeline: StableDiffusionPipeline) -> StableDiffusionPipeline:
    """A new pipeline object sharing the tiny pipeline's components (safe to ``install`` into)."""
    new = StableDiffusionPipeline(**tiny_pipeline.components)
    new.set_progress_bar_config(disable=True)
    return new


@pytest.fixture(scope="session")
def fashion_mnist_available() -> None:
    if not (fashion_mnist_dir() / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST is not in {fashion_mnist_dir()} (install dataset-fashion-mnist or set ERASURE_FASHION_MNIST)")


@pytest.fixture(scope="session")
def builtin_setup(fashion_mnist_available: None):
    """The shipped built-in model and classifier through ``experiment.setup``, one class (sneaker), 2
    sampling steps, the caller's torch thread count kept (read-only for tests)."""
    from erasure_lib import experiment
    from erasure_lib.paths import CLASSIFIER_PATH

    if not (BUILTIN_MODEL_DIR / "model_index.json").is_file() or not CLASSIFIER_PATH.is_file():
        pytest.skip("the built-in model or classifier is not in models/")
    threads = torch.get_num_threads()
    try:
        return experiment.setup("builtin", "builtin", "cpu", "float32", [CONCEPT], num_inference_steps=2, threads=1)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def concept_dir(tmp_path_factory: pytest.TempPathFactory, fashion_mnist_available: None) -> Path:
    """A folder of 4 real Fashion-MNIST sneakers as 32 px PNGs (read-only for tests)."""
    folder = tmp_path_factory.mktemp("concept") / CONCEPT
    export_concept_images(folder, CONCEPT, n=N_CONCEPT_IMAGES, seed=0)
    return folder


@pytest.fixture(scope="session")
def saved_pipeline_dir(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline: StableDiffusionPipeline) -> Path:
    """The tiny pipeline saved with ``save_pretrained`` (read-only for tests)."""
    folder = tmp_path_factory.mktemp("saved") / "tiny-sd"
    tiny_pipeline.save_pretrained(folder)
    return folder


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), hidden ones included."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of a module's state dict."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
