"""Attacks that try to bring an erased concept back without touching the erased weights.

* Prompt variants: other wordings of the concept (plural, misspelling, bare word, unseen templates).
* Concept inversion (Pham et al., "Circumventing Concept Erasure Methods For Text-To-Image Generative
  Models", ICLR 2024): Textual Inversion (Gal et al. 2023) run *against the erased model*: a new
  token's input embedding is learned from the same few images by ordinary (descending) denoising
  loss, with every weight of the erased pipeline frozen. If the U-Net still holds the concept,
  the new token finds it.

Notebook 08 runs both against the base model and each method's erasure of a class, one class at a
time (:func:`robustness`), as tidy rows ``erased_class, attack, target, share``
(:func:`wording_attacks`, :func:`inversion_attacks`); notebook 12 runs them on its own targets.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from diffusers import DDPMScheduler, StableDiffusionPipeline
from PIL import Image
from tqdm.auto import tqdm

from erasure_lib import evaluation
from erasure_lib.data import CLASSES, OBJECT_TEMPLATES, PARAPHRASES, ImageSource, image_digest, load_concept_images
from erasure_lib.evaluation import judge_digest
from erasure_lib.generate import GenerationConfig, generate_from_embeddings
from erasure_lib.methods import REVISIONS
from erasure_lib.methods.base import model_digest, tokenize
from erasure_lib.methods.fewshot import conditioned_denoising_loss, denoising_loss, preprocess
from erasure_lib.metrics.classifier import GarmentStyleClassifier
from erasure_lib.metrics.imagenet import ImageNetEvaluator
from erasure_lib.models import model_resolution
from erasure_lib.results import cached_tables, resolve

BASE = "base"  # the target name of the unerased model in the attack tables
ROBUSTNESS_REVISION = 1  # bump when robustness()'s rows change for the same inputs: rows cached by older code are recomputed
COLUMNS = ["erased_class", "attack", "target", "share"]  # the attack tables' columns, in this order
INVERSION = "concept inversion"  # the attack name of :func:`inversion_attacks`' rows
CONDITIONING = "conditioning attack (U-Net side)"  # the attack name of :func:`conditioning_attacks`' rows


def prompt_variants(concept: str, paraphrase: str | None = None) -> dict[str, str]:
    """Wordings of ``concept`` other than the one erased, to fill into the object templates;
    ``paraphrase`` (another name for it, e.g. ``data.PARAPHRASES[concept]``) adds one more."""
    words = concept.split()
    last = words[-1]
    # swap the last two letters ("sneaker" -> "sneakre"); short words double their last letter
    misspelt = last[:-2] + last[-1] + last[-2] if len(last) > 3 else last + last[-1]
    variants = {
        "as erased": concept,
        "plural": " ".join([*words[:-1], last + "s"]),
        "misspelling": " ".join([*words[:-1], misspelt]),
        "with an adjective": f"new {concept}",
    }
    if "-" in concept:
        variants["hyphen dropped"] = concept.replace("-", "")
    if paraphrase:
        variants["paraphrase"] = paraphrase
    return variants


@dataclass(frozen=True)
class InversionConfig:
    """Textual Inversion against a (possibly erased) pipeline."""

    steps: int = 200
    lr: float = 5e-3
    batch_size: int = 4
    placeholder: str = "<erased-concept>"
    initializer: str = "object"  # the word whose embedding the new token starts from
    seed: int = 0
    templates: tuple[str, ...] = OBJECT_TEMPLATES


@torch.no_grad()
def _latents(
    pipeline: StableDiffusionPipeline, images: Sequence[Image.Image], rng: np.random.Generator, generator: torch.Generator
) -> torch.Tensor:
    """The images as scaled VAE latents, one posterior draw each (random flips from ``rng``)."""
    x = preprocess(list(images), model_resolution(pipeline), 0.5, rng).to(pipeline.device, pipeline.vae.dtype)
    posterior = pipeline.vae.encode(x).latent_dist
    draw = torch.randn(posterior.mean.shape, generator=generator).to(pipeline.device)
    return (posterior.mean + posterior.std * draw) * pipeline.vae.config.scaling_factor


def invert_concept(
    pipeline: StableDiffusionPipeline,
    images: str | Path | Sequence[ImageSource],
    config: InversionConfig,
    progress_bar: bool = False,
) -> StableDiffusionPipeline:
    """Learn a new token for the concept of ``images`` against ``pipeline``; returns a new pipeline
    whose tokenizer knows ``config.placeholder`` (``pipeline`` itself is not modified).

    Only the new token's input embedding trains; the text encoder's other weights, the U-Net and
    the VAE are frozen.
    """
    loaded = load_concept_images(images)
    tokenizer = copy.deepcopy(pipeline.tokenizer)
    if tokenizer.add_tokens(config.placeholder) != 1:
        raise ValueError(f"the placeholder {config.placeholder!r} is already a token; choose another")
    init_ids = tokenizer(config.initializer, add_special_tokens=False).input_ids
    if len(init_ids) != 1:
        raise ValueError(f"initializer {config.initializer!r} must be a single token, got {len(init_ids)}")
    text_encoder = copy.deepcopy(pipeline.text_encoder)
    text_encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # the new row is set below
    token_id = tokenizer.convert_tokens_to_ids(config.placeholder)
    embeddings = text_encoder.get_input_embeddings()
    with torch.no_grad():
        embeddings.weight[token_id] = embeddings.weight[init_ids[0]].clone()
    text_encoder.requires_grad_(False)
    embeddings.weight.requires_grad_(True)
    original = embeddings.weight.detach().clone()

    device = pipeline.device
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator("cpu").manual_seed(config.seed)
    noise_scheduler = DDPMScheduler.from_config(pipeline.scheduler.config)
    z0_all = _latents(pipeline, loaded, rng, generator)
    optimizer = torch.optim.AdamW([embeddings.weight], lr=config.lr, weight_decay=0.0)
    flags = [p.requires_grad for p in pipeline.unet.parameters()]
    pipeline.unet.requires_grad_(False)
    try:
        for _ in tqdm(range(config.steps), desc="concept inversion", disable=not progress_bar):
            batch = torch.randint(0, len(z0_all), (config.batch_size,), generator=generator)
            prompts = [
                config.templates[int(rng.integers(len(config.templates)))].format(config.placeholder) for _ in batch
            ]
            ids = tokenize(tokenizer, prompts, device)
            t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(batch),), generator=generator)
            t = t.to(device)
            noise = torch.randn(z0_all[batch].shape, generator=generator).to(device)
            loss = denoising_loss(pipeline, noise_scheduler, text_encoder, z0_all[batch], ids, t, noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():  # only the new token's row may move
                keep = torch.ones(len(original), dtype=torch.bool)
                keep[token_id] = False
                embeddings.weight[keep] = original[keep]
    finally:
        for p, flag in zip(pipeline.unet.parameters(), flags):
            p.requires_grad_(flag)
    text_encoder.requires_grad_(False).eval()
    components = dict(pipeline.components) | {"tokenizer": tokenizer, "text_encoder": text_encoder}
    attacked = type(pipeline)(**components, requires_safety_checker=False)
    attacked.set_progress_bar_config(disable=True)
    return attacked


@dataclass(frozen=True)
class ConditioningAttackConfig:
    """A conditioning learned directly against the U-Net, around the text encoder (the attack the
    paper's limit section implies: few-shot unlearning leaves the U-Net as it was)."""

    steps: int = 200
    lr: float = 1e-2
    batch_size: int = 4
    seed: int = 0
    start: str = "a photo of a {}"  # the conditioning starts as the target's own encoding of this prompt


def learn_conditioning(
    pipeline: StableDiffusionPipeline,
    concept: str,
    images: str | Path | Sequence[ImageSource],
    config: ConditioningAttackConfig,
    progress_bar: bool = False,
) -> torch.Tensor:
    """The U-Net conditioning (``1 x tokens x width``, what the text encoder would output) that
    best denoises ``images``: it starts as the pipeline's encoding of ``config.start`` naming
    ``concept`` and descends the ordinary denoising loss, every weight of the pipeline frozen.

    Against few-shot unlearning the text encoder is out of the loop, so the attack meets the base
    model's U-Net; against ESD or UCE it meets their edited U-Nets.
    """
    loaded = load_concept_images(images)
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator("cpu").manual_seed(config.seed)
    noise_scheduler = DDPMScheduler.from_config(pipeline.scheduler.config)
    z0_all = _latents(pipeline, loaded, rng, generator)
    with torch.no_grad():
        ids = tokenize(pipeline.tokenizer, [config.start.format(concept)], pipeline.device)
        start = pipeline.text_encoder(ids)[0].to(pipeline.unet.dtype)
    conditioning = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([conditioning], lr=config.lr)
    flags = [p.requires_grad for p in pipeline.unet.parameters()]
    pipeline.unet.requires_grad_(False)
    try:
        for step in tqdm(range(config.steps), desc="conditioning attack", disable=not progress_bar):
            batch = torch.randint(0, len(z0_all), (config.batch_size,), generator=generator)
            t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(batch),), generator=generator).to(pipeline.device)
            noise = torch.randn(z0_all[batch].shape, generator=generator).to(pipeline.device)
            loss = conditioned_denoising_loss(pipeline, noise_scheduler, conditioning.expand(len(batch), -1, -1), z0_all[batch], t, noise)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the conditioning attack's loss is {loss.item()} at its step {step + 1}; lower its lr ({config.lr})")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        for p, flag in zip(pipeline.unet.parameters(), flags):
            p.requires_grad_(flag)
    return conditioning.detach()


