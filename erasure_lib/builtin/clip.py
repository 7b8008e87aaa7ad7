"""Training of the small CLIP that plays ``openai/clip-vit-large-patch14``'s part in the built-in world.

No CLIP weights can be fetched here, so the built-in world gets its own small ``CLIPModel`` (same
architecture, ViT with 4 px patches on 32 px images, CLIP's real 49,408-token vocabulary), trained
with CLIP's symmetric InfoNCE loss on real Fashion-MNIST renders in the three styles and captions
from the paper's templates (:func:`train_small_clip`). It is an evaluator: it never sees generated
images. :func:`save_small_clip` writes a standard transformers CLIP folder (``config.json``,
``model.safetensors``, tokenizer and ``processor_config.json``), which
:func:`erasure_lib.metrics.clip_score.load_clip` (re-exported here) reads like a hub model and
:mod:`erasure_lib.metrics.clip_score` scores with.
"""

from __future__ import annotations

import copy
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm.auto import tqdm
from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor, PreTrainedTokenizerBase

from erasure_lib.builtin.training import render_batch, warmup_cosine
from erasure_lib.data import CLASSES, STYLES, FashionMNIST, caption_for, object_prompt, render
from erasure_lib.io import atomic_directory, atomic_write_bytes, atomic_write_text
from erasure_lib.metrics.clip_score import clip_score, load_clip

__all__ = [
    "TRAIN_CONFIG_FILE",
    "ClipTrainConfig",
    "build_small_clip",
    "load_clip",
    "save_small_clip",
    "train_small_clip",
    "zero_shot_check",
]

TRAIN_CONFIG_FILE = "clip_train_config.json"


@dataclass(frozen=True)
class ClipTrainConfig:
    """Architecture and training of the built-in small CLIP."""

    seed: int = 0
    # Vision tower: ViT on 32 px images with 4 px patches (64 patches + the class token)
    image_size: int = 32
    patch_size: int = 4
    vision_hidden_size: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    vision_intermediate_size: int = 512
    # Text tower: CLIP's vocabulary, 32 tokens (the built-in tokenizer's length)
    text_hidden_size: int = 128
    text_layers: int = 4
    text_heads: int = 4
    text_intermediate_size: int = 512
    max_length: int = 32
    projection_dim: int = 128
    # Fixed normalization: (x - 0.5) / 0.5 maps [0, 1] to [-1, 1], the range render_batch produces
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    # Training: symmetric InfoNCE on (render, caption) pairs
    steps: int = 1200  # about 10 minutes on 2 idle CPU cores (measured about 0.5 s per step at batch 128)
    batch_size: int = 128
    lr: float = 5e-4
    warmup_steps: int = 100  # linear warm-up, then cosine decay (warmup_cosine)
    weight_decay: float = 0.1
    style_p: tuple[float, ...] = (1 / 3, 1 / 3, 1 / 3)  # plain, sketch, sepia
    flip_p: float = 0.5


def build_small_clip(config: ClipTrainConfig) -> CLIPModel:
    """A randomly initialized small ``CLIPModel`` (draws from torch's global generator).

    The config also records ``image_mean`` / ``image_std`` so that :func:`~erasure_lib.metrics.clip_score.clip_score` can normalize
    images without a processor, also after ``save_pretrained`` / ``from_pretrained``.
    """
    text_config = {
        "vocab_size": 49408,
        "hidden_size": config.text_hidden_size,
        "intermediate_size": config.text_intermediate_size,
        "num_hidden_layers": config.text_layers,
        "num_attention_heads": config.text_heads,
        "max_position_embeddings": config.max_length,
        "bos_token_id": 49406,
        "eos_token_id": 49407,  # pooling takes the first end-of-text token
        "pad_token_id": 49407,
        "hidden_act": "quick_gelu",
    }
    vision_config = {
        "image_size": config.image_size,
        "patch_size": config.patch_size,
        "num_channels": 3,
        "hidden_size": config.vision_hidden_size,
        "intermediate_size": config.vision_intermediate_size,
        "num_hidden_layers": config.vision_layers,
        "num_attention_heads": config.vision_heads,
        "hidden_act": "quick_gelu",
    }
    clip_config = CLIPConfig(
        text_config=text_config,
        vision_config=vision_config,
        projection_dim=config.projection_dim,
        image_mean=list(config.image_mean),
        image_std=list(config.image_std),
    )
    return CLIPModel(clip_config)


