"""Compare the key numbers of the smoke runs with their committed expectations.

``make nbval`` runs every paper notebook with the smoke parameters (``notebooks/params/smoke/``); they
write their result files to ``build/smoke/results/``. The spec ``tests/expectations/smoke_numbers.json``
names, for each result file, the key columns that identify a row, the numeric columns compared (each
with a tolerance class) and the expected values of every row. This exits 1 with one line per problem
(file, row, column, expected, got) when a number moved beyond its tolerance, or a file, row or column
is missing or new; 0 otherwise. A change that moves a smoke number updates the expectations in the
same commit: ``--update`` rewrites them from the current smoke outputs (and prints what changed).

A JSON result file is one row without keys; its nested fields are named with dots (``a.b``).

Usage: python tools/check_smoke_numbers.py [RESULTS_DIR] [--spec SPEC] [--update]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = ROOT / "build" / "smoke" / "results"
DEFAULT_SPEC = ROOT / "tests" / "expectations" / "smoke_numbers.json"

# The spec's header when it is first written (--update without a spec); kept as it is afterwards.
TOLERANCES = {
    "continuous": {
        "rel": 1e-3, "abs": 1e-4,
        "note": "Losses, probe ratios, FID and KID, CLIP scores, retain drift: floating-point sums that may move "
                "in the last digits; |got - expected| <= abs + rel * |expected| (the files round to 4 decimals).",
    },
    "counted": {
        "rel": 0.0, "abs": 1e-6,
        "note": "Shares and accuracies count a few generated images judged by a fixed classifier (1-4 images per "
                "class in the smoke runs), so one image moves a share by 0.25 to 1: a tolerance of one image's "
                "worth would hide most bugs. The runs are deterministic on the same CPU build of torch with the "
                "pinned packages and thread counts, so these are compared to 1e-6; so are the numbers derived "
                "from them (means, drops, bootstrap bounds, costs) and counts of steps, runs, concepts and "
                "parameters, and flags (True = 1). On another torch build or CPU an image may flip: re-run "
                "--update there and commit the change with its reason.",
    },
}
EXCLUDED = ("Not compared: timings (seconds, ratios of times, images per second), memory, throughput, dates, "
            "commit hashes and package versions (manifest.json), and text columns (labels serve as row keys). "
            "Files holding nothing else are left out: erasure_time.csv, erasure_time_runs.csv, "
            "generation_throughput.json, keep_the_neighbours_cost.json, manifest.json; the 00- training "
            "notebooks' files are not compared.")

C, N = "continuous", "counted"
# The files, keys and columns of the first spec (--update without a spec): every paper notebook's
# result files, in notebook order.
STRUCTURE: dict[str, dict] = {
    "base_model_quality.csv": {"notebook": "01-evaluate-base-model", "keys": ["class"],
                               "columns": {"generated_accuracy": N, "real_accuracy": N}},
    "base_model_style_quality.csv": {"notebook": "01-evaluate-base-model", "keys": ["style"],
                                     "columns": {"style_share": N, "class_accuracy": N}},
    "fewshot_calibration.csv": {"notebook": "02-calibrate-fewshot", "keys": ["erased_class", "lr", "epochs"],
                                "columns": {"erased_share": N, "others_accuracy": N}},
    "fewshot_calibration_summary.csv": {"notebook": "02-calibrate-fewshot", "keys": ["lr", "epochs"],
                                        "columns": {"erased_share": N, "others_accuracy": N}},
    "fewshot_object_erasure.csv": {"notebook": "03-erase-objects", "keys": ["erased_class", "trainable", "wording", "seed"],
                                   "columns": {"erased_share_before": N, "erased_share_after": N,
                                               "others_accuracy_before": N, "others_accuracy_after": N,
                                               "style_share_before": N, "style_share_after": N, "UA": N, "IRA": N, "CRA": N,
                                               "trainable_parameters": N}},
    "fewshot_object_erasure_by_option.csv": {"notebook": "03-erase-objects", "keys": ["trainable", "wording"],
                                             "columns": {c: N for c in ("runs", "UA", "UA_low", "UA_high", "success_share",
                                                                        "success_share_low", "success_share_high", "IRA",
                                                                        "IRA_low", "IRA_high", "others_drop", "others_drop_low",
                                                                        "others_drop_high", "clean_share", "clean_share_low",
                                                                        "clean_share_high", "classes_erased", "CRA", "CRA_low",
                                                                        "CRA_high", "CRA_before", "sampling_steps")}},
    "fewshot_object_erasure_summary.json": {"notebook": "03-erase-objects", "keys": [],
                                            "columns": {"erased_share_before": N, "erased_share_after": N,
                                                        "others_accuracy_before": N, "others_accuracy_after": N,
                                                        "others_accuracy_drop": N, "target_met": N}},
    "fewshot_object_transitions.csv": {"notebook": "03-erase-objects",
                                       "keys": ["erased_class", "trainable", "wording", "when", "seed", "predicted_class"],
                                       "columns": {"share": N, "confidence": C}},
    "parameter_options.csv": {"notebook": "04-which-parameters", "keys": ["erased_class", "option", "seed", "wording", "epochs"],
                              "columns": {"UA": N, "IRA": N, "trainable_parameters": N}},
    "parameter_options_summary.csv": {"notebook": "04-which-parameters", "keys": ["option", "wording", "epochs"],
                                      "columns": {"UA": N, "IRA": N, "success_share": N, "trainable_parameters": N}},
    "parameter_options_matched.csv": {"notebook": "04-which-parameters", "keys": ["option", "wording", "UA_level"],
                                      "columns": {"IRA": N, "reach": N}},
    "parameter_options_matched_differences.csv": {"notebook": "04-which-parameters", "keys": ["option", "compared_with", "wording", "UA_level"],
                                                  "columns": {"difference": N, "difference_low": N, "difference_high": N, "runs": N}},
    "fewshot_epochs.csv": {"notebook": "05-images-and-epochs", "keys": ["erased_class", "seed", "wording", "epochs"],
                           "columns": {"probe_ratio": C, "erased_share": N, "others_accuracy": N}},
    "fewshot_image_counts.csv": {"notebook": "05-images-and-epochs", "keys": ["erased_class", "seed", "wording", "images"],
                                 "columns": {"steps": N, "erased_share": N, "others_accuracy": N}},
    "fewshot_losses.csv": {"notebook": "05-images-and-epochs", "keys": ["erased_class", "seed", "run", "step"],
                           "columns": {"loss": C}},
    "fewshot_image_counts_summary.csv": {"notebook": "05-images-and-epochs", "keys": ["images", "wording"],
                                         "columns": {"steps": N, "UA": N, "IRA": N, "success_share": N}},
    "fewshot_epochs_summary.csv": {"notebook": "05-images-and-epochs", "keys": ["epochs", "wording"],
                                   "columns": {"UA": N, "IRA": N, "success_share": N}},
    "fewshot_related_share.csv": {"notebook": "06-where-the-concept-goes", "keys": ["erased_class"],
                                  "columns": {"self_share_before": N, "related_share_of_leavers_before": N,
                                              "self_share_after": N, "related_share_of_leavers_after": N,
                                              "chance": N, "self_share_random": N, "related_share_of_leavers_random": N,
                                              "leaver_confidence_after": C, "reference_confidence": C}},
    "style_erasure.csv": {"notebook": "07-erase-styles", "keys": ["erased_style", "seed", "prompt_style", "wording", "when", "epochs"],
                          "columns": {"style_share": N, "class_accuracy": N}},
    "style_erasure_summary.csv": {"notebook": "07-erase-styles", "keys": ["erased_style", "wording", "epochs"],
                                  "columns": {"UA": N, "IRA": N, "CRA": N, "subject_accuracy": N, "success_share": N}},
    "robustness.csv": {"notebook": "08-robustness", "keys": ["seed", "erased_class", "attack", "target"],
                       "columns": {"share": N}},
    "robustness_summary.csv": {"notebook": "08-robustness", "keys": ["attack"],
                               "columns": {"base": N, "fewshot": N, "esd": N, "uce": N}},
    "robustness_intervals.csv": {"notebook": "08-robustness", "keys": ["attack", "target"],
                                 "columns": {"runs": N, "share": N, "share_low": N, "share_high": N, "drawn_share": N}},
    "several_concepts.csv": {"notebook": "10-several-concepts", "keys": ["n_classes", "seed", "classes", "mode", "wording"],
                             "columns": {"erased_share_before": N, "erased_share_after": N,
                                         "others_accuracy_before": N, "others_accuracy_after": N, "UA": N, "IRA": N}},
    "several_concepts_summary.csv": {"notebook": "10-several-concepts", "keys": ["n_classes", "mode", "wording"],
                                     "columns": {"runs": N, "UA": N, "IRA": N, "success_share": N, "others_drop": N}},
    "stopping_rule.csv": {"notebook": "11-when-to-stop", "keys": ["erased_class", "seed", "wording", "ratio"],
                          "columns": {"epoch_rule": N, "epoch_best": N, "epoch_gap": N, "stopped": N,
                                      "erased_share_rule": N, "erased_share_best": N,
                                      "others_drop_rule": N, "others_drop_best": N}},
    "stopping_rule_summary.csv": {"notebook": "11-when-to-stop", "keys": ["ratio", "wording"],
                                  "columns": {"epoch_gap": N, "erased_share_rule": N, "erased_share_best": N,
                                              "others_drop_rule": N, "others_drop_best": N, "stopped": N}},
    "keep_the_neighbours.csv": {"notebook": "12-keep-the-neighbours", "keys": ["erased_class", "method", "lr", "seed", "epochs", "wording"],
                                "columns": {"probe_ratio": C, "erased_share": N, "related_accuracy": N,
                                            "unrelated_accuracy": N, "others_accuracy": N}},
    "keep_the_neighbours_summary.csv": {"notebook": "12-keep-the-neighbours", "keys": ["method", "lr", "epochs", "wording"],
                                        "columns": {"erased_share": N, "related_accuracy": N, "unrelated_accuracy": N, "runs": N,
                                                    "erased_share_low": N, "erased_share_high": N,
                                                    "related_accuracy_low": N, "related_accuracy_high": N,
                                                    "related_drop": N, "unrelated_drop": N, "meets_aim": N}},
    "keep_the_neighbours_transitions.csv": {"notebook": "12-keep-the-neighbours",
                                            "keys": ["erased_class", "when", "wording", "seed", "predicted_class"],
                                            "columns": {"share": N}},
    "keep_the_neighbours_attacks.csv": {"notebook": "12-keep-the-neighbours", "keys": ["erased_class", "attack", "target"],
                                        "columns": {"share": N}},
    "object_erasure_comparison.csv": {"notebook": "13-compare-methods", "keys": ["method", "erased_class", "seed", "wording"],
                                      "columns": {"erased_share": N, "others_accuracy": N, "fid": C, "kid": C,
                                                  "clip_score": C, "clip_score_erased": C}},
    "object_erasure_comparison_summary.csv": {"notebook": "13-compare-methods", "keys": ["method", "wording"],
                                              "columns": {"runs": N, "UA": N, "UA_low": N, "UA_high": N, "success_share": N,
                                                          "IRA": N, "IRA_before": N, "clean_share": N, "fid": C, "fid_before": C,
                                                          "kid": C, "kid_before": C, "clip_score": C, "clip_score_before": C}},
    "object_erasure_quality_pooled.csv": {"notebook": "13-compare-methods", "keys": ["method", "seed", "wording"],
                                          "columns": {"images": N, "fid": C, "kid": C}},
    "erasure_window.csv": {"notebook": "15-erasure-window", "keys": ["stand_in", "lr", "concept", "seed", "step"],
                           "columns": {"erased_share": N, "others_accuracy": N, "related_accuracy": N,
                                       "unrelated_accuracy": N}},
    "erasure_window_probes.csv": {"notebook": "15-erasure-window", "keys": ["stand_in", "lr", "concept", "seed", "step"],
                                  "columns": {"concept_loss_ratio": C, "retain_drift": C}},
    "erasure_window_bounds.csv": {"notebook": "15-erasure-window", "keys": ["stand_in", "lr", "concept", "seed"],
                                  "columns": {"erased_step": N, "damage_step": N, "clean": N, "clean_step": N,
                                              "last_step": N}},
    "erasure_window_fixed_steps.csv": {"notebook": "15-erasure-window", "keys": ["stand_in", "lr", "step"],
                                       "columns": {"runs": N, "clean_share": N, "erased_share": N, "others_drop": N}},
    "erasure_window_sampling_steps.csv": {"notebook": "15-erasure-window",
                                          "keys": ["concept", "seed", "model", "sampling_steps"],
                                          "columns": {"erased_share": N, "others_accuracy": N, "related_accuracy": N,
                                                      "unrelated_accuracy": N}},
    "erasure_window_stand_ins.csv": {"notebook": "19-window-across-stand-ins", "keys": ["lr", "stand_in"],
                                     "columns": {c: N for c in ("runs", "left_out", "clean_share", "clean_share_low", "clean_share_high",
                                                                "concepts_clean", "median_erased_step", "never_erased",
                                                                "median_damage_step", "never_damaged", "best_fixed_step",
                                                                "best_fixed_clean_share", "best_fixed_erased_share",
                                                                "best_fixed_others_drop")}},
    "erasure_window_stand_ins_bounds.csv": {"notebook": "19-window-across-stand-ins", "keys": ["stand_in", "lr", "concept", "seed"],
                                            "columns": {"erased_step": N, "damage_step": N, "clean": N, "clean_step": N}},
    "stopping_rule_calibration.csv": {"notebook": "16-stopping-rule", "keys": ["lr", "ratio", "drift"],
                                      "columns": {"runs": N, "clean_share": N, "erased_share": N, "others_drop": N,
                                                  "cost": N}},
    "stopping_rule_heldout.csv": {"notebook": "16-stopping-rule", "keys": ["setting", "concept", "seed"],
                                  "columns": {"steps_run": N, "erased_share": N, "others_accuracy": N,
                                              "related_accuracy": N, "unrelated_accuracy": N, "others_drop": N,
                                              "base_others_accuracy": N, "base_erased_share": N,
                                              "calibration_class": N}},
    "stopping_rule_heldout_summary.csv": {"notebook": "16-stopping-rule", "keys": ["setting"],
                                          "columns": {"runs": N, "clean_share": N, "clean_share_low": N,
                                                      "clean_share_high": N, "concepts_clean": N, "concepts": N,
                                                      "steps_mean": N, "erased_share": N, "erased_share_low": N,
                                                      "erased_share_high": N, "others_drop": N, "others_drop_low": N,
                                                      "others_drop_high": N, "related_accuracy": N,
                                                      "related_accuracy_low": N, "related_accuracy_high": N}},
    "esd_calibration.csv": {"notebook": "17-calibrate-esd", "keys": ["lr", "erased_class", "seed", "iterations"],
                            "columns": {"erased_share": N, "others_accuracy": N}},
    "esd_calibration_summary.csv": {"notebook": "17-calibrate-esd", "keys": ["lr", "iterations"],
                                    "columns": {"erased_share": N, "others_accuracy": N, "runs": N}},
    "esd_calibration_windows.csv": {"notebook": "17-calibrate-esd", "keys": ["lr", "erased_class", "seed"],
                                    "columns": {"erased_iterations": N, "damage_iterations": N, "clean": N,
                                                "clean_iterations": N, "last_iterations": N}},
    "sampler_agreement.csv": {"notebook": "18-faster-sampler", "keys": ["sampler", "sampling_steps"],
                              "columns": {"images": N, "label_agreement": N, "label_agreement_low": N,
                                          "label_agreement_high": N, "erased_share_change": N, "others_accuracy_change": N}},
}


class SpecError(Exception):
    """The spec or a result file cannot be read as the spec says."""


@dataclass(frozen=True)
class Problem:
    """One difference between the expectations and the smoke outputs."""

    file: str
    row: str
    column: str
    expected: str
    got: str
    why: str

    def __str__(self) -> str:
        where = self.file + (f" [{self.row}]" if self.row else "") + (f" {self.column}" if self.column else "")
        if self.expected or self.got:
            return f"{where}: expected {self.expected}, got {self.got} ({self.why})"
        return f"{where}: {self.why}"


def number(text: object, where: str) -> float | None:
    """A cell as a number: empty or NaN -> None, True/False -> 1/0."""
    if text is None or text == "":
        return None
    if isinstance(text, bool) or text in ("True", "False"):
        return float(text in (True, "True"))
    if isinstance(text, int | float):
        value = float(text)
    else:
        try:
            value = float(str(text))
        except ValueError:
            raise SpecError(f"{where}: {text!r} is not a number; compare numeric columns only") from None
    return None if math.isnan(value) else value


def _flatten(obj: object, prefix: str = "") -> dict[str, object]:
    if isinstance(obj, dict):
        out: dict[str, object] = {}
        for key, value in obj.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: obj}


def read_rows(path: Path) -> list[dict[str, object]]:
    """A result file's rows: a CSV's cells as text, a JSON file as one row of its (flattened) fields."""
    if path.suffix == ".json":
        return [_flatten(json.loads(path.read_text()))]
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _label(keys: list[str], key: tuple[str, ...]) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(keys, key))


def index_rows(name: str, rows: list[dict[str, object]], keys: list[str]) -> dict[tuple[str, ...], dict[str, object]]:
    """Rows by their key columns (as text); the keys must identify the rows."""
    indexed: dict[tuple[str, ...], dict[str, object]] = {}
    for row in rows:
        missing = [k for k in keys if k not in row]
        if missing:
            raise SpecError(f"{name}: no key column {', '.join(missing)} (columns: {', '.join(row)})")
        key = tuple(str(row[k]) for k in keys)
        if key in indexed:
            raise SpecError(f"{name}: two rows with {_label(keys, key) or 'no keys'}; add a key column to the spec")
        indexed[key] = row
    return indexed


def _format(value: float | None) -> str:
    return "empty" if value is None else f"{value:.6g}"


def check(spec: dict, results_dir: Path) -> tuple[list[Problem], int]:
    """Every problem of the smoke outputs in ``results_dir`` against ``spec``, and how many numbers were compared."""
    problems: list[Problem] = []
    compared = 0
    tolerances = spec["tolerances"]
    for name, entry in spec["files"].items():
        path = results_dir / name
        if not path.is_file():
            problems.append(Problem(name, "", "", "", "", f"file missing from {results_dir}"))
            continue
        keys, columns = entry["keys"], entry["columns"]
        unknown = sorted(set(columns.values()) - set(tolerances))
        if unknown:
            raise SpecError(f"{name}: tolerance class {', '.join(unknown)} is not in the spec's tolerances")
        try:
            got_rows = index_rows(name, read_rows(path), keys)
        except SpecError as e:
            problems.append(Problem(name, "", "", "", "", str(e).removeprefix(f"{name}: ")))
            continue
        lacking = sorted({k for expected in entry["rows"] for k in keys if k not in expected})
        if lacking:  # the spec's keys were changed by hand: its rows predate the new key columns
            problems.append(Problem(name, "", "", "", "", f"expected rows lack key column(s) {', '.join(lacking)}"))
            continue
        expected_keys = set()
        for expected in entry["rows"]:
            key = tuple(str(expected[k]) for k in keys)
            expected_keys.add(key)
            label = _label(keys, key)
            got_row = got_rows.get(key)
            if got_row is None:
                problems.append(Problem(name, label, "", "", "", "row missing"))
                continue
            for column, kind in columns.items():
                want = expected.get(column)
                if column not in got_row:
                    problems.append(Problem(name, label, column, "", "", "column missing"))
                    continue
                got = number(got_row[column], f"{name} [{label}] {column}")
                compared += 1
                if want is None or got is None:
                    if want is not got:
                        problems.append(Problem(name, label, column, _format(want), _format(got), kind))
                    continue
                tol = tolerances[kind]["abs"] + tolerances[kind]["rel"] * abs(want)
                if abs(got - want) > tol:
                    problems.append(Problem(name, label, column, _format(want), _format(got),
                                            f"|diff| {abs(got - want):.3g} > {tol:.3g}, {kind}"))
        for key in got_rows:
            if key not in expected_keys:
                problems.append(Problem(name, _label(keys, key), "", "", "", "new row, not in the expectations"))
    return problems, compared


def expectations(structure: dict[str, dict], results_dir: Path, skip_missing: bool) -> dict[str, dict]:
    """``structure`` (file -> notebook, keys, columns) with every row's values read from ``results_dir``."""
    files: dict[str, dict] = {}
    for name, entry in structure.items():
        path = results_dir / name
        if not path.is_file():
            if skip_missing:
                print(f"skipped {name}: not in {results_dir}", file=sys.stderr)
                continue
            raise SpecError(f"{name}: missing from {results_dir} (remove it from the spec if it is gone for good)")
        keys, columns = list(entry["keys"]), dict(entry["columns"])
        rows = list(index_rows(name, read_rows(path), keys).values())
        absent = [c for c in columns if rows and c not in rows[0]]
        if absent and skip_missing:
            print(f"{name}: no column {', '.join(absent)}, left out", file=sys.stderr)
            columns = {c: k for c, k in columns.items() if c not in absent}
        elif absent:
            raise SpecError(f"{name}: no column {', '.join(absent)} (remove it from the spec if it is gone for good)")
        files[name] = {**{k: v for k, v in entry.items() if k != "rows"}, "keys": keys, "columns": columns,
                       "rows": [{**{k: str(row[k]) for k in keys},
                                 **{c: number(row[c], f"{name} {c}") for c in columns}} for row in rows]}
    return files


