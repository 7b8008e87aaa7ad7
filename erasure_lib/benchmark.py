"""Erasure time and peak memory of each method, measured the same way (paper, Sec. 4.3).

Each measurement runs in a fresh spawned process, one after another, so a method's peak resident
memory is its own (``ru_maxrss`` after loading the model, and after erasing). Times are wall-clock
seconds of the optimization loop and of the whole erasure, as the methods report them.
"""

from __future__ import annotations

import multiprocessing
import resource
from pathlib import Path
from typing import Any


def _measure(
    model: str, method: str, concept: str, images: list[str] | None, config: Any, threads: int, device: str, dtype: str, queue: Any
) -> None:
    import torch

    from erasure_lib.experiment import torch_dtype
    from erasure_lib.methods import get_method
    from erasure_lib.models import load_pipeline

    torch.set_num_threads(threads)
    pipeline = load_pipeline(model, device=device, dtype=torch_dtype(dtype))
    loaded_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cuda = pipeline.device.type == "cuda"
    if cuda:
        loaded_gpu = torch.cuda.memory_allocated(pipeline.device)
        torch.cuda.reset_peak_memory_stats(pipeline.device)
    result = get_method(method)(pipeline, concept, images, config, progress_bar=False)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {
        "optimization_seconds": result.optimization_seconds,
        "total_seconds": result.total_seconds,
        "peak_memory_mb": peak_kb / 1024,
        "erasure_memory_mb": (peak_kb - loaded_kb) / 1024,
    }
    if cuda:  # on a GPU the device's memory is the one that matters
        peak_gpu = torch.cuda.max_memory_allocated(pipeline.device)
        out |= {"peak_gpu_memory_mb": peak_gpu / 2**20, "erasure_gpu_memory_mb": (peak_gpu - loaded_gpu) / 2**20}
    queue.put(out)


def measure_erasure(
    model: str,
    method: str,
    concept: str,
    images: list[Path] | None,
    config: Any,
    threads: int = 2,
    timeout: float = 3600.0,
    device: str = "cpu",
    dtype: str = "float32",
) -> dict[str, float]:
    """Erase ``concept`` with ``method`` in a fresh process on ``device``; its times and peak resident
    memory (MB), and on CUDA the peak GPU memory too."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    paths = [str(p) for p in images] if images is not None else None
    process = context.Process(target=_measure, args=(model, method, concept, paths, config, threads, device, dtype, queue))
    process.start()
    try:
        out = queue.get(timeout=timeout)
    finally:
        process.join(timeout=60)
        if process.is_alive():
            process.kill()
    if process.exitcode not in (0, None):
        raise RuntimeError(f"measuring {method} on {concept!r} failed (exit code {process.exitcode})")
    return out


def generation_throughput(pipeline: Any, n_images: int, steps: tuple[int, ...], guidance_scale: float, seed: int = 0) -> dict[str, Any]:
    """Images per second of ``generate`` for each number of sampling steps (one batch, CPU generators)."""
    import time

    from erasure_lib.generate import GenerationConfig, generate

    prompts = ["a photo of a sneaker"] * n_images
    seeds = [seed + k for k in range(n_images)]
    rates = {}
    for n_steps in steps:
        config = GenerationConfig(num_inference_steps=n_steps, guidance_scale=guidance_scale, batch_size=n_images)
        t0 = time.perf_counter()
        generate(pipeline, prompts, seeds, config, progress_bar=False)
        rates[str(n_steps)] = n_images / (time.perf_counter() - t0)
    return {"images_per_second": rates, "n_images": n_images, "guidance_scale": guidance_scale}
