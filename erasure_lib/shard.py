"""Sharded evaluation generation: one prompt CSV split across processes (and GPUs) with ``accelerate``.

Each image depends only on its row (prompt, ``evaluation_seed``) and on the batch it is generated
in. The rows are cut into fixed blocks of ``batch_size`` consecutive rows, the very batches a
single-process :func:`erasure_lib.generate.generate_to_folder` run makes, and whole blocks are
dealt to processes. So the union of the shards holds the same files, byte for byte, as one process
(same device type, dtype and thread count), whatever the number of processes.

Run it as::

    accelerate launch --multi_gpu --num_processes 8 -m erasure_lib.shard \\
        --model CompVis/stable-diffusion-v1-4@<rev> --prompts coco30k.csv --out build/coco --steps 100
    accelerate launch --multi_gpu --num_processes 2 -m erasure_lib.shard --cpu --model builtin ...  # 2 CPU processes
    python -m erasure_lib.shard ...                                                                # one process

On a machine without GPUs the processes run on the CPU (gloo). ``accelerate launch --cpu`` starts a
single process unless accelerate is configured for mpirun (``--mpirun_hostfile``); the
``--multi_gpu`` launcher (torchrun underneath) plus this script's ``--cpu`` is the simple way to get
several CPU processes. Interrupted runs resume: images already on disk are kept.

``--erasure FOLDER`` applies a saved erasure (:meth:`erasure_lib.methods.base.ErasureResult.save`,
e.g. an entry of a notebook's erasure cache) to ``--model`` first: notebook 13's quality images of
an erased model (COCO-30k on SD, Sec. 4.3) are generated this way across GPUs, into the folder the
notebook reads them from (:func:`quality_folder`). Every folder holds a ``generation.json`` stamp
(:func:`stamp`: a digest of the model's weights, the sampling settings, the prompts), so images of
another model or other settings are never mixed into it or read back from it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import pandas as pd
import torch
from diffusers import StableDiffusionPipeline

from erasure_lib.generate import SAMPLERS, GenerationConfig, generate_to_folder, read_prompt_csv
from erasure_lib.io import atomic_write_text

DType = Literal["float32", "float16", "bfloat16"]
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def blocks(n_rows: int, batch_size: int) -> list[range]:
    """Consecutive row blocks of ``batch_size`` rows: the batches of a single-process run."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    return [range(start, min(start + batch_size, n_rows)) for start in range(0, n_rows, batch_size)]


def check_prompt_table(prompts: pd.DataFrame) -> None:
    """Each row must name its own output file: case numbers are unique."""
    duplicated = prompts["case_number"][prompts["case_number"].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"case_number must be unique (one image file per row); repeated: {sorted(set(duplicated))[:10]}")


def generate_blocks(
    pipeline: StableDiffusionPipeline,
    prompts: pd.DataFrame,
    out_dir: str | Path,
    block_indices: Sequence[int],
    config: GenerationConfig = GenerationConfig(),
    progress_bar: bool = False,
) -> list[Path]:
    """Generate the images of the given row blocks (see :func:`blocks`) into ``out_dir``.

    Each block goes through :func:`generate_to_folder` on its own, so its batch is the same in every
    sharding. Returns the paths of the block rows' images.
    """
    check_prompt_table(prompts)
    all_blocks = blocks(len(prompts), config.batch_size)
    paths: list[Path] = []
    for k in block_indices:
        rows = all_blocks[k]
        paths += generate_to_folder(pipeline, prompts.iloc[rows.start : rows.stop], out_dir, config, progress_bar=progress_bar)
    return paths


STAMP = "generation.json"


def stamp(pipeline: StableDiffusionPipeline, prompts: pd.DataFrame, config: GenerationConfig) -> dict[str, object]:
    """What a folder of generated images depends on: a digest of the weights (text encoder and U-Net,
    :func:`erasure_lib.methods.base.model_digest`, so an erased model differs from its base), their dtype,
    the sampling settings (the batch size included: fixed blocks make the images independent of the
    sharding, not of the batch size), and a digest of the prompt table's rows."""
    from erasure_lib.methods.base import model_digest

    rows = prompts[["case_number", "prompt", "evaluation_seed"]].to_csv(index=False).encode()
    return {"model_digest": model_digest(pipeline), "dtype": str(pipeline.unet.dtype), "generation": asdict(config),
            "prompts_sha256": hashlib.sha256(rows).hexdigest()[:16], "n_prompts": len(prompts)}  # fmt: skip


def claim_folder(folder: str | Path, expected: dict[str, object]) -> Path:
    """Create ``folder`` with ``expected`` as its stamp, or check the stamp it has: a folder of another
    model's or other settings' images raises instead of being mixed with or read as these."""
    folder = Path(folder)
    path = folder / STAMP
    if path.is_file():
        found, wanted = json.loads(path.read_text()), json.loads(json.dumps(expected))  # as JSON holds it (tuples as lists)
        if found != wanted:
            differs = sorted(k for k in found.keys() | wanted.keys() if found.get(k) != wanted.get(k))
            raise ValueError(f"{folder} holds images of another model or other settings (differing: {differs}); "
                             "delete it or generate into another folder")  # fmt: skip
        return folder
    if folder.is_dir() and any(folder.glob("*.png")):
        raise ValueError(f"{folder} holds images without a {STAMP} stamp: delete them or generate into another folder")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(expected, indent=1, sort_keys=True) + "\n")
    return folder


