"""Device check: the few-shot rows of notebook 13 on another device, beside the committed CPU run.

Erases each class of the built-in model with its shipped defaults (``FewShotConfig.builtin``, 4
images, seed 0), generates notebook 13's evaluation set (16 images of the erased class, 8 of every
other class, 20 PNDM steps, guidance 7.5) with the base and the erased model, classifies them, and
prints erased share and others' accuracy per class next to ``results/object_erasure_comparison.csv``
(the CPU run of notebook 13). Same code, same seeds: only the device's arithmetic differs, so the
means should agree to within a few images. Not a test: run it by hand, e.g. on a GPU::

    python benchmarks/device_check.py --device cuda --images build/compare-methods --out device_check.json

``--images`` is the folder of the 4 images per class that notebook 13 wrote (``<images>/<class>/``);
``--export`` writes them first (it needs the Fashion-MNIST package, see the README).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from erasure_lib import data, evaluation
from erasure_lib.generate import GenerationConfig, generate
from erasure_lib.methods import fewshot
from erasure_lib.metrics import classifier as clf
from erasure_lib.models import load_pipeline
from erasure_lib.paths import CLASSIFIER_PATH, REPO_ROOT
from erasure_lib.results import git_commit, package_versions, write_json

REFERENCE = REPO_ROOT / "results" / "object_erasure_comparison.csv"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--images", type=Path, required=True, help="folder with one sub-folder of 4 images per class")
    parser.add_argument("--export", action="store_true", help="write the images first (as notebook 13 does)")
    parser.add_argument("--classes", nargs="+", default=list(data.CLASSES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-erased", type=int, default=16)
    parser.add_argument("--n-others", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None, help="JSON file of the results")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    generation = GenerationConfig(num_inference_steps=20, guidance_scale=7.5)
    config = fewshot.FewShotConfig.builtin(seed=args.seed)
    pipeline = load_pipeline("builtin", device=device)
    classifier = clf.load_classifier(CLASSIFIER_PATH)
    rows = []
    for concept in args.classes:
        folder = args.images / concept
        if args.export:
            data.export_concept_images(folder, concept, n=4, seed=args.seed)
        table = evaluation.erasure_prompt_table([concept], args.n_erased, args.n_others)
        result = fewshot.erase(pipeline, concept, folder, config, progress_bar=False)
        for method, model in (("base model", pipeline), ("fewshot", result.apply(pipeline))):
            t0 = time.perf_counter()
            images = generate(model, list(table.prompt), list(table.evaluation_seed), generation, progress_bar=False)
            seconds = time.perf_counter() - t0
            summary = evaluation.summarize(evaluation.classify_images(classifier, table, images), [concept])
            rows.append({"method": method, "erased_class": concept, **summary, "generation_seconds": seconds,
                         "optimization_seconds": result.optimization_seconds if method == "fewshot" else 0.0,
                         "final_loss": result.losses[-1] if method == "fewshot" else float("nan")})  # fmt: skip
        print(f"{concept}: erased share {rows[-1]['erased_share']:.3f}, others {rows[-1]['others_accuracy']:.3f}, "
              f"{result.optimization_seconds:.2f} s", flush=True)  # fmt: skip
    here = pd.DataFrame(rows)
    reference = pd.read_csv(REFERENCE)
    reference = reference[reference["method"].isin(["base model", "fewshot"]) & reference["erased_class"].isin(args.classes)]
    merged = here.merge(reference[["method", "erased_class", "erased_share", "others_accuracy"]],
                        on=["method", "erased_class"], suffixes=("", "_cpu"))  # fmt: skip
    means = merged.groupby("method")[["erased_share", "erased_share_cpu", "others_accuracy", "others_accuracy_cpu"]].mean()
    print(means.round(3).to_string())
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    record = {
        "check": "notebook 13's few-shot rows on another device against the committed CPU run",
        "device": str(device),
        "device_name": name,
        "git_commit": git_commit(),
        "packages": package_versions(),
        "fewshot_config": str(config),
        "generation": str(generation),
        "rows": merged.to_dict(orient="records"),
        "means": {m: {k: float(v) for k, v in r.items()} for m, r in means.iterrows()},
        "max_abs_difference_erased_share": float((merged["erased_share"] - merged["erased_share_cpu"]).abs().max()),
    }
    if args.out is not None:
        print(f"wrote {write_json(record, args.out.resolve())}")  # atomic; relative to the current folder
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
