"""Attacks that try to bring an erased concept back without touching the erased weights.

* Prompt variants: other wordings of the concept (plural, misspelling, bare word, unseen templates).
* Concept inversion (Pham et al., "Circumventing Concept Erasure Methods For Text-To-Image Generative
  Models", ICLR 2024): Textual Inversion (Gal et al. 2023) run *against the erased model*: a new
  token's input embedding is learned from the same few images by ordinary (descending) denoising
  loss, with every weight of the erased pipeline frozen. If the U-Net still holds the concept,
  the new token finds it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMScheduler, StableDiffusionPipeline
from tqdm.auto import tqdm

from erasure_lib.data import OBJECT_TEMPLATES, ImageSource, load_concept_images
from erasure_lib.methods.base import tokenize
from erasure_lib.methods.fewshot import denoising_loss, preprocess
from erasure_lib.models import model_resolution


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
    resolution = model_resolution(pipeline)
    noise_scheduler = DDPMScheduler.from_config(pipeline.scheduler.config)
    with torch.no_grad():
        x = preprocess(loaded, resolution, 0.5, rng).to(device, pipeline.vae.dtype)
        posterior = pipeline.vae.encode(x).latent_dist
        z0_all = (posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator).to(device)) * pipeline.vae.config.scaling_factor
    optimizer = torch.optim.AdamW([embeddings.weight], lr=config.lr, weight_decay=0.0)
    flags = [p.requires_grad for p in pipeline.unet.parameters()]
    pipeline.unet.requires_grad_(False)
    try:
        for _ in tqdm(range(config.steps), desc="concept inversion", disable=not progress_bar):
            batch = torch.randint(0, len(z0_all), (config.batch_size,), generator=generator)
            prompts = [config.templates[int(rng.integers(len(config.templates)))].format(config.placeholder) for _ in batch]
            ids = tokenize(tokenizer, prompts, device)
            t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(batch),), generator=generator).to(device)
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
