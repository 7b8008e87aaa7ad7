"""Scale benchmark: few-shot unlearning against ESD and SPM on the full-size Stable Diffusion v1.4
architecture (random weights: timings only, no meaningful images).

For each floating-point type and with attention slicing off and on, it times the methods named by
``--methods`` (all three by default; a CPU user may run parts, e.g. ``--methods fewshot spm``):

- ``fewshot``: one few-shot erasure: the paper's 8 optimizer steps (4 images, batch 2, 4 epochs,
  ``mlp-final-attn``, lr 1e-5); the optimization loop, as the paper times it;
- ``esd``: one ESD iteration (``ESDConfig(iterations=1)``): DDIM sampling of the trainable U-Net up to
  a random step ``t_enc`` (0..49), the frozen U-Net's two predictions, one optimizer step. Since its
  cost depends on ``t_enc``, one DDIM step is timed alone and the iteration is also reported at the
  expected ``t_enc`` of (ddim_steps - 1) / 2 (``--esd-iteration fixed-part`` times an iteration
  with ``t_enc = 0`` and adds the expected sampling, which saves minutes on a CPU);
- ``spm``: one SPM iteration (``SPMConfig(iterations=1)``, the published config otherwise): the
  adapted U-Net's guided DDIM sampling up to a random step ``t_enc`` (1..29), the frozen U-Net's
  predictions for the concept, the neutral prompt and 4 anchors (batch 6), the adapted U-Net's forward
  and backward pass for the concept and the anchors (batch 5), one AdamW step of the rank-1 adapters.
  Its cost depends on ``t_enc`` and on the latent size, which the published config draws anew each
  iteration (``dynamic_resolution``: each side uniformly from the multiples of 8 latent px in
  [side / 2, side], 256..512 px at 512 px; a single size at 64 px). So for each latent shape {h, w}
  one DDIM step is timed alone and one iteration at that shape (a seed that draws it), the iteration
  is projected to the expected ``t_enc`` of max_denoising_steps / 2 = 15, and the expectation over
  the shapes' probabilities is SPM's expected iteration (``h x w`` and ``w x h`` are taken to cost the
  same). ``--spm-iteration fixed-part`` times iterations with ``t_enc = 1``, the fewest steps SPM
  samples (``max_denoising_steps=2``, which leaves each step's cost as it is; cheaper on a CPU);
  ``--spm-resolution full`` turns ``dynamic_resolution`` off (every
  latent at the benchmark's resolution, one shape). The full-resolution iteration is reported either
  way (``spm_seconds_per_iteration_full_resolution``);

and prints seconds per few-shot erasure, seconds per ESD and SPM iteration and the ratios of ESD and
SPM, each projected to its published iteration count (the default ``iterations`` of ``ESDConfig``,
1000, and of ``SPMConfig``, 3000), to one few-shot erasure. Not a test: run it by hand, e.g.::

    python benchmarks/scale_benchmark.py --resolution 512 --out results/scale_benchmark_gpu.json   # GPU
    python benchmarks/scale_benchmark.py --resolution 64 --threads 1 --esd-train-method xattn \\
        --esd-iteration fixed-part --spm-iteration fixed-part --out results/scale_benchmark_cpu.json  # CPU

The device is CUDA when available (``--device auto``). ESD-u (``noxattn``, the object setting)
holds Adam state for ~0.86B parameters: about 17 GB in fp32 beside the two U-Nets, so small CPU
machines use ESD-x (``xattn``). SPM trains ~0.1M adapter weights but back-propagates a batch of 5
through the U-Net copy. The paper reports 7 to 10 s per concept for few-shot unlearning on its GPU.
The JSON file (``--out``) is rewritten after each setting (``"complete": false`` until the last), so
a run cut short keeps its finished rows. Its functions are importable (``tests/test_scale_benchmark.py``
runs them on the tiny SD v1.4 architecture).
"""

from __future__ import annotations

