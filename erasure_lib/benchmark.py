"""Erasure time and peak memory of each method, measured the same way (paper, Sec. 4.3).

Each measurement runs in a fresh spawned process, one after another, so a method's peak resident
memory is its own (``ru_maxrss`` after loading the model, and after erasing). Times are wall-clock
seconds of the optimization loop and of the whole erasure, as the methods report them.
"""

from __future__ import annotations

import multiprocessing
import resource
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm


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


def time_methods(
    model: str,
    variants: Mapping[str, tuple[str, Any]],
    classes: Sequence[str],
    images: Callable[[str], Sequence[Path] | None],
    threads: int = 2,
    device: str = "cpu",
    dtype: str = "float32",
    classes_of: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Every variant (label -> (method name, config), e.g. from
    :func:`erasure_lib.experiment.timed_methods`) erases the classes ``classes_of[label]`` (default:
    ``classes``) with the images ``images(concept)``, each in a fresh process, one after another on
    the same machine (Sec. 4.3): one row per class and variant (``method`` is the variant's label)
    with :func:`measure_erasure`'s times and memory. ``classes_of`` lets a slow variant (ESD's 1000
    iterations) be timed on fewer classes; :func:`time_summary` then compares it with few-shot on
    those classes only."""
    classes_of = dict(classes_of or {})
    unknown = sorted(set(classes_of) - set(variants))
    if unknown:
        raise ValueError(f"classes_of names variants that are not timed: {unknown}")
    jobs = [(c, label) for c in classes for label in variants if c in classes_of.get(label, classes)]
    jobs += [(c, label) for label, extra in classes_of.items() for c in extra if c not in classes]
    rows = []
    for concept, label in tqdm(jobs, desc="erasure times"):
        method, config = variants[label]
        measured = measure_erasure(model, method, concept, images(concept), config, threads=threads, device=device, dtype=dtype)
        rows.append({"method": label, "erased_class": concept} | measured)
    return pd.DataFrame(rows)


def time_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per method (variant label) of :func:`time_methods`' rows: the erased classes it was timed on,
    the median optimization and total seconds over them, the ratio of that median to few-shot
    unlearning's median over the **same classes** (the paper's "times faster"), and the largest peak
    resident memory."""
    fewshot = runs[runs.method == "fewshot"].set_index("erased_class")
    rows = []
    for method, part in runs.groupby("method"):
        missing = sorted(set(part.erased_class) - set(fewshot.index))
        if missing:
            raise ValueError(f"the ratio of {method!r} needs few-shot unlearning ('fewshot') timed on {missing} too")
        rows.append({"method": method, "classes": " ".join(sorted(part.erased_class)),
                     "seconds_median": part.optimization_seconds.median(),
                     "ratio_to_fewshot": part.optimization_seconds.median() / fewshot.loc[part.erased_class, "optimization_seconds"].median(),
                     "peak_memory_mb": part.peak_memory_mb.max(), "total_seconds_median": part.total_seconds.median()})  # fmt: skip
    return pd.DataFrame(rows)


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
