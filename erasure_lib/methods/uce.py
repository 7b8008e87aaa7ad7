"""Unified Concept Editing, UCE (Gandikota et al., "Unified Concept Editing in Diffusion Models", WACV 2024):
erase a concept by a closed-form edit of the U-Net's cross-attention projections, no training.

Every key and value projection W of every cross-attention layer (``attn2.to_k``, ``attn2.to_v``) is
replaced by the minimiser of

    erase_scale * sum_i ||W c_i - v*_i||^2 + preserve_scale * sum_j ||W c_j - W_old c_j||^2 + lamb * ||W - W_old||_F^2

where c_i are text-encoder token embeddings of the erased concept, v*_i = W_old c^guide_i the outputs
the original layer gives the aligned tokens of the guide concept, and c_j token embeddings of the
concepts to preserve. Setting the gradient to zero gives the paper's Eq. 7 (with the reference code's
ridge term lamb):

    W = (erase_scale sum_i v*_i c_i^T + preserve_scale sum_j W_old c_j c_j^T + lamb W_old)
        (erase_scale sum_i c_i c_i^T + preserve_scale sum_j c_j c_j^T + lamb I)^-1

The text encoder and the VAE are never changed; the pipeline passed in is never modified.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from tqdm.auto import tqdm

from erasure_lib.methods.base import ErasureInfo, ErasureResult, check_concept, tokenize


@dataclass(frozen=True)
class UCEConfig:
    """Every option of UCE. The defaults are those of the reference code (``uce_sd_erase.py``) for SD 1.4,
    except ``templates``, which adds "a photo of a {}" to the reference's bare concept.

    Which tokens are edited: for each prompt, the *last word token* and every position after it
    (the end-of-text token and the padding, which CLIP's causal encoder makes summaries of the whole
    prompt). The concept's positions are paired one to one with the same run of positions of the
    guide (its last word token, its end-of-text token, its padding), as in the code released with
    the paper (``train_erase.py``); for the empty guide the "last word token" is the start token.
    Preserved concepts use the same positions of their own prompts (``train_erase.py`` used every
    position of a preserved prompt, the newer ``uce_sd_erase.py`` only the last word token).
    """

    guide: str = ""  # the concept the erased one is mapped to; "" is the unconditional prompt
    preserve: tuple[str, ...] = ()  # concepts whose cross-attention outputs are to stay as they were
    erase_scale: float = 1.0
    preserve_scale: float | None = None  # None: the same as erase_scale (1 and 1 in the reference)
    lamb: float = 0.5  # keeps W close to W_old (and the system invertible)
    with_to_k: bool = True  # edit the keys as well as the values
    seed: int = 0  # unused (UCE is deterministic); kept so every method takes a seed
    # The prompts the concept (and each preserved concept) is edited in; the guide is used bare.
    # ("{}",) is the reference's default; "a photo of a {}" is how the built-in model was captioned.
    templates: tuple[str, ...] = ("{}", "a photo of a {}")

    def __post_init__(self) -> None:
        if isinstance(self.preserve, str):
            raise ValueError(
                f"preserve must be a tuple of concepts, got the string {self.preserve!r}; use ({self.preserve!r},)"
            )
        if any(not p or not p.strip() for p in self.preserve):
            raise ValueError(f"preserve holds an empty concept: {self.preserve!r}")
        if self.erase_scale < 0:
            raise ValueError(f"erase_scale must be non-negative, got {self.erase_scale}")
        if self.preserve_scale is not None and self.preserve_scale < 0:
            raise ValueError(f"preserve_scale must be non-negative or None, got {self.preserve_scale}")
        if self.lamb <= 0:
            raise ValueError(f"lamb must be positive (it keeps the closed form well posed), got {self.lamb}")
        if not self.templates:
            raise ValueError("templates is empty; give at least one, e.g. ('{}',)")
        for template in self.templates:
            if "{}" not in template:
                raise ValueError(f"every template must contain '{{}}' where the concept goes, got {template!r}")

    @property
    def effective_preserve_scale(self) -> float:
        return self.erase_scale if self.preserve_scale is None else self.preserve_scale


@dataclass(frozen=True)
class UCEInfo(ErasureInfo):
    """What a UCE edit did (``ErasureResult.info``); also a read-only mapping over its fields
    (``info["edited_projections"]``), as the dict it replaces (see :class:`~erasure_lib.methods.base.ErasureInfo`).

    Attributes
    ----------
    edited_projections
        Module names of the cross-attention projections edited (:func:`edited_projection_names`).
    erase_tokens, preserve_tokens
        How many token embeddings were erased (c_i) and preserved (c_j) in the closed form.
    """

    edited_projections: list[str]
    erase_tokens: int
    preserve_tokens: int


def closed_form_edit(
    W_old: torch.Tensor,
    C_erase: torch.Tensor,
    V_target: torch.Tensor,
    C_preserve: torch.Tensor | None,
    erase_scale: float,
    preserve_scale: float,
    lamb: float,
) -> torch.Tensor:
    """The UCE update of one projection (Eq. 7 of the paper, with the ridge term ``lamb``).

    Minimises ``erase_scale * sum_i ||W c_i - v_i||^2 + preserve_scale * sum_j ||W c_j - W_old c_j||^2
    + lamb * ||W - W_old||_F^2`` over W.

    Parameters
    ----------
    W_old
        The original weight, (d_out, d_in).
    C_erase, V_target
        One erased token embedding c_i per row, (n, d_in), and its target output v_i per row, (n, d_out).
    C_preserve
        One preserved token embedding c_j per row, (m, d_in); ``None`` or empty for none.
    erase_scale, preserve_scale, lamb
        The weights of the three terms (non-negative; the solution is unique when lamb > 0).

    Returns
    -------
    torch.Tensor
        The new weight, with the dtype and device of ``W_old``. It is computed in float64.
    """
    if W_old.ndim != 2:
        raise ValueError(f"W_old must be a matrix (d_out, d_in), got shape {tuple(W_old.shape)}")
    d_out, d_in = W_old.shape
    if C_erase.ndim != 2 or C_erase.shape[1] != d_in:
        raise ValueError(f"C_erase must be (n, {d_in}), got {tuple(C_erase.shape)}")
    if V_target.shape != (C_erase.shape[0], d_out):
        raise ValueError(f"V_target must be ({C_erase.shape[0]}, {d_out}), got {tuple(V_target.shape)}")
    if C_preserve is not None and C_preserve.numel() and (C_preserve.ndim != 2 or C_preserve.shape[1] != d_in):
        raise ValueError(f"C_preserve must be (m, {d_in}), got {tuple(C_preserve.shape)}")
    if min(erase_scale, preserve_scale, lamb) < 0:
        raise ValueError(f"the scales and lamb must be non-negative, got {erase_scale}, {preserve_scale}, {lamb}")

    W = W_old.detach().double()
    C_e, V = C_erase.detach().to(W), V_target.detach().to(W)
    # mat1 = lamb W_old + erase_scale sum_i v_i c_i^T + preserve_scale sum_j W_old c_j c_j^T  (d_out, d_in)
    # mat2 = lamb I     + erase_scale sum_i c_i c_i^T + preserve_scale sum_j c_j c_j^T        (d_in, d_in)
    mat1 = lamb * W + erase_scale * V.T @ C_e
    mat2 = lamb * torch.eye(d_in, dtype=W.dtype, device=W.device) + erase_scale * C_e.T @ C_e
    if C_preserve is not None and C_preserve.numel():
        C_p = C_preserve.detach().to(W)
        P = C_p.T @ C_p
        mat1 = mat1 + preserve_scale * W @ P
        mat2 = mat2 + preserve_scale * P
    # W_new = mat1 mat2^-1, i.e. mat2 W_new^T = mat1^T (mat2 is symmetric): a solve, not an inverse.
    try:
        W_new = torch.linalg.solve(mat2, mat1.T).T
    except torch.linalg.LinAlgError as error:
        raise ValueError("the UCE system is singular; use lamb > 0") from error
    return W_new.to(W_old.dtype)


@torch.no_grad()
def token_embeddings(pipeline: StableDiffusionPipeline, prompt: str) -> tuple[torch.Tensor, int]:
    """The text encoder's outputs (L, d) for ``prompt`` padded to max length, and its last word's index.

    The last word token sits just before the end-of-text token (index 0, the start token, for "").
    """
    tokenizer = pipeline.tokenizer
    n_tokens = len(tokenizer(prompt).input_ids)  # start, words, end
    if n_tokens > tokenizer.model_max_length:
        raise ValueError(
            f"the prompt {prompt!r} takes {n_tokens} tokens, the tokenizer allows {tokenizer.model_max_length}"
        )
    return pipeline.text_encoder(tokenize(tokenizer, [prompt], pipeline.device))[0][0], n_tokens - 2


def aligned_tokens(pipeline: StableDiffusionPipeline, prompt: str, guide: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Paired token embeddings of ``prompt`` and ``guide``: each one's last word token and what follows.

    Both runs are cut to the same length, so row k of the first (the k-th position after the
    prompt's last word) pairs with row k of the second (the k-th position after the guide's).
    """
    emb, last = token_embeddings(pipeline, prompt)
    emb_g, last_g = token_embeddings(pipeline, guide)
    n = len(emb) - max(last, last_g)
    return emb[last : last + n], emb_g[last_g : last_g + n]


