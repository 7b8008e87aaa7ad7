"""Paths from the repository root, whatever the working directory (nbval and papermill differ)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILTIN_MODEL_DIR = REPO_ROOT / "models" / "builtin"
CLASSIFIER_PATH = REPO_ROOT / "models" / "classifier" / "classifier.safetensors"
RESULTS_DIR = REPO_ROOT / "results"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
