"""The real CLIP BPE tokenizer of SD 1.x: committed files and the offline builder."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from transformers import CLIPTokenizer

from erasure_lib.paths import BUILTIN_MODEL_DIR
from erasure_lib.tokenizer import N_MERGES, _bytes_to_unicode, write_clip_tokenizer_files

# OpenAI CLIP / SD 1.x token ids of "a photo of a cat".
CAT_IDS = [49406, 320, 1125, 539, 320, 2368, 49407]


def test_committed_tokenizer_matches_clip(tokenizer_dir: Path) -> None:
    # The brief names BUILTIN_MODEL_DIR/"tokenizer"; tokenizer_dir is a copy of it (and skips if absent).
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    assert tokenizer("a photo of a cat").input_ids == CAT_IDS
    assert len(tokenizer) == 49408
    assert tokenizer.pad_token_id == 49407
    assert tokenizer.bos_token_id == 49406
    assert tokenizer.eos_token_id == 49407


def test_committed_tokenizer_loads_from_its_own_folder() -> None:
    folder = BUILTIN_MODEL_DIR / "tokenizer"
    if not folder.is_dir():
        pytest.skip(f"{folder} is missing")
    assert CLIPTokenizer.from_pretrained(folder)("a photo of a cat").input_ids == CAT_IDS


def test_tokenizer_pads_to_max_length_with_eos(tokenizer: CLIPTokenizer) -> None:
    ids = tokenizer(
        ["a photo of a cat"], padding="max_length", max_length=tokenizer.model_max_length, truncation=True
    ).input_ids[0]
    assert len(ids) == tokenizer.model_max_length == 32
    assert ids[: len(CAT_IDS)] == CAT_IDS
    assert set(ids[len(CAT_IDS) :]) == {49407}


def test_bytes_to_unicode_is_a_bijection_of_256_printable_symbols() -> None:
    table = _bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert all(ch.isprintable() and not ch.isspace() for ch in table.values())


def bpe_file_from_committed_merges(dest: Path) -> Path:
    """OpenAI's ``bpe_simple_vocab_16e6.txt.gz`` as far as the builder reads it, from committed files.

    The real file (fetched once into the git-ignored ``.cache/``) is a header line, then merges, one
    per line; the builder keeps the first ``N_MERGES``. The committed ``merges.txt`` holds exactly
    those under its own header. Merges past ``N_MERGES`` follow, as in the real file, to be ignored.
    """
    merges = (BUILTIN_MODEL_DIR / "tokenizer" / "merges.txt").read_text(encoding="utf-8").splitlines()[1:]
    assert len(merges) == N_MERGES
    extra = ["c at</w>", "ph oto</w>"]  # not CLIP's: using them would change the ids checked below
    with gzip.open(dest, "wt", encoding="utf-8") as f:
        f.write("\n".join(["bpe_simple_vocab_16e6.txt#version: 0.2", *merges, *extra]) + "\n")
    return dest


def test_write_clip_tokenizer_files_reproduces_clip_ids(tmp_path: Path) -> None:
    # Built from files in the repository, so it runs on a fresh clone (no .cache/, no network).
    bpe = bpe_file_from_committed_merges(tmp_path / "bpe_simple_vocab_16e6.txt.gz")
    built = write_clip_tokenizer_files(bpe, tmp_path / "tok", model_max_length=77)
    assert built("a photo of a cat").input_ids == CAT_IDS
    for name in ("vocab.json", "merges.txt"):
        assert (tmp_path / "tok" / name).is_file()
    committed = BUILTIN_MODEL_DIR / "tokenizer"
    assert json.loads((tmp_path / "tok" / "vocab.json").read_text(encoding="utf-8")) == json.loads(
        (committed / "vocab.json").read_text(encoding="utf-8")
    )
    assert (tmp_path / "tok" / "merges.txt").read_text(encoding="utf-8") == (committed / "merges.txt").read_text(encoding="utf-8")
    reloaded = CLIPTokenizer.from_pretrained(tmp_path / "tok")
    assert len(reloaded) == 49408
    assert reloaded.model_max_length == 77
    assert reloaded.pad_token_id == 49407
    text = "a close-up photo of the ankle boot in the style of sepia"
    assert reloaded(text).input_ids == built(text).input_ids