def train_small_clip(
    config: ClipTrainConfig,
    data: FashionMNIST,
    tokenizer: PreTrainedTokenizerBase,
    checkpoint: Path | str | None = None,
    checkpoint_every: int = 250,
    stop_at: int | None = None,
) -> tuple[CLIPModel, list[float]]:
    """Train the small CLIP with the standard symmetric InfoNCE loss (``return_loss=True``).

    Each step draws ``batch_size`` real images, a style per image (``style_p``) and a horizontal flip
    (``flip_p``), renders them (:func:`erasure_lib.builtin.training.render_batch`) and pairs each with a caption
    from the paper's templates (``erasure_lib.data.caption_for``). The batch of step ``s`` depends
    only on ``(seed, s)``, and the model has no dropout, so a run resumed from ``checkpoint`` follows
    the same path as an uninterrupted one.

    Parameters
    ----------
    config
        Architecture and training settings.
    data
        Real Fashion-MNIST (the training split).
    tokenizer
        CLIP's tokenizer (``erasure_lib.paths.BUILTIN_MODEL_DIR / "tokenizer"``).
    checkpoint
        A file for the training state, written every ``checkpoint_every`` steps and at the end
        (atomically); an existing one is resumed from.
    checkpoint_every
        Steps between checkpoints.
    stop_at
        Stop once this many steps are done (a checkpoint is written there), to train in slices on
        a shared machine: a later call with the same ``checkpoint`` goes on. The model returned
        then is the unfinished one. ``None`` trains to ``config.steps``.

    Returns
    -------
    tuple[CLIPModel, list[float]]
        The model (eval mode, frozen) and the loss of every step.
    """
    if len(config.style_p) != len(STYLES):
        raise ValueError(f"style_p needs one probability per style {STYLES}, got {config.style_p}")
    torch.manual_seed(config.seed)
    model = build_small_clip(config)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    schedule = warmup_cosine(optimizer, config.warmup_steps, config.steps)
    losses: list[float] = []
    start = 0
    checkpoint = None if checkpoint is None else Path(checkpoint)
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        if state["config"] != asdict(config):
            raise ValueError(
                f"checkpoint {checkpoint} was written with another ClipTrainConfig; remove it or use its config"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        losses, start = state["losses"], state["step"]

    mean = torch.tensor(config.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(config.image_std).view(1, 3, 1, 1)
    token_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def tokenize(captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        # The templates give under a thousand distinct captions: tokenize each once.
        missing = sorted({c for c in captions if c not in token_cache})
        if missing:
            out = tokenizer(
                missing, padding="max_length", max_length=config.max_length, truncation=True, return_tensors="pt"
            )
            token_cache.update(zip(missing, zip(out["input_ids"], out["attention_mask"])))
        return torch.stack([token_cache[c][0] for c in captions]), torch.stack([token_cache[c][1] for c in captions])

    end = config.steps if stop_at is None else min(config.steps, stop_at)
    if stop_at is not None and checkpoint is None:
        raise ValueError("stop_at needs a checkpoint file to resume from")
    model.train()
    for step in tqdm(range(start, end), desc="small CLIP", initial=start, total=config.steps, mininterval=10):
        rng = np.random.default_rng([config.seed, step])
        idx = rng.integers(len(data.labels), size=config.batch_size)
        styles = rng.choice(len(STYLES), size=len(idx), p=config.style_p)
        flips = rng.random(len(idx)) < config.flip_p
        captions = [caption_for(int(data.labels[i]), STYLES[s], rng) for i, s in zip(idx, styles)]
        x01 = (render_batch(data, idx, styles, flips, config.image_size) + 1.0) / 2.0
        input_ids, attention_mask = tokenize(captions)
        loss = model(
            input_ids=input_ids, attention_mask=attention_mask, pixel_values=(x01 - mean) / std, return_loss=True
        ).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0.0, math.log(100.0))  # CLIP caps the temperature at 100
        losses.append(loss.item())
        if checkpoint is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == end):
            buffer = io.BytesIO()
            state = {
                "config": asdict(config),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "losses": losses,
                "step": step + 1,
            }
            torch.save(state, buffer)
            atomic_write_bytes(checkpoint, buffer.getvalue())
    model.eval().requires_grad_(False)
    return model, losses


@torch.no_grad()
def zero_shot_check(
    model: CLIPModel, tokenizer: PreTrainedTokenizerBase, data: FashionMNIST, n: int, seed: int = 0
) -> pd.DataFrame:
    """Held-out check of a built-in CLIP: per style, zero-shot class accuracy and true-vs-wrong score.

    ``n`` images per style are drawn from ``data`` (use the test split) and rendered in the style;
    each is scored against :func:`erasure_lib.data.object_prompt` of every class in that style.
    Columns: ``style, n, top1_accuracy, clip_score_true, clip_score_wrong`` (the mean cosine of the
    true caption and of the mean over the nine wrong ones).
    """
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(data.labels), size=min(n, len(data.labels)), replace=False)
    rows = []
    for style in STYLES:
        images = torch.stack([torch.from_numpy(render(data.images[i], style)).permute(2, 0, 1) for i in idx]).float()
        prompts = [object_prompt(c, style) for c in CLASSES]
        cosines = np.stack([clip_score(model, None, images, [p] * len(idx), tokenizer=tokenizer) for p in prompts], axis=1)
        labels = np.asarray(data.labels)[idx]
        true = cosines[np.arange(len(idx)), labels]
        wrong = (cosines.sum(axis=1) - true) / (len(CLASSES) - 1)
        rows.append({"style": style, "n": len(idx), "top1_accuracy": float(np.mean(cosines.argmax(axis=1) == labels)),
                     "clip_score_true": float(true.mean()), "clip_score_wrong": float(wrong.mean())})
    return pd.DataFrame(rows)