def edit_inputs(
    pipeline: StableDiffusionPipeline, concept: str, config: UCEConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The token embeddings UCE edits with: erased c_i, their guide tokens, preserved c_j (one per row)."""
    erase_rows, guide_rows, preserve_rows = [], [], []
    for template in config.templates:
        c, g = aligned_tokens(pipeline, template.format(concept), config.guide)
        erase_rows.append(c)
        guide_rows.append(g)
        for kept in config.preserve:
            emb, last = token_embeddings(pipeline, template.format(kept))
            preserve_rows.append(emb[last:])
    d = erase_rows[0].shape[1]
    C_preserve = torch.cat(preserve_rows) if preserve_rows else erase_rows[0].new_zeros((0, d))
    return torch.cat(erase_rows), torch.cat(guide_rows), C_preserve


def edited_projection_names(unet: UNet2DConditionModel, with_to_k: bool = True) -> list[str]:
    """Module names of the cross-attention projections UCE edits: every ``attn2.to_v`` (and ``attn2.to_k``)."""
    suffixes = ("attn2.to_v", "attn2.to_k") if with_to_k else ("attn2.to_v",)
    return [
        name for name, module in unet.named_modules() if name.endswith(suffixes) and isinstance(module, torch.nn.Linear)
    ]


def erase(
    pipeline: StableDiffusionPipeline,
    concept: str,
    images: object | None = None,
    config: UCEConfig | None = None,
    progress_bar: bool = True,
) -> ErasureResult:
    """Erase ``concept`` from ``pipeline`` by a UCE closed-form edit of a copy of its U-Net.

    Parameters
    ----------
    pipeline
        A ``StableDiffusionPipeline``; it is not modified (apply or install the result to use it).
    concept
        The concept to erase, e.g. ``"sneaker"``, filled into ``config.templates``.
    images
        Ignored: UCE needs no images. The argument keeps the signature of the other methods.
    config
        The method's options; ``None`` for ``UCEConfig()``.
    progress_bar
        Whether to show a progress bar over the edited projections.

    Returns
    -------
    ErasureResult
        ``components["unet"]`` is the edited U-Net; ``losses`` is empty (no optimization); the set-up
        time covers copying the U-Net and encoding prompts, the optimization time the closed-form solves;
        ``info`` a :class:`UCEInfo`.
    """
    t0 = time.perf_counter()
    config = UCEConfig() if config is None else config
    check_concept(pipeline, concept, config.templates)
    for kept in config.preserve:
        check_concept(pipeline, kept, config.templates)
        if kept.strip().lower() == concept.strip().lower():
            raise ValueError(f"concept {concept!r} is both erased and preserved; remove it from preserve")

    C_erase, C_guide, C_preserve = edit_inputs(pipeline, concept, config)
    unet = copy.deepcopy(pipeline.unet).eval().requires_grad_(False)
    names = edited_projection_names(unet, config.with_to_k)
    modules = dict(unet.named_modules())
    setup_seconds = time.perf_counter() - t0

    t1 = time.perf_counter()
    with torch.no_grad():
        for name in tqdm(names, desc=f"UCE erasing {concept!r}", disable=not progress_bar):
            layer = modules[name]
            W_old = layer.weight
            # v*_i = W_old c^guide_i (a bias, if any, is unchanged and cancels out of the targets).
            V_target = C_guide.to(W_old) @ W_old.T
            W_new = closed_form_edit(
                W_old, C_erase, V_target, C_preserve, config.erase_scale, config.effective_preserve_scale, config.lamb
            )
            layer.weight.copy_(W_new)
    optimization_seconds = time.perf_counter() - t1
    return ErasureResult(
        method="uce",
        concept=concept,
        components={"unet": unet},
        config=config,
        losses=[],
        setup_seconds=setup_seconds,
        optimization_seconds=optimization_seconds,
        info=UCEInfo(edited_projections=names, erase_tokens=len(C_erase), preserve_tokens=len(C_preserve)),
    )
