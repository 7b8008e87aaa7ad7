"""The scale benchmark's functions (benchmarks/scale_benchmark.py): the projection arithmetic on numbers
given by hand, ``--methods`` filtering, SPM's seed plan and timing.

Timings run on conftest's ``tiny_pipeline`` (random weights, 16 px, 8x8 latents: three latent sides for
SPM's dynamic resolution) and, once end to end through ``main``, on SD v1.4's architecture at the
reduced "tiny" width (``--scale tiny``, 64 px). Every number they give is meaningless; the tests check
that the code path runs and that the columns are consistent.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from diffusers import StableDiffusionPipeline

from erasure_lib.methods import esd, spm
from erasure_lib.paths import BUILTIN_MODEL_DIR, REPO_ROOT


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    path = REPO_ROOT / "benchmarks" / "scale_benchmark.py"
    spec = importlib.util.spec_from_file_location("scale_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["scale_benchmark"] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["scale_benchmark"]
        raise
    yield module
    sys.modules.pop("scale_benchmark", None)


def args_for(bench: ModuleType, *options: str) -> object:
    """Parsed options for the 16 px tiny pipeline: no warm-up, the cheap ESD and SPM iterations."""
    return bench.parse_args(["--warmup", "off", "--esd-train-method", "xattn", "--esd-ddim-steps", "4",
                             "--esd-iteration", "fixed-part", "--spm-iteration", "fixed-part", *options])


# --------------------------------------------------------------------------------------------
# Projection arithmetic, by hand
# --------------------------------------------------------------------------------------------


def test_published_iterations_are_the_configs_defaults(bench: ModuleType) -> None:
    assert bench.published_iterations(spm.SPMConfig) == spm.SPMConfig().iterations == 3000
    assert bench.published_iterations(esd.ESDConfig) == esd.ESDConfig(train_method="xattn").iterations == 1000
    with pytest.raises(ValueError, match="iterations"):
        bench.published_iterations(bench.SPMShape)


def test_expected_t_enc(bench: ModuleType) -> None:
    assert bench.expected_t_enc(0, 50) == 24.5  # ESD: randint(0, 50)
    assert bench.expected_t_enc(1, 30) == 15.0  # SPM: randint(1, 30)
    assert bench.expected_t_enc(1, 2) == 1.0  # --spm-iteration fixed-part: max_denoising_steps=2
    assert bench.expected_t_enc(1, 30) == sum(range(1, 30)) / 29
    with pytest.raises(ValueError, match="empty"):
        bench.expected_t_enc(3, 3)


def test_project_iteration_by_hand(bench: ModuleType) -> None:
    # 10 s measured at t_enc 4 with 0.5 s DDIM steps: 8 s fixed, 8 + 15 * 0.5 = 15.5 s at t_enc 15.
    assert bench.project_iteration(10.0, 4, 0.5, 15.0) == (8.0, 15.5)
    # Measured at t_enc 1 (--spm-iteration fixed-part): 3 - 1 = 2 s fixed, 2 + 15 = 17 s expected.
    assert bench.project_iteration(3.0, 1, 1.0, 15.0) == (2.0, 17.0)
    # Timing noise cannot make the fixed part negative.
    assert bench.project_iteration(1.0, 4, 0.5, 15.0) == (0.0, 7.5)


def test_projected_columns_by_hand(bench: ModuleType) -> None:
    assert bench.projected_columns("spm", 15.5, 3000, 5.0) == {
        "spm_3000_iterations_seconds": 46500.0,
        "ratio_spm3000_to_fewshot": 9300.0,
    }
    assert bench.projected_columns("esd", 2.0, 1000, None) == {"esd_1000_iterations_seconds": 2000.0}


# --------------------------------------------------------------------------------------------
# --methods
# --------------------------------------------------------------------------------------------


def test_methods_option(bench: ModuleType) -> None:
    assert bench.parse_args([]).methods == ["fewshot", "esd", "spm"]
    assert bench.parse_args(["--methods", "spm", "fewshot", "spm"]).methods == ["fewshot", "spm"]
    assert bench.select_methods(["esd"]) == ("esd",)
    with pytest.raises(ValueError, match="unknown method"):
        bench.select_methods(["uce"])
    with pytest.raises(ValueError, match="no method"):
        bench.select_methods([])
    with pytest.raises(SystemExit):
        bench.parse_args(["--methods", "uce"])


def test_run_setting_times_only_the_chosen_methods(bench: ModuleType, tiny_pipeline: StableDiffusionPipeline) -> None:
    size = tiny_pipeline.vae_scale_factor * tiny_pipeline.unet.config.sample_size
    images = bench.random_images(4, size, seed=0)
    args = args_for(bench, "--methods", "spm", "--spm-resolution", "full")
    plan = bench.plan_spm(tiny_pipeline.unet, bench.spm_config(args), args.spm_iteration, args.seed)
    with pytest.raises(ValueError, match="spm_plan"):
        bench.run_setting(tiny_pipeline, images, False, args)

    row = bench.run_setting(tiny_pipeline, images, False, args, plan)
    assert not [k for k in row if k.startswith(("fewshot_", "esd_", "ratio_"))]
    assert {"spm_seconds_per_iteration_expected", "spm_3000_iterations_seconds", "spm_trainable_parameters"} <= row.keys()
    assert "SPM: " in bench.format_row(row) and "few-shot" not in bench.format_row(row)

    row = bench.run_setting(tiny_pipeline, images, False, args_for(bench, "--methods", "esd", "fewshot"))
    assert not [k for k in row if k.startswith("spm")]
    assert row["fewshot_steps"] == 8  # the paper's 4 images, batch 2, 4 epochs
    assert row["esd_t_enc"] == 0
    assert row["ratio_esd1000_to_fewshot"] == pytest.approx(
        1000 * row["esd_seconds_per_iteration_expected"] / row["fewshot_seconds_per_erasure"]
    )
    assert "ESD(1000 it.)/few-shot" in bench.format_row(row)


# --------------------------------------------------------------------------------------------
# SPM
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("iteration", ["sampled", "fixed-part"])
def test_spm_plan_covers_every_latent_shape(bench: ModuleType, tiny_pipeline: StableDiffusionPipeline,
                                            iteration: str) -> None:
    unet = tiny_pipeline.unet
    config = spm.SPMConfig(seed=5)
    sides = spm.latent_sides(unet, config.dynamic_resolution)
    assert len(sides) == 3  # a 2-level U-Net at 8x8 latents: 4, 6, 8
    plan = bench.plan_spm(unet, config, iteration, start=5)
    assert [tuple(sorted(s.latent)) for s in plan] == [(a, b) for i, a in enumerate(sides) for b in sides[i:]]
    assert sum(s.probability for s in plan) == pytest.approx(1.0)
    assert [s.probability for s in plan if s.latent[0] == s.latent[1]] == [1 / 9] * 3
    for shape in plan:
        assert shape.seed >= 5
        assert bench.spm_draws(unet, bench.timed_spm_config(config, iteration, shape.seed), shape.seed) == (
            shape.t_enc, shape.latent)
        if iteration == "fixed-part":
            assert shape.t_enc == 1

    full = bench.plan_spm(unet, spm.SPMConfig(dynamic_resolution=False), iteration, start=5)
    assert [(s.latent, s.probability, s.seed) for s in full] == [((8, 8), 1.0, 5)]


def test_spm_draws_replay_erase(bench: ModuleType, tiny_pipeline: StableDiffusionPipeline) -> None:
    """spm_draws gives the t_enc and latent size that spm.erase records for its first iteration."""
    for seed in (0, 1):
        config = spm.SPMConfig(iterations=1, max_denoising_steps=4, seed=seed)
        result = spm.erase(tiny_pipeline, "sneaker", None, config, progress_bar=False)
        recorded = (result.info.stop_steps[0], tuple(result.info.latent_sizes[0]))
        assert bench.spm_draws(tiny_pipeline.unet, result.config, seed) == recorded


def test_time_spm_positive_finite_and_consistent(bench: ModuleType, tiny_pipeline: StableDiffusionPipeline) -> None:
    config = spm.SPMConfig(seed=0)
    plan = bench.plan_spm(tiny_pipeline.unet, config, "fixed-part", start=0)
    row = bench.time_spm(tiny_pipeline, config, plan, "fixed-part")
    seconds = [v for k, v in row.items() if k.endswith("_seconds") or "seconds_per" in k]
    seconds += [s[k] for s in row["spm_latent_shapes"] for k in s if "seconds" in k]
    assert len(seconds) == 5 + 3 * len(plan)
    assert all(math.isfinite(v) and v >= 0 for v in seconds)
    assert row["spm_seconds_per_iteration_measured"] > 0 and row["spm_ddim_step_seconds"] > 0
    assert row["spm_seconds_per_iteration_expected"] > 0

    # Each shape: the fixed part (measured less one DDIM step) plus 15 expected DDIM steps.
    for shape in row["spm_latent_shapes"]:
        fixed = max(shape["seconds_per_iteration_measured"] - shape["ddim_step_seconds"], 0.0)
        assert shape["t_enc"] == 1
        assert shape["seconds_per_iteration_expected"] == pytest.approx(fixed + 15 * shape["ddim_step_seconds"])
    expected = sum(s["probability"] * s["seconds_per_iteration_expected"] for s in row["spm_latent_shapes"])
    assert row["spm_seconds_per_iteration_expected"] == pytest.approx(expected)
    assert row["spm_seconds_per_iteration_full_resolution"] == row["spm_latent_shapes"][-1]["seconds_per_iteration_expected"]
    assert row["spm_latent_shapes"][-1]["latent"] == [8, 8]
    assert row["spm_3000_iterations_seconds"] == pytest.approx(3000 * expected)
    assert row["spm_trainable_parameters"] > 0 and row["spm_iteration"] == "fixed-part"


def test_main_on_the_sd14_architecture(bench: ModuleType, tmp_path: Path) -> None:
    """``--scale tiny``: SD v1.4's module tree at reduced width, 64 px (one latent size), SPM only."""
    if not (BUILTIN_MODEL_DIR / "tokenizer").is_dir():
        pytest.skip("the repository's CLIP tokenizer (models/builtin/tokenizer) is missing")
    out = tmp_path / "bench.json"
    threads = torch.get_num_threads()
    assert bench.main(["--scale", "tiny", "--resolution", "64", "--device", "cpu", "--threads", str(threads),
                       "--methods", "spm", "--dtypes", "float32", "--slicing", "off", "--spm-iteration",
                       "fixed-part", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["complete"] and record["methods"] == ["spm"]
    assert record["spm_iterations_projected"] == 3000 and record["spm_expected_t_enc"] == 15.0
    assert record["spm_latent_sides"] == [8] and "esd_iterations_projected" not in record
    (row,) = record["results"]
    assert not [k for k in row if k.startswith(("fewshot_", "esd_", "ratio_"))]
    assert row["spm_adapted_layers"] == 64  # SD v1.4's 16 cross-attentions, 4 projections each
    assert row["spm_seconds_per_iteration_expected"] == row["spm_seconds_per_iteration_full_resolution"] > 0
