"""The command line: --help documents every option; bad input exits non-zero with one line."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from erasure_lib import cli


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["erase", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--model", "--concept", "--images", "--out", "--concept-type", "--trainable", "--optimizer", "--lr",
                   "--epochs", "--batch-size", "--seed", "--resolution", "--zero-shot", "--keep-checkpoints", "--overwrite"):
        assert option in text
    for choice in ("mlp-final-attn", "mlp-only", "attn-only", "mlp-attn", "all"):
        assert choice in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["erase", "--model", "no such model", "--concept", "x", "--images", "{missing}", "--out", "{out}"], "unknown model"),
        (["erase", "--model", "{saved}", "--concept", "sneaker", "--images", "{missing}", "--out", "{out}"], "does not exist"),
        (["erase", "--model", "{saved}", "--concept", "", "--images", "{images}", "--out", "{out}"], "empty"),
        (["erase", "--model", "{saved}", "--concept", "sneaker", "--out", "{out}"], "--images is required"),
        (["generate", "--model", "{saved}", "--out", "{out}"], "--prompt"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(argv, message, tmp_path, saved_pipeline_dir, concept_dir, capfd):
    values = {"missing": str(tmp_path / "missing"), "out": str(tmp_path / "out"), "saved": str(saved_pipeline_dir), "images": str(concept_dir)}
    argv = [a.format(**values) for a in argv]
    assert cli.main(argv) == 2
    last = capfd.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error:") and message in last
    assert not (tmp_path / "out").exists()


def test_bad_input_exits_2_from_a_fresh_process(tmp_path, concept_dir):
    """``python -m erasure_lib`` turns main's 2 into the exit status (in-process calls above cover each message)."""
    proc = subprocess.run([sys.executable, "-m", "erasure_lib", "erase", "--model", "no such model", "--concept", "x",
                           "--images", str(concept_dir), "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: unknown model")
    assert not (tmp_path / "out").exists()


def test_erase_then_generate_end_to_end(tmp_path, saved_pipeline_dir, concept_dir):
    out = tmp_path / "erased"
    code = cli.main(["erase", "--model", str(saved_pipeline_dir), "--concept", "sneaker", "--images", str(concept_dir),
                     "--out", str(out), "--epochs", "1", "--lr", "1e-3", "--no-progress"])
    assert code == 0
    assert (out / "text_encoder" / "model.safetensors").is_file() and (out / "erasure.json").is_file()
    assert cli.main(["erase", "--model", str(saved_pipeline_dir), "--concept", "sneaker", "--images", str(concept_dir), "--out", str(out)]) == 2
    samples = tmp_path / "samples"
    code = cli.main(["generate", "--model", str(saved_pipeline_dir), "--text-encoder", str(out), "--prompt", "a photo of a sneaker",
                     "--seeds", "0", "1", "--steps", "2", "--out", str(samples), "--no-progress"])
    assert code == 0
    assert sorted(p.name for p in samples.iterdir()) == ["0.png", "1.png"]


# --------------------------------------------------------------------------------------------
# A diverged erasure (issue 12): one line naming the step and the learning rate, exit 2, no --out
# --------------------------------------------------------------------------------------------


def test_diverging_erase_of_the_builtin_model_exits_2_and_saves_nothing(tmp_path, concept_dir, capfd):
    out = tmp_path / "erased"
    code = cli.main(["erase", "--model", "builtin", "--concept", "sneaker", "--images", str(concept_dir),
                     "--out", str(out), "--lr", "1e12", "--no-progress"])
    err = capfd.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error:") and "non-finite" in lines[0]
    assert re.search(r"step \d+", lines[0]) and "lr 1e+12" in lines[0]
    assert not out.exists()


def test_non_finite_loss_error_is_one_line_and_exit_2(tmp_path, monkeypatch, capfd):
    """The CLI's handling alone: the erasure and the model loading are stand-ins."""
    import erasure_lib.methods.fewshot as fewshot
    import erasure_lib.models as models
    from erasure_lib.methods.base import NonFiniteLossError

    def diverge(*args, **kwargs):
        raise NonFiniteLossError("fewshot", 3, 1e12)

    monkeypatch.setattr(fewshot, "erase", diverge)
    monkeypatch.setattr(models, "load_pipeline", lambda *args, **kwargs: object())
    out = tmp_path / "erased"
    code = cli.main(["erase", "--concept", "sneaker", "--images", str(tmp_path), "--out", str(out), "--lr", "1e12"])
    captured = capfd.readouterr()
    assert code == 2
    assert captured.err.strip().splitlines() == [
        "error: fewshot: the loss became non-finite at optimizer step 3 (lr 1e+12); "
        "the run was stopped and nothing was saved; use a smaller learning rate"
    ]
    assert captured.out == "" and not out.exists()


# --------------------------------------------------------------------------------------------
# Bad generation settings and prompt CSVs: checked before the model loads or --out is made
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--steps", "0"], ["num_inference_steps", "got 0"]),
        (["--steps", "-3"], ["num_inference_steps", "got -3"]),
        (["--batch-size", "0"], ["batch_size", "got 0"]),
        (["--guidance", "nan"], ["guidance_scale", "nan"]),
        (["--guidance", "-1"], ["guidance_scale", "-1"]),
    ],
)
def test_bad_generation_settings_exit_2(options, words, tmp_path, capfd):
    out = tmp_path / "samples"
    code = cli.main(["generate", "--prompt", "a photo of a sneaker", "--out", str(out), *options])
    lines = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:")
    assert all(w in lines[0] for w in words), lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("case_number,prompt,evaluation_seed\n0,a photo of a bag,1\n1,a photo of a coat,seven\n",
         ["line 3", "case_number 1", "evaluation_seed", "'seven'"]),
        ("case_number,prompt,evaluation_seed\n0,a photo of a bag,1\nx,a photo of a coat,2\n",
         ["line 3", "case_number 'x'", "column case_number"]),
        ("case_number,prompt,evaluation_seed\n0,a photo of a bag,1\n0,a photo of a coat,2\n", ["line 3", "unique"]),
        ("case_number,prompt,seed\n0,a photo of a bag,1\n", ["missing column", "evaluation_seed"]),
        ("", ["empty"]),
    ],
)
def test_bad_prompt_csv_names_file_row_and_column(text, words, tmp_path, capfd):
    csv = tmp_path / "prompts.csv"
    csv.write_text(text)
    out = tmp_path / "samples"
    code = cli.main(["generate", "--prompts-csv", str(csv), "--out", str(out)])
    lines = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:")
    assert str(csv) in lines[0] and all(w in lines[0] for w in words), lines[0]
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# Quiet unless something is wrong: no library warnings or loading bars, the work's own bars kept
# --------------------------------------------------------------------------------------------

NOISE = ("torchvision", "Loading pipeline components", "Loading weights")


def test_generate_prints_no_library_noise(tmp_path, capfd):
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    out = tmp_path / "samples"
    code = cli.main(["generate", "--prompt", "a photo of a sneaker", "--steps", "2", "--out", str(out)])
    captured = capfd.readouterr()
    assert code == 0 and (out / "0.png").is_file()
    assert not [word for word in NOISE if word in captured.err], captured.err
    assert "generating" in captured.err  # the work's own progress bar stays
    assert transformers_logging.get_verbosity() == verbosity  # the libraries' settings are put back


def test_a_fresh_process_prints_no_library_noise(tmp_path):
    """transformers warns about torchvision as diffusers is first imported: only a new process shows it."""
    out = tmp_path / "samples"
    proc = subprocess.run([sys.executable, "-m", "erasure_lib", "generate", "--prompt", "a photo of a sneaker",
                           "--steps", "2", "--out", str(out), "--no-progress"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout.strip() == f"wrote 1 images to {out}"
