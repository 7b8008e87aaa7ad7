"""The notebooks against their sources and their parameter files.

- Every ``notebooks/src/*.py`` and its committed ``.ipynb`` hold the same cells (type, source and
  papermill's ``parameters`` tag, in order); outputs, execution counts, ids and a papermill-injected
  parameters cell are ignored. A notebook known to lag its source is listed in ``KNOWN_STALE`` with
  the reason, and the test fails once it is re-run (so the list only shrinks).
- Every parameter file of every profile (``notebooks/params/<profile>/*.yaml``: smoke, sd14,
  sd14-tiny, the stand-ins) sets only parameters its notebook declares, with values of the declared
  types, and every paper (and ``00-``) notebook has a smoke file.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import nbformat
import papermill
import pytest
import yaml

from erasure_lib.paths import NOTEBOOKS_DIR
from tools.py2nb import convert

SRC_DIR = NOTEBOOKS_DIR / "src"
PAPER_DIR = NOTEBOOKS_DIR / "paper"
PARAMS_DIR = NOTEBOOKS_DIR / "params"
SOURCES = sorted(SRC_DIR.glob("*.py"))

# Notebooks whose committed cells differ from their source today, with the reason (re-run the notebook
# with `make notebooks` and papermill, then remove it here). Empty: every notebook matches its source.
KNOWN_STALE: dict[str, str] = {}


def notebook_for(name: str) -> Path:
    """The notebook ``make notebooks`` writes from ``notebooks/src/<name>.py``."""
    if name.startswith("00-"):
        return NOTEBOOKS_DIR / f"{name}.ipynb"
    if name.startswith("tutorial-"):
        return NOTEBOOKS_DIR / "tutorials" / f"{name.removeprefix('tutorial-')}.ipynb"
    return PAPER_DIR / f"{name}.ipynb"


def _cells(nb: nbformat.NotebookNode) -> list[tuple[str, str, bool]]:
    """(type, source, has the ``parameters`` tag) of each cell, without papermill's injected cell."""
    cells = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags:
            continue
        cells.append((cell.cell_type, cell.source, "parameters" in tags))
    return cells


def _differences(src: Path, path: Path) -> str:
    """What differs between a source and a notebook ("" when they agree)."""
    if not path.is_file():
        return f"{path.relative_to(NOTEBOOKS_DIR.parent)} does not exist"
    expected = _cells(convert(src.read_text()))
    committed = _cells(nbformat.read(path, as_version=4))
    for i, (want, have) in enumerate(zip(expected, committed)):
        if want != have:
            diff = difflib.unified_diff(have[1].splitlines(), want[1].splitlines(), "notebook", "source", lineterm="", n=1)
            return f"cell {i}: notebook {have[0]}{' (parameters)' * have[2]}, source {want[0]}{' (parameters)' * want[2]}\n" + "\n".join(diff)
    if len(expected) != len(committed):
        return f"the source has {len(expected)} cells, the notebook {len(committed)}"
    return ""


def test_sources_and_notebooks_pair_up() -> None:
    assert SOURCES, f"no sources in {SRC_DIR}"
    notebooks = {*NOTEBOOKS_DIR.glob("*.ipynb"), *PAPER_DIR.glob("*.ipynb"), *(NOTEBOOKS_DIR / "tutorials").glob("*.ipynb")}
    without_source = sorted(str(p.relative_to(NOTEBOOKS_DIR)) for p in notebooks - {notebook_for(s.stem) for s in SOURCES})
    assert not without_source, f"notebooks with no notebooks/src/ source: {without_source}"
    assert set(KNOWN_STALE) <= {s.stem for s in SOURCES}, "KNOWN_STALE names a notebook that has no source"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_notebook_matches_its_source(src: Path) -> None:
    differences = _differences(src, notebook_for(src.stem))
    if src.stem in KNOWN_STALE:
        assert differences, f"{src.stem} now matches its source: remove it from KNOWN_STALE"
    else:
        assert not differences, f"{notebook_for(src.stem).name} differs from {src.name} (run `make notebooks`):\n{differences}"


def test_the_comparison_ignores_papermill_and_sees_an_edit(tmp_path: Path) -> None:
    """A notebook prepared by papermill (injected parameters, tags) still matches; an edited source does not."""
    src = next(s for s in SOURCES if (PARAMS_DIR / "smoke" / f"{s.stem}.yaml").is_file() and s.stem not in KNOWN_STALE)
    prepared = tmp_path / "prepared.ipynb"
    parameters = yaml.safe_load((PARAMS_DIR / "smoke" / f"{src.stem}.yaml").read_text()) or {}
    papermill.execute_notebook(str(notebook_for(src.stem)), str(prepared), parameters=parameters, prepare_only=True, progress_bar=False)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nbformat.read(prepared, as_version=4).cells)
    assert _differences(src, prepared) == ""
    edited = tmp_path / src.name
    edited.write_text(src.read_text().replace("\n# %%", "\n# %%\nedited = True\n# %%", 1))
    assert _differences(edited, prepared).startswith("cell ")


# --- parameter files --------------------------------------------------------------------------------


def _profile_notebook(name: str) -> Path:
    """The notebook a parameter file ``<name>.yaml`` is for (``00-*`` sit in notebooks/, the rest in paper/)."""
    return NOTEBOOKS_DIR / f"{name}.ipynb" if name.startswith("00-") else PAPER_DIR / f"{name}.ipynb"


@pytest.fixture(scope="module")
def declared() -> dict[str, dict]:
    """papermill's view of each notebook's parameters cell, by notebook name."""
    notebooks = sorted({*NOTEBOOKS_DIR.glob("00-*.ipynb"), *PAPER_DIR.glob("*.ipynb")})
    return {nb.stem: papermill.inspect_notebook(str(nb)) for nb in notebooks}


def test_every_notebook_has_a_smoke_file_and_every_smoke_file_a_notebook(declared: dict[str, dict]) -> None:
    smoke = {p.stem for p in (PARAMS_DIR / "smoke").glob("*.yaml")}
    assert sorted(set(declared) - smoke) == [], "notebooks without notebooks/params/smoke/<name>.yaml"
    assert sorted(smoke - set(declared)) == [], "smoke files without a notebook"


@pytest.mark.parametrize("path", sorted(PARAMS_DIR.glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_profile_keys_are_notebook_parameters(path: Path, declared: dict[str, dict]) -> None:
    """papermill only warns on a parameter the notebook does not declare: a typo would run the defaults."""
    assert _profile_notebook(path.stem).is_file(), f"{path.name}: no notebook {path.stem}.ipynb"
    values = yaml.safe_load(path.read_text()) or {}
    unknown = set(values) - set(declared[path.stem])
    assert not unknown, f"{path.name}: not parameters of {path.stem}.ipynb: {sorted(unknown)}"


# The annotation papermill reads -> the YAML values that fit it (an int is a float; a bool is not an int).
_FITS = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
}


@pytest.mark.parametrize(
    "path",
    sorted(PARAMS_DIR.glob("*/*.yaml")),
    ids=lambda p: f"{p.parent.name}/{p.stem}",
)
def test_parameter_values_have_the_declared_types(path: Path, declared: dict[str, dict]) -> None:
    values = yaml.safe_load(path.read_text()) or {}
    params = declared.get(path.stem, {})
    for key, value in values.items():
        if key not in params:
            continue  # unknown keys are reported by the key tests
        kind = params[key]["inferred_type_name"]
        if kind in _FITS:
            assert _FITS[kind](value), f"{path.parent.name}/{path.name}: {key} is declared {kind}, got {value!r}"
