"""Scale benchmark: few-shot unlearning against ESD on the full-size Stable Diffusion v1.4
architecture (random weights: timings only, no meaningful images).

For each floating-point type and with attention slicing off and on, it times

- one few-shot erasure: the paper's 8 optimizer steps (4 images, batch 2, 4 epochs,
  ``mlp-final-attn``, lr 1e-5); the optimization loop, as the paper times it;
- one ESD iteration (``ESDConfig(iterations=1)``): DDIM sampling of the trainable U-Net up to a
  random step ``t_enc`` (0..49), the frozen U-Net's two predictions, one optimizer step. Since its
  cost depends on ``t_enc``, one DDIM step is timed alone and the iteration is also reported at the
  expected ``t_enc`` of (ddim_steps - 1) / 2 (``--esd-iteration fixed-part`` times an iteration
  with ``t_enc = 0`` and adds the expected sampling, which saves minutes on a CPU);

and prints seconds per erasure, seconds per ESD iteration and the ratio ESD (1000 iterations) /
few-shot. Not a test: run it by hand, e.g.::

    python benchmarks/scale_benchmark.py --resolution 512 --out results/scale_benchmark_gpu.json   # GPU
    python benchmarks/scale_benchmark.py --resolution 64 --threads 1 --esd-train-method xattn \\
        --esd-iteration fixed-part --out results/scale_benchmark_cpu.json                           # CPU

The device is CUDA when available (``--device auto``). ESD-u (``noxattn``, the object setting)
holds Adam state for ~0.86B parameters: about 17 GB in fp32 beside the two U-Nets, so small CPU
machines use ESD-x (``xattn``). The paper reports 7 to 10 s per concept for few-shot unlearning on
its GPU.
"""

from __future__ import annotations

import argparse
import gc
import platform
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from erasure_lib import sd14
from erasure_lib.methods import esd, fewshot
from erasure_lib.results import git_commit, package_versions, write_json

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
CONCEPT = "tench"
ESD_ITERATIONS = 1000  # ESD's published iteration count


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def random_images(n: int, size: int, seed: int) -> list[Image.Image]:
    """``n`` uniform-noise RGB images (stand-ins for the 4 real images of the concept)."""
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


