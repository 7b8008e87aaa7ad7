"""The paper's object evaluator: an ImageNet-1k classifier (timm EVA02-L/14 at 448 px) judging
images of the 10 Imagenette classes (paper, Sec. 4.1).

The classifier is pluggable: :class:`ImageNetEvaluator` wraps any callable that maps a normalised
image batch (N, 3, S, S) to ImageNet-1k logits (N, 1000), so the mapping to the 10 classes is tested
with a stand-in model. :func:`load_eva02` builds the real one; it needs ``timm`` (not a dependency of
this repository: ``pip install timm``) and the weights in the local hub cache (never downloaded here).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from erasure_lib import hub

# The 10 Imagenette classes (the paper's object concepts) and their ImageNet-1k class indices.
IMAGENETTE_CLASSES: dict[str, int] = {
    "tench": 0,
    "English springer": 217,
    "cassette player": 482,
    "chain saw": 491,
    "church": 497,
    "French horn": 566,
    "garbage truck": 569,
    "gas pump": 571,
    "golf ball": 574,
    "parachute": 701,
}
EVA02_NAME = "eva02_large_patch14_448.mim_m38m_ft_in22k_in1k"
# EVA02's preprocessing (timm's pretrained config): 448 px, bicubic, crop_pct 1.0, OpenAI CLIP mean/std.
EVA02_IMAGE_SIZE = 448
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ImageNetPredictions:
    """What the evaluator says about N images.

    Attributes
    ----------
    classes
        The evaluated class names, in column order of ``probabilities``.
    indices
        Their ImageNet-1k indices.
    top1
        ImageNet-1k top-1 index of each image (N,).
    predicted
        Index into ``classes`` of the best of the 10 class logits (N,): the 10-way decision.
    probabilities
        Softmax over the 10 class logits only (N, 10).
    in_classes
        Whether the 1000-way top-1 is one of the 10 classes at all (N,).
    """

    classes: tuple[str, ...]
    indices: tuple[int, ...]
    top1: np.ndarray
    predicted: np.ndarray
    probabilities: np.ndarray
    in_classes: np.ndarray

    def detection_rate(self, concept: str, mode: str = "top1") -> float:
        """Share of images assigned to ``concept``: by the 1000-way top-1 (``"top1"``, the strict
        reading) or by the 10-way decision (``"restricted"``)."""
        if concept not in self.classes:
            raise ValueError(f"{concept!r} is not an evaluated class; expected one of {self.classes}")
        if mode not in ("top1", "restricted"):
            raise ValueError(f"mode must be 'top1' or 'restricted', got {mode!r}")
        if len(self.top1) == 0:
            return float("nan")
        k = self.classes.index(concept)
        hits = self.top1 == self.indices[k] if mode == "top1" else self.predicted == k
        return float(np.mean(hits))


def map_logits(logits: torch.Tensor, classes: Mapping[str, int] = IMAGENETTE_CLASSES) -> ImageNetPredictions:
    """ImageNet-1k logits (N, 1000) to predictions over ``classes`` (name -> ImageNet index)."""
    if logits.ndim != 2 or logits.shape[1] != 1000:
        raise ValueError(f"expected ImageNet-1k logits of shape (N, 1000), got {tuple(logits.shape)}")
    bad = {c: i for c, i in classes.items() if not 0 <= i < 1000}
    if bad:
        raise ValueError(f"ImageNet indices must be in 0..999, got {bad}")
    names = tuple(classes)
    index = torch.tensor([classes[c] for c in names])
    logits = logits.detach().float().cpu()
    sub = logits[:, index]
    top1 = logits.argmax(1)
    return ImageNetPredictions(
        classes=names,
        indices=tuple(int(i) for i in index),
        top1=top1.numpy(),
        predicted=sub.argmax(1).numpy(),
        probabilities=sub.softmax(1).numpy(),
        in_classes=torch.isin(top1, index).numpy(),
    )


class ImageNetEvaluator:
    """Any ImageNet-1k classifier, judging images against a set of classes (the 10 Imagenette ones).

    Parameters
    ----------
    model
        A callable (e.g. a timm model in eval mode): normalised images (N, 3, S, S) -> logits (N, 1000).
    image_size
        The side S the images are resized to (bicubic, no crop).
    mean, std
        Per-channel normalisation after mapping pixels to [0, 1].
    classes
        Evaluated class names -> ImageNet-1k indices.
    batch_size, device, dtype
        How many images per forward pass, and where and in which floating-point type the model runs.
    """

    def __init__(
        self,
        model: Callable[[torch.Tensor], torch.Tensor],
        image_size: int = EVA02_IMAGE_SIZE,
        mean: Sequence[float] = OPENAI_CLIP_MEAN,
        std: Sequence[float] = OPENAI_CLIP_STD,
        classes: Mapping[str, int] = IMAGENETTE_CLASSES,
        batch_size: int = 16,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if image_size < 1 or batch_size < 1:
            raise ValueError("image_size and batch_size must be positive")
        self.model = model
        self.image_size = image_size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.classes = dict(classes)
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.dtype = dtype

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """PIL images to a normalised float batch (N, 3, S, S)."""
        size = (self.image_size, self.image_size)
        arrays = [np.asarray(im.convert("RGB").resize(size, Image.BICUBIC), dtype=np.float32) / 255.0 for im in images]
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        return (x - self.mean) / self.std

    @torch.no_grad()
    def logits(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """ImageNet-1k logits (N, 1000) of PIL images."""
        if len(images) == 0:
            return torch.zeros((0, 1000))
        out = []
        for start in range(0, len(images), self.batch_size):
            x = self.preprocess(images[start : start + self.batch_size])
            out.append(self.model(x.to(self.device, self.dtype)).float().cpu())
        return torch.cat(out)

    def predict(self, images: Sequence[Image.Image]) -> ImageNetPredictions:
        """The evaluator's verdict on each image (see :class:`ImageNetPredictions`)."""
        return map_logits(self.logits(images), self.classes)

    def with_classes(self, classes: Mapping[str, int]) -> ImageNetEvaluator:
        """The same classifier judging against other evaluated classes (e.g. the ten Imagenette ones
        and their WordNet neighbours, :func:`erasure_lib.hierarchy.judge_with_neighbours`); this one is unchanged."""
        indices = list(classes.values())
        if not classes or len(set(indices)) != len(indices) or not all(0 <= int(i) < 1000 for i in indices):
            raise ValueError(f"classes must map names to distinct ImageNet-1k indices in 0..999, got {dict(classes)}")
        judge = copy.copy(self)
        judge.classes = {str(name): int(index) for name, index in classes.items()}
        return judge


