"""The command line: --help documents every option; bad input exits non-zero with one line."""

from __future__ import annotations

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
def test_bad_input_gives_one_line_and_exit_2(argv, message, tmp_path, saved_pipeline_dir, concept_dir):
    values = {"missing": str(tmp_path / "missing"), "out": str(tmp_path / "out"), "saved": str(saved_pipeline_dir), "images": str(concept_dir)}
    argv = [a.format(**values) for a in argv]
    proc = subprocess.run([sys.executable, "-m", "erasure_lib", *argv], capture_output=True, text=True)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and message in last
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