def dumps(spec: dict) -> str:
    """The spec as JSON, one line per row (a changed number shows as one changed line)."""
    compact: dict[str, str] = {}

    def token(value: object) -> str:
        compact[f"@@{len(compact)}@@"] = json.dumps(value)
        return f"@@{len(compact) - 1}@@"

    shaped = {**spec, "files": {name: {**entry, "keys": token(entry["keys"]), "rows": [token(r) for r in entry["rows"]]}
                                for name, entry in spec["files"].items()}}
    text = json.dumps(shaped, indent=2)
    for key, value in compact.items():
        text = text.replace(f'"{key}"', value)
    return text + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results_dir", nargs="?", type=Path, default=DEFAULT_RESULTS,
                        help="where the smoke runs wrote their result files (default: build/smoke/results)")
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC,
                        help="the expectations (default: tests/expectations/smoke_numbers.json)")
    parser.add_argument("--update", action="store_true",
                        help="rewrite the expectations from the smoke outputs (keeps the spec's files, keys, "
                             "columns and tolerances; without a spec, starts from this tool's STRUCTURE)")
    args = parser.parse_args(argv)
    if not args.results_dir.is_dir():
        print(f"no smoke outputs in {args.results_dir}: run `make nbval` first", file=sys.stderr)
        return 2
    try:
        if args.update:
            return _update(args.spec, args.results_dir)
        if not args.spec.is_file():
            print(f"no expectations at {args.spec}: create them from the smoke outputs with "
                  f"`{_command(args)} --update`", file=sys.stderr)
            return 2
        spec = json.loads(args.spec.read_text())
        problems, compared = check(spec, args.results_dir)
    except SpecError as e:
        print(f"check_smoke_numbers: {e}", file=sys.stderr)
        return 2
    if problems:
        print(f"smoke numbers differ from {args.spec} ({len(problems)} problems):")
        for problem in problems:
            print(f"  {problem}")
        print(f"If the change is intended, run `{_command(args)} --update` and commit {args.spec.name} with it.")
        return 1
    print(f"smoke numbers: {compared} numbers in {len(spec['files'])} files within tolerance of {args.spec.name}")
    return 0