import argparse
import gc
import platform
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from erasure_lib import sd14
from erasure_lib.methods import esd, fewshot, spm
from erasure_lib.results import git_commit, package_versions, write_json

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
METHODS: tuple[str, ...] = ("fewshot", "esd", "spm")
CONCEPT = "tench"
IterationMode = Literal["sampled", "fixed-part"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def random_images(n: int, size: int, seed: int) -> list[Image.Image]:
    """``n`` uniform-noise RGB images (stand-ins for the 4 real images of the concept)."""
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


# --------------------------------------------------------------------------------------------
# Projection arithmetic
# --------------------------------------------------------------------------------------------


def published_iterations(config_class: type) -> int:
    """The default ``iterations`` of a method's config dataclass: its published iteration count
    (``esd.ESDConfig``: 1000, ``spm.SPMConfig``: 3000)."""
    for field in fields(config_class):
        if field.name == "iterations":
            return int(field.default)
    raise ValueError(f"{config_class.__name__} has no 'iterations' field")


def expected_t_enc(low: int, high: int) -> float:
    """Mean of ``t_enc ~ U{low, ..., high - 1}`` (``torch.randint(low, high)``): (low + high - 1) / 2.

    ESD draws ``randint(0, ddim_steps)`` (mean 24.5 for 50 steps), SPM ``randint(1, max_denoising_steps)``
    (mean 15 for 30 steps).
    """
    if high <= low:
        raise ValueError(f"empty range of t_enc: low={low}, high={high}")
    return (low + high - 1) / 2


def project_iteration(measured: float, t_enc: int, ddim_step: float, mean_t_enc: float) -> tuple[float, float]:
    """``(fixed, expected)`` seconds of an iteration measured at ``t_enc`` DDIM steps.

    The fixed part (everything but the sampling: frozen predictions, forward, backward, optimizer step)
    is the measured time less ``t_enc`` timed DDIM steps (floored at 0, for timing noise); the
    expected iteration adds ``mean_t_enc`` DDIM steps to it.
    """
    fixed = max(measured - t_enc * ddim_step, 0.0)
    return fixed, fixed + mean_t_enc * ddim_step


def projected_columns(method: str, seconds_per_iteration: float, iterations: int,
                      fewshot_seconds: float | None) -> dict[str, float]:
    """``<method>_<N>_iterations_seconds`` (N iterations at the expected cost) and, given a few-shot
    erasure's seconds, ``ratio_<method><N>_to_fewshot``."""
    total = iterations * seconds_per_iteration
    columns = {f"{method}_{iterations}_iterations_seconds": total}
    if fewshot_seconds is not None:
        columns[f"ratio_{method}{iterations}_to_fewshot"] = total / fewshot_seconds
    return columns


def select_methods(methods: Sequence[str]) -> tuple[str, ...]:
    """``methods`` in the benchmark's order (few-shot, ESD, SPM), each once; unknown names are an error."""
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}: choose from {METHODS}")
    if not methods:
        raise ValueError(f"no method to time: choose from {METHODS}")
    return tuple(m for m in METHODS if m in methods)


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def time_ddim_step(pipeline: Any, guidance: float, ddim_steps: int, seed: int,
                   shape: tuple[int, int] | None = None) -> float:
    """Seconds of one guided DDIM step of the U-Net (batch 2: unconditional + concept), as ESD and SPM
    sample; ``shape`` is the latent (height, width), the U-Net's ``sample_size`` square by default."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_config(pipeline.scheduler.config)
    scheduler.set_timesteps(ddim_steps)
    unet = pipeline.unet
    height, width = shape or (unet.config.sample_size, unet.config.sample_size)
    generator = torch.Generator("cpu").manual_seed(seed)
    latents = torch.randn((1, unet.config.in_channels, height, width), generator=generator)
    latents = latents.to(pipeline.device, unet.dtype)
    cond, uncond = esd.encode_prompt(pipeline, CONCEPT), esd.encode_prompt(pipeline, "")
    esd.sample_until(unet, scheduler, latents, cond, uncond, guidance, 1)  # warm-up
    _sync(pipeline.device)
    t0 = time.perf_counter()
    esd.sample_until(unet, scheduler, latents, cond, uncond, guidance, 1)
    _sync(pipeline.device)
    return time.perf_counter() - t0


def time_fewshot(pipeline: Any, images: Sequence[Image.Image], seed: int) -> dict[str, Any]:
    """One few-shot erasure with the paper's SD settings (4 images, batch 2, 4 epochs): its columns."""
    config = fewshot.FewShotConfig(seed=seed)
    result = fewshot.erase(pipeline, CONCEPT, list(images), config, progress_bar=False)
    steps = len(result.losses)
    seconds = result.optimization_seconds
    return {
        "fewshot_steps": steps,
        "fewshot_seconds_per_erasure": seconds,
        "fewshot_seconds_per_step": seconds / steps,
        "fewshot_setup_seconds": result.setup_seconds,
        "fewshot_trainable_parameters": int(result.info.get("trainable_parameters", 0)),
    }


