"""Sharded generation: whole batches dealt to processes, so the union of the shards is the
single-process run, file for file and byte for byte."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from diffusers import StableDiffusionPipeline

from erasure_lib.generate import GenerationConfig, generate_to_folder
from erasure_lib.methods import fewshot
from erasure_lib.models import load_pipeline
from erasure_lib.paths import BUILTIN_MODEL_DIR, REPO_ROOT
from erasure_lib.shard import (
    blocks,
    check_prompt_table,
    claim_folder,
    generate_blocks,
    generate_quality_images,
    quality_folder,
    stamp,
)

PROMPTS = ["a photo of a sneaker", "a photo of a trouser", "a photo of a bag",
           "a sketch of a sneaker", "a photo of a dress", "a sepia photo of a coat"]  # fmt: skip
CONFIG = GenerationConfig(num_inference_steps=2, batch_size=2)


@pytest.fixture(scope="module")
def builtin() -> StableDiffusionPipeline:
    if not (BUILTIN_MODEL_DIR / "model_index.json").is_file():
        pytest.skip("the built-in model is missing")
    return load_pipeline("builtin")


@pytest.fixture(scope="module")
def prompt_table() -> pd.DataFrame:
    # Case numbers out of order and not 0..n-1: file names come from the table, not positions.
    return pd.DataFrame({"case_number": [7, 3, 11, 0, 5, 2], "prompt": PROMPTS, "evaluation_seed": [10, 11, 12, 13, 14, 10]})


@pytest.fixture(scope="module")
def single_run(builtin: StableDiffusionPipeline, prompt_table: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("single")
    generate_to_folder(builtin, prompt_table, out, CONFIG, progress_bar=False)
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.png"))}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_blocks_are_the_single_process_batches() -> None:
    assert blocks(6, 2) == [range(0, 2), range(2, 4), range(4, 6)]
    assert blocks(5, 2) == [range(0, 2), range(2, 4), range(4, 5)]
    assert blocks(0, 4) == []
    with pytest.raises(ValueError, match="batch_size"):
        blocks(3, 0)


def test_duplicate_case_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        check_prompt_table(pd.DataFrame({"case_number": [1, 1], "prompt": ["a", "b"], "evaluation_seed": [0, 1]}))


def test_blocks_in_any_order_and_split_give_the_same_files(
    builtin: StableDiffusionPipeline, prompt_table: pd.DataFrame, single_run: dict[str, bytes], tmp_path: Path
) -> None:
    """Two "processes" in one: blocks [2, 0] and [1], in that order."""
    generate_blocks(builtin, prompt_table, tmp_path, [2, 0], CONFIG)
    generate_blocks(builtin, prompt_table, tmp_path, [1], CONFIG)
    assert {p.name: p.read_bytes() for p in sorted(tmp_path.glob("*.png"))} == single_run
    assert sorted(single_run) == sorted(f"{c}.png" for c in prompt_table["case_number"])


def test_two_cpu_processes_under_accelerate_match_one_process(
    prompt_table: pd.DataFrame, single_run: dict[str, bytes], tmp_path: Path
) -> None:
    accelerate = Path(sys.executable).parent / "accelerate"
    if not accelerate.is_file():
        pytest.skip("accelerate's launcher is not installed beside this Python")
    csv = tmp_path / "prompts.csv"
    prompt_table.to_csv(csv, index=False)
    out = tmp_path / "sharded"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
           "-m", "erasure_lib.shard", "--cpu", "--model", "builtin", "--prompts", str(csv), "--out", str(out),
           "--steps", str(CONFIG.num_inference_steps), "--batch-size", str(CONFIG.batch_size), "--threads", "1"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "process 0/2" in proc.stdout and "process 1/2" in proc.stdout, proc.stdout
    assert {p.name: p.read_bytes() for p in sorted(out.glob("*.png"))} == single_run


def test_resume_keeps_existing_images(
    builtin: StableDiffusionPipeline, prompt_table: pd.DataFrame, single_run: dict[str, bytes], tmp_path: Path
) -> None:
    generate_blocks(builtin, prompt_table, tmp_path, [0, 1, 2], CONFIG)
    (tmp_path / "3.png").unlink()
    stamp = (tmp_path / "7.png").stat().st_mtime_ns
    generate_blocks(builtin, prompt_table, tmp_path, [0, 1, 2], CONFIG)
    assert (tmp_path / "7.png").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(single_run)
    shutil.rmtree(tmp_path)


def test_a_saved_erasure_is_generated_as_the_notebook_generates_it(
    builtin: StableDiffusionPipeline, prompt_table: pd.DataFrame, tmp_path: Path
) -> None:
    """``--erasure``: the shard CLI applies a saved erasure to the model; its images and stamp are the
    ones :func:`generate_quality_images` makes in-process from the same erasure, so a notebook reads
    a sharded pre-generation back; the base model's stamp differs, so its images are refused there."""
    result = fewshot.erase(builtin, "sneaker", None, fewshot.FewShotConfig.builtin(zero_shot=True, epochs=1), progress_bar=False)
    result.save(tmp_path / "erasure", base_model="builtin")
    csv = tmp_path / "prompts.csv"
    prompt_table.to_csv(csv, index=False)
    out = quality_folder(tmp_path / "quality", "few-shot", "sneaker", 3)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "erasure_lib.shard", "--cpu", "--model", "builtin", "--erasure", str(tmp_path / "erasure"),
           "--prompts", str(csv), "--n", "4", "--out", str(out), "--steps", str(CONFIG.num_inference_steps),
           "--batch-size", str(CONFIG.batch_size), "--threads", "1"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert out == tmp_path / "quality" / "few-shot" / "sneaker" / "seed-3"
    sharded = {p.name: p.read_bytes() for p in sorted(out.glob("*"))}
    assert len([n for n in sharded if n.endswith(".png")]) == 4 and "generation.json" in sharded
    erased = result.apply(builtin)
    mine = tmp_path / "in-process"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the subprocess's thread count: the same bytes
    try:
        generate_quality_images(erased, prompt_table.iloc[:4], mine, CONFIG)
    finally:
        torch.set_num_threads(threads)
    assert {p.name: p.read_bytes() for p in sorted(mine.glob("*"))} == sharded
    with pytest.raises(ValueError, match="another model or other settings"):
        generate_quality_images(builtin, prompt_table.iloc[:4], out, CONFIG)
    assert stamp(erased, prompt_table, CONFIG)["model_digest"] != stamp(builtin, prompt_table, CONFIG)["model_digest"]


def test_claim_folder_refuses_what_it_cannot_vouch_for(builtin: StableDiffusionPipeline, prompt_table: pd.DataFrame, tmp_path: Path) -> None:
    expected = stamp(builtin, prompt_table, CONFIG)
    assert claim_folder(tmp_path / "new", expected) == tmp_path / "new"
    assert claim_folder(tmp_path / "new", expected) == tmp_path / "new"  # its own stamp: accepted again
    other = stamp(builtin, prompt_table, GenerationConfig(num_inference_steps=3, batch_size=2))
    with pytest.raises(ValueError, match=r"differing: \['generation'\]"):
        claim_folder(tmp_path / "new", other)
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "0.png").write_bytes(b"")
    with pytest.raises(ValueError, match="without a generation.json stamp"):
        claim_folder(tmp_path / "loose", expected)
    assert quality_folder(tmp_path, None) == tmp_path / "base" and quality_folder(tmp_path, "esd", "bag") == tmp_path / "esd" / "bag"
    with pytest.raises(ValueError, match="needs its concept"):
        quality_folder(tmp_path, "esd")
