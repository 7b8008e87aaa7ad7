"""Stable Diffusion v1.4's exact architecture, with random weights: the paper's model path, tested
without its weights.

The component configs live in ``erasure_lib/configs/sd14/`` (copied from the public
``CompVis/stable-diffusion-v1-4`` configs). Two scales:

- ``"full"``: SD v1.4 itself (U-Net 859.5M, VAE 83.7M, text encoder 123.1M parameters), 512 px.
- ``"tiny"``: a **reduced-width** stand-in for tests. The U-Net and VAE keep SD v1.4's structure
  (four levels, the same block types, 2 layers per block, 8 attention heads, one transformer per
  attention block, the same norm groups and latent channels, hence the same module tree) at widths
  (32, 64, 128, 128): a tenth of the U-Net's, a quarter of the VAE's, in the same ratios; 64 px.
  The text encoder keeps CLIP ViT-L/14's module tree (12 layers, 12 heads, quick-GELU, 77
  positions, the 49,408-token vocabulary) at width 96 (feed-forward 384, the same 4x), an eighth
  of 768, and the U-Net's cross-attention reads that width: the few-shot method trains the same
  modules as on SD v1.4, 0.93M parameters instead of 59.0M for ``mlp-final-attn`` (a full-width
  text encoder made the CI's weightless SD path spend most of its time in the text encoder).
  Tokenizer and scheduler are SD v1.4's own.

Weights are random (meaningless images); the code path is what is under test.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from erasure_lib.data import IMAGE_SUFFIXES
from erasure_lib.paths import BUILTIN_MODEL_DIR, REPO_ROOT

Scale = Literal["full", "tiny"]
Component = Literal["unet", "vae", "text_encoder", "scheduler", "tokenizer_config"]
SCALES: tuple[str, ...] = ("full", "tiny")
CONFIG_DIR = Path(__file__).resolve().parent / "configs" / "sd14"

# Published parameter counts of SD v1.4's components (the "full" scale must match them exactly).
PARAMETER_COUNTS: dict[str, int] = {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480}

# The "tiny" scale: only widths and the sample size change; every structural key stays SD v1.4's.
_TINY_WIDTH = 96  # the tiny text encoder's width, which the tiny U-Net's cross-attention reads (12 heads of 8)
_TINY_OVERRIDES: dict[str, dict[str, Any]] = {
    "unet": {"block_out_channels": [32, 64, 128, 128], "sample_size": 8, "cross_attention_dim": _TINY_WIDTH},
    "vae": {"block_out_channels": [32, 64, 128, 128], "sample_size": 64},
    "text_encoder": {"hidden_size": _TINY_WIDTH, "intermediate_size": 4 * _TINY_WIDTH, "projection_dim": _TINY_WIDTH},
}


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")


def sd14_config(component: Component, scale: Scale = "full", resolution: int | None = None) -> dict[str, Any]:
    """One component's config (a fresh dict) at a scale.

    Parameters
    ----------
    component
        ``"unet"``, ``"vae"``, ``"text_encoder"``, ``"scheduler"`` or ``"tokenizer_config"``.
    scale
        ``"full"`` (SD v1.4) or ``"tiny"`` (reduced widths, see the module docstring).
    resolution
        Override the image size (U-Net ``sample_size = resolution / 8``, VAE ``sample_size``):
        the default resolution of the model, e.g. for a reduced-resolution benchmark. The weights'
        shapes do not depend on it.
    """
    _check_scale(scale)
    path = CONFIG_DIR / f"{component}.json"
    if not path.is_file():
        raise ValueError(f"unknown component {component!r}: expected one of unet, vae, text_encoder, scheduler, tokenizer_config")
    config = json.loads(path.read_text())
    if scale == "tiny":
        config.update(copy.deepcopy(_TINY_OVERRIDES.get(component, {})))
    if resolution is not None and component in ("unet", "vae"):
        factor = 2 ** (len(sd14_config("vae")["block_out_channels"]) - 1)
        if resolution % (factor * 8) != 0:
            raise ValueError(f"resolution must be a multiple of {factor * 8} px (latents divisible by 8), got {resolution}")
        config["sample_size"] = resolution // factor if component == "unet" else resolution
    return config


def _model_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """A diffusers config without its bookkeeping keys."""
    return {k: v for k, v in config.items() if not k.startswith("_")}


def build_unet(scale: Scale = "full", resolution: int | None = None) -> UNet2DConditionModel:
    """SD v1.4's U-Net (random weights; on the ``meta`` device under ``torch.device("meta")``)."""
    return UNet2DConditionModel(**_model_kwargs(sd14_config("unet", scale, resolution)))