def _command(args: argparse.Namespace) -> str:
    """This tool's command line for the same results and spec."""
    words = ["python tools/check_smoke_numbers.py"]
    if args.results_dir.resolve() != DEFAULT_RESULTS:
        words.append(str(args.results_dir))
    if args.spec.resolve() != DEFAULT_SPEC:
        words.append(f"--spec {args.spec}")
    return " ".join(words)


def _update(spec_path: Path, results_dir: Path) -> int:
    if spec_path.is_file():
        old = json.loads(spec_path.read_text())
        spec = {**old, "files": expectations(old["files"], results_dir, skip_missing=False)}
        problems, _ = check(old, results_dir)
        for problem in problems:
            print(f"  changed: {problem}")
    else:
        spec = {"about": __doc__.split("\n\n")[1].replace("\n", " ").replace("``", "`"), "tolerances": TOLERANCES,
                "excluded": EXCLUDED, "files": expectations(STRUCTURE, results_dir, skip_missing=True)}
        skipped = len(STRUCTURE) - len(spec["files"])
        if skipped:
            print(f"{skipped} of the {len(STRUCTURE)} files of STRUCTURE are not in {results_dir} (listed above): left out")
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(dumps(spec))
    rows = sum(len(e["rows"]) for e in spec["files"].values())
    numbers = sum(len(e["rows"]) * len(e["columns"]) for e in spec["files"].values())
    print(f"wrote {spec_path}: {numbers} numbers, {rows} rows, {len(spec['files'])} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
