"""tools/check_smoke_numbers.py on small hand-made result files, and its structure against the committed results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.check_smoke_numbers import STRUCTURE, check, index_rows, main, number, read_rows

ROOT = Path(__file__).resolve().parents[1]
TOLERANCES = {"continuous": {"rel": 1e-3, "abs": 1e-4}, "counted": {"rel": 0.0, "abs": 1e-6}}
CSV = "erased_class,seed,erased_share,loss,optimization_seconds\nbag,0,0.5000,1.0000,3.1\nbag,1,0.2500,,2.9\nshirt,0,1.0000,-0.0181,3.0\n"
SUMMARY = {"erased_share": 0.75, "per_step": {"2": 0.5, "4": 0.25}, "target_met": False, "seconds": 1.5}


def _spec() -> dict:
    return {
        "tolerances": TOLERANCES,
        "files": {
            "runs.csv": {
                "keys": ["erased_class", "seed"],
                "columns": {"erased_share": "counted", "loss": "continuous"},
                "rows": [
                    {"erased_class": "bag", "seed": "0", "erased_share": 0.5, "loss": 1.0},
                    {"erased_class": "bag", "seed": "1", "erased_share": 0.25, "loss": None},
                    {"erased_class": "shirt", "seed": "0", "erased_share": 1.0, "loss": -0.0181},
                ],
            },
            "summary.json": {
                "keys": [],
                "columns": {"erased_share": "counted", "per_step.4": "counted", "target_met": "counted"},
                "rows": [{"erased_share": 0.75, "per_step.4": 0.25, "target_met": 0.0}],
            },
        },
    }


@pytest.fixture
def results(tmp_path: Path) -> Path:
    out = tmp_path / "results"
    out.mkdir()
    (out / "runs.csv").write_text(CSV)
    (out / "summary.json").write_text(json.dumps(SUMMARY))
    return out


def _problems(results: Path) -> list[str]:
    return [str(p) for p in check(_spec(), results)[0]]


def test_equal_numbers_pass(results: Path) -> None:
    problems, compared = check(_spec(), results)
    assert problems == []
    assert compared == 9


def test_continuous_within_tolerance_passes(results: Path) -> None:
    (results / "runs.csv").write_text(CSV.replace("1.0000,3.1", "1.0010,3.1"))  # 1e-3 <= 1e-4 + 1e-3 * 1
    assert _problems(results) == []


def test_timings_are_not_compared(results: Path) -> None:
    (results / "runs.csv").write_text(CSV.replace(",3.1\n", ",99.0\n"))
    (results / "summary.json").write_text(json.dumps(SUMMARY | {"seconds": 99.0}))
    assert _problems(results) == []


def test_a_moved_share_names_its_cell(results: Path) -> None:
    (results / "runs.csv").write_text(CSV.replace("bag,1,0.2500", "bag,1,0.5000"))
    assert _problems(results) == [
        "runs.csv [erased_class=bag, seed=1] erased_share: expected 0.25, got 0.5 (|diff| 0.25 > 1e-06, counted)"]


def test_a_moved_loss_beyond_tolerance_fails(results: Path) -> None:
    (results / "runs.csv").write_text(CSV.replace("-0.0181", "-0.0185"))
    (problem,) = _problems(results)
    assert problem.startswith("runs.csv [erased_class=shirt, seed=0] loss: expected -0.0181, got -0.0185")
    assert problem.endswith("continuous)")


def test_an_empty_cell_that_gets_a_number_fails(results: Path) -> None:
    (results / "runs.csv").write_text(CSV.replace("bag,1,0.2500,,", "bag,1,0.2500,0.5,"))
    assert _problems(results) == ["runs.csv [erased_class=bag, seed=1] loss: expected empty, got 0.5 (continuous)"]


def test_json_fields_by_dotted_name(results: Path) -> None:
    (results / "summary.json").write_text(json.dumps(SUMMARY | {"per_step": {"2": 0.5, "4": 0.5}, "target_met": True}))
    assert _problems(results) == [
        "summary.json per_step.4: expected 0.25, got 0.5 (|diff| 0.25 > 1e-06, counted)",
        "summary.json target_met: expected 0, got 1 (|diff| 1 > 1e-06, counted)"]


def test_missing_file_row_and_column_fail(results: Path) -> None:
    (results / "summary.json").unlink()
    (results / "runs.csv").write_text("\n".join(CSV.splitlines()[:3]) + "\n")
    assert _problems(results) == [
        "runs.csv [erased_class=shirt, seed=0]: row missing",
        f"summary.json: file missing from {results}"]
    (results / "runs.csv").write_text(CSV.replace("loss,", "probe,"))
    assert "runs.csv [erased_class=bag, seed=0] loss: column missing" in _problems(results)


def test_a_new_row_fails(results: Path) -> None:
    (results / "runs.csv").write_text(CSV + "shirt,1,0.0000,1.0000,3.0\n")
    assert _problems(results) == ["runs.csv [erased_class=shirt, seed=1]: new row, not in the expectations"]


def test_command_line_update_then_check(results: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = tmp_path / "spec.json"
    assert main([str(results), "--spec", str(spec)]) == 2
    assert "--update" in capsys.readouterr().err
    spec.write_text(json.dumps(_spec() | {"note": "kept"}))
    assert main([str(results), "--spec", str(spec)]) == 0
    (results / "runs.csv").write_text(CSV.replace("bag,1,0.2500", "bag,1,0.5000"))
    assert main([str(results), "--spec", str(spec)]) == 1
    out = capsys.readouterr().out
    assert "runs.csv [erased_class=bag, seed=1] erased_share: expected 0.25, got 0.5" in out
    assert "--update" in out
    # --update keeps the spec's structure, tolerances and notes, and takes the new numbers.
    assert main([str(results), "--spec", str(spec), "--update"]) == 0
    assert "changed: runs.csv [erased_class=bag, seed=1] erased_share" in capsys.readouterr().out
    updated = json.loads(spec.read_text())
    assert updated["note"] == "kept"
    assert updated["tolerances"] == TOLERANCES
    assert updated["files"]["runs.csv"]["rows"][1] == {"erased_class": "bag", "seed": "1", "erased_share": 0.5, "loss": None}
    assert main([str(results), "--spec", str(spec)]) == 0
    # One row per line, so a moved number is a one-line diff.
    row = '{"erased_class": "bag", "seed": "1", "erased_share": 0.5, "loss": null}'
    assert row in [line.strip().rstrip(",") for line in spec.read_text().splitlines()]


def test_update_refuses_keys_that_do_not_identify_rows(results: Path, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    broken = _spec()
    broken["files"]["runs.csv"]["keys"] = ["erased_class"]
    spec.write_text(json.dumps(broken))
    assert main([str(results), "--spec", str(spec), "--update"]) == 2


@pytest.mark.parametrize("name", sorted(STRUCTURE))
def test_structure_matches_the_committed_results(name: str) -> None:
    """The smoke runs write what the full runs write: each file's keys identify its rows, its columns are numbers."""
    entry = STRUCTURE[name]
    rows = read_rows(ROOT / "results" / name)
    index_rows(name, rows, entry["keys"])
    assert set(entry["columns"].values()) <= set(TOLERANCES)
    for row in rows:
        for column in entry["columns"]:
            number(row[column], f"{name} {column}")


def test_a_key_added_by_hand_is_reported_then_taken_by_update(results: Path, tmp_path: Path) -> None:
    """A spec whose keys gained a column (the result file gained a key, e.g. a learning rate) names the
    file instead of crashing, and --update rewrites its rows with the new key."""
    (results / "runs.csv").write_text("lr," + CSV.replace("\nbag", "\n0.001,bag").replace("\nshirt", "\n0.001,shirt"))
    spec = tmp_path / "spec.json"
    widened = _spec()
    widened["files"]["runs.csv"]["keys"] = ["lr", "erased_class", "seed"]
    spec.write_text(json.dumps(widened))
    assert [str(p) for p in check(widened, results)[0]] == ["runs.csv: expected rows lack key column(s) lr"]
    assert main([str(results), "--spec", str(spec)]) == 1
    assert main([str(results), "--spec", str(spec), "--update"]) == 0
    assert json.loads(spec.read_text())["files"]["runs.csv"]["rows"][0]["lr"] == "0.001"
    assert main([str(results), "--spec", str(spec)]) == 0