# --------------------------------------------------------------------------------------------
# Attack tables (notebooks 08 and 12): the share of images the judge still assigns to the class
# --------------------------------------------------------------------------------------------


def _check_attack(targets: Mapping[str, Any], concept: str, n_eval: int, universe: Sequence[str]) -> None:
    """Fail early, naming what to fix, before an attack generates anything."""
    if not targets:
        raise ValueError("give at least one target: a name -> pipeline mapping, e.g. {'base': pipeline}")
    if n_eval < 1:
        raise ValueError(f"n_eval must be at least 1 (images per prompt set), got {n_eval}")
    if concept not in universe:
        raise ValueError(f"the judge does not name {concept!r}; it names {list(universe)}")


def _share(
    target: StableDiffusionPipeline,
    judge: GarmentStyleClassifier | ImageNetEvaluator,
    prompts: pd.DataFrame,
    concept: str,
    generation: GenerationConfig,
) -> float:
    """The share of ``target``'s images of ``prompts`` that ``judge`` assigns to ``concept``."""
    classified = evaluation.classify_generated(target, judge, prompts, generation)
    return evaluation.summarize(classified, [concept])["erased_share"]


def wording_attacks(
    targets: Mapping[str, StableDiffusionPipeline],
    concept: str,
    judge: GarmentStyleClassifier | ImageNetEvaluator,
    generation: GenerationConfig,
    n_eval: int,
    universe: Sequence[str] = CLASSES,
    paraphrase: str | None = None,
) -> pd.DataFrame:
    """Ask every target for ``concept`` in other words (:func:`prompt_variants`): the first attack on
    an erasure, which leaves its weights alone.

    For each wording, in the order of :func:`prompt_variants`, ``n_eval`` prompts of the object
    templates (:func:`erasure_lib.evaluation.wording_table`, seeds from 10 000, the same for every
    target), generated by each target and judged.

    Parameters
    ----------
    targets
        Name -> pipeline attacked, e.g. ``{"base": pipeline, "fewshot": erased, ...}``; none is modified.
    concept
        The erased class; the prompts are labelled with it.
    judge
        The classifier of the generated images (:func:`erasure_lib.experiment.load_evaluator`).
    generation
        Sampling settings.
    n_eval
        Prompts (images) per wording and target.
    universe
        The classes the judge names, in the order of its ``predicted`` indices.
    paraphrase
        Another name for the concept (e.g. ``data.PARAPHRASES[concept]``), tried as one more wording.

    Returns
    -------
    pandas.DataFrame
        One row per (wording, target), in that order: ``erased_class``, ``attack``
        (``"wording: <variant>"``), ``target`` and ``share``, the share of the images the judge
        assigns to ``concept``.

    Raises
    ------
    ValueError
        For no targets, ``n_eval < 1``, or a concept the judge does not name.
    """
    _check_attack(targets, concept, n_eval, universe)
    rows = []
    for variant, wording in prompt_variants(concept, paraphrase).items():
        prompts = evaluation.wording_table(concept, wording, n_eval, classes=universe)
        for name, target in targets.items():
            rows.append({"erased_class": concept, "attack": f"wording: {variant}", "target": name,
                         "share": _share(target, judge, prompts, concept, generation)})  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def inversion_attacks(
    targets: Mapping[str, StableDiffusionPipeline],
    concept: str,
    images: str | Path | Sequence[ImageSource],
    inversion: InversionConfig,
    judge: GarmentStyleClassifier | ImageNetEvaluator,
    generation: GenerationConfig,
    n_eval: int,
    universe: Sequence[str] = CLASSES,
) -> pd.DataFrame:
    """Concept inversion (Pham et al., ICLR 2024) against every target: a new token learned from
    ``images`` with the target's weights frozen (:func:`invert_concept`), then asked for.

    Each target gets its own inversion, from the same images and seed; the attacked model generates
    ``n_eval`` prompts of the object templates naming ``inversion.placeholder`` (seeds from 10 000),
    which the judge classifies. Against the base model it measures what the attack reaches when
    nothing was erased.

    Parameters
    ----------
    targets
        Name -> pipeline attacked (only these: e.g. the base model and a subset of erasures); none
        is modified.
    concept
        The erased class; the prompts are labelled with it.
    images
        The few real images of the concept the token learns from (the erasure's own, as the paper's
        threat model has it), a folder or a list of paths or images.
    inversion
        The attack's settings: steps, learning rate, seed, placeholder token.
    judge
        The classifier of the generated images (:func:`erasure_lib.experiment.load_evaluator`).
    generation
        Sampling settings.
    n_eval
        Prompts (images) per target.
    universe
        The classes the judge names, in the order of its ``predicted`` indices.

    Returns
    -------
    pandas.DataFrame
        One row per target, in the order of ``targets``: ``erased_class``, ``attack``
        (``"concept inversion"``), ``target`` and ``share``, the share of the images the judge
        assigns to ``concept``.

    Raises
    ------
    ValueError
        For no targets, ``n_eval < 1``, or a concept the judge does not name.
    """
    _check_attack(targets, concept, n_eval, universe)
    prompts = evaluation.wording_table(concept, inversion.placeholder, n_eval, classes=universe)
    rows = []
    for name, target in targets.items():
        attacked = invert_concept(target, images, inversion)
        rows.append({"erased_class": concept, "attack": INVERSION, "target": name,
                     "share": _share(attacked, judge, prompts, concept, generation)})  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def conditioning_attacks(
    targets: Mapping[str, StableDiffusionPipeline],
    concept: str,
    images: str | Path | Sequence[ImageSource],
    attack: ConditioningAttackConfig,
    judge: GarmentStyleClassifier | ImageNetEvaluator,
    generation: GenerationConfig,
    n_eval: int,
    universe: Sequence[str] = CLASSES,
) -> pd.DataFrame:
    """The conditioning attack (:func:`learn_conditioning`) against every target: a conditioning
    learned from ``images`` against the target's U-Net, fed to it with the target's own
    unconditional embedding for guidance, ``n_eval`` images (seeds from 10 000) judged.

    Returns one row per target, in the order of ``targets``: ``erased_class``, ``attack``
    (:data:`CONDITIONING`), ``target`` and ``share``, the share of images judged as ``concept``.
    """
    _check_attack(targets, concept, n_eval, universe)
    prompts = evaluation.wording_table(concept, "<learned conditioning>", n_eval, classes=universe)
    seeds = [int(s) for s in prompts["evaluation_seed"]]
    rows = []
    for name, target in targets.items():
        conditioning = learn_conditioning(target, concept, images, attack)
        with torch.no_grad():
            unconditional = target.text_encoder(tokenize(target.tokenizer, [""], target.device))[0].to(target.unet.dtype)
        generated = generate_from_embeddings(target, conditioning.expand(n_eval, -1, -1), unconditional.expand(n_eval, -1, -1),
                                             seeds, generation, progress_bar=False)  # fmt: skip
        share = evaluation.summarize(evaluation.classify_images(judge, prompts, generated), [concept])["erased_share"]
        rows.append({"erased_class": concept, "attack": CONDITIONING, "target": name, "share": share})
    return pd.DataFrame(rows, columns=COLUMNS)