def seed_for_zero_t_enc(ddim_steps: int, start: int) -> int:
    """The first seed from ``start`` whose ESD iteration samples no DDIM step (``t_enc = 0``).

    ESD draws ``t_enc`` first from ``torch.Generator("cpu").manual_seed(seed)``; the benchmark checks
    the iteration's recorded ``t_enc`` afterwards, so a change in ESD's draws cannot go unnoticed.
    """
    for seed in range(start, start + 100 * ddim_steps):
        if int(torch.randint(ddim_steps, (1,), generator=torch.Generator("cpu").manual_seed(seed))) == 0:
            return seed
    raise RuntimeError("no seed with t_enc = 0 found")


def time_esd(pipeline: Any, train_method: str, ddim_steps: int, iteration: IterationMode, seed: int) -> dict[str, Any]:
    """One ESD iteration (``ESDConfig(iterations=1)``) and one DDIM step alone: its columns, with the
    iteration projected to the expected ``t_enc`` and to ESD's published iteration count (without the
    ratio to few-shot)."""
    ddim_step = time_ddim_step(pipeline, 3.0, ddim_steps, seed)
    esd_seed = seed if iteration == "sampled" else seed_for_zero_t_enc(ddim_steps, seed)
    config = esd.ESDConfig(train_method=train_method, iterations=1, ddim_steps=ddim_steps, seed=esd_seed)
    result = esd.erase(pipeline, CONCEPT, None, config, progress_bar=False)
    t_enc = int(result.info["stop_steps"][0])
    if iteration == "fixed-part" and t_enc != 0:
        raise RuntimeError(f"ESD's draws changed: seed {esd_seed} gave t_enc = {t_enc}, not 0; update seed_for_zero_t_enc")
    measured = result.optimization_seconds
    # The iteration's fixed part (frozen predictions, forward, backward, Adam step) plus the expected
    # number of DDIM steps. With --esd-iteration fixed-part the measured iteration sampled no DDIM
    # step (t_enc = 0), so its time is the fixed part itself.
    _, expected = project_iteration(measured, t_enc, ddim_step, expected_t_enc(0, ddim_steps))
    row = {
        "esd_train_method": train_method,
        "esd_trainable_parameters": int(result.info["trainable_parameters"]),
        "esd_iteration": iteration,
        "esd_seed": esd_seed,
        "esd_t_enc": t_enc,
        "esd_ddim_step_seconds": ddim_step,
        "esd_seconds_per_iteration_measured": measured,
        "esd_seconds_per_iteration_expected": expected,
    }
    del result
    _release(pipeline.device)
    return row | projected_columns("esd", expected, published_iterations(esd.ESDConfig), None)


@dataclass(frozen=True)
class SPMShape:
    """One latent shape an SPM iteration may draw, and the seed whose first iteration draws it.

    ``probability`` is that of the unordered shape {height, width} under the config's draws (both
    sides uniform and independent), ``t_enc`` the number of DDIM steps that seed's iteration samples.
    """

    latent: tuple[int, int]
    probability: float
    seed: int
    t_enc: int


def timed_spm_config(config: spm.SPMConfig, iteration: IterationMode, seed: int) -> spm.SPMConfig:
    """The config of one timed SPM iteration: ``config`` with ``iterations=1`` and ``seed``; for
    ``"fixed-part"`` also ``max_denoising_steps=2``, whose ``t_enc`` is always 1 (the fewest DDIM steps
    SPM samples; the schedule's length changes which timestep the U-Net sees, not what it costs)."""
    timed = replace(config, iterations=1, seed=seed)
    return replace(timed, max_denoising_steps=2) if iteration == "fixed-part" else timed


