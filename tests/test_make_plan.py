"""The plan of ``make results``: one rule per paper notebook, so a changed notebook re-runs with what
reads its result files, and nothing else.

Each test builds a scratch copy holding only what make looks at: the Makefile, empty stand-ins for the
paper notebooks, the parameter files, the model weights and the committed result files, with
controlled modification times. It runs ``make -n`` (and once ``make`` with papermill replaced by
``true``): no notebook runs, no virtual environment is needed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLANNED = re.compile(r'^echo "== notebooks/paper/([^ "]+)\.ipynb', re.MULTILINE)
T0 = 1_700_000_000  # inputs are dated T0, result files T0 + 100, a changed notebook T0 + 200

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def _stub(path: Path, when: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.utime(path, (when, when))


def _make(scratch: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    done = subprocess.run(
        ["make", "--no-print-directory", "FASHION_MNIST=data.stub", "WORDNET=wordnet.stub", *args],
        cwd=scratch, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in done.stderr.lower(), done.stderr
    return done.stdout


def _plan(scratch: Path, *args: str) -> list[str]:
    return PLANNED.findall(_make(scratch, "-n", "results", *args))


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A copy of what make reads, every committed result file newer than every input."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copytree(ROOT / "notebooks" / "params", tmp_path / "notebooks" / "params")
    for path in (tmp_path / "notebooks" / "params").rglob("*"):
        os.utime(path, (T0, T0))
    for path in (ROOT / "notebooks" / "paper").glob("*.ipynb"):
        _stub(tmp_path / path.relative_to(ROOT), T0)
    for path in (ROOT / "models").rglob("*.safetensors"):
        _stub(tmp_path / path.relative_to(ROOT), T0)
    for path in (ROOT / "results").glob("*.*"):
        if path.suffix in (".csv", ".json"):
            _stub(tmp_path / path.relative_to(ROOT), T0 + 100)
    for name in ("requirements.txt", "pyproject.toml", "data.stub", "wordnet.stub"):
        _stub(tmp_path / name, T0)
    _stub(tmp_path / ".venv" / ".installed", T0 + 1)
    # Only the claims table's stamp (under build/) is missing: make it without running a notebook, then
    # date it with the result files.
    _make(tmp_path, "results", "PAPERMILL=true")
    for path in (tmp_path / "build").rglob("*"):
        os.utime(path, (T0 + 100, T0 + 100))
    return tmp_path


def test_nothing_to_do_when_results_are_newer(scratch: Path) -> None:
    assert _plan(scratch) == []


def test_changed_notebook_replans_it_and_its_readers_only(scratch: Path) -> None:
    notebook = scratch / "notebooks" / "paper" / "02-calibrate-fewshot.ipynb"
    os.utime(notebook, (T0 + 200, T0 + 200))
    plan = _plan(scratch)
    # 03, 04, 05, 07, 10 and 13 read 02's calibration seed, 06 reads 03's transitions, 08 reads 13's
    # erasures, 11 reads 05's epoch sweep, 99 reads every result file; the others (e.g. 12) do not re-run.
    assert plan == ["02-calibrate-fewshot", "03-erase-objects", "04-which-parameters", "05-images-and-epochs",
                    "06-where-the-concept-goes", "07-erase-styles", "13-compare-methods", "08-robustness",
                    "10-several-concepts", "11-when-to-stop", "99-claims-table"]  # fmt: skip


@pytest.mark.parametrize(("changed", "expected"), [
    ("05-images-and-epochs", ["05-images-and-epochs", "11-when-to-stop", "99-claims-table"]),
    ("13-compare-methods", ["13-compare-methods", "08-robustness", "99-claims-table"]),  # 08 reads 13's erasure cache
    ("15-erasure-window", ["15-erasure-window", "16-stopping-rule", "19-window-across-stand-ins", "99-claims-table"]),
    # 13 runs and 14 times 17's choice; 08 attacks 13's erasures
    ("17-calibrate-esd", ["17-calibrate-esd", "13-compare-methods", "08-robustness", "14-erasure-time", "99-claims-table"]),
    ("18-faster-sampler", ["18-faster-sampler", "99-claims-table"]),
    ("99-claims-table", ["99-claims-table"]),
])
def test_other_dependencies(scratch: Path, changed: str, expected: list[str]) -> None:
    notebook = scratch / "notebooks" / "paper" / f"{changed}.ipynb"
    os.utime(notebook, (T0 + 200, T0 + 200))
    assert _plan(scratch) == expected


def test_a_run_brings_results_up_to_date(scratch: Path) -> None:
    """papermill rewrites a notebook it executes in place after its result files: they are touched after."""
    notebook = scratch / "notebooks" / "paper" / "05-images-and-epochs.ipynb"
    os.utime(notebook, (T0 + 200, T0 + 200))
    fake = scratch / "fake-papermill"
    fake.write_text('#!/bin/sh\nsleep 0.01\ntouch "$2"\n')
    fake.chmod(0o755)
    _make(scratch, "results", f"PAPERMILL={fake}")
    assert _plan(scratch) == []


def test_sd14_profile_plans_its_notebooks_only(scratch: Path) -> None:
    plan = _plan(scratch, "PROFILE=sd14")
    with_params = sorted(p.stem for p in (scratch / "notebooks" / "params" / "sd14").glob("*.yaml"))
    assert sorted(plan) == with_params
    assert plan.index("13-compare-methods") < plan.index("08-robustness")
    assert plan.index("17-calibrate-esd") < plan.index("14-erasure-time")


def test_spm_profile_runs_notebook_17_into_spm_files(scratch: Path) -> None:
    """Notebook 17's result files are named after its `method`: with PROFILE=spm it writes SPM's."""
    for path in (scratch / "results").glob("spm_calibration*"):
        path.unlink()
    dry_run = _make(scratch, "-n", "results", "PROFILE=spm")
    assert PLANNED.findall(dry_run) == ["17-calibrate-esd"]
    assert "ls results/spm_calibration.csv results/spm_calibration_summary.csv results/spm_calibration_windows.csv" in dry_run
    assert "esd_calibration" not in dry_run


def test_notebooks_13_and_14_run_spm_at_notebook_17s_spm_choice(scratch: Path) -> None:
    """13 and 14 read the SPM sweep's summary (PROFILE=spm): a newer one re-runs them, a missing one is made first."""
    summary = scratch / "results" / "spm_calibration_summary.csv"
    os.utime(summary, (T0 + 200, T0 + 200))
    assert _plan(scratch) == ["13-compare-methods", "08-robustness", "14-erasure-time", "99-claims-table"]
    summary.unlink()
    dry_run = _make(scratch, "-n", "results")
    assert "make results PROFILE=spm" in dry_run.replace("--no-print-directory ", "")
    plan = PLANNED.findall(dry_run)
    assert plan.index("17-calibrate-esd") < min(plan.index("13-compare-methods"), plan.index("14-erasure-time"))  # SPM's sweep first
    assert "ls results/spm_calibration.csv results/spm_calibration_summary.csv" in dry_run
    smoke = _make(scratch, "-n", "results", "PROFILE=smoke")  # its notebooks 13 and 14 name no SPM sweep
    assert {"13-compare-methods", "14-erasure-time"} <= set(PLANNED.findall(smoke)) and "PROFILE=spm" not in smoke
