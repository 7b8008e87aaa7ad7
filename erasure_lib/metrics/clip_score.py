"""CLIP score, and loading the CLIP that computes it (a hub model or the built-in world's small one).

The paper measures image-text alignment with the CLIP score of ``openai/clip-vit-large-patch14``:
the cosine of the normalized image and text embeddings of each (image, prompt) pair (Sec. 4).
:func:`clip_score` returns these raw cosines, in [-1, 1]. Papers and torchmetrics often report
``100 * max(cosine, 0)`` averaged over pairs (Hessel et al.'s CLIPScore uses ``2.5 * max(cos, 0)``);
:func:`reported_clip_score` gives that number, and tables should say which of the two they show.

No CLIP weights can be fetched here, so the built-in world has its own small ``CLIPModel``, trained
by :mod:`erasure_lib.builtin.clip` and saved as a standard transformers CLIP folder, which
:func:`load_clip` reads like a hub model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import AutoTokenizer, CLIPImageProcessorPil, CLIPModel, CLIPProcessor, PreTrainedTokenizerBase

from erasure_lib import hub
from erasure_lib.paths import REPO_ROOT

ImagesLike = Sequence[Image.Image] | torch.Tensor


def _as_unit_tensor(images: ImagesLike) -> torch.Tensor:
    """Images as a float tensor (N, 3, H, W) in [0, 1]."""
    if isinstance(images, torch.Tensor):
        if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(
                f"image tensors must be float (N, 3, H, W) in [0, 1], got {images.dtype} {tuple(images.shape)}"
            )
        return images.detach().float().clamp(0.0, 1.0).cpu()
    arrays = [
        np.asarray(_check_pil(image, k).convert("RGB"), dtype=np.float32) / 255.0 for k, image in enumerate(images)
    ]
    if len({a.shape for a in arrays}) > 1:
        raise ValueError("PIL images of different sizes: resize them first or pass a processor")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def _check_pil(image: object, k: int) -> Image.Image:
    if not isinstance(image, Image.Image):
        raise TypeError(f"images must be PIL images or a (N, 3, H, W) tensor; item {k} is {type(image).__name__}")
    return image


def _as_pil(images: ImagesLike) -> list[Image.Image]:
    if not isinstance(images, torch.Tensor):
        return [_check_pil(image, k) for k, image in enumerate(images)]
    levels = (_as_unit_tensor(images) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a, "RGB") for a in levels]


def pixel_values(model: CLIPModel, images: ImagesLike) -> torch.Tensor:
    """The direct image path: [0, 1] tensor, resized to the model's size, normalized with its mean/std.

    Used when :func:`clip_score` gets no processor. The mean and std are read from
    ``model.config.image_mean`` / ``image_std``, which :func:`erasure_lib.builtin.clip.build_small_clip` sets and
    ``config.json`` keeps. Images of another size are resized bilinearly with antialiasing.

    Parameters
    ----------
    model
        A ``CLIPModel`` whose config holds ``image_mean`` and ``image_std``.
    images
        PIL images (all of one size) or a float tensor (N, 3, H, W) in [0, 1].

    Returns
    -------
    torch.Tensor
        (N, 3, S, S) float32 with S the vision tower's ``image_size``.
    """
    mean, std = getattr(model.config, "image_mean", None), getattr(model.config, "image_std", None)
    if mean is None or std is None:
        raise ValueError(
            "this CLIPModel's config has no image_mean/image_std, so images cannot be normalized directly: "
            "pass the model's processor (load_clip returns it)"
        )
    x = _as_unit_tensor(images)
    size = model.config.vision_config.image_size
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def _embedding(output: torch.Tensor | object) -> torch.Tensor:
    """``get_*_features`` returns a tensor in transformers 4 and a ModelOutput in 5."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