def robustness(
    pipeline: StableDiffusionPipeline,
    judge: GarmentStyleClassifier | ImageNetEvaluator,
    classes: Sequence[str],
    images: Callable[[str, int], Sequence[Path]],
    seed: int,
    configs: Mapping[str, Any],
    erasure_cache: str | Path,
    base_model: str,
    inversion: InversionConfig,
    generation: GenerationConfig,
    n_eval: int,
    universe: Sequence[str] = CLASSES,
    paraphrases: Mapping[str, str] = PARAPHRASES,
    progress_bar: bool = True,
    attack_images: Callable[[str, Sequence[Path]], Sequence[ImageSource]] | None = None,
    conditioning: ConditioningAttackConfig | None = None,
    rows_cache: str | Path | None = None,
) -> pd.DataFrame:
    """Can an erased class be brought back? For each class, one at a time: erase it with every method
    of ``configs``, then attack the base model and every erasure with other wordings
    (:func:`wording_attacks`) and with concept inversion (:func:`inversion_attacks`).

    The paper's method changes the text encoder only, so the U-Net may still hold the concept; the
    attacks leave every erased weight alone.

    Parameters
    ----------
    pipeline
        The base model; it is not modified.
    judge
        The classifier of the generated images (:func:`erasure_lib.experiment.load_evaluator`).
    classes
        The classes erased and attacked, one at a time.
    images
        ``(class, seed) -> images``: the few real images of one class, e.g.
        :func:`erasure_lib.experiment.image_source`; the erasures and the inversions learn from them.
    seed
        The seed the images are drawn with (the configs and ``inversion`` carry their own).
    configs
        Method name -> config, e.g. a selection of :func:`erasure_lib.experiment.method_configs`;
        the targets are named after the methods.
    erasure_cache
        Where each erasure is saved and read back (:func:`erasure_lib.experiment.erase_with_methods`:
        notebook 13 saves the same erasures there); relative to the repository root.
    base_model
        The name of the base model, recorded with each saved erasure (the notebooks' ``model``).
    inversion
        The concept inversion's settings.
    generation
        Sampling settings.
    n_eval
        Prompts (images) per attack and target.
    universe
        The classes the judge names, in the order of its ``predicted`` indices.
    paraphrases
        Class -> another name for it, tried as one more wording where a class has one.
    progress_bar
        Whether to show a progress bar over the classes.
    attack_images
        ``(class, the erasure's images) -> images`` the attacks learn from, other than the erasure's
        (e.g. :func:`erasure_lib.experiment.other_images`); ``None``: the erasure's own images.
    conditioning
        The conditioning attack's settings (:func:`conditioning_attacks`), or ``None`` to skip it.
    rows_cache
        A folder (relative to the repository root) where each class's rows are kept
        (``<rows_cache>/<class>/seed-<seed>``) and read back
        while everything they depend on is unchanged (:func:`robustness_key`), so that a run resumes
        class by class and seeds accumulate across runs; ``None`` computes every row.

    Returns
    -------
    pandas.DataFrame
        ``erased_class``, ``attack``, ``target`` (``"base"`` or a method's name) and ``share``, in
        the order run: per class, the wording rows of :func:`wording_attacks`, then the
        ``"concept inversion"`` rows, then the conditioning attack's rows.

    Raises
    ------
    ValueError
        For no classes or no methods, a method named ``"base"``, or a class the judge does not name.
    """
    from erasure_lib.experiment import erase_with_methods

    if not classes or not configs:
        raise ValueError("give at least one class and one method")
    if BASE in configs:
        raise ValueError(f"{BASE!r} names the base model among the targets; give the method another name")
    unknown = [c for c in classes if c not in universe]
    if unknown:
        raise ValueError(f"the judge does not name {unknown}; it names {list(universe)}")
    weights = None if rows_cache is None else {"model": model_digest(pipeline), "judge": judge_digest(judge)}
    parts = []
    for concept in tqdm(classes, desc="erase, then attack", disable=not progress_bar):
        # the same images as notebook 13, so the saved erasures match
        shots = images(concept, seed)
        paraphrase = paraphrases.get(concept)
        learn_from = shots if attack_images is None else attack_images(concept, shots)

        def attacked(concept: str = concept, shots: Sequence[Path] = shots, learn_from: Sequence[ImageSource] = learn_from,
                     paraphrase: str | None = paraphrase) -> pd.DataFrame:  # fmt: skip
            erasures = erase_with_methods(pipeline, concept, shots, configs, erasure_cache, base_model)
            targets = {BASE: pipeline} | {method: result.apply(pipeline) for method, result in erasures.items()}
            rows = [wording_attacks(targets, concept, judge, generation, n_eval, universe, paraphrase),
                    inversion_attacks(targets, concept, learn_from, inversion, judge, generation, n_eval, universe)]  # fmt: skip
            if conditioning is not None:
                rows.append(conditioning_attacks(targets, concept, learn_from, conditioning, judge, generation, n_eval, universe))
            return pd.concat(rows, ignore_index=True)

        if rows_cache is None:
            parts.append(attacked())
        else:
            key = robustness_key(concept, seed, configs, base_model, weights, shots, learn_from, paraphrase, inversion, conditioning,
                                 generation, n_eval, universe)  # fmt: skip
            parts.append(cached_tables(resolve(rows_cache) / concept / f"seed-{seed}", key, lambda: {"rows": attacked()})["rows"])
    return pd.concat(parts, ignore_index=True)


