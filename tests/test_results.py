"""Result files: tidy CSV, sorted JSON, figures that do not churn bytes, and the manifest."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from erasure_lib import results  # noqa: E402
from erasure_lib.paths import REPO_ROOT  # noqa: E402
from erasure_lib.results import (  # noqa: E402
    cached_tables,
    record_run,
    recorded_parameters,
    resolve,
    save_figure,
    write_csv,
    write_json,
)


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "method": ["uce", "fewshot", "esd", "fewshot"],
            "concept": ["bag", "sneaker", "bag", "bag"],
            "score": [0.5, 1 / 3, 2 / 3, 0.123456],
        }
    )


def test_write_csv_is_sorted_tidy_and_byte_stable(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "sub" / "b.csv"
    assert write_csv(_frame(), a, sort_by=["method", "concept"]) == a
    write_csv(_frame().sample(frac=1.0, random_state=3), b, sort_by=["method", "concept"])
    assert a.read_bytes() == b.read_bytes()
    assert a.read_text() == (
        "method,concept,score\nesd,bag,0.6667\nfewshot,bag,0.1235\nfewshot,sneaker,0.3333\nuce,bag,0.5000\n"
    )
    write_csv(_frame(), a, sort_by=["method", "concept"])
    assert a.read_bytes() == b.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "sub"]


def test_write_csv_without_sorting_keeps_order(tmp_path: Path) -> None:
    path = write_csv(_frame(), tmp_path / "c.csv", float_format="%.2f")
    assert path.read_text().splitlines()[1:3] == ["uce,bag,0.50", "fewshot,sneaker,0.33"]


def test_write_json_sorted(tmp_path: Path) -> None:
    path = write_json({"b": 1, "a": {"d": 2, "c": Path("x")}}, tmp_path / "r.json")
    text = path.read_text()
    assert text.index('"a"') < text.index('"b"') and text.index('"c"') < text.index('"d"')
    assert json.loads(text) == {"a": {"c": "x", "d": 2}, "b": 1}
    assert text.endswith("\n")


def test_resolve() -> None:
    assert resolve("results/x.csv") == REPO_ROOT / "results" / "x.csv"
    assert resolve("/abs/x.csv") == Path("/abs/x.csv")


def _figure() -> plt.Figure:
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot(np.arange(5), np.arange(5) ** 2, label="loss")
    ax.set_title("erasure")
    ax.legend()
    return fig


def test_save_figure_png_is_byte_stable(tmp_path: Path) -> None:
    fig = _figure()
    first = save_figure(fig, tmp_path / "fig.pdf")
    assert first == tmp_path / "fig.png"  # always PNG
    one = first.read_bytes()
    save_figure(fig, tmp_path / "fig")
    assert first.read_bytes() == one
    fig2 = _figure()  # a fresh figure with the same content
    save_figure(fig2, tmp_path / "fig2")
    assert (tmp_path / "fig2.png").read_bytes() == one
    assert one[:8] == b"\x89PNG\r\n\x1a\n"
    plt.close("all")


def test_save_figure_svg_is_byte_stable(tmp_path: Path) -> None:
    fig = _figure()
    save_figure(fig, tmp_path / "fig", svg=True)
    one = (tmp_path / "fig.svg").read_bytes()
    save_figure(fig, tmp_path / "fig", svg=True)
    plt.close("all")
    assert (tmp_path / "fig.svg").read_bytes() == one


def test_record_run(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    out = tmp_path / "table.csv"
    record_run("01-erase.ipynb", {"seed": 0, "concept": "sneaker"}, [out], seconds=12.345, manifest=manifest)
    entries = json.loads(manifest.read_text())
    entry = entries[str(out)]  # outside the repository: the path as given
    assert entry["notebook"] == "01-erase.ipynb"
    assert entry["parameters"] == {"concept": "sneaker", "seed": 0}
    assert entry["seconds"] == 12.3
    assert {"python", "torch", "diffusers", "transformers"} <= set(entry["packages"])
    assert len(entry["git_commit"]) == 40 or entry["git_commit"] == "unknown"
    assert entry["library"]["digest_at_import"] == results.LIBRARY_AT_IMPORT and entry["library"]["as_committed"] in (True, False, None)
    # a second run adds its files and keeps the others
    record_run("02.ipynb", {}, [REPO_ROOT / "results" / "x.csv"], seconds=1.0, manifest=manifest)
    entries = json.loads(manifest.read_text())
    assert set(entries) == {str(out), "results/x.csv"}
    # what a later notebook reads back (e.g. the seeds a calibration used)
    assert recorded_parameters(out, manifest) == {"concept": "sneaker", "seed": 0}
    assert recorded_parameters(REPO_ROOT / "results" / "x.csv", manifest) == {}
    with pytest.raises(FileNotFoundError, match="records no run that wrote"):
        recorded_parameters(tmp_path / "other.csv", manifest)


def test_write_csv_keeps_small_values_such_as_learning_rates(tmp_path: Path) -> None:
    frame = pd.DataFrame({"lr": [1e-5, 3e-4, 1e-3, 0.0], "share": [0.83333, -0.00012345, 1.0, 0.5]})
    text = write_csv(frame, tmp_path / "lr.csv").read_text()
    assert text.splitlines() == ["lr,share", "1e-05,0.8333", "0.0003,-0.0001234", "0.0010,1.0000", "0.0000,0.5000"]
    assert pd.read_csv(tmp_path / "lr.csv").lr.tolist() == [1e-5, 3e-4, 1e-3, 0.0]


def test_cached_tables_keeps_full_precision_and_recomputes_on_another_key(tmp_path: Path) -> None:
    calls = []

    def compute() -> dict[str, pd.DataFrame]:
        calls.append(1)
        return {"rows": pd.DataFrame({"share": [1 / 3, 0.1 + 0.2], "class": ["bag", "coat"]})}

    first = cached_tables(tmp_path / "c", {"n": 1}, compute)
    again = cached_tables(tmp_path / "c", {"n": 1}, compute)
    assert len(calls) == 1 and again["rows"].share.tolist() == [1 / 3, 0.1 + 0.2]  # bit for bit
    assert again["rows"]["class"].tolist() == first["rows"]["class"].tolist()
    cached_tables(tmp_path / "c", {"n": 2}, compute)
    assert len(calls) == 2 and json.loads((tmp_path / "c" / "key.json").read_text()) == {"n": 2}
    with pytest.raises(ValueError, match="named tables"):
        cached_tables(tmp_path / "d", {"n": 1}, lambda: {"rows": [1, 2]})
    assert not (tmp_path / "d").exists()  # nothing half-written


def test_the_library_digest_tells_a_commits_library_from_an_edited_one(tmp_path: Path) -> None:
    """The digest of the files on disk equals the committed library's until a file changes, is added
    or is removed; files outside erasure_lib and non-Python files do not count."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    (tmp_path / "erasure_lib" / "methods").mkdir(parents=True)
    (tmp_path / "erasure_lib" / "a.py").write_text("x = 1\n")
    (tmp_path / "erasure_lib" / "methods" / "b.py").write_text("y = 2\n")
    (tmp_path / "erasure_lib" / "methods-c.py").write_text("z = 3\n")  # before methods/ as text, after it by path parts: both digests order alike
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "library"], cwd=tmp_path, check=True)
    committed = results.committed_library_digest(tmp_path)
    assert results.library_digest(tmp_path) == committed != "unknown"
    (tmp_path / "notes.py").write_text("outside the library\n")
    (tmp_path / "erasure_lib" / "README.md").write_text("not source\n")
    assert results.library_digest(tmp_path) == committed
    (tmp_path / "erasure_lib" / "methods" / "b.py").write_text("y = 3\n")
    assert results.library_digest(tmp_path) != committed
    (tmp_path / "erasure_lib" / "methods" / "b.py").write_text("y = 2\n")
    (tmp_path / "erasure_lib" / "new.py").write_text("")
    assert results.library_digest(tmp_path) != committed
    (tmp_path / "erasure_lib" / "new.py").unlink()
    assert results.library_digest(tmp_path) == committed
    assert results.committed_library_digest(tmp_path / "erasure_lib" / "methods", "no-such-commit") == "unknown"