def build_vae(scale: Scale = "full", resolution: int | None = None) -> AutoencoderKL:
    """SD v1.4's VAE, f8, 4 latent channels (random weights)."""
    return AutoencoderKL(**_model_kwargs(sd14_config("vae", scale, resolution)))


def build_text_encoder(scale: Scale = "full") -> CLIPTextModel:
    """SD v1.4's text encoder, CLIP ViT-L/14's text tower: 12 layers, width 768 (96 at the tiny scale)."""
    config = sd14_config("text_encoder", scale)
    return CLIPTextModel(CLIPTextConfig(**{k: v for k, v in config.items() if k not in ("_name_or_path", "architectures")}))


def build_scheduler() -> PNDMScheduler:
    """SD v1.4's sampler: PNDM (PLMS steps only), scaled-linear betas 0.00085..0.012, steps offset 1."""
    return PNDMScheduler.from_config(sd14_config("scheduler"))


def build_tokenizer(source: str | Path = BUILTIN_MODEL_DIR / "tokenizer") -> CLIPTokenizer:
    """CLIP's BPE tokenizer (49,408 tokens) with SD v1.4's settings (max length 77, pad = end of text).

    ``source`` is a folder holding the repository's CLIP tokenizer files (the built-in model's, written
    by :mod:`erasure_lib.tokenizer` from OpenAI's vocabulary): the same vocabulary and merges as SD's.
    """
    source = Path(source)
    if not (source / "vocab.json").is_file() and not (source / "tokenizer.json").is_file():
        raise FileNotFoundError(
            f"no CLIP tokenizer files in {source}; run notebooks/00-train-base-model.ipynb or "
            "erasure_lib.tokenizer.builtin_tokenizer to write them"
        )
    settings = sd14_config("tokenizer_config")
    return CLIPTokenizer.from_pretrained(
        source,
        model_max_length=settings["model_max_length"],
        max_length=settings["model_max_length"],
        pad_token=settings["pad_token"],
        do_lower_case=settings["do_lower_case"],
    )


