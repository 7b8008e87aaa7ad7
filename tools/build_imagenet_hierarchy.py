"""Build ``erasure_lib/resources/imagenet_hierarchy.json``: the WordNet 3.0 hypernym paths of the
1000 ImageNet-1k classes, which :mod:`erasure_lib.hierarchy` reads.

Run once by hand (the output is committed, so neither CI nor a user needs WordNet)::

    apt-get install wordnet-base                       # WordNet 3.0, /usr/share/wordnet/data.noun
    pip download --no-deps timm==1.0.31 -d /tmp/timm   # the 1000 wnids in index order (Apache-2.0)
    python tools/build_imagenet_hierarchy.py --wnids /tmp/timm/timm-1.0.31-py3-none-any.whl

Inputs:

- ``data.noun`` of the WordNet 3.0 database, parsed here (no NLTK): each synset line is
  ``offset lex_filenum ss_type w_cnt word lex_id [word lex_id...] p_cnt [ptr...] | gloss``, ``w_cnt``
  in hex, each pointer ``symbol offset pos source/target``; the hypernyms are the ``@`` (hypernym)
  and ``@i`` (instance hypernym) pointers to nouns. The licence header of the file (the lines that
  start with spaces) is copied into the output, as the WordNet licence asks.
- the wnids, one a line, in ImageNet-1k index order (class ``k`` is line ``k``); a wnid is ``n`` and
  the 8-digit ``data.noun`` offset. A ``.whl`` of timm is read directly (its member
  ``timm/data/_info/imagenet_synsets.txt``).

Output (keys sorted, one class and one synset a line, written atomically):
``classes``: for each class in index order ``index``, ``wnid``, ``name`` (its first WordNet lemma)
and ``paths``, every hypernym path from the root ``entity`` down to the class itself, as wnids;
``synsets``: wnid -> first lemma, for every synset on those paths; ``source``: what it was built from.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: make erasure_lib importable from the checkout
    sys.path.insert(0, str(REPO_ROOT))

from erasure_lib.io import atomic_write_text  # noqa: E402

DEFAULT_OUTPUT = REPO_ROOT / "erasure_lib" / "resources" / "imagenet_hierarchy.json"
DEFAULT_WORDNET_DIR = Path("/usr/share/wordnet")
TIMM_WNIDS_MEMBER = "timm/data/_info/imagenet_synsets.txt"
HYPERNYM_POINTERS = ("@", "@i")  # hypernym, instance hypernym
FORMAT_VERSION = 1
_WNID = re.compile(r"n\d{8}")


def parse_data_noun(text: str) -> tuple[dict[str, str], dict[str, tuple[str, ...]], str]:
    """Parse a WordNet ``data.noun``.

    Parameters
    ----------
    text
        The file's content.

    Returns
    -------
    names, hypernyms, license
        wnid -> first lemma (underscores as spaces); wnid -> wnids of its ``@`` and ``@i`` noun
        pointers, in file order; the licence header (the lines starting with spaces), line numbers
        stripped.
    """
    names: dict[str, str] = {}
    hypernyms: dict[str, tuple[str, ...]] = {}
    header: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith(" "):
            header.append(re.sub(r"^\s*\d+ ?", "", line).rstrip())
            continue
        fields = line.split(" | ", 1)[0].split()
        try:
            offset, ss_type, w_cnt = fields[0], fields[2], int(fields[3], 16)
            words = fields[4 : 4 + 2 * w_cnt : 2]
            p_at = 4 + 2 * w_cnt
            p_cnt = int(fields[p_at])
            pointers = [fields[p_at + 1 + 4 * k : p_at + 5 + 4 * k] for k in range(p_cnt)]
        except (IndexError, ValueError) as err:
            raise ValueError(f"data.noun line {number} is not a WordNet synset line: {line[:80]!r}") from err
        if (
            len(offset) != 8
            or not offset.isdigit()
            or ss_type != "n"
            or len(words) != w_cnt
            or any(len(p) != 4 for p in pointers)
        ):
            raise ValueError(f"data.noun line {number} is not a WordNet noun synset line: {line[:80]!r}")
        wnid = "n" + offset
        names[wnid] = words[0].replace("_", " ")
        hypernyms[wnid] = tuple(
            "n" + target for symbol, target, pos, _ in pointers if symbol in HYPERNYM_POINTERS and pos == "n"
        )
    return names, hypernyms, "\n".join(header).strip()


def hypernym_paths(wnid: str, hypernyms: Mapping[str, Sequence[str]]) -> list[tuple[str, ...]]:
    """Every path from a root (a synset without hypernyms) down to ``wnid``, sorted, without repeats."""
    memo: dict[str, list[tuple[str, ...]]] = {}

    def walk(node: str, below: frozenset[str]) -> list[tuple[str, ...]]:
        if node in memo:
            return memo[node]
        if node not in hypernyms:
            raise KeyError(f"{node} is not a noun synset of this data.noun (is it WordNet 3.0?)")
        if node in below:
            raise ValueError(f"hypernym cycle through {node}")
        parents = hypernyms[node]
        paths = [(node,)] if not parents else [p + (node,) for h in parents for p in walk(h, below | {node})]
        memo[node] = sorted(set(paths))
        return memo[node]

    return walk(wnid, frozenset())


def read_wnids(path: Path) -> tuple[list[str], str]:
    """The wnids in index order from a text file (one a line) or a timm wheel; and a label of the source."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as wheel:
            if TIMM_WNIDS_MEMBER not in wheel.namelist():
                raise ValueError(f"{path} has no {TIMM_WNIDS_MEMBER}; pass timm's wheel or a text file of wnids")
            text, label = wheel.read(TIMM_WNIDS_MEMBER).decode("utf-8"), f"{path.name}:{TIMM_WNIDS_MEMBER}"
    else:
        text, label = path.read_text(encoding="utf-8"), path.name
    wnids = [line.strip() for line in text.splitlines() if line.strip()]
    bad = [w for w in wnids if not _WNID.fullmatch(w)]
    if bad:
        raise ValueError(f"{path}: not wnids (n + 8 digits): {bad[:5]}")
    if len(set(wnids)) != len(wnids):
        raise ValueError(f"{path}: repeated wnids")
    return wnids, label