def spm_draws(unet: Any, config: spm.SPMConfig, seed: int) -> tuple[int, tuple[int, int]]:
    """``(t_enc, (height, width))`` of the first iteration of ``spm.erase`` with ``config`` and ``seed``.

    It replays ``spm.erase``'s draws from its one ``torch.Generator("cpu")``: each adapter's
    initialisation (built by ``spm.Adapter`` itself, around the U-Net's layer, which it leaves as it
    is), then ``t_enc``, then the latent size. :func:`time_spm` checks the iteration's recorded
    ``t_enc`` and size, so a change in SPM's draws cannot go unnoticed.
    """
    generator = torch.Generator("cpu").manual_seed(seed)
    for name in spm.adapted_layer_names(unet, config.modules):
        spm.Adapter(unet.get_submodule(name), config.rank, config.alpha, generator)
    t_enc = int(torch.randint(1, config.max_denoising_steps, (1,), generator=generator))
    sides = spm.latent_sides(unet, config.dynamic_resolution)
    if len(sides) > 1:
        height, width = (sides[int(i)] for i in torch.randint(len(sides), (2,), generator=generator))
    else:
        height = width = sides[0]
    return t_enc, (height, width)


def plan_spm(unet: Any, config: spm.SPMConfig, iteration: IterationMode, start: int) -> list[SPMShape]:
    """The latent shapes SPM's ``config`` can draw (unordered, smallest first), each with the first seed
    from ``start`` whose timed iteration (:func:`timed_spm_config`) draws it.

    With one latent size (``dynamic_resolution`` off, or a 64 px model) there is one shape, and its
    seed is ``start`` itself.
    """
    sides = spm.latent_sides(unet, config.dynamic_resolution)
    n = len(sides)
    wanted = {(a, b): (1 if a == b else 2) / n**2 for i, a in enumerate(sides) for b in sides[i:]}
    found: dict[tuple[int, int], SPMShape] = {}
    for seed in range(start, start + 100 * n * n):
        t_enc, (height, width) = spm_draws(unet, timed_spm_config(config, iteration, seed), seed)
        key = (min(height, width), max(height, width))
        if key not in found:
            found[key] = SPMShape((height, width), wanted[key], seed, t_enc)
            if len(found) == len(wanted):
                return [found[k] for k in sorted(wanted)]
    raise RuntimeError(f"no seed found for SPM's latent shapes {sorted(set(wanted) - set(found))}")