def build_random_pipeline(
    scale: Scale = "full",
    seed: int = 0,
    resolution: int | None = None,
    dtype: torch.dtype = torch.float32,
    tokenizer_source: str | Path = BUILTIN_MODEL_DIR / "tokenizer",
) -> StableDiffusionPipeline:
    """A ``StableDiffusionPipeline`` with SD v1.4's architecture and random weights, in memory.

    Parameters
    ----------
    scale
        ``"full"`` (1.07B parameters, ~4.3 GB in fp32) or ``"tiny"`` (reduced widths, for tests).
    seed
        Seeds ``torch.manual_seed`` before each component is initialised: same seed, same weights.
    resolution
        The model's default image size (512 full, 64 tiny unless given); see :func:`sd14_config`.
    dtype
        Floating-point type of the weights.
    tokenizer_source
        The folder of the repository's CLIP tokenizer files.
    """
    _check_scale(scale)
    torch.manual_seed(seed)
    unet = build_unet(scale, resolution)
    torch.manual_seed(seed + 1)
    vae = build_vae(scale, resolution)
    torch.manual_seed(seed + 2)
    text_encoder = build_text_encoder(scale)
    pipeline = StableDiffusionPipeline(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=build_tokenizer(tokenizer_source),
        unet=unet.eval(),
        scheduler=build_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline if dtype == torch.float32 else pipeline.to(dtype=dtype)


def build_random_sd14(
    folder: str | Path,
    seed: int = 0,
    scale: Scale = "tiny",
    resolution: int | None = None,
    tokenizer_source: str | Path = BUILTIN_MODEL_DIR / "tokenizer",
) -> Path:
    """Build SD v1.4's architecture with random weights and save it as a local diffusers folder.

    The folder (``model_index.json``, ``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``,
    ``scheduler/``; safetensors weights) loads with ``erasure_lib.models.load_pipeline(folder)`` and
    ``StableDiffusionPipeline.from_pretrained(folder)``. Returns ``folder``.

    ``scale="tiny"`` (the default, for tests) is the reduced-width stand-in; ``scale="full"`` is the
    real size (about 4.3 GB on disk).
    """
    folder = Path(folder)
    pipeline = build_random_pipeline(scale, seed, resolution, tokenizer_source=tokenizer_source)
    pipeline.save_pretrained(folder, safe_serialization=True)
    return folder


def count_parameters(component: Literal["unet", "vae", "text_encoder"], scale: Scale = "full") -> int:
    """Parameters of a component, counted on the ``meta`` device (no memory, no initialisation)."""
    builders = {"unet": build_unet, "vae": build_vae, "text_encoder": build_text_encoder}
    if component not in builders:
        raise ValueError(f"component must be one of {tuple(builders)}, got {component!r}")
    with torch.device("meta"):
        module = builders[component](scale)
    return sum(p.numel() for p in module.parameters())


# --- data that cannot ship with the repository -------------------------------------------------

DATA_DIR = REPO_ROOT / "data"


@dataclass(frozen=True)
class ExternalData:
    """A data set the sd14 profile needs but the repository cannot ship: where it goes, how to get it."""

    path: Path
    what: str
    how: str


EXTERNAL_DATA: dict[str, ExternalData] = {
    "imagenette": ExternalData(
        DATA_DIR / "imagenette",
        "Imagenette images, one folder per class named as in IMAGENETTE_CLASSES (data/imagenette/tench/...)",
        "download fast.ai's imagenette2 archive and rename the train/ folders from WordNet ids to the class names",
    ),
    "coco_prompts": ExternalData(
        DATA_DIR / "coco" / "coco_30k.csv",
        "the COCO-30k prompt set as a CSV with columns case_number,prompt,evaluation_seed",
        "sample 30,000 captions of COCO 2014 val (one per image), number them, give each a seed",
    ),
    "coco_images": ExternalData(
        DATA_DIR / "coco" / "val2014",
        "the real COCO 2014 val images of those captions (the FID reference)",
        "download val2014 from cocodataset.org",
    ),
}


def require_data(name: str) -> Path:
    """The path of an external data set; ``FileNotFoundError`` saying what to put where if it is absent."""
    if name not in EXTERNAL_DATA:
        raise ValueError(f"unknown data set {name!r}; expected one of {tuple(EXTERNAL_DATA)}")
    entry = EXTERNAL_DATA[name]
    if not entry.path.exists():
        raise FileNotFoundError(
            f"{entry.path} is missing: the sd14 profile needs {entry.what}, which cannot ship with the repository. "
            f"To get it: {entry.how} (README, 'Stable Diffusion v1.4 (the sd14 profile)')."
        )
    return entry.path


def concept_image_paths(concept: str, n: int, seed: int, root: str | Path | None = None) -> list[Path]:
    """``n`` images of a concept from ``<root>/<concept>/`` (default ``data/imagenette``), drawn by seed.

    The same seed gives the same images whatever the file system's listing order.
    """
    folder = (Path(root) if root is not None else require_data("imagenette")) / concept
    if not folder.is_dir():
        raise FileNotFoundError(f"no image folder {folder} for concept {concept!r}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < n:
        raise ValueError(f"{folder} holds {len(files)} images; {n} are needed")
    order = np.random.default_rng(seed).permutation(len(files))[:n]
    return [files[int(i)] for i in sorted(order)]