def _image_processor(model: CLIPModel) -> CLIPImageProcessorPil:
    """A PIL image processor equivalent to :func:`~erasure_lib.metrics.clip_score.pixel_values` (no torchvision needed)."""
    size = model.config.vision_config.image_size
    return CLIPImageProcessorPil(
        do_resize=True,
        size={"height": size, "width": size},
        crop_size={"height": size, "width": size},
        resample=Image.Resampling.BILINEAR,
        do_center_crop=False,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=list(model.config.image_mean),
        image_std=list(model.config.image_std),
        do_convert_rgb=True,
    )


def save_small_clip(
    model: CLIPModel,
    tokenizer: PreTrainedTokenizerBase,
    folder: Path | str,
    train_config: ClipTrainConfig | None = None,
    extra: dict | None = None,
    storage_dtype: torch.dtype = torch.float16,
) -> Path:
    """Save the small CLIP as a standard transformers folder, atomically.

    Writes ``config.json`` + ``model.safetensors`` (``save_pretrained``), the tokenizer and a
    ``CLIPProcessor`` (PIL image processor with the model's size, mean and std), and, when given,
    ``clip_train_config.json`` with the training config and ``extra`` (losses, timings...).

    Parameters
    ----------
    model
        From :func:`train_small_clip` (its config must hold ``image_mean`` / ``image_std``).
    tokenizer
        The tokenizer it was trained with.
    folder
        The output folder; an existing one is replaced only once everything is written.
    train_config, extra
        Optional provenance, written as JSON (``sort_keys=True``).
    storage_dtype
        The weights' type on disk (float16 halves the folder; :func:`~erasure_lib.metrics.clip_score.load_clip` loads float32).

    Returns
    -------
    Path
        ``folder``.
    """
    folder = Path(folder)
    with atomic_directory(folder) as tmp:
        copy.deepcopy(model).to(storage_dtype).save_pretrained(tmp)
        image_processor = _image_processor(model)
        image_processor.save_pretrained(tmp)  # preprocessor_config.json, as hub folders have it
        CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(tmp)
        if train_config is not None or extra:
            record = {"train_config": asdict(train_config) if train_config is not None else None, "extra": extra or {}}
            atomic_write_text(tmp / TRAIN_CONFIG_FILE, json.dumps(record, indent=2, sort_keys=True) + "\n")
        if not (tmp / "model.safetensors").is_file():
            raise RuntimeError(f"save_pretrained wrote no model.safetensors in {tmp}")
    return folder