def robustness_key(
    concept: str,
    seed: int,
    configs: Mapping[str, Any],
    base_model: str,
    weights: Mapping[str, str | None],
    shots: Sequence[ImageSource],
    learn_from: Sequence[ImageSource],
    paraphrase: str | None,
    inversion: InversionConfig,
    conditioning: ConditioningAttackConfig | None,
    generation: GenerationConfig,
    n_eval: int,
    universe: Sequence[str],
) -> dict[str, object]:
    """What one class's rows of :func:`robustness` depend on: the code's revision and every method's
    (:data:`erasure_lib.methods.REVISIONS`, as the saved erasures' key has it), the class and
    seed, every method's config, the base model (name and ``weights``: its digest and the judge's),
    the erasure's and the attacks' real images (by content), the paraphrase, both attacks' settings,
    the sampling settings, the number of images per attack and the judge's classes."""
    return {"revision": ROBUSTNESS_REVISION, "concept": concept, "seed": int(seed), "configs": {m: repr(c) for m, c in configs.items()},
            "method_revisions": {m: REVISIONS[m] for m in configs}, "base_model": base_model, "weights": dict(weights), "shots": [image_digest(p) for p in shots],
            "attack_images": [image_digest(p) for p in learn_from], "paraphrase": paraphrase, "inversion": repr(inversion),
            "conditioning": repr(conditioning), "generation": repr(generation), "n_eval": int(n_eval), "universe": list(universe)}  # fmt: skip