def time_spm(pipeline: Any, config: spm.SPMConfig, plan: Sequence[SPMShape], iteration: IterationMode) -> dict[str, Any]:
    """One SPM iteration (:func:`timed_spm_config`) and one DDIM step alone at each shape of ``plan``
    (:func:`plan_spm`, with the same ``config`` and ``iteration``): SPM's columns, with each iteration
    projected to the expected ``t_enc``, their expectation over the shapes, and the projection to SPM's
    published iteration count (without the ratio to few-shot).

    The top-level ``spm_seed``, ``spm_t_enc``, ``spm_ddim_step_seconds`` and
    ``spm_seconds_per_iteration_measured`` / ``_full_resolution`` are those of the full-resolution
    shape (the U-Net's ``sample_size`` square); ``spm_latent_shapes`` lists every shape's.
    """
    if not plan:
        raise ValueError("the plan of SPM's latent shapes is empty: build it with plan_spm")
    mean_t_enc = expected_t_enc(1, config.max_denoising_steps)  # SPM draws t_enc ~ U{1 .. steps - 1}
    shapes: list[dict[str, Any]] = []
    trainable = adapted = 0
    for shape in plan:
        ddim_step = time_ddim_step(pipeline, config.start_guidance, config.max_denoising_steps, shape.seed, shape.latent)
        timed = timed_spm_config(config, iteration, shape.seed)
        result = spm.erase(pipeline, CONCEPT, None, timed, progress_bar=False)
        drawn = (int(result.info["stop_steps"][0]), tuple(int(s) for s in result.info["latent_sizes"][0]))
        if drawn != (shape.t_enc, shape.latent):
            raise RuntimeError(
                f"SPM's draws changed: seed {shape.seed} gave (t_enc, latent) = {drawn}, spm_draws expected "
                f"{(shape.t_enc, shape.latent)}; update spm_draws to spm.erase's draw order"
            )
        measured = result.optimization_seconds
        _, expected = project_iteration(measured, shape.t_enc, ddim_step, mean_t_enc)
        shapes.append({
            "latent": list(shape.latent),
            "probability": shape.probability,
            "seed": shape.seed,
            "t_enc": shape.t_enc,
            "ddim_step_seconds": ddim_step,
            "seconds_per_iteration_measured": measured,
            "seconds_per_iteration_expected": expected,
        })
        trainable, adapted = int(result.info["trainable_parameters"]), int(result.info["adapted_layers"])
        del result
        _release(pipeline.device)
    full = max(shapes, key=lambda s: s["latent"][0] * s["latent"][1])  # the sample_size square
    # E[iteration] = sum over shapes of P(shape) * (fixed(shape) + E[t_enc] * DDIM step(shape)):
    # the latent size and t_enc are drawn independently.
    expected = sum(s["probability"] * s["seconds_per_iteration_expected"] for s in shapes)
    row = {
        "spm_iteration": iteration,
        "spm_modules": config.modules,
        "spm_adapted_layers": adapted,
        "spm_trainable_parameters": trainable,
        "spm_dynamic_resolution": config.dynamic_resolution,
        "spm_seed": full["seed"],
        "spm_t_enc": full["t_enc"],
        "spm_ddim_step_seconds": full["ddim_step_seconds"],
        "spm_seconds_per_iteration_measured": full["seconds_per_iteration_measured"],
        "spm_seconds_per_iteration_full_resolution": full["seconds_per_iteration_expected"],
        "spm_seconds_per_iteration_expected": expected,
        "spm_latent_shapes": shapes,
    }
    return row | projected_columns("spm", expected, published_iterations(spm.SPMConfig), None)


# --------------------------------------------------------------------------------------------
# One setting, the command line
# --------------------------------------------------------------------------------------------


def spm_config(args: argparse.Namespace) -> spm.SPMConfig:
    """SPM's published config, seeded by ``--seed``, with ``dynamic_resolution`` per ``--spm-resolution``."""
    return spm.SPMConfig(seed=args.seed, dynamic_resolution=args.spm_resolution == "dynamic")


