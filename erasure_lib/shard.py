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
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pandas as pd
import torch
from diffusers import StableDiffusionPipeline

from erasure_lib.generate import GenerationConfig, generate_to_folder, read_prompt_csv

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


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m erasure_lib.shard",
        description="Generate <case_number>.png for every row of a prompt CSV (case_number, prompt, evaluation_seed), "
        "sharded across the processes of `accelerate launch`.",
    )
    parser.add_argument("--model", default="builtin", help="'builtin', a local diffusers folder, or a hub id[@revision]")
    parser.add_argument("--prompts", required=True, type=Path, help="prompt CSV: case_number, prompt, evaluation_seed")
    parser.add_argument("--out", required=True, type=Path, help="output folder of the PNGs")
    parser.add_argument("--steps", type=int, default=GenerationConfig.num_inference_steps, help="sampling steps")
    parser.add_argument("--guidance", type=float, default=GenerationConfig.guidance_scale, help="classifier-free guidance")
    parser.add_argument("--batch-size", type=int, default=GenerationConfig.batch_size, help="images per batch")
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
    check_prompt_table(prompts)
    config = GenerationConfig(
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        batch_size=args.batch_size,
        height=args.height,
        width=args.width,
    )
    pipeline = load_pipeline(args.model, device=state.device, dtype=DTYPES[args.dtype])
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
