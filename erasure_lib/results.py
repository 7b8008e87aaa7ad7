"""Result files: tidy CSV / sorted JSON, figures with fixed metadata, and a manifest per file."""

from __future__ import annotations

import hashlib
import io
import json
import platform
import subprocess
import time
from collections.abc import Callable, Mapping
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd

from erasure_lib.io import atomic_directory, atomic_write_bytes, atomic_write_text
from erasure_lib.paths import REPO_ROOT, RESULTS_DIR

TRACKED_PACKAGES = ("torch", "diffusers", "transformers", "safetensors", "numpy", "pandas", "matplotlib")


def resolve(path: Path | str) -> Path:
    """A path relative to the repository root (absolute paths are kept)."""
    path = Path(path)
    return path if path.is_absolute() else REPO_ROOT / path


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _source_digest(sources: dict[str, Callable[[], bytes]]) -> str:
    """A digest of source files by repository path and content, in the order of their path parts."""
    h = hashlib.sha256()
    for name in sorted(sources, key=lambda n: Path(n).parts):
        h.update(name.encode() + b"\0" + sources[name]() + b"\0")
    return h.hexdigest()[:16]


def library_digest(root: Path = REPO_ROOT) -> str:
    """A digest of the library's source as it lies on disk under ``root`` (every ``erasure_lib/**/*.py``,
    by path and content)."""
    return _source_digest({p.relative_to(root).as_posix(): p.read_bytes for p in (root / "erasure_lib").rglob("*.py")})


def committed_library_digest(root: Path = REPO_ROOT, commit: str = "HEAD") -> str:
    """:func:`library_digest` of the library as ``commit`` holds it ("unknown" outside a git checkout)."""

    def show(name: str) -> bytes:
        return subprocess.run(["git", "show", f"{commit}:{name}"], cwd=root, capture_output=True, check=True).stdout

    try:
        names = subprocess.run(["git", "ls-tree", "-r", "--name-only", commit, "--", "erasure_lib"],
                               cwd=root, capture_output=True, text=True, check=True).stdout.splitlines()  # fmt: skip
        return _source_digest({n: partial(show, n) for n in names if n.endswith(".py")})
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# The library's source when this process imported it (results is imported with the rest of the
# library at a notebook's start): a run's manifest entry names the code the run used, not only the
# commit checked out when it ended.
LIBRARY_AT_IMPORT = library_digest()


def four_decimals(x: float) -> str:
    """The results' float format: 4 decimals, except that a non-zero value under 1e-3 keeps 4
    significant digits (a learning rate of 1e-5 must not be written as 0.0000)."""
    return f"{x:.4f}" if x == 0 or abs(x) >= 1e-3 else f"{x:.4g}"


def write_csv(df: pd.DataFrame, path: Path | str, sort_by: list[str] | None = None,
              float_format: str | Callable[[float], str] = four_decimals) -> Path:
    """Tidy CSV: no index, fixed float format (:func:`four_decimals`), sorted rows, the given column order."""
    path = resolve(path)
    if sort_by:
        df = df.sort_values(sort_by, kind="stable").reset_index(drop=True)
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format=float_format, lineterminator="\n")
    atomic_write_text(path, buf.getvalue())
    return path


def cached_tables(cache: Path | str, key: str | Mapping[str, Any], compute: Callable[[], Mapping[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """Tables computed once and kept in the folder ``cache``, one ``<name>.csv`` each beside
    ``key.json``: read back while ``key`` (everything they depend on; a mapping is written as sorted
    JSON, dataclasses as their repr) is unchanged; otherwise ``compute()`` runs and the folder is
    replaced whole, atomically, so an interrupted run never leaves half a cache. The CSVs keep full
    precision: what is read back equals what was computed."""
    cache = Path(cache)
    text = key if isinstance(key, str) else json.dumps(dict(key), sort_keys=True, default=str)
    if (cache / "key.json").is_file() and (cache / "key.json").read_text() == text:
        names = sorted(p.stem for p in cache.glob("*.csv"))
        return {name: pd.read_csv(cache / f"{name}.csv") for name in names}
    tables = dict(compute())
    if not tables or not all(isinstance(t, pd.DataFrame) for t in tables.values()):
        raise ValueError(f"compute must return named tables (name -> DataFrame), got {sorted(tables)}")
    with atomic_directory(cache, overwrite=True) as tmp:
        for name, table in tables.items():
            table.to_csv(tmp / f"{name}.csv", index=False)
        (tmp / "key.json").write_text(text)
    return tables


def write_json(obj: Any, path: Path | str) -> Path:
    path = resolve(path)
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    return path


def save_figure(fig: Any, path: Path | str, svg: bool = False) -> Path:
    """Write a matplotlib figure as PNG (and SVG) with fixed metadata, so re-runs do not churn bytes."""
    path = resolve(path).with_suffix(".png")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight", metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())
    if svg:
        buf = io.BytesIO()
        # A fixed salt for the SVG element ids, otherwise random per save.
        with matplotlib.rc_context({"svg.hashsalt": "erasure_lib"}):
            fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
        atomic_write_bytes(path.with_suffix(".svg"), buf.getvalue())
    return path


def _manifest_key(file: Path | str) -> str:
    """How the manifest names a file: relative to the repository, or the path as given outside it."""
    return str(resolve(file).relative_to(REPO_ROOT)) if resolve(file).is_relative_to(REPO_ROOT) else str(file)


def record_run(
    notebook: str,
    parameters: dict[str, Any],
    files: list[Path | str],
    seconds: float,
    manifest: Path | str = RESULTS_DIR / "manifest.json",
) -> Path:
    """Record, for each file a notebook wrote, the notebook, parameters, commit, versions and run time.

    ``git_commit`` is the commit checked out when the run ends; ``library`` says whether the library
    the run imported is that commit's (``as_committed``), with its digest (:func:`library_digest`)
    to compare with another commit's (:func:`committed_library_digest`) where it is not."""
    manifest = resolve(manifest)
    entries = json.loads(manifest.read_text()) if manifest.is_file() else {}
    commit = git_commit()
    entry = {
        "notebook": notebook,
        "parameters": parameters,
        "git_commit": commit,
        "library": {"digest_at_import": LIBRARY_AT_IMPORT,
                    "as_committed": LIBRARY_AT_IMPORT == committed_library_digest(REPO_ROOT, commit) if commit != "unknown" else None},
        "packages": package_versions(),
        "seconds": round(seconds, 1),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for f in files:
        entries[_manifest_key(f)] = entry
    return write_json(entries, manifest)


def recorded_parameters(file: Path | str, manifest: Path | str = RESULTS_DIR / "manifest.json") -> dict[str, Any]:
    """The parameters of the run that wrote ``file``, as :func:`record_run` recorded them (e.g. the
    seeds a calibration used, so that an evaluation can keep its own seeds apart from them)."""
    manifest = resolve(manifest)
    entries = json.loads(manifest.read_text()) if manifest.is_file() else {}
    key = _manifest_key(file)
    if key not in entries:
        raise FileNotFoundError(f"{manifest} records no run that wrote {key}; run the notebook that writes it first")
    return dict(entries[key]["parameters"])
