"""Can a faster sampler stand in for the evaluation's sampler (issue 12: `make results` within an hour)?

Every judged image of the paper notebooks costs ``num_inference_steps`` U-Net calls: generation is
most of their run time. A faster sampler may replace the model's own only where it is shown to give
the same verdicts. This module judges the same prompts, seeds and models under several (sampler,
steps) settings and measures how often each setting's verdict on an image equals the reference
setting's, against the agreement of the reference with itself at twice its steps (the noise floor:
what "converged" already allows). The models are the base model and few-shot erasures at the
built-in setting, which sit at the edge of erasure where verdicts move most with the sampler.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import pandas as pd
from diffusers import StableDiffusionPipeline
from transformers import PreTrainedModel

from erasure_lib.evaluation import classify_images, spread
from erasure_lib.generate import GenerationConfig, Sampler
from erasure_lib.methods import fewshot
from erasure_lib.methods.fewshot import FewShotConfig
from erasure_lib.metrics.classifier import GarmentStyleClassifier
from erasure_lib.window import generate_with_encoders

Setting = tuple[Sampler, int]  # (sampler, sampling steps)


def judged_settings(
    pipeline: StableDiffusionPipeline,
    judge: GarmentStyleClassifier,
    concept_images: Callable[[str, int], Sequence],
    concepts: Sequence[str],
    seed: int,
    config: FewShotConfig,
    prompts_for: Callable[[str], pd.DataFrame],
    settings: Sequence[Setting],
    guidance_scale: float,
    batch_size: int = 128,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """For each concept, the base model and the concept erased with ``config`` (seed ``seed``), judged
    on ``prompts_for(concept)`` under every (sampler, steps) of ``settings``, the same seeds each time.

    Returns
    -------
    (judged, seconds)
        ``judged``: one row per image: ``concept``, ``model`` ("base" or "erased"), ``sampler``,
        ``sampling_steps``, ``case_number``, ``class``, ``class_index``, ``predicted``; ``seconds``: one row per
        setting with the generation's wall-clock seconds and images, for speed ratios measured in
        the same process.
    """
    if not settings or not concepts:
        raise ValueError("give at least one setting and one concept")
    encoders: dict[str, dict[str, PreTrainedModel]] = {}
    for concept in concepts:
        erased = fewshot.erase(pipeline, concept, list(concept_images(concept, seed)), replace(config, seed=seed), progress_bar=False)
        encoders[concept] = {"base": pipeline.text_encoder, "erased": erased.components["text_encoder"]}
    rows, timing = [], []
    for sampler, steps in settings:
        generation = GenerationConfig(int(steps), guidance_scale, batch_size, sampler=sampler)
        start, n = time.perf_counter(), 0
        for concept in concepts:
            prompts = prompts_for(concept)
            images = generate_with_encoders(pipeline, encoders[concept], prompts, generation, progress_bar=False)
            for model, imgs in images.items():
                verdict = classify_images(judge, prompts, imgs)
                rows.append(verdict[["case_number", "class", "class_index", "predicted"]].assign(concept=concept, model=model, sampler=sampler,
                                                                                 sampling_steps=int(steps)))  # fmt: skip
                n += len(imgs)
        timing.append({"sampler": sampler, "sampling_steps": int(steps), "images": n, "seconds": time.perf_counter() - start})
    columns = ["concept", "model", "sampler", "sampling_steps", "case_number", "class", "class_index", "predicted"]
    return pd.concat(rows, ignore_index=True)[columns], pd.DataFrame(timing)


def agreement(judged: pd.DataFrame, seconds: pd.DataFrame, reference: Setting) -> pd.DataFrame:
    """Per setting: ``label_agreement``, the share of images whose verdict equals the reference
    setting's on the same model, prompt and seed (95% bootstrap interval over the models); the mean
    absolute change of each model's erased share and other classes' accuracy from the reference;
    and ``speedup``, the reference's seconds per image over the setting's (same process)."""
    keys = ["concept", "model", "case_number"]
    ref = judged[(judged.sampler == reference[0]) & (judged.sampling_steps == reference[1])]
    if ref.empty:
        raise ValueError(f"the reference setting {reference} was not judged")
    per_image_seconds = seconds.set_index(["sampler", "sampling_steps"]).eval("seconds / images")
    ref_seconds = per_image_seconds.loc[tuple(reference)]

    def shares(part: pd.DataFrame) -> pd.DataFrame:
        """Per (concept, model): the erased share and the other classes' accuracy."""
        own = part["class"] == part.concept
        part = part.assign(hit=part.predicted == part.class_index)
        return pd.DataFrame({
            "erased_share": part[own].groupby(["concept", "model"]).hit.mean(),
            "others_accuracy": part[~own].groupby(["concept", "model"]).hit.mean(),
        })  # fmt: skip

    ref_shares = shares(ref)
    rows = []
    for (sampler, steps), part in judged.groupby(["sampler", "sampling_steps"], sort=False):
        merged = part.merge(ref[[*keys, "predicted"]], on=keys, suffixes=("", "_reference"))
        same = (merged.predicted == merged.predicted_reference).groupby([merged.concept, merged.model]).mean()
        low, high = spread(same.to_numpy())
        moved = (shares(part) - ref_shares).abs()
        rows.append({"sampler": sampler, "sampling_steps": int(steps), "images": len(merged),
                     "label_agreement": float(same.mean()), "label_agreement_low": low, "label_agreement_high": high,
                     "erased_share_change": float(moved.erased_share.mean()), "others_accuracy_change": float(moved.others_accuracy.mean()),
                     "speedup": float(ref_seconds / per_image_seconds.loc[(sampler, int(steps))])})  # fmt: skip
    return pd.DataFrame(rows)