@torch.no_grad()
def time_ddim_step(pipeline: Any, guidance: float, ddim_steps: int, seed: int) -> float:
    """Seconds of one guided DDIM step of the U-Net (batch 2: unconditional + concept), as ESD samples."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_config(pipeline.scheduler.config)
    scheduler.set_timesteps(ddim_steps)
    unet = pipeline.unet
    size = unet.config.sample_size
    latents = torch.randn((1, unet.config.in_channels, size, size), generator=torch.Generator("cpu").manual_seed(seed))
    latents = latents.to(pipeline.device, unet.dtype)
    cond, uncond = esd.encode_prompt(pipeline, CONCEPT), esd.encode_prompt(pipeline, "")
    esd.sample_until(unet, scheduler, latents, cond, uncond, guidance, 1)  # warm-up
    _sync(pipeline.device)
    t0 = time.perf_counter()
    esd.sample_until(unet, scheduler, latents, cond, uncond, guidance, 1)
    _sync(pipeline.device)
    return time.perf_counter() - t0


def seed_for_zero_t_enc(ddim_steps: int, start: int) -> int:
    """The first seed from ``start`` whose ESD iteration samples no DDIM step (``t_enc = 0``).

    ESD draws ``t_enc`` first from ``torch.Generator("cpu").manual_seed(seed)``; the benchmark checks
    the iteration's recorded ``t_enc`` afterwards, so a change in ESD's draws cannot go unnoticed.
    """
    for seed in range(start, start + 100 * ddim_steps):
        if int(torch.randint(ddim_steps, (1,), generator=torch.Generator("cpu").manual_seed(seed))) == 0:
            return seed
    raise RuntimeError("no seed with t_enc = 0 found")


def run_setting(pipeline: Any, images: Sequence[Image.Image], slicing: bool, args: argparse.Namespace) -> dict[str, Any]:
    """Time one few-shot erasure and one ESD iteration in the pipeline's current dtype."""
    if slicing:
        pipeline.enable_attention_slicing()
    else:
        pipeline.disable_attention_slicing()
    device = pipeline.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    config = fewshot.FewShotConfig(seed=args.seed)  # the paper's SD settings: 4 images, batch 2, 4 epochs
    if args.warmup:
        # Kernel selection and first-call allocations stay out of the timings (one untimed step of each).
        fewshot.erase(pipeline, CONCEPT, list(images[:2]), replace(config, epochs=1), progress_bar=False)
        esd.erase(pipeline, CONCEPT, None, esd.ESDConfig(train_method=args.esd_train_method, iterations=1,
                  ddim_steps=args.esd_ddim_steps, seed=seed_for_zero_t_enc(args.esd_ddim_steps, args.seed)), progress_bar=False)
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
    result = fewshot.erase(pipeline, CONCEPT, list(images), config, progress_bar=False)
    steps = len(result.losses)

    ddim_step = time_ddim_step(pipeline, 3.0, args.esd_ddim_steps, args.seed)
    esd_seed = args.seed if args.esd_iteration == "sampled" else seed_for_zero_t_enc(args.esd_ddim_steps, args.seed)
    esd_config = esd.ESDConfig(train_method=args.esd_train_method, iterations=1, ddim_steps=args.esd_ddim_steps, seed=esd_seed)
    esd_result = esd.erase(pipeline, CONCEPT, None, esd_config, progress_bar=False)
    t_enc = int(esd_result.info["stop_steps"][0])
    esd_measured = esd_result.optimization_seconds
    # The iteration's fixed part (frozen predictions, forward, backward, Adam step) plus the
    # expected number of DDIM steps, (ddim_steps - 1) / 2. With --esd-iteration fixed-part the
    # measured iteration sampled no DDIM step (t_enc = 0), so its time is the fixed part itself.
    esd_fixed = max(esd_measured - t_enc * ddim_step, 0.0)
    esd_expected = esd_fixed + (args.esd_ddim_steps - 1) / 2 * ddim_step
    fewshot_seconds = result.optimization_seconds
    row = {
        "dtype": str(pipeline.unet.dtype).removeprefix("torch."),
        "attention_slicing": slicing,
        "fewshot_steps": steps,
        "fewshot_seconds_per_erasure": fewshot_seconds,
        "fewshot_seconds_per_step": fewshot_seconds / steps,
        "fewshot_setup_seconds": result.setup_seconds,
        "fewshot_trainable_parameters": int(result.info.get("trainable_parameters", 0)),
        "esd_train_method": args.esd_train_method,
        "esd_trainable_parameters": int(esd_result.info["trainable_parameters"]),
        "esd_iteration": args.esd_iteration,
        "esd_seed": esd_seed,
        "esd_t_enc": t_enc,
        "esd_ddim_step_seconds": ddim_step,
        "esd_seconds_per_iteration_measured": esd_measured,
        "esd_seconds_per_iteration_expected": esd_expected,
        "esd_1000_iterations_seconds": ESD_ITERATIONS * esd_expected,
        "ratio_esd1000_to_fewshot": ESD_ITERATIONS * esd_expected / fewshot_seconds,
        "peak_memory_mb": _peak_memory_mb(device),
    }
    del result, esd_result
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def format_row(row: dict[str, Any]) -> str:
    return (
        f"{row['dtype']:>8} slicing={'on ' if row['attention_slicing'] else 'off'} | few-shot: "
        f"{row['fewshot_seconds_per_erasure']:.2f} s per erasure ({row['fewshot_steps']} steps, "
        f"{row['fewshot_seconds_per_step']:.2f} s/step) | ESD-{row['esd_train_method']}: "
        f"{row['esd_seconds_per_iteration_measured']:.2f} s per iteration at t_enc={row['esd_t_enc']}, "
        f"{row['esd_seconds_per_iteration_expected']:.2f} s expected ({row['esd_ddim_step_seconds']:.3f} s per DDIM step) | "
        f"ESD(1000 it.)/few-shot = {row['ratio_esd1000_to_fewshot']:.0f}x | peak {row['peak_memory_mb']:.0f} MB"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=512, help="image size in px, a multiple of 64 (512: the paper's)")
    parser.add_argument("--device", default="auto", help="'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:1'...")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--dtypes", nargs="+", choices=tuple(DTYPES), default=None,
                        help="floating-point types (default: float32 bfloat16 on CPU, float32 float16 bfloat16 on CUDA)")
    parser.add_argument("--slicing", nargs="+", choices=("off", "on"), default=["off", "on"], help="attention slicing")
    parser.add_argument("--esd-train-method", choices=esd.TRAIN_METHODS, default="noxattn", help="ESD-u (noxattn) or ESD-x (xattn)")
    parser.add_argument("--esd-ddim-steps", type=int, default=50, help="DDIM steps of ESD's sampling")
    parser.add_argument("--esd-iteration", choices=("sampled", "fixed-part"), default="sampled",
                        help="'sampled': time the iteration ESD draws with --seed; 'fixed-part': time an iteration "
                        "with t_enc = 0 (everything but the DDIM sampling, which is timed apart; cheaper on a CPU)")
    parser.add_argument("--scale", choices=sd14.SCALES, default="full", help="'tiny' only checks that the script runs")
    parser.add_argument("--warmup", choices=("auto", "on", "off"), default="auto",
                        help="one untimed few-shot epoch and ESD iteration before each setting ('auto': on CUDA only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="JSON file of the results")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else torch.device(args.device)
    args.warmup = args.warmup == "on" or (args.warmup == "auto" and device.type == "cuda")
    dtypes = args.dtypes or (["float32", "float16", "bfloat16"] if device.type == "cuda" else ["float32", "bfloat16"])
    # fp32 first: the weights are drawn once and cast down in place for the next types.
    dtypes = sorted(dtypes, key=lambda d: DTYPES[d].itemsize, reverse=True)
    t0 = time.perf_counter()
    pipeline = sd14.build_random_pipeline(args.scale, seed=args.seed, resolution=args.resolution).to(device)
    build_seconds = time.perf_counter() - t0
    n_params = {name: sum(p.numel() for p in getattr(pipeline, name).parameters()) for name in ("unet", "vae", "text_encoder")}
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s)"
    print(f"SD v1.4 architecture ({args.scale}), random weights ({sum(n_params.values()) / 1e9:.3f}B parameters, built in {build_seconds:.0f} s) "
          f"on {device} ({where}), {args.resolution} px", flush=True)
    images = random_images(4, args.resolution, args.seed)
    rows = []
    for name in dtypes:
        if DTYPES[name] != pipeline.unet.dtype:
            pipeline = pipeline.to(dtype=DTYPES[name])
        for slicing in args.slicing:
            row = run_setting(pipeline, images, slicing == "on", args)
            rows.append(row)
            print(format_row(row), flush=True)
    record = {
        "benchmark": "few-shot unlearning vs ESD on the SD v1.4 architecture (random weights)",
        "resolution": args.resolution,
        "scale": args.scale,
        "device": str(device),
        "device_name": where,
        "threads": torch.get_num_threads(),
        "parameters": n_params,
        "esd_ddim_steps": args.esd_ddim_steps,
        "esd_iterations_projected": ESD_ITERATIONS,
        "seed": args.seed,
        "warmup": args.warmup,
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "git_commit": git_commit(),
        "packages": package_versions(),
        "results": rows,
        "total_seconds": time.perf_counter() - t0,
    }
    if args.out is not None:
        print(f"wrote {write_json(record, args.out.resolve())}")  # atomic; relative to the current folder
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
