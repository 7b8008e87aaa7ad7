"""Load a Stable-Diffusion-style pipeline: the built-in model, a local diffusers folder, or a hub id.

All three go through the same ``StableDiffusionPipeline.from_pretrained`` call, so every code path
that serves Stable Diffusion v1.4 is the one that serves the built-in model.
"""

from __future__ import annotations

import json
import re
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from erasure_lib import hub
from erasure_lib.paths import BUILTIN_MODEL_DIR

if TYPE_CHECKING:
    # Imported where used: ``import erasure_lib`` then loads no diffusers, so the command line can
    # silence diffusers' and transformers' import-time warnings before they are printed.
    from diffusers import StableDiffusionPipeline

# A hub id: "owner/name"; revision pinned with "@<revision>", e.g. "CompVis/stable-diffusion-v1-4@<commit>".
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")
REQUIRED_COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


def _check_diffusers_folder(folder: Path) -> None:
    index = folder / "model_index.json"
    if not index.is_file():
        raise ValueError(
            f"{folder} is not a diffusers pipeline folder (no model_index.json); expected the output of "
            "StableDiffusionPipeline.save_pretrained with unet/, vae/, text_encoder/, tokenizer/, scheduler/"
        )
    components = json.loads(index.read_text())
    missing = [c for c in REQUIRED_COMPONENTS if c not in components or not (folder / c).is_dir()]
    if missing:
        raise ValueError(f"{folder} is not a Stable Diffusion pipeline: missing component(s) {missing}")


def load_pipeline(
    model: str | Path = "builtin",
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    revision: str | None = None,
    progress_bar: bool = False,
) -> StableDiffusionPipeline:
    """Load a pipeline with the safety checker off.

    Parameters
    ----------
    model
        ``"builtin"`` (the model shipped in ``models/builtin``), a local diffusers folder, or a hub id
        such as ``"CompVis/stable-diffusion-v1-4"`` (a revision may follow as ``"id@revision"``), or an
        alias of :data:`erasure_lib.hub.ALIASES` (``"sd14"``: SD v1.4 at its pinned revision).
    device, dtype
        Where the pipeline lives and its floating-point type.
    revision
        The hub revision (commit) to pin; overrides an ``@revision`` in ``model``.
    progress_bar
        Whether the pipeline shows its per-step progress bar.
    """
    from diffusers import StableDiffusionPipeline

    local_files_only = True
    name = str(model)
    if not name.strip():
        raise ValueError("the model name is empty: expected 'builtin', a local diffusers folder, or a hub id")
    if name == "builtin":
        folder = BUILTIN_MODEL_DIR
        if not (folder / "model_index.json").is_file():
            raise FileNotFoundError(
                f"the built-in model is missing from {folder}; run notebooks/00-train-base-model.ipynb to regenerate it"
            )
        source: str | Path = folder
    elif Path(name).expanduser().exists():
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise ValueError(f"{folder} is a file; expected a diffusers pipeline folder")
        _check_diffusers_folder(folder)
        source = folder
    elif _HUB_ID.match(name) or hub.pinned(name) is not None:
        # Every hub access goes through erasure_lib.hub (pinned revisions, clear offline errors).
        source, revision = hub.resolve(name, revision, pin=False)
        local_files_only = False
    else:
        raise ValueError(
            f"unknown model {name!r}: expected 'builtin', an existing local diffusers folder, "
            "or a hub id like 'CompVis/stable-diffusion-v1-4' (optionally '@<revision>')"
        )
    access = hub.hub_access(str(source), revision) if not local_files_only else nullcontext()
    with access:
        pipeline = StableDiffusionPipeline.from_pretrained(
            source,
            revision=revision,
            dtype=dtype,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
            local_files_only=local_files_only,
        )
    pipeline.set_progress_bar_config(disable=not progress_bar)
    return pipeline.to(device)


def model_resolution(pipeline: StableDiffusionPipeline) -> int:
    """The image size the model was trained at: the U-Net's latent size times the VAE's factor."""
    return int(pipeline.unet.config.sample_size) * int(pipeline.vae_scale_factor)


def install_text_encoder(pipeline: StableDiffusionPipeline, text_encoder_dir: str | Path) -> StableDiffusionPipeline:
    """Replace the pipeline's text encoder with a saved (e.g. erased) one, in place; returns the pipeline."""
    folder = Path(text_encoder_dir)
    if (folder / "text_encoder").is_dir():
        folder = folder / "text_encoder"
    # The pipeline's own encoder class (CLIP for SD and the built-in model, BERT for the MiniLM stand-in).
    encoder = type(pipeline.text_encoder).from_pretrained(folder, torch_dtype=pipeline.text_encoder.dtype)
    pipeline.text_encoder = encoder.to(pipeline.device).eval()
    return pipeline
