"""A style judge for any CLIP: zero-shot classification of images over a list of style names.

The paper shows erased styles only qualitatively (Sec. 4.4). To put a number on them, each image is
compared with one text embedding per style, built from prompts such as "a painting in the style of
{style}" (the paper's first style template; several templates are averaged, CLIP's prompt
ensembling), plus one option for no particular style ("a photo"), so that an image whose style was
erased can land on :data:`NO_STYLE` rather than being forced onto another style. The verdict is the
style of the highest cosine similarity between the normalized image and text embeddings;
probabilities are the softmax of the cosines times the model's learned temperature
(``logit_scale.exp()``, 100 for OpenAI's CLIP).

Any ``CLIPModel`` works: the built-in small one (``models/clip``, which knows the ``sketch`` and
``sepia`` renderings of the built-in world) or ``openai/clip-vit-large-patch14`` for Stable Diffusion,
both through :func:`erasure_lib.metrics.clip_score.load_clip` (hub ids via :mod:`erasure_lib.hub`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import CLIPModel, CLIPProcessor, PreTrainedTokenizerBase

from erasure_lib.metrics.clip_score import ImagesLike, _as_pil, _embedding, load_clip, pixel_values

NO_STYLE = "none"  # the verdict for an image in none of the styles
STYLE_PROMPTS: tuple[str, ...] = ("a painting in the style of {}",)  # the paper's first style template
NO_STYLE_PROMPTS: tuple[str, ...] = ("a photo",)


@dataclass(frozen=True)
class StylePredictions:
    """What the style judge says about N images.

    Attributes
    ----------
    classes
        The judged styles, then :data:`NO_STYLE`: the columns of ``probabilities``.
    predicted
        Index into ``classes`` of each image's verdict (N,).
    probabilities
        Softmax over ``classes`` of the scaled cosines (N, len(classes)).
    """

    classes: tuple[str, ...]
    predicted: np.ndarray
    probabilities: np.ndarray

    def share(self, style: str) -> float:
        """Share of the images judged to be in ``style`` (or :data:`NO_STYLE`); NaN for no images."""
        if style not in self.classes:
            raise ValueError(f"{style!r} is not a judged style; expected one of {self.classes}")
        if len(self.predicted) == 0:
            return float("nan")
        return float(np.mean(self.predicted == self.classes.index(style)))


def zero_shot(
    image_embeds: torch.Tensor, class_embeds: torch.Tensor, logit_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """CLIP's zero-shot rule: the class of the highest cosine, and the softmax of the scaled cosines.

    Parameters
    ----------
    image_embeds
        (N, D) image embeddings (normalized here).
    class_embeds
        (K, D) one text embedding per class (normalized here).
    logit_scale
        The temperature the cosines are multiplied by before the softmax.

    Returns
    -------
    tuple[np.ndarray, np.ndarray]
        The predicted class index (N,) and the probabilities (N, K), float64.
    """
    if image_embeds.ndim != 2 or class_embeds.ndim != 2 or image_embeds.shape[1] != class_embeds.shape[1]:
        raise ValueError(
            f"expected (N, D) image and (K, D) class embeddings, got {tuple(image_embeds.shape)} and {tuple(class_embeds.shape)}"
        )
    cosines = F.normalize(image_embeds.double(), dim=-1) @ F.normalize(class_embeds.double(), dim=-1).T
    probabilities = (logit_scale * cosines).softmax(dim=-1)
    return cosines.argmax(dim=-1).cpu().numpy(), probabilities.cpu().numpy()


class StyleJudge:
    """Zero-shot style classifier over ``styles`` plus :data:`NO_STYLE`, on a CLIP model.

    Parameters
    ----------
    model
        A ``CLIPModel`` (anything with ``get_image_features``, ``get_text_features``, ``logit_scale``,
        ``config``, ``device`` and ``dtype``).
    processor
        Its ``CLIPProcessor`` (images go through its image processor, text through its tokenizer), or
        ``None``: images are normalized with the mean/std in the model's config
        (:func:`~erasure_lib.metrics.clip_score.pixel_values`) and text goes through ``tokenizer``.
    styles
        The style names, e.g. ``["sketch", "sepia"]`` or ``["Van Gogh", "Pablo Picasso"]``.
    templates
        Prompts with ``{}`` for the style name; each style's embedding is the normalized mean of its
        prompts' normalized embeddings.
    none_prompts
        Prompts of the no-style option (averaged likewise); ``()`` leaves the option out.
    tokenizer
        Required when ``processor`` is ``None``; overrides the processor's tokenizer otherwise.
    batch_size
        Images per forward pass.
    """

    def __init__(
        self,
        model: CLIPModel,
        processor: CLIPProcessor | None,
        styles: Sequence[str],
        templates: Sequence[str] = STYLE_PROMPTS,
        none_prompts: Sequence[str] = NO_STYLE_PROMPTS,
        tokenizer: PreTrainedTokenizerBase | None = None,
        batch_size: int = 64,
    ) -> None:
        styles = tuple(styles)
        if not styles:
            raise ValueError("give at least one style to judge")
        if len(set(styles)) != len(styles) or NO_STYLE in styles:
            raise ValueError(f"styles must be distinct and not {NO_STYLE!r}, got {list(styles)}")
        if not templates or any("{}" not in t for t in templates):
            raise ValueError(f"templates must each hold '{{}}' where the style name goes, got {list(templates)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if tokenizer is None:
            if processor is None:
                raise ValueError("give a processor, or a tokenizer for the direct path (processor=None)")
            tokenizer = processor.tokenizer
        self.model, self.processor, self.tokenizer = model, processor, tokenizer
        self.styles = styles
        self.templates, self.none_prompts = tuple(templates), tuple(none_prompts)
        self.batch_size = batch_size
        self.classes: tuple[str, ...] = (*styles, NO_STYLE) if self.none_prompts else styles
        prompt_sets = [[t.format(s) for t in self.templates] for s in styles]
        if self.none_prompts:
            prompt_sets.append(list(self.none_prompts))
        self.class_embeds = torch.stack([F.normalize(self._text_embeds(p).mean(0), dim=-1) for p in prompt_sets])
        self.logit_scale = float(model.logit_scale.detach().float().exp())

    @torch.no_grad()
    def _text_embeds(self, prompts: Sequence[str]) -> torch.Tensor:
        """Normalized float64 text embeddings (len(prompts), D)."""
        max_length = min(self.tokenizer.model_max_length, self.model.config.text_config.max_position_embeddings)
        text = self.tokenizer(list(prompts), padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
        device = self.model.device
        embeds = _embedding(
            self.model.get_text_features(input_ids=text["input_ids"].to(device), attention_mask=text["attention_mask"].to(device))
        )
        return F.normalize(embeds.double().cpu(), dim=-1)

    @torch.no_grad()
    def image_embeds(self, images: ImagesLike) -> torch.Tensor:
        """Float64 image embeddings (N, D) of PIL images or a float (N, 3, H, W) tensor in [0, 1]."""
        chunks = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            if self.processor is None:
                pixels = pixel_values(self.model, chunk)
            else:
                pixels = self.processor.image_processor(images=_as_pil(chunk), return_tensors="pt")["pixel_values"]
            out = self.model.get_image_features(pixel_values=pixels.to(self.model.device, self.model.dtype))
            chunks.append(_embedding(out).double().cpu())
        return torch.cat(chunks) if chunks else torch.zeros((0, self.class_embeds.shape[1]), dtype=torch.float64)

    def predict(self, images: ImagesLike) -> StylePredictions:
        """The judge's verdict on each image (see :class:`StylePredictions`)."""
        predicted, probabilities = zero_shot(self.image_embeds(images), self.class_embeds, self.logit_scale)
        return StylePredictions(self.classes, predicted, probabilities)


def load_style_judge(
    clip_model: str | Path,
    styles: Sequence[str],
    device: str | torch.device = "cpu",
    templates: Sequence[str] = STYLE_PROMPTS,
    none_prompts: Sequence[str] = NO_STYLE_PROMPTS,
) -> StyleJudge:
    """A :class:`StyleJudge` on a CLIP loaded by :func:`~erasure_lib.metrics.clip_score.load_clip`.

    Parameters
    ----------
    clip_model
        A CLIP folder (``"models/clip"``, the built-in one) or a hub id such as
        ``"openai/clip-vit-large-patch14"`` (pinned in :mod:`erasure_lib.hub`; never downloaded here).
    styles, templates, none_prompts
        As for :class:`StyleJudge`.
    device
        Where the CLIP model runs.
    """
    model, processor = load_clip(clip_model, device)
    return StyleJudge(model, processor, styles, templates=templates, none_prompts=none_prompts)
