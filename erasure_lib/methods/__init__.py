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

# What each method's ``erase`` computes, as a number: bump a method's revision with any fix that
# changes its result for the same inputs, so that saved erasures of the old code are trained again
# (:func:`erasure_lib.methods.base.erase_or_load`) rather than read back. Revision 1 is the code of
# 2026-12-05 (ESD and SPM after their x_0-clip fix), and every cache written before revisions existed.
REVISIONS: dict[str, int] = {"fewshot": 1, "esd": 1, "uce": 1, "spm": 1}


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


__all__ = ["REVISIONS", "ErasureResult", "MethodName", "get_method"]