def quality_folder(root: str | Path, method: str | None, concept: str | None = None, seed: int | None = None) -> Path:
    """Where a judged model's quality images live under ``root``: ``root/base`` for the base model
    (``method`` None: its images depend on no erasure), ``root/<method>/<concept>[/seed-<seed>]`` for an erasure."""
    if method is None:
        return Path(root) / "base"
    if not concept:
        raise ValueError("an erased model's quality folder needs its concept")
    folder = Path(root) / method / concept
    return folder if seed is None else folder / f"seed-{int(seed)}"


def generate_quality_images(
    pipeline: StableDiffusionPipeline, prompts: pd.DataFrame, folder: str | Path, config: GenerationConfig
) -> list[Path]:
    """Every image of ``prompts`` in ``folder`` (claimed with :func:`claim_folder`), generating only
    the blocks not yet on disk, in the fixed blocks of :func:`blocks`: the same files as the shards of
    ``python -m erasure_lib.shard`` write there, so a sharded pre-generation is read back, not redone."""
    out = claim_folder(folder, stamp(pipeline, prompts, config))
    return generate_blocks(pipeline, prompts, out, range(len(blocks(len(prompts), config.batch_size))), config)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m erasure_lib.shard",
        description="Generate <case_number>.png for every row of a prompt CSV (case_number, prompt, evaluation_seed), "
        "sharded across the processes of `accelerate launch`.",
    )
    parser.add_argument("--model", default="builtin", help="'builtin', a local diffusers folder, or a hub id[@revision]")
    parser.add_argument("--erasure", type=Path, default=None, help="a saved erasure (ErasureResult.save) to apply to the model first")
    parser.add_argument("--n", type=int, default=None, help="use only the first N rows of the prompt CSV")
    parser.add_argument("--prompts", required=True, type=Path, help="prompt CSV: case_number, prompt, evaluation_seed")
    parser.add_argument("--out", required=True, type=Path, help="output folder of the PNGs")
    parser.add_argument("--steps", type=int, default=GenerationConfig.num_inference_steps, help="sampling steps")
    parser.add_argument("--guidance", type=float, default=GenerationConfig.guidance_scale, help="classifier-free guidance")
    parser.add_argument("--batch-size", type=int, default=GenerationConfig.batch_size, help="images per batch")
    parser.add_argument("--sampler", choices=SAMPLERS, default="model", help="'model' (the model's own scheduler) or another")
    parser.add_argument("--height", type=int, default=None, help="image height (default: the model's)")
    parser.add_argument("--width", type=int, default=None, help="image width (default: the model's)")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float32", help="weights' floating-point type")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even where GPUs are present")
    parser.add_argument("--progress", action="store_true", help="show a progress bar per process")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m erasure_lib.shard`` (under ``accelerate launch`` or alone)."""
    from accelerate import PartialState

    from erasure_lib.models import load_pipeline

    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    # CPU when asked (here or by `accelerate launch --cpu`) or when there is no GPU: several CPU
    # processes then join a gloo group instead of running unsharded copies of the whole table.
    cpu = args.cpu or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes") or not torch.cuda.is_available()
    state = PartialState(cpu=cpu)
    prompts = read_prompt_csv(args.prompts)
    if args.n is not None:
        if args.n < 1:
            raise SystemExit(f"--n must be at least 1, got {args.n}")
        prompts = prompts.iloc[: args.n]
    check_prompt_table(prompts)
    config = GenerationConfig(
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        batch_size=args.batch_size,
        height=args.height,
        width=args.width,
        sampler=args.sampler,
    )
    pipeline = load_pipeline(args.model, device=state.device, dtype=DTYPES[args.dtype])
    if args.erasure is not None:
        from erasure_lib.methods.base import ErasureResult

        pipeline = ErasureResult.load(args.erasure).placed_like(pipeline).apply(pipeline)
    try:
        claim_folder(args.out, stamp(pipeline, prompts, config))
    except ValueError as refused:
        print(f"erasure_lib.shard: {refused}", file=sys.stderr)
        return 2
    n_blocks = len(blocks(len(prompts), config.batch_size))
    # Whole blocks per process: accelerate's contiguous split of the block list.
    with state.split_between_processes(list(range(n_blocks))) as mine:
        paths = generate_blocks(pipeline, prompts, args.out, list(mine), config, progress_bar=args.progress)
    print(f"process {state.process_index}/{state.num_processes} on {state.device}: {len(paths)} images in {args.out}", flush=True)
    state.wait_for_everyone()
    status = 0
    if state.is_main_process:
        missing = [c for c in prompts["case_number"] if not (args.out / f"{int(c)}.png").is_file()]
        if missing:
            print(f"missing {len(missing)} image(s), e.g. {missing[:5]}", file=sys.stderr)
            status = 1
        else:
            print(f"all {len(prompts)} images present in {args.out}", flush=True)
    state.destroy_process_group()
    return status


if __name__ == "__main__":
    raise SystemExit(main())