def load_eva02(
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    revision: str | None = None,
    cache_dir: str | None = None,
    classes: Mapping[str, int] = IMAGENETTE_CLASSES,
) -> ImageNetEvaluator:
    """The paper's classifier, timm ``eva02_large_patch14_448.mim_m38m_ft_in22k_in1k``, from the local cache.

    Raises ``ImportError`` when ``timm`` is not installed and :class:`erasure_lib.hub.HubUnavailableError`
    (with the download command) when the weights are not in the local hub cache. Never downloads.
    """
    try:
        import timm
    except ImportError as err:
        raise ImportError(
            f"the ImageNet evaluator ({EVA02_NAME}) needs timm, which this repository does not install: "
            "`pip install timm` (it also needs a torchvision that matches your torch), then download the weights: "
            f"`{hub.download_command(*hub.resolve('eva02-l', revision))}`"
        ) from err
    folder = hub.local_snapshot("eva02-l", revision, cache_dir=cache_dir)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise hub.HubUnavailableError(hub.unavailable_message(*hub.resolve("eva02-l", revision)))
    model = timm.create_model(EVA02_NAME, pretrained=True, pretrained_cfg_overlay={"file": str(weights)})
    config = model.pretrained_cfg
    return ImageNetEvaluator(
        model.to(device, dtype).eval(),
        image_size=int(config.get("input_size", (3, EVA02_IMAGE_SIZE, EVA02_IMAGE_SIZE))[-1]),
        mean=tuple(config.get("mean", OPENAI_CLIP_MEAN)),
        std=tuple(config.get("std", OPENAI_CLIP_STD)),
        classes=classes,
        device=device,
        dtype=dtype,
    )
