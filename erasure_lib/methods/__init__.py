"""Erasure methods behind one interface: ``erase(pipeline, concept, images, config) -> ErasureResult``.

* ``fewshot``: the paper's method, few-shot unlearning of the text encoder (Fuchi & Takagi 2024).
* ``esd``: Erased Stable Diffusion, fine-tunes the U-Net (Gandikota et al. 2023).
* ``uce``: Unified Concept Editing, a closed-form edit of cross-attention (Gandikota et al. 2024).
* ``spm``: Concept Semi-Permeable Membrane, one-dimensional U-Net adapters (Lyu et al. 2024).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from erasure_lib.methods.base import ErasureResult

MethodName = Literal["fewshot", "esd", "uce", "spm"]


def get_method(name: MethodName) -> Callable[..., ErasureResult]:
    """The ``erase`` function of a method, by name."""
    if name == "fewshot":
        from erasure_lib.methods import fewshot

        return fewshot.erase
    if name == "esd":
        from erasure_lib.methods import esd

        return esd.erase
    if name == "uce":
        from erasure_lib.methods import uce

        return uce.erase
    if name == "spm":
        from erasure_lib.methods import spm

        return spm.erase
    raise ValueError(f"unknown method {name!r}; expected 'fewshot', 'esd', 'uce' or 'spm'")


__all__ = ["ErasureResult", "MethodName", "get_method"]