def run_setting(pipeline: Any, images: Sequence[Image.Image], slicing: bool, args: argparse.Namespace,
                spm_plan: Sequence[SPMShape] | None = None) -> dict[str, Any]:
    """Time ``args.methods`` in the pipeline's current dtype, with attention slicing on or off: one row.

    ``spm_plan`` (:func:`plan_spm`, computed once per run since it depends on the U-Net's layers only)
    is required when SPM is timed. The ratios to few-shot are there when few-shot is timed.
    """
    methods = select_methods(args.methods)
    if "spm" in methods and spm_plan is None:
        raise ValueError("timing SPM needs spm_plan (plan_spm(pipeline.unet, spm_config(args), ...))")
    if slicing:
        pipeline.enable_attention_slicing()
    else:
        pipeline.disable_attention_slicing()
    device = pipeline.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    if args.warmup:
        # Kernel selection and first-call allocations stay out of the timings (one untimed step of each).
        if "fewshot" in methods:
            config = fewshot.FewShotConfig(seed=args.seed, epochs=1)
            fewshot.erase(pipeline, CONCEPT, list(images[:2]), config, progress_bar=False)
        if "esd" in methods:
            esd.erase(pipeline, CONCEPT, None, esd.ESDConfig(train_method=args.esd_train_method, iterations=1,
                      ddim_steps=args.esd_ddim_steps, seed=seed_for_zero_t_enc(args.esd_ddim_steps, args.seed)),
                      progress_bar=False)
        if "spm" in methods:  # t_enc = 1, the full-resolution latent
            config = replace(timed_spm_config(spm_config(args), "fixed-part", args.seed), dynamic_resolution=False)
            spm.erase(pipeline, CONCEPT, None, config, progress_bar=False)
        _release(device)

    row: dict[str, Any] = {"dtype": str(pipeline.unet.dtype).removeprefix("torch."), "attention_slicing": slicing}
    peak = 0.0
    for method in methods:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        if method == "fewshot":
            row |= time_fewshot(pipeline, images, args.seed)
        elif method == "esd":
            row |= time_esd(pipeline, args.esd_train_method, args.esd_ddim_steps, args.esd_iteration, args.seed)
        else:
            row |= time_spm(pipeline, spm_config(args), spm_plan or [], args.spm_iteration)
        _release(device)
        if device.type == "cuda":  # per method on CUDA; a CPU process only knows its lifetime peak
            row[f"{method}_peak_memory_mb"] = _peak_memory_mb(device)
            peak = max(peak, row[f"{method}_peak_memory_mb"])
    row["peak_memory_mb"] = peak if device.type == "cuda" else _peak_memory_mb(device)
    if "fewshot" in methods:
        fewshot_seconds = row["fewshot_seconds_per_erasure"]
        for method, config_class in (("esd", esd.ESDConfig), ("spm", spm.SPMConfig)):
            if method in methods:
                n = published_iterations(config_class)
                row |= projected_columns(method, row[f"{method}_seconds_per_iteration_expected"], n, fewshot_seconds)
    return row


