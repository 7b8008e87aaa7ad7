"""Image generation: prompts and seeds in, images out (one CPU generator per image, so each image
depends only on its own seed)."""

from __future__ import annotations

import csv
import io
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, StableDiffusionPipeline
from PIL import Image
from tqdm.auto import tqdm

from erasure_lib.io import atomic_write_bytes

Sampler = Literal["model", "dpm-solver++", "ddim"]
SAMPLERS: tuple[str, ...] = ("model", "dpm-solver++", "ddim")


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling settings. The paper uses PNDM, 100 steps, guidance 7.5 at 512 px on SD."""

    num_inference_steps: int = 25
    guidance_scale: float = 7.5
    batch_size: int = 64
    height: int | None = None  # None: the model's own resolution
    width: int | None = None
    sampler: Sampler = "model"  # "model": the scheduler the model ships with (PNDM for SD v1.4 and the built-in model)

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if not _is_int(self.num_inference_steps) or self.num_inference_steps < 1:
            raise ValueError(f"num_inference_steps (sampling steps) must be an integer of at least 1, got {self.num_inference_steps!r}")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise ValueError(f"batch_size (images per batch) must be an integer of at least 1, got {self.batch_size!r}")
        g = self.guidance_scale
        if isinstance(g, bool) or not isinstance(g, numbers.Real) or not math.isfinite(g) or g < 0:
            raise ValueError(
                f"guidance_scale must be a finite number of at least 0 (1 or less turns classifier-free guidance off), got {g!r}"
            )
        for name in ("height", "width"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise ValueError(f"{name} must be a positive number of pixels, or None for the model's resolution, got {value!r}")


def with_sampler(pipeline: StableDiffusionPipeline, sampler: Sampler) -> StableDiffusionPipeline:
    """``pipeline`` itself for ``"model"``; else a pipeline sharing its components with the scheduler
    replaced by DPM-Solver++ (2nd-order multistep, diffusers' default settings) or DDIM (eta 0),
    built from the model's own scheduler configuration (its noise schedule). ``pipeline`` is not modified."""
    if sampler == "model":
        return pipeline
    schedulers = {"dpm-solver++": DPMSolverMultistepScheduler, "ddim": DDIMScheduler}
    if sampler not in schedulers:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    options = {"clip_sample": False} if sampler == "ddim" else {}  # SD's DDIM does not clip x_0 (the pipeline would force it, with a warning)
    swapped = type(pipeline)(**{**pipeline.components, "scheduler": schedulers[sampler].from_config(pipeline.scheduler.config, **options)})
    swapped.set_progress_bar_config(disable=True)
    return swapped


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


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
    pipeline = with_sampler(pipeline, config.sampler)
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


@torch.no_grad()
def generate_from_embeddings(
    pipeline: StableDiffusionPipeline,
    prompt_embeds: torch.Tensor,
    negative_prompt_embeds: torch.Tensor,
    seeds: Sequence[int],
    config: GenerationConfig = GenerationConfig(),
    progress_bar: bool = True,
) -> list[Image.Image]:
    """One image per row of ``prompt_embeds`` (the U-Net's conditioning, bypassing the text encoder)
    with the unconditional ``negative_prompt_embeds`` row beside it and its seed, in order, in batches
    of ``config.batch_size``: as :func:`generate` for the prompts these embeddings encode."""
    if not len(prompt_embeds) == len(negative_prompt_embeds) == len(seeds):
        raise ValueError(f"{len(prompt_embeds)} embeddings, {len(negative_prompt_embeds)} negative embeddings and {len(seeds)} seeds; give one of each per image")
    images: list[Image.Image] = []
    pipeline = with_sampler(pipeline, config.sampler)
    starts = range(0, len(seeds), config.batch_size)
    for start in tqdm(starts, desc="generating", disable=not progress_bar):
        stop = start + config.batch_size
        out = pipeline(
            prompt_embeds=prompt_embeds[start:stop], negative_prompt_embeds=negative_prompt_embeds[start:stop],
            num_inference_steps=config.num_inference_steps, guidance_scale=config.guidance_scale,
            generator=[torch.Generator("cpu").manual_seed(int(s)) for s in seeds[start:stop]],
            height=config.height, width=config.width, output_type="pil",
        )  # fmt: skip
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


PROMPT_COLUMNS = ("case_number", "prompt", "evaluation_seed")


def _as_int(value: Any) -> int | None:
    """``value`` as an int when it is one (an int, an integral float, or the text of an int), else None."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return int(value) if math.isfinite(value) and float(value).is_integer() else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
        try:  # "10000.0", as pandas writes an integer column that held a missing value
            return _as_int(float(value))
        except ValueError:
            return None
    return None


def validate_prompt_table(
    prompts: pd.DataFrame, source: str = "the prompt table", lines: Sequence[int] | None = None
) -> pd.DataFrame:
    """Check a prompt table (``case_number, prompt, evaluation_seed[, ...]``) and return a copy with
    integer ``case_number`` and ``evaluation_seed`` and text ``prompt`` columns.

    Parameters
    ----------
    prompts
        One row per image: ``case_number`` names its file ``<case_number>.png`` (so it is a unique
        integer), ``evaluation_seed`` is the integer seed of its generator, ``prompt`` its text.
    source
        What the table came from, for the error message (a CSV's path).
    lines
        The 1-based line of the source on which each row starts, for the error message.

    Raises
    ------
    ValueError
        Naming the source, the row (line and case_number) and the column of each problem.
    """
    missing = [c for c in PROMPT_COLUMNS if c not in prompts.columns]
    if missing:
        raise ValueError(
            f"{source}: missing column(s) {missing}; expected case_number, prompt, evaluation_seed "
            f"(found {[str(c) for c in prompts.columns]})"
        )
    lines = list(lines) if lines is not None and len(lines) == len(prompts) else None
    problems: list[str] = []
    cases: list[int | None] = []
    seeds: list[int | None] = []
    texts: list[str] = []
    first_row: dict[int, str] = {}
    for k, (case, prompt, seed) in enumerate(zip(*(prompts[c].tolist() for c in PROMPT_COLUMNS), strict=True)):
        where = f"line {lines[k]}" if lines is not None else f"row {k + 1}"
        case_int, seed_int = _as_int(case), _as_int(seed)
        row = f"{where} (case_number {case_int if case_int is not None else case!r})"
        if case_int is None or not -(2**63) <= case_int < 2**63:
            problems.append(f"{row}: column case_number must be an integer (it names the image file <case_number>.png), got {case!r}")
        elif case_int in first_row:
            problems.append(f"{row}: case_number {case_int} repeats {first_row[case_int]}; case numbers must be unique (one image file per row)")
        else:
            first_row[case_int] = where
        if seed_int is None or not -(2**63) <= seed_int < 2**63:
            problems.append(f"{row}: column evaluation_seed must be a 64-bit integer (the seed of the image), got {seed!r}")
        if not isinstance(prompt, str):
            problems.append(f"{row}: column prompt must be text, got {prompt!r}")
        cases.append(case_int)
        seeds.append(seed_int)
        texts.append(prompt if isinstance(prompt, str) else "")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ValueError(f"{source}: " + "; ".join(problems[:3]) + more)
    table = prompts.copy()
    table["case_number"] = pd.Series(cases, index=prompts.index, dtype="int64")
    table["prompt"] = pd.Series(texts, index=prompts.index, dtype=str)
    table["evaluation_seed"] = pd.Series(seeds, index=prompts.index, dtype="int64")
    return table


def _record_lines(path: Path) -> list[int]:
    """The 1-based line on which each data record of a CSV starts (blank lines skipped, as pandas does)."""
    starts: list[int] = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        end = 0
        for record in reader:
            start, end = end + 1, reader.line_num
            if record and not (len(record) == 1 and not record[0].strip()):
                starts.append(start)
    return starts[1:]  # the first record is the header


def read_prompt_csv(path: str | Path) -> pd.DataFrame:
    """Read a prompt CSV in the field's convention: ``case_number, prompt, evaluation_seed[, ...]``.

    Parameters
    ----------
    path
        The CSV: a header line, then one row per image. ``case_number`` (a unique integer) names the
        image file, ``evaluation_seed`` (an integer) seeds it, ``prompt`` is its text, taken verbatim
        (an empty cell is the empty prompt). Other columns are kept as pandas reads them.

    Returns
    -------
    pandas.DataFrame
        The table, with integer ``case_number`` and ``evaluation_seed`` columns.

    Raises
    ------
    ValueError
        When a column is missing or a cell is not of its column's type; the message names the
        file, the line and case_number of the row, and the column.
    """
    path = Path(path)
    try:
        df = pd.read_csv(path)
        # The three columns again as the text in the file, so a bad cell can be shown as written.
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as err:
        raise ValueError(f"{path} is empty; expected a header line case_number,prompt,evaluation_seed and one row per image") from err
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a readable UTF-8 CSV: {err}") from err
    try:
        lines: list[int] | None = _record_lines(path)
    except csv.Error:
        lines = None
    if all(c in df.columns for c in PROMPT_COLUMNS):
        df = df.assign(**{c: raw[c] for c in PROMPT_COLUMNS})
    return validate_prompt_table(df, source=str(path), lines=lines)


def generate_to_folder(
    pipeline: StableDiffusionPipeline,
    prompts: pd.DataFrame,
    out_dir: str | Path,
    config: GenerationConfig = GenerationConfig(),
    progress_bar: bool = True,
) -> list[Path]:
    """Generate ``<case_number>.png`` for each row of a prompt table; images already on disk are kept
    (so an interrupted run resumes). Each PNG is written atomically. The table is checked (see
    :func:`validate_prompt_table`) before ``out_dir`` is created."""
    prompts = validate_prompt_table(prompts)
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
