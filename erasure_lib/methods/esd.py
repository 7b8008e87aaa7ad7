"""Erased Stable Diffusion, ESD (Gandikota et al., "Erasing Concepts from Diffusion Models", ICCV 2023):
fine-tune the U-Net so that, conditioned on the concept, it predicts the *negatively guided* noise of
the frozen original model (Eq. 3 of the paper):

    eps_theta(z_t, c, t)  <-  eps_theta*(z_t, t) - eta * (eps_theta*(z_t, c, t) - eps_theta*(z_t, t))
    L = || eps_theta(z_t, c, t) - [eps_theta*(z_t, t) - eta * (eps_theta*(z_t, c, t) - eps_theta*(z_t, t))] ||^2

theta* is the frozen original U-Net, theta the trainable copy, eta the negative guidance. z_t comes
from the trainable model's own DDIM sampling of the concept, stopped at a random step. ESD-x trains
only the cross-attention (``xattn``), ESD-u everything else (``noxattn``). The text encoder and the
VAE are never changed; the pipeline passed in is never modified. ESD needs no images.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from tqdm.auto import tqdm

from erasure_lib.methods.base import ErasureInfo, ErasureResult, NonFiniteLossError, check_concept, tokenize

TrainMethod = Literal["xattn", "noxattn", "full"]
TRAIN_METHODS: tuple[str, ...] = ("xattn", "noxattn", "full")


@dataclass(frozen=True)
class ESDConfig:
    """Every option of ESD. The defaults are the settings of the paper's public (CompVis) code for SD 1.4.

    ``train_method`` has no default, as in the reference code (``--train_method`` is required):
    ``"xattn"`` is ESD-x (the paper's choice for artistic styles), ``"noxattn"`` ESD-u (objects,
    nudity), ``"full"`` the whole U-Net.
    """

    train_method: TrainMethod  # which U-Net parameters train (see ``trainable_parameter_names``)
    iterations: int = 1000  # optimizer steps, one sampled z_t each
    lr: float = 1e-5  # Adam learning rate
    negative_guidance: float = 1.0  # eta of Eq. 3
    ddim_steps: int = 50  # DDIM steps of the sampling that produces z_t
    start_guidance: float = 3.0  # classifier-free guidance of that sampling
    seed: int = 0
    template: str = "{}"  # the conditioning prompt; the reference uses the bare concept
    checkpoint_iterations: tuple[int, ...] = ()  # also keep the trained weights after these iterations

    def __post_init__(self) -> None:
        if self.train_method not in TRAIN_METHODS:
            raise ValueError(f"train_method must be one of {TRAIN_METHODS}, got {self.train_method!r}")
        for name in ("iterations", "ddim_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.negative_guidance < 0:
            raise ValueError(f"negative_guidance must be non-negative (eta of Eq. 3), got {self.negative_guidance}")
        if self.start_guidance < 0:
            raise ValueError(f"start_guidance must be non-negative, got {self.start_guidance}")
        if "{}" not in self.template:
            raise ValueError(f"template must contain '{{}}' where the concept goes, got {self.template!r}")
        if isinstance(self.checkpoint_iterations, int | str):
            raise ValueError(f"checkpoint_iterations is a tuple of iterations, not a single value: {self.checkpoint_iterations!r}")
        outside = [k for k in self.checkpoint_iterations if not 1 <= int(k) <= self.iterations]
        if outside:
            raise ValueError(f"checkpoint_iterations {outside} lie outside 1..{self.iterations} (1-based, at most iterations)")


@dataclass(frozen=True)
class ESDInfo(ErasureInfo):
    """What an ESD erasure measured (``ErasureResult.info``); also a read-only mapping over its fields
    (``info["stop_steps"]``), as the dict it replaces (see :class:`~erasure_lib.methods.base.ErasureInfo`).

    Attributes
    ----------
    trainable_parameters
        How many U-Net weights trained (``config.train_method``).
    stop_steps
        Each iteration's t_enc: the DDIM steps after which the sampling of z_t stopped.
    checkpoint_seconds
        The optimization loop's seconds up to each kept checkpoint (``config.checkpoint_iterations``).
    """

    trainable_parameters: int
    stop_steps: list[int]
    checkpoint_seconds: dict[int, float] = field(default_factory=dict)


def trainable_parameter_names(unet: UNet2DConditionModel, train_method: TrainMethod) -> list[str]:
    """Names of the U-Net parameters that a train method updates.

    The reference (CompVis) code selects by name, and the same substrings work on diffusers' names:

    - ``xattn`` (ESD-x): every parameter of a cross-attention block, ``"attn2"`` in the name
      (to_q, to_k, to_v, to_out; not the LayerNorm in front of it).
    - ``noxattn`` (ESD-u): everything except cross-attention (``"attn2"``), the time embedding
      (``"time_embed"``: diffusers' ``time_embedding.*``; the per-resnet ``time_emb_proj`` trains)
      and the output layers (CompVis ``out.*``: diffusers' ``conv_norm_out``, ``conv_out``).
    - ``full``: every parameter.
    """
    if train_method not in TRAIN_METHODS:
        raise ValueError(f"train_method must be one of {TRAIN_METHODS}, got {train_method!r}")
    names = []
    for name, _ in unet.named_parameters():
        is_xattn = "attn2" in name
        is_time_embed = "time_embed" in name  # matches time_embedding.*, not resnets' time_emb_proj
        is_out = name.startswith(("conv_out.", "conv_norm_out."))
        if (
            train_method == "full"
            or (train_method == "xattn" and is_xattn)
            or (train_method == "noxattn" and not (is_xattn or is_time_embed or is_out))
        ):
            names.append(name)
    return names


def esd_target(e_0: torch.Tensor, e_p: torch.Tensor, negative_guidance: float) -> torch.Tensor:
    """The ESD regression target  e_0 - eta * (e_p - e_0)  (Eq. 3 of the paper).

    Parameters
    ----------
    e_0, e_p
        The frozen model's noise predictions for the empty prompt and for the concept.
    negative_guidance
        eta: how far past the unconditional prediction, away from the concept, the target lies.
    """
    return e_0 - negative_guidance * (e_p - e_0)


def ddim_sampler(pipeline: StableDiffusionPipeline) -> DDIMScheduler:
    """The DDIM scheduler that samples z_t, from the model's own noise schedule, with eta 0 and the
    predicted x_0 *not* clipped, as the reference code's DDIM sampler (CompVis ``DDIMSampler``).
    diffusers' ``DDIMScheduler`` clips x_0 to [-1, 1] unless the config says otherwise: SD v1.4's
    scheduler config does, the built-in model's did not, and about an eighth of its latent values lie
    beyond 1 (until 2026-12-05 ESD and SPM on the built-in model sampled z_t with the clip)."""
    return DDIMScheduler.from_config(pipeline.scheduler.config, clip_sample=False)


@torch.no_grad()
def encode_prompt(pipeline: StableDiffusionPipeline, prompt: str) -> torch.Tensor:
    """The frozen text encoder's hidden states (1, L, d) of a prompt padded to the tokenizer's max length."""
    return pipeline.text_encoder(tokenize(pipeline.tokenizer, [prompt], pipeline.device))[0]


@torch.no_grad()
def sample_until(
    unet: UNet2DConditionModel,
    scheduler: DDIMScheduler,
    latents: torch.Tensor,
    cond: torch.Tensor,
    uncond: torch.Tensor,
    guidance: float,
    steps: int,
) -> torch.Tensor:
    """Run the first ``steps`` DDIM steps (eta = 0) with classifier-free guidance from ``latents``.

    The result is a sample at timestep ``scheduler.timesteps[steps]`` (``latents`` itself for 0 steps).
    """
    context = torch.cat([uncond, cond])
    for t in scheduler.timesteps[:steps]:
        model_input = scheduler.scale_model_input(torch.cat([latents, latents]), t)
        e_u, e_c = unet(model_input, t, context).sample.chunk(2)
        latents = scheduler.step(e_u + guidance * (e_c - e_u), t, latents).prev_sample
    return latents


def erase(
    pipeline: StableDiffusionPipeline,
    concept: str,
    images: object | None = None,
    config: ESDConfig | None = None,
    progress_bar: bool = True,
) -> ErasureResult:
    """Erase ``concept`` from ``pipeline`` by ESD fine-tuning of a copy of its U-Net.

    Parameters
    ----------
    pipeline
        A ``StableDiffusionPipeline``; it is not modified (apply or install the result to use it).
    concept
        The concept to erase, e.g. ``"sneaker"``; the conditioning prompt is ``config.template``
        filled with it.
    images
        Ignored: ESD needs no images. The argument keeps the signature of the other methods.
    config
        The method's options; required, since ``train_method`` must be chosen
        (``ESDConfig(train_method="xattn")`` for ESD-x, ``"noxattn"`` for ESD-u).
    progress_bar
        Whether to show a progress bar over the iterations.

    Returns
    -------
    ErasureResult
        ``components["unet"]`` is the fine-tuned U-Net; ``losses`` the loss of every iteration;
        ``step_checkpoints`` the trained weights after each of ``config.checkpoint_iterations``
        (``result.apply(pipeline, step=k)``), with ``info.checkpoint_seconds`` the loop's time to each;
        timings split into set-up (copying the U-Net, encoding prompts) and the optimization loop;
        ``info`` an :class:`ESDInfo`.

    Raises
    ------
    NonFiniteLossError
        When the loss of an iteration (1-based, ``step``), or the trained weights after the last one,
        stop being finite, typically because ``config.lr`` is too large. Nothing is returned.
    """
    t0 = time.perf_counter()
    if config is None:
        raise ValueError(
            "ESD needs a config that chooses what trains: ESDConfig(train_method='xattn' | 'noxattn' | 'full')"
        )
    check_concept(pipeline, concept, config.template)

    device = pipeline.device
    generator = torch.Generator("cpu").manual_seed(config.seed)
    scheduler = ddim_sampler(pipeline)
    scheduler.set_timesteps(config.ddim_steps)
    frozen_unet = pipeline.unet
    emb_0 = encode_prompt(pipeline, "")  # the unconditional prompt
    emb_p = encode_prompt(pipeline, config.template.format(concept))
    latent_shape = (1, frozen_unet.config.in_channels, frozen_unet.config.sample_size, frozen_unet.config.sample_size)

    # theta: a copy of the U-Net; only the selected parameters train. Eval mode throughout (SD's U-Net
    # has no dropout, so this changes nothing but keeps the run deterministic for any U-Net).
    unet = copy.deepcopy(frozen_unet).eval()
    names = set(trainable_parameter_names(unet, config.train_method))
    params = []
    for name, p in unet.named_parameters():
        p.requires_grad_(name in names)
        if name in names:
            params.append(p)
    optimizer = torch.optim.Adam(params, lr=config.lr)
    setup_seconds = time.perf_counter() - t0

    losses: list[float] = []
    stop_steps: list[int] = []
    kept = {int(k) for k in config.checkpoint_iterations}
    step_checkpoints: dict[int, dict[str, torch.Tensor]] = {}
    checkpoint_seconds: dict[int, float] = {}
    t1 = time.perf_counter()
    for _iteration in tqdm(range(config.iterations), desc=f"ESD erasing {concept!r}", disable=not progress_bar):
        # Stop DDIM sampling after t_enc ~ U{0..ddim_steps-1} steps; z is then at timestep t.
        t_enc = int(torch.randint(config.ddim_steps, (1,), generator=generator))
        start = (
            torch.randn(latent_shape, generator=generator).to(device, frozen_unet.dtype) * scheduler.init_noise_sigma
        )
        # z_t from the *trainable* model's own guided sampling of the concept, as the reference code does.
        z = sample_until(unet, scheduler, start, emb_p, emb_0, config.start_guidance, t_enc)
        t = scheduler.timesteps[t_enc]
        with torch.no_grad():
            # The frozen model's e_0 = eps*(z_t, t, "") and e_p = eps*(z_t, t, c), in one batch.
            e_0, e_p = frozen_unet(torch.cat([z, z]), t, torch.cat([emb_0, emb_p])).sample.chunk(2)
        e_n = unet(z, t, emb_p).sample
        loss = F.mse_loss(e_n.float(), esd_target(e_0, e_p, config.negative_guidance).float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())  # the step's one host sync, also used to stop a diverged run
        if not math.isfinite(losses[-1]):
            raise NonFiniteLossError("esd", len(losses), config.lr)
        stop_steps.append(t_enc)
        if len(losses) in kept:  # the weights after this iteration, for a sweep over iterations
            checkpoint_seconds[len(losses)] = time.perf_counter() - t1
            step_checkpoints[len(losses)] = {n: p.detach().clone() for n, p in unet.named_parameters() if n in names}
    # The last update can overflow the weights even when its loss was finite: check them once.
    if not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
        raise NonFiniteLossError("esd", len(losses), config.lr, what="trained weights")
    optimization_seconds = time.perf_counter() - t1
    unet.requires_grad_(False)
    return ErasureResult(
        method="esd",
        concept=concept,
        components={"unet": unet},
        config=config,
        losses=losses,
        setup_seconds=setup_seconds,
        optimization_seconds=optimization_seconds,
        info=ESDInfo(trainable_parameters=sum(p.numel() for p in params), stop_steps=stop_steps,
                     checkpoint_seconds=checkpoint_seconds),
        step_checkpoints=step_checkpoints,
    )
