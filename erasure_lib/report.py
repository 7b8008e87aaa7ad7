"""The README's claims table, generated from the committed result files (never typed by hand)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from erasure_lib.io import atomic_write_text
from erasure_lib.paths import REPO_ROOT

START, END = "<!-- claims:start -->", "<!-- claims:end -->"


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def claims_rows(results_dir: Path) -> list[dict[str, str]]:
    """One row per claim whose result file exists: claim, our number, verdict, file, command."""
    rows = []
    quality = results_dir / "base_model_quality.csv"
    if quality.is_file():
        q = pd.read_csv(quality)
        worst = (q.generated_accuracy / q.real_accuracy).idxmin()
        met = q.generated_accuracy.mean() >= 0.80 and (q.generated_accuracy >= 0.5 * q.real_accuracy).all()
        rows.append({
            "claim": "The built-in model draws every class (our prerequisite: mean >= 0.80, no class < 1/2 of real accuracy)",
            "ours": f"generated accuracy {q.generated_accuracy.mean():.3f} (real images {q.real_accuracy.mean():.3f}); "
                    f"weakest: {q['class'][worst]} {q.generated_accuracy[worst]:.2f} vs {q.real_accuracy[worst]:.2f}",
            "verdict": "met" if met else "not met",
            "file": "results/base_model_quality.csv",
            "command": "make results (notebooks/paper/01-evaluate-base-model.ipynb)",
        })  # fmt: skip
    summary = _read_json(results_dir / "fewshot_object_erasure_summary.json")
    if summary:
        drop = summary["others_accuracy_drop"]
        rows.append({
            "claim": "Claim 1/4: 4 real images and the text encoder alone erase an object, other objects kept",
            "ours": f"erased share {summary['erased_share_before']:.3f} -> {summary['erased_share_after']:.3f}; "
                    f"other classes {summary['others_accuracy_before']:.3f} -> {summary['others_accuracy_after']:.3f} (drop {drop:.3f})",
            "verdict": "reproduced on the built-in model" if summary["target_met"] else (
                "mixed" if summary["erased_share_after"] < summary["erased_share_before"] / 2 else "not reproduced"),
            "file": "results/fewshot_object_erasure.csv",
            "command": "make results (notebooks/paper/03-erase-objects.ipynb)",
        })  # fmt: skip
        rows.append({
            "claim": "Claim 1: one erasure takes seconds (paper: 7-10 s on a GPU for SD)",
            "ours": f"median optimization loop {summary['median_optimization_seconds']:.2f} s on 2 CPU threads "
                    f"(set-up {summary['median_setup_seconds']:.2f} s)",
            "verdict": "reproduced (seconds)" if summary["median_optimization_seconds"] < 60 else "not reproduced",
            "file": "results/fewshot_object_erasure_summary.json",
            "command": "make results (notebooks/paper/03-erase-objects.ipynb)",
        })  # fmt: skip
    return rows


def claims_markdown(results_dir: Path) -> str:
    rows = claims_rows(results_dir)
    if not rows:
        return "_No result files yet: run `make results`._"
    lines = ["| claim | our number | verdict | file | command |", "|---|---|---|---|---|"]
    lines += [f"| {r['claim']} | {r['ours']} | {r['verdict']} | `{r['file']}` | `{r['command']}` |" for r in rows]
    return "\n".join(lines)


def update_readme(readme: Path = REPO_ROOT / "README.md", results_dir: Path = REPO_ROOT / "results") -> str:
    """Replace the text between the claims markers of the README with a table built from ``results_dir``."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no {START} ... {END} markers")
    table = claims_markdown(results_dir)
    new = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: f"{START}\n{table}\n{END}", text, flags=re.S)
    atomic_write_text(readme, new)
    return table
