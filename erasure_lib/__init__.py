"""Few-shot unlearning for text-to-image diffusion models (Fuchi & Takagi, BMVC 2024), reproduced.

The flow: data -> model -> erase -> generate -> measure -> table / figure.
"""

from erasure_lib.models import load_pipeline

__all__ = ["load_pipeline"]
__version__ = "0.1.0"