def format_row(row: dict[str, Any]) -> str:
    """One line: each timed method's seconds and the ratios to few-shot."""
    parts = [f"{row['dtype']:>8} slicing={'on ' if row['attention_slicing'] else 'off'}"]
    if "fewshot_seconds_per_erasure" in row:
        parts.append(f"few-shot: {row['fewshot_seconds_per_erasure']:.2f} s per erasure ({row['fewshot_steps']} steps, "
                     f"{row['fewshot_seconds_per_step']:.2f} s/step)")
    n_esd, n_spm = published_iterations(esd.ESDConfig), published_iterations(spm.SPMConfig)
    if "esd_seconds_per_iteration_expected" in row:
        part = (f"ESD-{row['esd_train_method']}: {row['esd_seconds_per_iteration_measured']:.2f} s per iteration at "
                f"t_enc={row['esd_t_enc']}, {row['esd_seconds_per_iteration_expected']:.2f} s expected "
                f"({row['esd_ddim_step_seconds']:.3f} s per DDIM step)")
        if f"ratio_esd{n_esd}_to_fewshot" in row:
            part += f", ESD({n_esd} it.)/few-shot = {row[f'ratio_esd{n_esd}_to_fewshot']:.0f}x"
        parts.append(part)
    if "spm_seconds_per_iteration_expected" in row:
        shapes = len(row["spm_latent_shapes"])
        part = (f"SPM: {row['spm_seconds_per_iteration_measured']:.2f} s per iteration at t_enc={row['spm_t_enc']}, "
                f"{row['spm_seconds_per_iteration_full_resolution']:.2f} s expected at full resolution "
                f"({row['spm_ddim_step_seconds']:.3f} s per DDIM step), "
                f"{row['spm_seconds_per_iteration_expected']:.2f} s expected over {shapes} latent shape(s)")
        if f"ratio_spm{n_spm}_to_fewshot" in row:
            part += f", SPM({n_spm} it.)/few-shot = {row[f'ratio_spm{n_spm}_to_fewshot']:.0f}x"
        parts.append(part)
    parts.append(f"peak {row['peak_memory_mb']:.0f} MB")
    return " | ".join(parts)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=512, help="image size in px, a multiple of 64 (512: the paper's)")
    parser.add_argument("--device", default="auto", help="'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:1'...")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        help="the methods to time (default: all three); the ratios need fewshot")
    parser.add_argument("--dtypes", nargs="+", choices=tuple(DTYPES), default=None,
                        help="floating-point types (default: float32 bfloat16 on CPU, float32 float16 bfloat16 on CUDA)")
    parser.add_argument("--slicing", nargs="+", choices=("off", "on"), default=["off", "on"], help="attention slicing")
    parser.add_argument("--esd-train-method", choices=esd.TRAIN_METHODS, default="noxattn", help="ESD-u (noxattn) or ESD-x (xattn)")
    parser.add_argument("--esd-ddim-steps", type=int, default=50, help="DDIM steps of ESD's sampling")
    parser.add_argument("--esd-iteration", choices=("sampled", "fixed-part"), default="sampled",
                        help="'sampled': time the iteration ESD draws with --seed; 'fixed-part': time an iteration "
                        "with t_enc = 0 (everything but the DDIM sampling, which is timed apart; cheaper on a CPU)")
    parser.add_argument("--spm-iteration", choices=("sampled", "fixed-part"), default="sampled",
                        help="'sampled': time, per latent shape, the iteration of the first seed from --seed that draws "
                        "it; 'fixed-part': an iteration with t_enc = 1 (max_denoising_steps=2: one DDIM step, the "
                        "fewest SPM samples; the expected sampling is timed apart; cheaper on a CPU)")
    parser.add_argument("--spm-resolution", choices=("dynamic", "full"), default="dynamic",
                        help="'dynamic': SPM's published random latent size per iteration (one shape at 64 px); "
                        "'full': every latent at --resolution (dynamic_resolution off)")
    parser.add_argument("--scale", choices=sd14.SCALES, default="full", help="'tiny' only checks that the script runs")
    parser.add_argument("--warmup", choices=("auto", "on", "off"), default="auto",
                        help="one untimed few-shot epoch, ESD and SPM iteration before each setting ('auto': on CUDA only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="JSON file of the results (rewritten after each setting)")
    args = parser.parse_args(argv)
    args.methods = list(select_methods(args.methods))
    return args


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
          f"on {device} ({where}), {args.resolution} px; timing {', '.join(args.methods)}", flush=True)
    spm_plan = None
    if "spm" in args.methods:
        spm_plan = plan_spm(pipeline.unet, spm_config(args), args.spm_iteration, args.seed)
        print(f"SPM latent shapes (latent px): {', '.join('x'.join(map(str, s.latent)) for s in spm_plan)}", flush=True)
    images = random_images(4, args.resolution, args.seed)
    record: dict[str, Any] = {
        "benchmark": "few-shot unlearning vs ESD and SPM on the SD v1.4 architecture (random weights)",
        "resolution": args.resolution,
        "scale": args.scale,
        "device": str(device),
        "device_name": where,
        "threads": torch.get_num_threads(),
        "parameters": n_params,
        "methods": args.methods,
        "seed": args.seed,
        "warmup": args.warmup,
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "git_commit": git_commit(),
        "packages": package_versions(),
    }
    if "esd" in args.methods:
        record |= {"esd_ddim_steps": args.esd_ddim_steps, "esd_iterations_projected": published_iterations(esd.ESDConfig)}
    if "spm" in args.methods:
        config = spm_config(args)
        record |= {
            "spm_iterations_projected": published_iterations(spm.SPMConfig),
            "spm_max_denoising_steps": config.max_denoising_steps,
            "spm_expected_t_enc": expected_t_enc(1, config.max_denoising_steps),
            "spm_resolution": args.spm_resolution,
            "spm_latent_sides": spm.latent_sides(pipeline.unet, config.dynamic_resolution),
        }
    rows: list[dict[str, Any]] = []
    for name in dtypes:
        if DTYPES[name] != pipeline.unet.dtype:
            pipeline = pipeline.to(dtype=DTYPES[name])
        for slicing in args.slicing:
            row = run_setting(pipeline, images, slicing == "on", args, spm_plan)
            rows.append(row)
            print(format_row(row), flush=True)
            complete = len(rows) == len(dtypes) * len(args.slicing)
            record |= {"results": rows, "complete": complete, "total_seconds": time.perf_counter() - t0}
            if args.out is not None:  # after each setting, so that a run cut short keeps its rows
                path = write_json(record, args.out.resolve())  # atomic; relative to the current folder
    if args.out is not None:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
