"""Generation: prompts and seeds in, images out; one CPU generator per image; resumable folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from diffusers import StableDiffusionPipeline
from PIL import Image

from erasure_lib.generate import (
    GenerationConfig,
    generate,
    generate_from_embeddings,
    generate_grid,
    generate_to_folder,
    read_prompt_csv,
    to_tensor,
    with_sampler,
)

FAST = GenerationConfig(num_inference_steps=2, batch_size=8)


def pixels(images: list[Image.Image]) -> list[np.ndarray]:
    return [np.asarray(im) for im in images]


def test_same_prompt_and_seed_give_identical_images(tiny_pipeline: StableDiffusionPipeline) -> None:
    prompts = ["a photo of a sneaker", "a photo of a sneaker", "a photo of a bag"]
    a = generate(tiny_pipeline, prompts, [5, 5, 5], FAST, progress_bar=False)
    b = generate(tiny_pipeline, prompts, [5, 5, 5], FAST, progress_bar=False)
    assert len(a) == 3 and all(isinstance(im, Image.Image) and im.size == (16, 16) for im in a)
    assert [x.tobytes() for x in a] == [x.tobytes() for x in b]
    assert a[0].tobytes() == a[1].tobytes()  # each image depends only on its own (prompt, seed)


def test_different_seeds_give_different_images(tiny_pipeline: StableDiffusionPipeline) -> None:
    a, b = generate(tiny_pipeline, ["a photo of a sneaker"] * 2, [1, 2], FAST, progress_bar=False)
    assert np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).mean() > 1.0


def test_image_does_not_depend_on_its_batch(tiny_pipeline: StableDiffusionPipeline) -> None:
    prompts = ["a photo of a sneaker", "a photo of a bag", "a photo of a coat"]
    seeds = [11, 12, 13]
    together = generate(tiny_pipeline, prompts, seeds, FAST, progress_bar=False)
    one_by_one = generate(
        tiny_pipeline, prompts, seeds, GenerationConfig(num_inference_steps=2, batch_size=1), progress_bar=False
    )
    alone = generate(tiny_pipeline, prompts[2:], seeds[2:], FAST, progress_bar=False)
    for x, y in zip(pixels(together), pixels(one_by_one), strict=True):
        assert np.abs(x.astype(int) - y.astype(int)).max() <= 1  # batched matmuls may round differently
    assert np.abs(pixels(together)[2].astype(int) - pixels(alone)[0].astype(int)).max() <= 1


@pytest.mark.parametrize(("prompts", "seeds"), [(["a", "b"], [1]), (["a"], [1, 2]), ([], [3])])
def test_mismatched_lengths(tiny_pipeline: StableDiffusionPipeline, prompts: list[str], seeds: list[int]) -> None:
    with pytest.raises(ValueError, match="seed"):
        generate(tiny_pipeline, prompts, seeds, FAST, progress_bar=False)


def test_explicit_size(tiny_pipeline: StableDiffusionPipeline) -> None:
    config = GenerationConfig(num_inference_steps=2, height=32, width=24)
    (image,) = generate(tiny_pipeline, ["a photo of a bag"], [0], config, progress_bar=False)
    assert image.size == (24, 32)


def test_generate_grid(tiny_pipeline: StableDiffusionPipeline) -> None:
    prompts, seeds = ["a photo of a sneaker", "a photo of a bag"], [1, 2, 3]
    grid = generate_grid(tiny_pipeline, prompts, seeds, FAST, progress_bar=False)
    assert [len(row) for row in grid] == [3, 3]
    (single,) = generate(tiny_pipeline, [prompts[1]], [seeds[2]], FAST, progress_bar=False)
    assert np.abs(np.asarray(grid[1][2], dtype=int) - np.asarray(single, dtype=int)).max() <= 1


def _table(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "case_number": range(n),
            "prompt": [f"a photo of a {c}" for c in ("sneaker", "bag", "coat")][:n],
            "evaluation_seed": [7, 8, 9][:n],
        }
    )


def test_generate_to_folder_and_resume(tiny_pipeline: StableDiffusionPipeline, tmp_path: Path) -> None:
    out = tmp_path / "images"
    paths = generate_to_folder(tiny_pipeline, _table(), out, FAST, progress_bar=False)
    assert paths == [out / "0.png", out / "1.png", out / "2.png"]
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "1.png", "2.png"]  # no temp files left
    first = {p.name: p.read_bytes() for p in paths}
    (single,) = generate(tiny_pipeline, ["a photo of a bag"], [8], FAST, progress_bar=False)
    assert np.abs(np.asarray(Image.open(paths[1]), dtype=int) - np.asarray(single, dtype=int)).max() <= 1

    # An existing image is kept as it is, even if it is not what the model would draw; a missing one is made.
    sentinel = Image.new("RGB", (16, 16), (1, 2, 3))
    sentinel.save(paths[0])
    sentinel_bytes, sentinel_mtime = paths[0].read_bytes(), paths[0].stat().st_mtime_ns
    paths[2].unlink()
    again = generate_to_folder(tiny_pipeline, _table(), out, FAST, progress_bar=False)
    assert again == paths
    assert paths[0].read_bytes() == sentinel_bytes and paths[0].stat().st_mtime_ns == sentinel_mtime
    assert paths[1].read_bytes() == first["1.png"]
    assert paths[2].read_bytes() == first["2.png"]  # regenerated identically


def test_generate_to_folder_with_nothing_to_do(tiny_pipeline: StableDiffusionPipeline, tmp_path: Path) -> None:
    out = tmp_path / "images"
    out.mkdir()
    for i in range(3):
        Image.new("RGB", (4, 4)).save(out / f"{i}.png")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    generate_to_folder(tiny_pipeline, _table(), out, FAST, progress_bar=False)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before


def test_read_prompt_csv(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(
        'case_number,prompt,evaluation_seed,class\n0,a photo of a bag,10000,bag\n1,"a photo, of a coat",10001,coat\n'
    )
    df = read_prompt_csv(good)
    assert list(df["prompt"]) == ["a photo of a bag", "a photo, of a coat"]
    assert list(df["evaluation_seed"]) == [10000, 10001]


def test_read_prompt_csv_requires_evaluation_seed(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("case_number,prompt,seed\n0,a photo of a bag,1\n")
    with pytest.raises(ValueError, match="evaluation_seed") as err:
        read_prompt_csv(bad)
    assert "bad.csv" in str(err.value)


@pytest.mark.parametrize(
    ("options", "word"),
    [
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"num_inference_steps": 2.5}, "num_inference_steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"guidance_scale": float("nan")}, "guidance_scale"),
        ({"guidance_scale": float("inf")}, "guidance_scale"),
        ({"guidance_scale": -0.5}, "guidance_scale"),
        ({"height": 0}, "height"),
        ({"width": -8}, "width"),
        ({"sampler": "euler"}, "sampler"),
    ],
)
def test_generation_config_rejects_bad_settings(options: dict[str, object], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        GenerationConfig(**options)  # type: ignore[arg-type]


def test_generation_config_accepts_numpy_numbers_and_no_guidance() -> None:
    config = GenerationConfig(num_inference_steps=np.int64(3), guidance_scale=np.float32(0.0), batch_size=1, height=16)
    assert config.num_inference_steps == 3 and config.guidance_scale == 0.0


@pytest.mark.parametrize(
    ("rows", "words"),
    [
        # the bad row starts on line 4: the prompt of the row before spans lines 2 and 3
        ('0,"a photo,\nof a bag",1\n1,a photo of a coat,1.5\n', ["line 4", "case_number 1", "column evaluation_seed", "'1.5'"]),
        ("0,a photo of a bag,1\n\n7,a photo of a coat,\n", ["line 4", "case_number 7", "column evaluation_seed", "''"]),
        ("0,a photo of a bag,1\nseven,a photo of a coat,2\n", ["line 3", "case_number 'seven'", "column case_number"]),
        ("4,a photo of a bag,1\n4,a photo of a coat,2\n", ["line 3", "case_number 4", "repeats line 2", "unique"]),
    ],
)
def test_read_prompt_csv_names_the_file_row_and_column(rows: str, words: list[str], tmp_path: Path) -> None:
    bad = tmp_path / "prompts.csv"
    bad.write_text("case_number,prompt,evaluation_seed\n" + rows)
    with pytest.raises(ValueError) as err:
        read_prompt_csv(bad)
    message = str(err.value)
    assert message.startswith(str(bad)) and all(w in message for w in words), message


def test_read_prompt_csv_types_and_verbatim_prompts(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    # "10001.0": pandas writes integers so once a column held a missing value; "NA" is a prompt, not a gap.
    good.write_text("case_number,prompt,evaluation_seed,score\n0,NA,10000,0.5\n1,,10001.0,0.25\n")
    df = read_prompt_csv(good)
    assert list(df["prompt"]) == ["NA", ""]
    assert df["case_number"].dtype == np.int64 and df["evaluation_seed"].dtype == np.int64
    assert list(df["evaluation_seed"]) == [10000, 10001] and list(df["score"]) == [0.5, 0.25]


def test_read_prompt_csv_of_an_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty.csv is empty"):
        read_prompt_csv(empty)


def test_generate_to_folder_checks_the_table_before_making_the_folder(tiny_pipeline: StableDiffusionPipeline, tmp_path: Path) -> None:
    table = _table().astype({"evaluation_seed": object})
    table.loc[1, "evaluation_seed"] = "eight"
    out = tmp_path / "images"
    with pytest.raises(ValueError, match=r"row 2 \(case_number 1\): column evaluation_seed"):
        generate_to_folder(tiny_pipeline, table, out, FAST, progress_bar=False)
    assert not out.exists()


def test_to_tensor() -> None:
    images = [Image.new("RGB", (5, 4), (255, 0, 0)), Image.new("L", (5, 4), 51)]
    x = to_tensor(images)
    assert x.shape == (2, 3, 4, 5) and x.dtype == torch.float32
    torch.testing.assert_close(x[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(x[1, :, 0, 0], torch.full((3,), 0.2))


def test_generate_from_embeddings_is_generate_of_the_encoded_prompts(tiny_pipeline: StableDiffusionPipeline) -> None:
    prompts, seeds = ["a photo of a church", "a photo of a tench", "a photo of a church"], [3, 4, 5]
    config = GenerationConfig(num_inference_steps=2, batch_size=2)
    with torch.no_grad():
        ids = tiny_pipeline.tokenizer(prompts + [""], padding="max_length", max_length=tiny_pipeline.tokenizer.model_max_length,
                                      return_tensors="pt").input_ids  # fmt: skip
        encoded = tiny_pipeline.text_encoder(ids)[0]
    images = generate_from_embeddings(tiny_pipeline, encoded[:3], encoded[3:].expand(3, -1, -1), seeds, config, progress_bar=False)
    expected = generate(tiny_pipeline, prompts, seeds, config, progress_bar=False)
    assert [np.asarray(a).tolist() for a in images] == [np.asarray(b).tolist() for b in expected]
    with pytest.raises(ValueError, match="one of each per image"):
        generate_from_embeddings(tiny_pipeline, encoded[:3], encoded[3:].expand(3, -1, -1), seeds[:2], config)


def test_other_samplers_share_the_model_and_its_noise_schedule(tiny_pipeline: StableDiffusionPipeline) -> None:
    """"model" is the pipeline itself; DPM-Solver++ and DDIM (x_0 not clipped) replace only the
    scheduler, built from the model's own; the pipeline passed in keeps its scheduler."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    own = tiny_pipeline.scheduler
    assert with_sampler(tiny_pipeline, "model") is tiny_pipeline
    dpm, ddim = with_sampler(tiny_pipeline, "dpm-solver++"), with_sampler(tiny_pipeline, "ddim")
    assert isinstance(dpm.scheduler, DPMSolverMultistepScheduler) and isinstance(ddim.scheduler, DDIMScheduler)
    assert ddim.scheduler.config.clip_sample is False and tiny_pipeline.scheduler is own
    assert dpm.unet is tiny_pipeline.unet and dpm.text_encoder is tiny_pipeline.text_encoder
    for swapped in (dpm, ddim):
        assert swapped.scheduler.config.beta_schedule == own.config.beta_schedule
        assert torch.equal(swapped.scheduler.alphas_cumprod, own.alphas_cumprod)
    with pytest.raises(ValueError, match="sampler"):
        with_sampler(tiny_pipeline, "euler")  # type: ignore[arg-type]


def test_generation_with_another_sampler_is_seeded_and_differs(tiny_pipeline: StableDiffusionPipeline) -> None:
    prompts, seeds = ["a photo of a sneaker"] * 2, [0, 1]
    fast = GenerationConfig(num_inference_steps=3, batch_size=8, sampler="dpm-solver++")
    first, again = generate(tiny_pipeline, prompts, seeds, fast, progress_bar=False), generate(tiny_pipeline, prompts, seeds, fast, progress_bar=False)
    assert all(np.array_equal(a, b) for a, b in zip(pixels(first), pixels(again)))
    plain = generate(tiny_pipeline, prompts, seeds, GenerationConfig(num_inference_steps=3, batch_size=8), progress_bar=False)
    assert not all(np.array_equal(a, b) for a, b in zip(pixels(first), pixels(plain)))
    assert type(tiny_pipeline.scheduler).__name__ != "DPMSolverMultistepScheduler"  # not swapped in place
