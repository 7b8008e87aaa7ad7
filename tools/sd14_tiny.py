"""The sd14 profile without weights: what `make sd14-smoke` runs the notebooks' sd14 path on.

``python tools/sd14_tiny.py build/sd14-tiny`` writes

- ``model/``: SD v1.4's architecture at reduced widths (U-Net, VAE and text encoder: see
  :mod:`erasure_lib.sd14`; SD's own tokenizer and scheduler), random weights, as a local diffusers
  folder (:func:`erasure_lib.sd14.build_random_sd14`);
- ``imagenette/<class>/*.png``: random-noise stand-ins for the Imagenette images, one folder per class,
  laid out as ``data/imagenette`` is;
- ``coco/prompts.csv`` and ``coco/images/``: a few captions and noise images in the layout of the
  COCO prompt set and its real images;
- ``styles/<style>/*.png``: noise stand-ins for the real paintings of each style of :data:`TINY_STYLES`
  (notebook 07's ``style_images_dir``), laid out as ``data/styles`` is.

:func:`stand_in_evaluator` is the evaluator the smoke run names (``evaluator:
"tools.sd14_tiny:stand_in_evaluator"``): an :class:`~erasure_lib.metrics.imagenet.ImageNetEvaluator`
around a random linear ImageNet-1k classifier, so the same mapping to the 10 classes runs as with
EVA02. Every number it yields is meaningless; the run proves the code path only.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from erasure_lib import sd14
from erasure_lib.metrics.imagenet import IMAGENETTE_CLASSES, ImageNetEvaluator
from erasure_lib.paths import REPO_ROOT

STAND_IN_SIZE = 16  # px the stand-in classifier looks at
TINY_STYLES = ("Van Gogh",)  # the styles notebooks/params/sd14-tiny/07-erase-styles.yaml erases


def stand_in_evaluator(device: str | torch.device = "cpu", seed: int = 0) -> ImageNetEvaluator:
    """A random linear ImageNet-1k classifier on 16 px images, wrapped as the paper's evaluator is."""
    generator = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * STAND_IN_SIZE**2, 1000))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.05)
        # Lift the 10 evaluated classes so that some top-1s land on them and others do not.
        model[1].bias[list(IMAGENETTE_CLASSES.values())] += 0.5
    return ImageNetEvaluator(model.eval().to(device), image_size=STAND_IN_SIZE, device=device)


def write_noise_images(folder: Path, classes: Sequence[str], n: int, size: int, seed: int) -> None:
    """``n`` uniform-noise PNGs per class in ``folder/<class>/``."""
    rng = np.random.default_rng(seed)
    for name in classes:
        (folder / name).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / name / f"{k:03d}.png")


def check_outputs(folder: Path, notebooks: Sequence[str]) -> list[str]:
    """What is wrong with a smoke run's outputs: every notebook in ``notebooks`` (names without
    ``.ipynb``) must have recorded its run in ``folder/results/manifest.json``, and every file
    recorded there must exist and be non-empty."""
    manifest = folder / "results" / "manifest.json"
    if not manifest.is_file():
        return [f"{manifest} is missing"]
    records = json.loads(manifest.read_text())
    problems = [f"{path} is missing or empty" for path in records if not (REPO_ROOT / path).is_file() or (REPO_ROOT / path).stat().st_size == 0]
    ran = {Path(r["notebook"]).stem for r in records.values()}
    problems += [f"{name} recorded no output" for name in notebooks if name not in ran]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write model/, imagenette/, coco/ and styles/ into")
    parser.add_argument("--images-per-class", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true", help="check the outputs of `make sd14-smoke` instead")
    parser.add_argument("--notebooks", nargs="+", metavar="NAME",
                        help="with --check: the notebooks that ran (names without .ipynb; default: every one with a sd14-tiny parameter file)")
    args = parser.parse_args(argv)
    if args.notebooks and not args.check:
        parser.error("--notebooks goes with --check")
    if args.check:
        names = args.notebooks or sorted(p.stem for p in (REPO_ROOT / "notebooks" / "params" / "sd14-tiny").glob("*.yaml"))
        problems = check_outputs(args.out, names)
        print("\n".join(problems) or f"sd14 path ran: {', '.join(names)}")
        return 1 if problems else 0
    torch.set_num_threads(2)
    if not (args.out / "model" / "model_index.json").is_file():
        sd14.build_random_sd14(args.out / "model", seed=args.seed, scale="tiny")
    write_noise_images(args.out / "imagenette", list(IMAGENETTE_CLASSES), args.images_per_class, 64, args.seed)
    write_noise_images(args.out / "coco", ["images"], args.images_per_class, 64, args.seed + 1)
    write_noise_images(args.out / "styles", TINY_STYLES, args.images_per_class, 64, args.seed + 2)
    captions = ["a red bus parked on a street", "a bowl of fruit on a table", "two dogs running on a beach"]
    pd.DataFrame({"case_number": range(3), "prompt": captions, "evaluation_seed": [7, 8, 9]}).to_csv(args.out / "coco" / "prompts.csv", index=False)
    print(f"wrote {args.out}/model, {args.out}/imagenette, {args.out}/coco and {args.out}/styles")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