def debian_package(path: Path) -> str | None:
    """``"package version"`` of the Debian package that installed ``path``, or ``None``."""
    try:
        owner = subprocess.run(["dpkg-query", "-S", str(path.resolve())], capture_output=True, text=True, check=True)
        package = owner.stdout.split(":", 1)[0].strip()
        version = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{package} {version}" if package and version else None


def build_hierarchy(data_noun: str, wnids: Sequence[str]) -> dict[str, Any]:
    """The output document (without ``source``) for classes ``wnids`` in index order."""
    names, hypernyms, license_text = parse_data_noun(data_noun)
    missing = [w for w in wnids if w not in names]
    if missing:
        raise ValueError(
            f"{len(missing)} wnids are not noun synsets of this data.noun (not WordNet 3.0?): {missing[:5]}"
        )
    classes = []
    on_paths: set[str] = set()
    for index, wnid in enumerate(wnids):
        paths = hypernym_paths(wnid, hypernyms)
        on_paths.update(s for p in paths for s in p)
        classes.append({"index": index, "name": names[wnid], "paths": [list(p) for p in paths], "wnid": wnid})
    return {
        "classes": classes,
        "format": FORMAT_VERSION,
        "synsets": {s: names[s] for s in sorted(on_paths)},
        "wordnet_license": license_text,
    }


def dumps(value: Any, expand: int = 2, indent: int = 0) -> str:
    """JSON with sorted keys; containers nested less than ``expand`` deep are spread over lines, deeper
    ones kept on one line (one class, one synset a line: small and diff-friendly)."""
    pad, inner = " " * indent, " " * (indent + 1)
    if expand <= 0 or not isinstance(value, dict | list) or not value:
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k)}: {dumps(value[k], expand - 1, indent + 1)}" for k in sorted(value)]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    items = [f"{inner}{dumps(v, expand - 1, indent + 1)}" for v in value]
    return "[\n" + ",\n".join(items) + f"\n{pad}]"


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--wnids", type=Path, required=True, help="text file of wnids in index order, or timm's wheel")
    parser.add_argument(
        "--wordnet-dir", type=Path, default=DEFAULT_WORDNET_DIR, help="folder with WordNet 3.0's data.noun"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the JSON file to write")
    args = parser.parse_args(argv)
    data_noun = args.wordnet_dir / "data.noun"
    if not data_noun.is_file():
        parser.error(
            f"{data_noun} not found: install WordNet 3.0 (`apt-get install wordnet-base`) or pass --wordnet-dir"
        )
    raw = data_noun.read_bytes()
    wnids, wnid_label = read_wnids(args.wnids)
    doc = build_hierarchy(raw.decode("utf-8"), wnids)
    doc["source"] = {
        "builder": "tools/build_imagenet_hierarchy.py",
        "wnids": {"file": wnid_label, "sha256": hashlib.sha256(("\n".join(wnids) + "\n").encode()).hexdigest()},
        "wordnet": {
            "debian_package": debian_package(data_noun),
            "file": "data.noun",
            "sha256": hashlib.sha256(raw).hexdigest(),
        },
    }
    text = dumps(doc) + "\n"
    assert json.loads(text) == doc  # the hand-spread layout is still the same JSON
    atomic_write_text(args.output, text)
    args.output.chmod(0o644)  # mkstemp's 0600 would hide a committed data file from other users
    print(f"{args.output}: {len(wnids)} classes, {len(doc['synsets'])} synsets, {len(text.encode()) / 1024:.0f} KiB")
    return args.output


if __name__ == "__main__":
    main()
