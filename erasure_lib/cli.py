"""Command line: ``python -m erasure_lib erase|generate ...`` (argument parsing and calls, no logic)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from erasure_lib.data import ConceptType


def _erase_parser(sub: argparse._SubParsersAction) -> None:
    from erasure_lib.methods.fewshot import TRAINABLE_OPTIONS

    p = sub.add_parser(
        "erase",
        help="erase a concept by few-shot unlearning of the text encoder",
        description="Erase a concept from a Stable-Diffusion-style model by gradient ascent on the denoising loss, "
        "updating only the CLIP text encoder, from a few real images (Fuchi & Takagi, BMVC 2024). "
        "Options left out take the defaults for the model: calibrated ones for 'builtin', the paper's otherwise.",
    )
    p.add_argument("--model", default="builtin", help="'builtin', a local diffusers folder, or a hub id[@revision] (default: builtin)")
    p.add_argument("--concept", required=True, help="the concept to erase, e.g. 'sneaker'")
    p.add_argument("--images", help="folder of a few real .png/.jpg images of the concept (not needed with --zero-shot)")
    p.add_argument("--out", required=True, help="new folder for the erased text encoder and erasure.json")
    p.add_argument("--concept-type", choices=("object", "style"), default="object", help="template list: object (27) or style (17)")
    p.add_argument("--trainable", choices=TRAINABLE_OPTIONS, help="which text-encoder parameters train (default mlp-final-attn)")
    p.add_argument("--optimizer", choices=("adam", "adamw", "sgd"), help="optimizer (default adam)")
    p.add_argument("--lr", type=float, help="learning rate (paper: 1e-5 for SD; built-in: calibrated)")
    p.add_argument("--epochs", type=int, help="passes over the images")
    p.add_argument("--batch-size", type=int, help="images per step (default 2)")
    p.add_argument("--seed", type=int, help="seed of every random draw (default 0)")
    p.add_argument("--resolution", type=int, help="image size fed to the VAE (default: the model's)")
    p.add_argument("--zero-shot", action="store_true", help="no images: random latents stand in for them")
    p.add_argument("--zero-shot-images", type=int, help="number of random latents for --zero-shot (default 4)")
    p.add_argument("--keep-checkpoints", action="store_true", help="also save the text encoder after every epoch")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _generate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate PNGs from prompts and seeds", description="Generate one PNG per prompt and seed.")
    p.add_argument("--model", default="builtin", help="'builtin', a local diffusers folder, or a hub id[@revision]")
    p.add_argument("--text-encoder", help="folder written by 'erase' (its text encoder replaces the model's)")
    p.add_argument("--prompt", action="append", help="a prompt (repeatable)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds; every prompt is drawn with every seed")
    p.add_argument("--prompts-csv", help="CSV with case_number, prompt, evaluation_seed (instead of --prompt)")
    p.add_argument("--out", required=True, help="output folder for the PNGs")
    p.add_argument("--steps", type=int, default=25, help="sampling steps (default 25)")
    p.add_argument("--guidance", type=float, default=7.5, help="classifier-free guidance scale (default 7.5)")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m erasure_lib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _erase_parser(sub)
    _generate_parser(sub)
    return parser


def _erase(args: argparse.Namespace) -> None:
    from erasure_lib.methods.fewshot import FewShotConfig, erase
    from erasure_lib.models import load_pipeline

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} already exists; choose a new --out folder or pass --overwrite")
    if not args.zero_shot and not args.images:
        raise ValueError("--images is required (a folder of a few images of the concept), unless --zero-shot")
    overrides = {
        "trainable": args.trainable,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "resolution": args.resolution,
        "zero_shot_images": args.zero_shot_images,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    concept_type: ConceptType = args.concept_type
    overrides |= {"concept_type": concept_type, "zero_shot": args.zero_shot, "keep_checkpoints": args.keep_checkpoints}
    config = FewShotConfig.builtin(**overrides) if args.model == "builtin" else FewShotConfig(**overrides)
    pipeline = load_pipeline(args.model, device=args.device)
    result = erase(pipeline, args.concept, None if args.zero_shot else args.images, config, progress_bar=not args.no_progress)
    result.save(out, base_model=args.model, overwrite=args.overwrite)
    print(
        f"erased {args.concept!r} in {result.optimization_seconds:.2f} s of optimization "
        f"({len(result.losses)} steps, set-up {result.setup_seconds:.2f} s); saved to {out}"
    )
    print(dataclasses.asdict(config))


def _generate(args: argparse.Namespace) -> None:
    import pandas as pd

    from erasure_lib.generate import GenerationConfig, generate_to_folder, read_prompt_csv
    from erasure_lib.models import install_text_encoder, load_pipeline

    if bool(args.prompt) == bool(args.prompts_csv):
        raise ValueError("give either --prompt (one or more) or --prompts-csv")
    # Every input is checked before the model is loaded and before --out is created.
    config = GenerationConfig(num_inference_steps=args.steps, guidance_scale=args.guidance, batch_size=args.batch_size)
    if args.prompts_csv:
        prompts = read_prompt_csv(args.prompts_csv)
    else:
        rows = [(p, s) for p in args.prompt for s in args.seeds]
        prompts = pd.DataFrame({"case_number": range(len(rows)), "prompt": [r[0] for r in rows], "evaluation_seed": [r[1] for r in rows]})
    pipeline = load_pipeline(args.model, device=args.device)
    if args.text_encoder:
        folder = Path(args.text_encoder)
        if not folder.is_dir():
            raise FileNotFoundError(f"--text-encoder {folder} does not exist; pass a folder written by 'erase'")
        install_text_encoder(pipeline, folder)
    paths = generate_to_folder(pipeline, prompts, args.out, config, progress_bar=not args.no_progress)
    print(f"wrote {len(paths)} images to {args.out}")


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """Keep transformers' and diffusers' warnings (such as their torchvision fallbacks) and their
    model-loading progress bars off the terminal; their errors still show, and so do hub downloads'
    progress bars and the command's own (erasure steps, generation). Their settings are restored on exit.
    """
    import huggingface_hub.utils as hf_hub_utils
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    libraries = (transformers_logging, diffusers_logging)
    saved = [(lib.get_verbosity(), lib.is_progress_bar_enabled()) for lib in libraries]
    hub_bars = not hf_hub_utils.are_progress_bars_disabled()

    def set_hub_bars(enabled: bool) -> None:
        # transformers' progress-bar switch also flips the hub's download bars; put those back.
        if enabled and hf_hub_utils.are_progress_bars_disabled():
            hf_hub_utils.enable_progress_bars()
        elif not enabled and not hf_hub_utils.are_progress_bars_disabled():
            hf_hub_utils.disable_progress_bars()

    try:
        for lib in libraries:
            lib.set_verbosity_error()
            lib.disable_progress_bar()
        set_hub_bars(hub_bars)  # a multi-GB download keeps its bar
        yield
    finally:
        for lib, (verbosity, bars) in zip(libraries, saved, strict=True):
            lib.set_verbosity(verbosity)
            if bars:
                lib.enable_progress_bar()
            else:
                lib.disable_progress_bar()
        set_hub_bars(hub_bars)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m erasure_lib erase|generate ...``; 0 on success, 2 (and one ``error:`` line on
    stderr, nothing written to ``--out``) on bad input or a diverged erasure."""
    with quiet_libraries():
        # Imported here, not at the top: diffusers warns as it is imported, and that is now silenced.
        from erasure_lib.methods.base import NonFiniteLossError

        args = build_parser().parse_args(argv)
        message = None
        try:
            _erase(args) if args.command == "erase" else _generate(args)
        except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, OSError, NonFiniteLossError) as err:
            message = f"error: {err}"
        if message is not None:
            # Printed after the except block: a progress bar left open by the failed run has been
            # released with its traceback by now, so it has ended its line.
            print(message, file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
