"""Image generation: prompts and seeds in, images out (one CPU generator per image, so each image
depends only on its own seed)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from diffusers import StableDiffusionPipeline
from PIL import Image
from tqdm.auto import tqdm

from erasure_lib.io import atomic_write_bytes


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling settings. The paper uses PNDM, 100 steps, guidance 7.5 at 512 px on SD."""

    num_inference_steps: int = 25
    guidance_scale: float = 7.5
    batch_size: int = 64
    height: int | None = None  # None: the model's own resolution
    width: int | None = None


@torch.no_grad()
def generate(
    pipeline: StableDiffusionPipeline,
    prompts: Sequence[str],
    seeds: Sequence[int],
    config: GenerationConfig = GenerationConfig(),
    progress_bar: bool = True,
) -> list[Image.Image]:
    """One image per (prompt, seed) pair, in order."""
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds; give one seed per prompt")
    images: list[Image.Image] = []
    starts = range(0, len(prompts), config.batch_size)
    for start in tqdm(starts, desc="generating", disable=not progress_bar or len(starts) < 2):
        batch_prompts = list(prompts[start : start + config.batch_size])
        generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds[start : start + config.batch_size]]
        out = pipeline(
            batch_prompts,
            num_inference_steps=config.num_inference_steps,
            guidance_scale=config.guidance_scale,
            generator=generators,
            height=config.height,
            width=config.width,
            output_type="pil",
        )
        images.extend(out.images)
    return images


def generate_grid(
    pipeline: StableDiffusionPipeline,
    prompts: Sequence[str],
    seeds: Sequence[int],
    config: GenerationConfig = GenerationConfig(),
    progress_bar: bool = True,
) -> list[list[Image.Image]]:
    """Every prompt with every seed: rows = prompts, columns = seeds."""
    flat = generate(pipeline, [p for p in prompts for _ in seeds], [s for _ in prompts for s in seeds], config, progress_bar)
    return [flat[i * len(seeds) : (i + 1) * len(seeds)] for i in range(len(prompts))]


def read_prompt_csv(path: str | Path) -> pd.DataFrame:
    """A prompt CSV in the field's convention: ``case_number, prompt, evaluation_seed[, ...]``."""
    df = pd.read_csv(path)
    missing = {"case_number", "prompt", "evaluation_seed"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected case_number, prompt, evaluation_seed")
    return df


def generate_to_folder(
    pipeline: StableDiffusionPipeline,
    prompts: pd.DataFrame,
    out_dir: str | Path,
    config: GenerationConfig = GenerationConfig(),
    progress_bar: bool = True,
) -> list[Path]:
    """Generate ``<case_number>.png`` for each row of a prompt table; images already on disk are kept
    (so an interrupted run resumes). Each PNG is written atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{int(c)}.png" for c in prompts["case_number"]]
    todo = [i for i, p in enumerate(paths) if not p.is_file()]
    for start in tqdm(range(0, len(todo), config.batch_size), desc="generating", disable=not progress_bar):
        rows = todo[start : start + config.batch_size]
        images = generate(
            pipeline,
            [str(prompts["prompt"].iloc[i]) for i in rows],
            [int(prompts["evaluation_seed"].iloc[i]) for i in rows],
            config,
            progress_bar=False,
        )
        for i, image in zip(rows, images):
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            atomic_write_bytes(paths[i], buf.getvalue())
    return paths


def to_tensor(images: Sequence[Image.Image]) -> torch.Tensor:
    """PIL images to a float tensor (N, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0 for im in images])).permute(0, 3, 1, 2)
