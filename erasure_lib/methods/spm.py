"""Concept Semi-Permeable Membrane, SPM (Lyu et al., "One-dimensional Adapter to Rule Them All: Concepts,
Diffusion Models and Erasing Applications", CVPR 2024): erase a concept by training *one-dimensional*
(rank-1, LoRA-like) adapters on a frozen U-Net.

Every adapted layer ``W`` (a linear map, or a 1x1 convolution) becomes

    W x  +  (alpha / r) * up (down x)          down: (r, d_in), up: (d_out, r), r = 1 by default

``down`` starts Kaiming-uniform, ``up`` at zero, so the adapted model starts as the original one.
Only ``down`` and ``up`` train. Each iteration, as in the authors' ``train_spm.py``:

1. z_t comes from the *adapted* model's own DDIM sampling of the concept (classifier-free guidance
   ``start_guidance``), stopped after ``t_enc ~ U{1 .. max_denoising_steps-1}`` steps (as in ESD).
2. The erasing loss is ESD's negative guidance (the paper's Eq. 3, the code's ``_erase``):

       L_erase = || eps_adapted(z_t, c, t) - [eps*(z_t, n, t) - eta * (eps*(z_t, c, t) - eps*(z_t, n, t))] ||^2

   with eps* the frozen model, c the concept, n the neutral prompt (the empty prompt by default).
3. Latent anchoring (the code's ``_erase_with_la``): a few *surrounding*
   conditions a_k are drawn and the adapted model must keep its predictions for them:

       L_anchor = mean_k || eps_adapted(z_t, a_k, t) - eps*(z_t, a_k, t) ||^2
       L = L_erase + la_strength * L_anchor

   By default the a_k are drawn as the authors' code draws them (``src/engine/sampling.py``): random
   directions in the text encoder's *output* space, accepted with probability 1 - cos(a, c) (far from
   the concept more likely), scaled to U(0.8, 1.2) times the concept embedding's norm. With
   ``SPMConfig.anchor_prompts`` they are instead the encodings of prompts drawn from that tuple.

The result's U-Net has the trained adapters **merged into its weights**, ``W' = W + (alpha/r) up @ down``
(the authors' ``merge_spm.py``), so it is a plain ``UNet2DConditionModel``: a vanilla pipeline uses it by
replacing its ``unet`` (``ErasureResult.apply``/``install``, or after :meth:`ErasureResult.save`,
``UNet2DConditionModel.from_pretrained(out_dir / "unet")`` passed as ``unet=`` to
``StableDiffusionPipeline.from_pretrained``). The adapter weights themselves are kept in
``result.info.adapter`` (saved as ``adapter.safetensors`` beside ``unet/``, read back by
``ErasureResult.load``); :func:`save_adapter` writes them in the authors' file format.

Deviations from the authors' code (Con6924/SPM) are listed in :class:`SPMConfig`. The text encoder and
the VAE are never changed; the pipeline passed in is never modified. SPM needs no images.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from diffusers.optimization import get_constant_schedule_with_warmup, get_cosine_with_hard_restarts_schedule_with_warmup
from torch import nn
from tqdm.auto import tqdm

from erasure_lib.methods.base import ErasureInfo, ErasureResult, NonFiniteLossError, rebuild, to_json_value
from erasure_lib.methods.esd import check_concept, ddim_sampler, encode_prompt, sample_until

AdaptedModules = Literal["xattn", "transformer"]
ADAPTED_MODULES: tuple[str, ...] = ("xattn", "transformer")
LRScheduler = Literal["cosine_with_restarts", "constant"]
LR_SCHEDULERS: tuple[str, ...] = ("cosine_with_restarts", "constant")
ADAPTER_PREFIX = "lora_unet"  # the authors' key prefix (SPMNetwork.SPM_PREFIX_UNET, kept for SD-WebUI)
ADAPTER_FILE = "adapter.safetensors"  # where ErasureResult.save puts the adapters, next to the merged unet/


@dataclass(frozen=True)
class SPMConfig:
    """Every option of SPM. The defaults are the authors' published erasing config for SD v1.4
    (``configs/snoopy/config.yaml`` and ``configs/snoopy/prompt.yaml`` of Con6924/SPM; ``pikachu`` is
    identical), except where a comment says otherwise.

    Deviations from the authors' code, on purpose:

    - ``modules="xattn"``: adapters on the cross-attention projections only (``attn2.to_q``,
      ``to_k``, ``to_v``, ``to_out.0``), as our issue asks. The authors adapt every linear and 1x1
      convolution inside each ``Transformer2DModel`` (``SPMNetwork.DEFAULT_TARGET_REPLACE``):
      ``modules="transformer"`` does that.
    - Optimizer: ``torch.optim.AdamW`` in fp32 (bitsandbytes' ``AdamW8bit`` in theirs; same lr, betas
      (0.9, 0.999), eps 1e-8 and weight decay 1e-2, but 32-bit optimizer states).
    - Default anchors: all ``anchor_batch_size`` sampled conditions are used. Their ``sample()``
      interleaves ``[uncond, a_1, uncond, a_2, ...]`` and ``predict_noise`` splits that batch in halves
      as if it were ``[uncond..., cond...]``; at guidance 1 it keeps the second half, so their anchor
      loss covers ``["", a_3, "", a_4]``: two of the four sampled anchors and the empty prompt twice.
    - The timestep of z_t is the DDIM schedule's own ``timesteps[t_enc]`` (the sample's true noise
      level, as our ESD does); theirs re-indexes a 1000-step schedule at ``t_enc * 1000 / 30``,
      about 40 steps noisier. The DDIM scheduler is built from the pipeline's scheduler config.
    - ``dynamic_resolution``: the latent side is drawn from the multiples of the U-Net's
      downsampling factor in ``[sample_size / 2, sample_size]`` (for SD v1.4: 256..512 px in 64 px
      steps). Their ``torch.randint(min_step, max_step)`` excludes the top, so 512 px never occurs.
    - Seeded: one ``torch.Generator("cpu")`` drives every draw (theirs uses the global torch and
      Python RNGs, unseeded for training).
    - Guidance 1 predictions are computed from the conditional branch alone (theirs runs the
      unconditional branch too and cancels it: ``uncond + 1 * (cond - uncond)``).
    - The result merges the adapters at multiplier 1 for every prompt. The paper's Facilitated
      Transport (a per-prompt multiplier from the prompt's similarity to the erased concept,
      ``infer_spm.py``) needs a patched sampler and is not applied; the authors' README notes the
      same for their notebook and SD-WebUI use.
    """

    iterations: int = 3000  # config.yaml train.iterations; one optimizer step each (batch_size 1)
    lr: float = 1e-4  # config.yaml train.lr (= unet_lr)
    lr_scheduler: LRScheduler = "cosine_with_restarts"  # config.yaml train.lr_scheduler
    lr_warmup_steps: int = 500  # config.yaml train.lr_warmup_steps (linear warm-up from 0)
    lr_num_cycles: int = 3  # config.yaml train.lr_scheduler_num_cycles (hard restarts)
    rank: int = 1  # config.yaml network.rank: the "one-dimensional" adapter
    alpha: float = 1.0  # config.yaml network.alpha: the adapter output is scaled by alpha / rank
    modules: AdaptedModules = "xattn"  # DEVIATION: theirs adapts whole transformer blocks ("transformer")
    negative_guidance: float = 1.0  # prompt.yaml guidance_scale: eta of the erasing target
    la_strength: float = 1000.0  # prompt.yaml la_strength: weight of the latent-anchoring loss
    anchor_batch_size: int = 4  # prompt.yaml sampling_batch_size: anchors per iteration
    anchor_prompts: tuple[str, ...] = ()  # () = sampled embeddings (their sampling.py); else prompts
    max_denoising_steps: int = 30  # config.yaml train.max_denoising_steps: the DDIM schedule of z_t
    start_guidance: float = 3.0  # train_spm.py diffusion(..., guidance_scale=3): CFG of that sampling
    dynamic_resolution: bool = True  # prompt.yaml dynamic_resolution: random latent size per step
    neutral: str = ""  # prompt.yaml neutral (and unconditional): "" the empty prompt
    template: str = "{}"  # prompt.yaml target/positive: the bare concept
    seed: int = 0
    checkpoint_iterations: tuple[int, ...] = ()  # also keep the merged weights after these iterations (a sweep)

    def __post_init__(self) -> None:
        for name in ("iterations", "rank", "anchor_batch_size", "lr_num_cycles"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_denoising_steps < 2:
            raise ValueError(
                f"max_denoising_steps must be at least 2 (z_t is taken after 1..steps-1 DDIM steps), "
                f"got {self.max_denoising_steps}"
            )
        if self.lr_warmup_steps < 0:
            raise ValueError(f"lr_warmup_steps must be non-negative, got {self.lr_warmup_steps}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.alpha <= 0:
            raise ValueError(f"alpha must be positive (the adapter is scaled by alpha / rank), got {self.alpha}")
        if self.lr_scheduler not in LR_SCHEDULERS:
            raise ValueError(f"lr_scheduler must be one of {LR_SCHEDULERS}, got {self.lr_scheduler!r}")
        if self.modules not in ADAPTED_MODULES:
            raise ValueError(f"modules must be one of {ADAPTED_MODULES}, got {self.modules!r}")
        for name in ("negative_guidance", "la_strength", "start_guidance"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")
        if isinstance(self.anchor_prompts, str):
            raise ValueError(
                f"anchor_prompts must be a tuple of prompts, got the string {self.anchor_prompts!r}; "
                f"use ({self.anchor_prompts!r},)"
            )
        if any(not isinstance(p, str) or not p.strip() for p in self.anchor_prompts):
            raise ValueError(f"anchor_prompts holds an empty prompt: {self.anchor_prompts!r}")
        if "{}" not in self.template:
            raise ValueError(f"template must contain '{{}}' where the concept goes, got {self.template!r}")
        if isinstance(self.checkpoint_iterations, int | str):
            raise ValueError(f"checkpoint_iterations is a tuple of iterations, not a single value: {self.checkpoint_iterations!r}")
        outside = [k for k in self.checkpoint_iterations if not 1 <= int(k) <= self.iterations]
        if outside:
            raise ValueError(f"checkpoint_iterations {outside} lie outside 1..{self.iterations} (1-based, at most iterations)")

    @classmethod
    def constant_lr(cls, **overrides: object) -> SPMConfig:
        """The published options with the learning rate held constant (no warm-up, no restarts): the
        schedule of a calibration sweep (notebook 17), where a checkpoint after k iterations must be
        the run of k iterations, and of any run at a setting such a sweep chose. The published
        schedule ties each iteration's rate to the run's length (cosine over ``iterations``)."""
        return cls(**({"lr_scheduler": "constant", "lr_warmup_steps": 0} | overrides))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# The one-dimensional adapter
# --------------------------------------------------------------------------------------------


class Adapter(nn.Module):
    """A frozen ``nn.Linear`` or 1x1 ``nn.Conv2d`` plus a trainable low-rank branch (the authors' ``SPMLayer``):
    ``y = base(x) + (alpha / rank) * up(down(x))``.

    ``down`` (rank, d_in) is initialised Kaiming-uniform (a = sqrt(5), as ``nn.Linear``) from
    ``generator``, ``up`` (d_out, rank) at zero. The adapter parameters are float32 whatever the
    base's dtype.
    """

    def __init__(self, base: nn.Module, rank: int, alpha: float, generator: torch.Generator) -> None:
        super().__init__()
        if isinstance(base, nn.Linear):
            d_in, d_out = base.in_features, base.out_features
        elif (
            isinstance(base, nn.Conv2d)
            and base.kernel_size == (1, 1)
            and base.stride == (1, 1)
            and base.groups == 1
            and base.padding in ((0, 0), "valid")
        ):
            d_in, d_out = base.in_channels, base.out_channels
        else:
            raise ValueError(f"an adapter wraps a Linear or a 1x1 Conv2d, got {base!r}")
        self.base = base
        self.rank, self.alpha, self.scale = rank, alpha, alpha / rank
        down = torch.empty(rank, d_in)
        nn.init.kaiming_uniform_(down, a=math.sqrt(5), generator=generator)  # microsoft/LoRA's init
        weight = base.weight
        self.down = nn.Parameter(down.to(weight.device))
        self.up = nn.Parameter(torch.zeros(d_out, rank, device=weight.device))  # starts as the base layer

    @property
    def is_conv(self) -> bool:
        return isinstance(self.base, nn.Conv2d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.to(self.down.dtype)
        if self.is_conv:
            h = F.conv2d(F.conv2d(h, self.down[:, :, None, None]), self.up[:, :, None, None])
        else:
            h = F.linear(F.linear(h, self.down), self.up)
        return self.base(x) + (self.scale * h).to(x.dtype)

    def delta_weight(self) -> torch.Tensor:
        """(alpha / rank) up @ down, in the shape of the base weight (float32): what merging adds."""
        delta = self.scale * (self.up.detach() @ self.down.detach())
        return delta.reshape(self.base.weight.shape)


def adapted_layer_names(unet: UNet2DConditionModel, modules: AdaptedModules) -> list[str]:
    """Names of the U-Net layers that get an adapter.

    - ``xattn``: the four projections of every cross-attention (``...attn2.to_q``, ``to_k``, ``to_v``,
      ``to_out.0``).
    - ``transformer`` (the authors' default): every ``nn.Linear`` and ``nn.Conv2d`` inside a
      ``Transformer2DModel`` (``proj_in``, ``proj_out``, self- and cross-attention projections, the
      feed-forward layers), selected by class name as ``SPMNetwork.create_modules`` does.
    """
    if modules not in ADAPTED_MODULES:
        raise ValueError(f"modules must be one of {ADAPTED_MODULES}, got {modules!r}")
    names: list[str] = []
    if modules == "xattn":
        suffixes = tuple(f".attn2.{p}" for p in ("to_q", "to_k", "to_v", "to_out.0"))
        return [n for n, m in unet.named_modules() if isinstance(m, nn.Linear) and f".{n}".endswith(suffixes)]
    for name, module in unet.named_modules():
        if type(module).__name__ == "Transformer2DModel":
            for child_name, child in module.named_modules():
                if type(child).__name__ in ("Linear", "Conv2d"):
                    names.append(f"{name}.{child_name}")
    return names


def add_adapters(
    unet: UNet2DConditionModel, names: list[str], rank: int, alpha: float, generator: torch.Generator
) -> dict[str, Adapter]:
    """Replace each named layer of ``unet`` (in place: give it a copy) by an :class:`Adapter` around it."""
    adapters: dict[str, Adapter] = {}
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = unet.get_submodule(parent_name)
        adapter = Adapter(getattr(parent, child), rank, alpha, generator)
        setattr(parent, child, adapter)
        adapters[name] = adapter
    return adapters


@torch.no_grad()
def merge_adapters(unet: UNet2DConditionModel, adapters: dict[str, Adapter]) -> UNet2DConditionModel:
    """Put each adapter's base layer back into ``unet`` with ``W' = W + (alpha / rank) up @ down``."""
    for name, adapter in adapters.items():
        parent_name, _, child = name.rpartition(".")
        base = adapter.base
        base.weight.add_(adapter.delta_weight().to(base.weight.dtype))
        setattr(unet.get_submodule(parent_name), child, base)
    return unet


@torch.no_grad()
def merged_weights(adapters: dict[str, Adapter]) -> dict[str, torch.Tensor]:
    """The weights :func:`merge_adapters` would give each adapted layer now, keyed by the U-Net's own
    parameter names (``<layer>.weight``): a checkpoint that ``ErasureResult.apply(pipeline, step=k)``
    loads into the merged U-Net."""
    return {f"{name}.weight": (a.base.weight + a.delta_weight().to(a.base.weight.dtype)).detach().clone()
            for name, a in adapters.items()}  # fmt: skip


def adapter_key(layer_name: str) -> str:
    """The authors' name for a layer's adapter: ``lora_unet_`` + the module path with ``_`` for ``.``."""
    return f"{ADAPTER_PREFIX}.{layer_name}".replace(".", "_")


@dataclass(frozen=True, eq=False)
class AdapterWeights:
    """The trained adapters of one SPM erasure (kept in ``ErasureResult.info.adapter``).

    ``state_dict`` uses the authors' keys (``<key>.lora_down.weight`` (rank, d_in[, 1, 1]),
    ``<key>.lora_up.weight`` (d_out, rank[, 1, 1]), ``<key>.alpha``) and ``layers`` maps each key to
    the U-Net module it adapts. Its ``str`` is a one-line summary, which is what the summary part of
    ``erasure.json`` records. Two are equal when their layers, rank, alpha and tensors are.
    """

    state_dict: dict[str, torch.Tensor]
    layers: dict[str, str]
    rank: int
    alpha: float

    @classmethod
    def from_adapters(cls, adapters: dict[str, Adapter], rank: int, alpha: float) -> AdapterWeights:
        state: dict[str, torch.Tensor] = {}
        layers: dict[str, str] = {}
        for name, adapter in adapters.items():
            key = adapter_key(name)
            down, up = adapter.down.detach().float().cpu().clone(), adapter.up.detach().float().cpu().clone()
            if adapter.is_conv:
                down, up = down[:, :, None, None], up[:, :, None, None]
            state[f"{key}.lora_down.weight"], state[f"{key}.lora_up.weight"] = down, up
            state[f"{key}.alpha"] = torch.tensor(float(alpha))
            layers[key] = name
        return cls(state_dict=state, layers=layers, rank=rank, alpha=alpha)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AdapterWeights):
            return NotImplemented
        return (
            (self.layers, self.rank, self.alpha) == (other.layers, other.rank, other.alpha)
            and self.state_dict.keys() == other.state_dict.keys()
            and all(torch.equal(v, other.state_dict[k]) for k, v in self.state_dict.items())
        )

    @property
    def num_parameters(self) -> int:
        return sum(v.numel() for k, v in self.state_dict.items() if not k.endswith(".alpha"))

    def __str__(self) -> str:
        return (
            f"SPM adapters: {len(self.layers)} layers, rank {self.rank}, alpha {self.alpha:g}, "
            f"{self.num_parameters} parameters (write them with erasure_lib.methods.spm.save_adapter)"
        )


@dataclass(frozen=True)
class SPMInfo(ErasureInfo):
    """What an SPM erasure kept and measured (``ErasureResult.info``); also a read-only mapping over its
    fields (``info["adapter"]``), as the dict it replaces (see :class:`~erasure_lib.methods.base.ErasureInfo`).

    Attributes
    ----------
    adapter
        The trained adapters (:class:`AdapterWeights`; :func:`save_adapter` writes the authors' file).
    adapted_layers, trainable_parameters
        How many U-Net layers got an adapter, and how many adapter weights trained.
    erase_losses, anchor_losses
        The two terms of every iteration's loss (``losses`` is ``erase + la_strength * anchor``).
    stop_steps
        Each iteration's t_enc: the DDIM steps after which the sampling of z_t stopped.
    latent_sizes
        Each iteration's latent (height, width).
    checkpoint_seconds
        The optimization loop's seconds up to each kept checkpoint (``config.checkpoint_iterations``).
    """

    adapter: AdapterWeights
    adapted_layers: int
    trainable_parameters: int
    erase_losses: list[float]
    anchor_losses: list[float]
    stop_steps: list[int]
    latent_sizes: list[tuple[int, int]]
    checkpoint_seconds: dict[int, float] = field(default_factory=dict)

    def to_json(self, folder: Path) -> dict[str, Any]:
        """The record as JSON data, the adapter's tensors written to ``folder / ADAPTER_FILE``
        (``adapter`` then records that file, the layers, the rank and alpha)."""
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in self.adapter.state_dict.items()}, str(Path(folder) / ADAPTER_FILE))
        weights = self.adapter
        adapter = {"file": ADAPTER_FILE, "layers": dict(weights.layers), "rank": weights.rank, "alpha": weights.alpha}
        return {name: to_json_value(getattr(self, name)) for name in self if name != "adapter"} | {"adapter": adapter}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], folder: Path) -> SPMInfo:
        """The record back from :meth:`to_json`'s ``data`` and the adapter file in ``folder``."""
        from safetensors.torch import load_file

        saved = data.get("adapter")
        if not isinstance(saved, Mapping):
            raise ValueError("the adapter weights were not saved (before erasure.json format 2 only a summary was)")
        weights = AdapterWeights(state_dict=load_file(str(Path(folder) / Path(saved["file"]).name)), layers=dict(saved["layers"]),
                                 rank=saved["rank"], alpha=saved["alpha"])
        return rebuild(cls, {k: v for k, v in data.items() if k != "adapter"}, given={"adapter": weights})


def save_adapter(result: ErasureResult, path: str | Path) -> Path:
    """Write an SPM result's adapter weights as one safetensors file in the authors' format.

    The keys (kohya/LECO LoRA names) and the metadata (``prompts``, ``rank``, ``alpha``) are those of
    ``SPMNetwork.save_weights`` in ``train_spm.py``: the authors' ``merge_spm.py`` and SD-WebUI (as a
    LoRA) read any set of layers; their ``infer_spm.py`` loads the adapters strictly into every
    transformer layer, so it reads only a ``modules="transformer"`` file. A result of :func:`erase`
    holds the adapters, and so does one that ``ErasureResult.load`` read from a folder saved with them
    (``erasure.json`` format 2); an older folder holds the merged U-Net only.
    """
    from safetensors.torch import save_file

    adapter = result.info.adapter if isinstance(result.info, SPMInfo) else None
    if adapter is None:
        raise ValueError(
            "this result holds no SPM adapter weights (a result of spm.erase does, and one loaded from a "
            "folder it saved; a folder saved before erasure.json format 2 holds the merged U-Net only)"
        )
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"the adapter file must end in .safetensors, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"prompts": result.concept, "rank": str(adapter.rank), "alpha": str(adapter.alpha)}
    save_file({k: v.contiguous() for k, v in adapter.state_dict.items()}, str(path), metadata=metadata)
    return path


# --------------------------------------------------------------------------------------------
# The losses and the anchors
# --------------------------------------------------------------------------------------------


def spm_loss(
    e_target: torch.Tensor,
    e_positive: torch.Tensor,
    e_neutral: torch.Tensor,
    e_anchor: torch.Tensor | None,
    e_anchor_frozen: torch.Tensor | None,
    negative_guidance: float,
    la_strength: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SPM's loss ``L_erase + la_strength * L_anchor`` (the authors' ``PromptEmbedsPair._erase_with_la``).

    Parameters
    ----------
    e_target
        The adapted model's noise prediction for the concept.
    e_positive, e_neutral
        The frozen model's predictions for the concept and for the neutral prompt.
    e_anchor, e_anchor_frozen
        The adapted and the frozen model's predictions for the anchors (``None`` for no anchoring).
    negative_guidance
        eta: the erasing target is ``e_neutral - eta * (e_positive - e_neutral)`` (ESD's Eq. 3).
    la_strength
        The weight of the anchoring term.

    Returns
    -------
    tuple
        ``(loss, erase_loss, anchor_loss)``; each term is a mean squared error (``nn.MSELoss``).
    """
    target = e_neutral - negative_guidance * (e_positive - e_neutral)
    erase_loss = F.mse_loss(e_target.float(), target.float())
    if e_anchor is None or e_anchor_frozen is None:
        anchor_loss = torch.zeros((), device=erase_loss.device)
    else:
        anchor_loss = F.mse_loss(e_anchor.float(), e_anchor_frozen.float())
    return erase_loss + la_strength * anchor_loss, erase_loss, anchor_loss


def sample_anchor_embeddings(
    target: torch.Tensor, n: int, generator: torch.Generator, max_tries: int = 1000
) -> torch.Tensor:
    """``n`` random surrounding conditions of ``target`` (1, L, d), as the authors' ``sampling.sample`` draws them.

    Each is a Gaussian direction ``u`` of the embedding's shape (normalised over all its entries),
    accepted with probability ``1 - cos(u, target)`` (so directions far from the concept are more
    likely), then scaled to ``s * ||target||`` with ``s ~ U(0.8, 1.2)``. Draws come from ``generator``
    (a CPU generator); the result is on ``target``'s device and dtype, shape (n, L, d).
    """
    flat = target.detach().float().cpu().reshape(-1)
    norm = flat.norm()
    if not torch.isfinite(norm) or norm == 0:
        raise ValueError("the concept embedding has zero or non-finite norm: cannot sample anchors around it")
    samples = []
    for _ in range(n):
        for _try in range(max_tries):
            noise = torch.randn(flat.shape, generator=generator)
            noise = noise / noise.norm()
            similarity = torch.dot(noise, flat) / norm
            if float(torch.rand((), generator=generator)) < 1 - float(similarity):  # accept w.p. 1 - cos
                break
        else:
            raise RuntimeError(f"no anchor accepted in {max_tries} draws")
        scale = float(torch.rand((), generator=generator)) * 0.4 + 0.8  # U(0.8, 1.2)
        samples.append(scale * noise * norm)
    return torch.stack(samples).reshape(n, *target.shape[1:]).to(target.device, target.dtype)


def latent_sides(unet: UNet2DConditionModel, dynamic_resolution: bool) -> list[int]:
    """The latent sizes a training sample may have: ``sample_size`` alone, or with ``dynamic_resolution``
    every multiple of the U-Net's downsampling factor from ``sample_size / 2`` to ``sample_size``."""
    size = int(unet.config.sample_size)
    if not dynamic_resolution:
        return [size]
    factor = 2 ** (len(unet.config.block_out_channels) - 1)
    sides = [s for s in range(factor, size + 1, factor) if 2 * s >= size]
    return sides or [size]


# --------------------------------------------------------------------------------------------
# Erasure
# --------------------------------------------------------------------------------------------


def erase(
    pipeline: StableDiffusionPipeline,
    concept: str,
    images: object | None = None,
    config: SPMConfig | None = None,
    progress_bar: bool = True,
) -> ErasureResult:
    """Erase ``concept`` from ``pipeline`` by training SPM's one-dimensional adapters on a copy of its U-Net.

    Parameters
    ----------
    pipeline
        A ``StableDiffusionPipeline``; it is not modified (apply or install the result to use it).
    concept
        The concept to erase, e.g. ``"sneaker"``; the prompt is ``config.template`` filled with it.
    images
        Ignored: SPM needs no images. The argument keeps the signature of the other methods.
    config
        The method's options; ``None`` for ``SPMConfig()`` (the published defaults, see :class:`SPMConfig`).
    progress_bar
        Whether to show a progress bar over the iterations.

    Returns
    -------
    ErasureResult
        ``components["unet"]`` is a plain ``UNet2DConditionModel`` with the adapters merged into its
        weights (a vanilla pipeline uses it in place of its ``unet``; saved, it is the ``unet``
        folder, which ``UNet2DConditionModel.from_pretrained`` reads); ``losses`` the total loss of
        every iteration. ``info`` is an :class:`SPMInfo`: ``adapter`` (:class:`AdapterWeights`, see
        :func:`save_adapter`), ``adapted_layers``, ``trainable_parameters``, ``erase_losses``,
        ``anchor_losses``, ``stop_steps`` (t_enc) and ``latent_sizes``.

    Raises
    ------
    NonFiniteLossError
        When the loss of an iteration (1-based, ``step``; checked before that iteration's update), or
        the adapters after the last one, stop being finite, typically because ``config.lr`` is too
        large. Nothing is returned.
    """
    t0 = time.perf_counter()
    config = SPMConfig() if config is None else config
    check_concept(pipeline, concept, config.template)
    prompt = config.template.format(concept)
    for anchor in config.anchor_prompts:
        check_concept(pipeline, anchor)
        if anchor.strip().lower() in (concept.strip().lower(), prompt.strip().lower()):
            raise ValueError(f"anchor_prompts holds the erased concept {anchor!r}; anchors are what to keep")

    device = pipeline.device
    generator = torch.Generator("cpu").manual_seed(config.seed)
    scheduler = ddim_sampler(pipeline)  # x_0 not clipped, as ESD's (and SPM's reference) DDIM sampling
    scheduler.set_timesteps(config.max_denoising_steps)
    frozen_unet = pipeline.unet  # eps*: only ever evaluated, under no_grad
    emb_uncond = encode_prompt(pipeline, "")
    emb_neutral = encode_prompt(pipeline, config.neutral)
    emb_concept = encode_prompt(pipeline, prompt)
    anchor_pool = (
        torch.cat([encode_prompt(pipeline, p) for p in config.anchor_prompts]) if config.anchor_prompts else None
    )
    sides = latent_sides(frozen_unet, config.dynamic_resolution)

    # The adapted model: a copy of the U-Net, frozen, with the adapters in place of the chosen layers.
    unet = copy.deepcopy(frozen_unet).eval().requires_grad_(False)
    names = adapted_layer_names(unet, config.modules)
    if not names:
        raise ValueError(f"the U-Net has no layers to adapt for modules={config.modules!r}")
    adapters = add_adapters(unet, names, config.rank, config.alpha, generator)
    params = [p for adapter in adapters.values() for p in (adapter.down, adapter.up)]
    optimizer = torch.optim.AdamW(params, lr=config.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)
    if config.lr_scheduler == "cosine_with_restarts":
        lr_schedule = get_cosine_with_hard_restarts_schedule_with_warmup(
            optimizer, config.lr_warmup_steps, config.iterations, config.lr_num_cycles
        )
    else:
        lr_schedule = get_constant_schedule_with_warmup(optimizer, config.lr_warmup_steps)
    setup_seconds = time.perf_counter() - t0

    losses: list[float] = []
    erase_losses: list[float] = []
    anchor_losses: list[float] = []
    stop_steps: list[int] = []
    latent_sizes: list[tuple[int, int]] = []
    kept = {int(k) for k in config.checkpoint_iterations}
    step_checkpoints: dict[int, dict[str, torch.Tensor]] = {}
    checkpoint_seconds: dict[int, float] = {}
    t1 = time.perf_counter()
    channels = frozen_unet.config.in_channels
    for iteration in tqdm(range(config.iterations), desc=f"SPM erasing {concept!r}", disable=not progress_bar):
        # Draw order, from the one generator: t_enc, the latent size, the start noise, the anchors.
        t_enc = int(torch.randint(1, config.max_denoising_steps, (1,), generator=generator))
        if len(sides) > 1:
            h, w = (sides[int(i)] for i in torch.randint(len(sides), (2,), generator=generator))
        else:
            h = w = sides[0]
        start = torch.randn((1, channels, h, w), generator=generator).to(device, frozen_unet.dtype)
        start = start * scheduler.init_noise_sigma
        if config.la_strength > 0:
            if anchor_pool is None:
                anchors = sample_anchor_embeddings(emb_concept, config.anchor_batch_size, generator)
            else:
                anchors = anchor_pool[torch.randint(len(anchor_pool), (config.anchor_batch_size,), generator=generator)]
        else:
            anchors = None

        # z_t from the *adapted* model's guided DDIM sampling of the concept (train_spm.py's `with network`).
        z = sample_until(unet, scheduler, start, emb_concept, emb_uncond, config.start_guidance, t_enc)
        t = scheduler.timesteps[t_enc]
        n_anchor = 0 if anchors is None else len(anchors)
        context = torch.cat([emb_concept, emb_neutral] + ([] if anchors is None else [anchors]))
        with torch.no_grad():  # eps*(z_t, c), eps*(z_t, n) and eps*(z_t, a_k) in one batch
            frozen = frozen_unet(z.repeat(len(context), 1, 1, 1), t, context).sample
        e_positive, e_neutral = frozen[:1], frozen[1:2]
        e_anchor_frozen = frozen[2:] if n_anchor else None
        adapted_context = torch.cat([emb_concept] + ([] if anchors is None else [anchors]))
        adapted = unet(z.repeat(len(adapted_context), 1, 1, 1), t, adapted_context).sample
        e_target = adapted[:1]
        e_anchor = adapted[1:] if n_anchor else None
        loss, erase_loss, anchor_loss = spm_loss(
            e_target, e_positive, e_neutral, e_anchor, e_anchor_frozen, config.negative_guidance, config.la_strength
        )
        value = loss.item()  # the step's host sync, also used to stop a diverged run before it steps
        if not math.isfinite(value):
            raise NonFiniteLossError("spm", iteration + 1, config.lr)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lr_schedule.step()
        losses.append(value)
        erase_losses.append(erase_loss.item())
        anchor_losses.append(anchor_loss.item())
        stop_steps.append(t_enc)
        latent_sizes.append((h, w))
        if len(losses) in kept:  # the merged weights after this iteration, for a sweep over iterations
            checkpoint_seconds[len(losses)] = time.perf_counter() - t1
            step_checkpoints[len(losses)] = merged_weights(adapters)
    optimization_seconds = time.perf_counter() - t1

    # The last update can overflow the adapters even when its loss was finite: check them once.
    if not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
        raise NonFiniteLossError("spm", len(losses), config.lr, what="trained weights")
    weights = AdapterWeights.from_adapters(adapters, config.rank, config.alpha)
    merge_adapters(unet, adapters)
    unet.requires_grad_(False)
    return ErasureResult(
        method="spm",
        concept=concept,
        components={"unet": unet},
        config=config,
        losses=losses,
        setup_seconds=setup_seconds,
        optimization_seconds=optimization_seconds,
        info=SPMInfo(
            adapter=weights,
            adapted_layers=len(names),
            trainable_parameters=sum(p.numel() for p in params),
            erase_losses=erase_losses,
            anchor_losses=anchor_losses,
            stop_steps=stop_steps,
            latent_sizes=latent_sizes,
            checkpoint_seconds=checkpoint_seconds,
        ),
        step_checkpoints=step_checkpoints,
    )