def attack_summary(table: pd.DataFrame, targets: Sequence[str]) -> pd.DataFrame:
    """The mean share over classes of each attack (rows) against each target (columns, in the order
    of ``targets``): one row per attack of ``table`` (columns ``attack, target, share``)."""
    missing = [t for t in targets if t not in set(table["target"])]
    if missing:
        raise ValueError(f"the table has no rows of the target(s) {missing}; it has {sorted(set(table['target']))}")
    means = table.pivot_table(index="attack", columns="target", values="share", aggfunc="mean")
    return means[list(targets)].reset_index()


def attack_intervals(table: pd.DataFrame, targets: Sequence[str]) -> pd.DataFrame:
    """Each attack against each target (rows ``attack, target``, targets in the order given): the
    number of runs (classes x seeds, one row of ``table`` each), the mean share and its 95%
    bootstrap interval over the runs (:func:`erasure_lib.evaluation.spread`), and the share of runs
    where the class is drawn in at least half of the images."""
    missing = [t for t in targets if t not in set(table["target"])]
    if missing:
        raise ValueError(f"the table has no rows of the target(s) {missing}; it has {sorted(set(table['target']))}")
    rows = []
    for attack, of_attack in table.groupby("attack", sort=True):
        for target in targets:
            shares = of_attack.loc[of_attack["target"] == target, "share"].to_numpy(dtype=float)
            if len(shares) == 0:
                continue
            low, high = evaluation.spread(shares)
            rows.append({"attack": attack, "target": target, "runs": len(shares), "share": float(shares.mean()),
                         "share_low": low, "share_high": high, "drawn_share": float((shares >= 0.5).mean())})  # fmt: skip
    return pd.DataFrame(rows, columns=["attack", "target", "runs", "share", "share_low", "share_high", "drawn_share"])