@torch.no_grad()
def clip_score(
    model: CLIPModel,
    processor: CLIPProcessor | None,
    images: ImagesLike,
    prompts: Sequence[str],
    batch_size: int = 64,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> np.ndarray:
    """Per-pair CLIP score: cosine of the normalized image and text embeddings (paper, Sec. 4).

    Parameters
    ----------
    model
        A ``CLIPModel`` (the hub's ``openai/clip-vit-large-patch14`` or the built-in small one).
    processor
        Its ``CLIPProcessor`` (images go through its image processor as PIL images, text through its
        tokenizer), or ``None`` for the direct path: images are converted to tensors and normalized
        with the mean/std in the model's config (:func:`pixel_values`), text goes through
        ``tokenizer``. For the built-in model both paths give the same scores to float round-off.
    images
        N PIL images or a float tensor (N, 3, H, W) in [0, 1].
    prompts
        N prompts; prompt ``i`` is scored against image ``i``. Longer prompts are truncated to the
        text tower's length (77 tokens for OpenAI's CLIP, 32 for the built-in one).
    batch_size
        Pairs per forward pass.
    tokenizer
        Required when ``processor`` is ``None``; overrides the processor's tokenizer otherwise.

    Returns
    -------
    np.ndarray
        (N,) float64 raw cosines in [-1, 1] (not scaled by 100, not clipped; see
        :func:`reported_clip_score`).
    """
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts: give one prompt per image")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if tokenizer is None:
        if processor is None:
            raise ValueError("give a processor, or a tokenizer for the direct path (processor=None)")
        tokenizer = processor.tokenizer
    max_length = min(tokenizer.model_max_length, model.config.text_config.max_position_embeddings)
    device, dtype = model.device, model.dtype
    scores = []
    for start in range(0, len(prompts), batch_size):
        chunk = images[start : start + batch_size]
        if processor is None:
            pixels = pixel_values(model, chunk)
        else:
            pixels = processor.image_processor(images=_as_pil(chunk), return_tensors="pt")["pixel_values"]
        text = tokenizer(
            list(prompts[start : start + batch_size]),
            padding="max_length",  # a pair's score then does not depend on the other prompts of its batch
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        image_embeds = _embedding(model.get_image_features(pixel_values=pixels.to(device, dtype)))
        text_embeds = _embedding(
            model.get_text_features(
                input_ids=text["input_ids"].to(device), attention_mask=text["attention_mask"].to(device)
            )
        )
        cosine = F.cosine_similarity(image_embeds.double(), text_embeds.double(), dim=-1)
        scores.append(cosine.cpu().numpy())
    return np.concatenate(scores) if scores else np.zeros(0)


def reported_clip_score(cosines: np.ndarray, scale: float = 100.0) -> float:
    """The usually reported CLIP score: the mean of ``scale * max(cosine, 0)`` (torchmetrics' convention).

    Parameters
    ----------
    cosines
        Per-pair cosines from :func:`clip_score`.
    scale
        100 (torchmetrics, most diffusion papers) or 2.5 (Hessel et al. 2021).

    Returns
    -------
    float
        The mean clipped, scaled score.
    """
    cosines = np.asarray(cosines, dtype=np.float64)
    if cosines.size == 0:
        raise ValueError("no scores given")
    return float(np.mean(scale * np.clip(cosines, 0.0, None)))


def load_clip(name_or_folder: Path | str, device: str | torch.device = "cpu") -> tuple[CLIPModel, CLIPProcessor]:
    """Load a CLIP model and its processor from a folder or the model hub.

    Parameters
    ----------
    name_or_folder
        A folder written by :func:`erasure_lib.builtin.clip.save_small_clip` (or any transformers CLIP folder; a relative
        path is also looked up from the repository root, e.g. ``"models/clip"``), or a hub id
        such as ``"openai/clip-vit-large-patch14"`` (needs the network or a filled hub cache).
    device
        Where to put the model.

    Returns
    -------
    tuple[CLIPModel, CLIPProcessor]
        The model in eval mode and its processor (PIL image backend: torchvision is not needed).
    """
    path = Path(name_or_folder)
    if not path.is_absolute() and not path.is_dir() and (REPO_ROOT / path).is_dir():
        path = REPO_ROOT / path  # a folder of this repository, e.g. "models/clip", from any working directory
    revision, access = None, contextlib.nullcontext()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} holds no config.json: it is not a saved CLIP model")
        source = str(path)
    elif path.exists() or str(name_or_folder).startswith((".", "/", "~")) or path.suffix:
        raise FileNotFoundError(f"CLIP folder {path} does not exist; train and save the small CLIP first")
    else:
        # Hub ids go through erasure_lib.hub: pinned revision, one clear error when offline.
        source, revision = hub.resolve(str(name_or_folder), pin=False)
        access = hub.hub_access(source, revision)
    with access:
        model = CLIPModel.from_pretrained(source, revision=revision, dtype=torch.float32)
        processor = CLIPProcessor(
            image_processor=CLIPImageProcessorPil.from_pretrained(source, revision=revision),
            tokenizer=AutoTokenizer.from_pretrained(source, revision=revision),
        )
    return model.to(device).eval(), processor
