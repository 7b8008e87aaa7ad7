"""What every erasure method returns, and how it is applied to a pipeline or saved."""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import StableDiffusionPipeline
from transformers import PreTrainedTokenizerBase

from erasure_lib.io import atomic_directory, atomic_write_text
from erasure_lib.results import package_versions


class NonFiniteLossError(RuntimeError):
    """An erasure diverged: its loss or its trained weights stopped being finite (nothing is written)."""

    def __init__(self, method: str, step: int, lr: float, what: str = "loss") -> None:
        super().__init__(
            f"{method}: the {what} became non-finite at optimizer step {step} (lr {lr:g}); "
            "the run was stopped and nothing was saved; use a smaller learning rate"
        )
        self.method, self.step, self.lr, self.what = method, step, lr, what


@dataclass
class ErasureResult:
    """The outcome of erasing one concept.

    Attributes
    ----------
    method, concept
        Which method erased which concept (e.g. ``"fewshot"``, ``"sneaker"``).
    components
        The pipeline components the method changed, by pipeline attribute name
        (``{"text_encoder": ...}`` for few-shot unlearning, ``{"unet": ...}`` for ESD or UCE).
    config
        The method's frozen configuration.
    losses
        The loss of every optimizer step (empty for closed-form methods).
    checkpoints
        Per-epoch state dicts of the trained parameters, when the config asks to keep them.
    setup_seconds, optimization_seconds
        Time spent preparing (copying the model, loading and encoding images) and in the
        optimization loop itself, the figure the paper reports (Sec. 4.3).
    """

    method: str
    concept: str
    components: dict[str, torch.nn.Module]
    config: Any
    losses: list[float] = field(default_factory=list)
    checkpoints: list[dict[str, torch.Tensor]] = field(default_factory=list)
    setup_seconds: float = 0.0
    optimization_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    step_checkpoints: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return self.setup_seconds + self.optimization_seconds

    def component_at(self, name: str, epoch: int) -> torch.nn.Module:
        """A copy of a changed component with the weights of the checkpoint after ``epoch`` (1-based)."""
        if not self.checkpoints:
            raise ValueError("no per-epoch checkpoints were kept; erase with keep_checkpoints=True")
        if not 1 <= epoch <= len(self.checkpoints):
            raise ValueError(f"epoch must be in 1..{len(self.checkpoints)}, got {epoch}")
        module = copy.deepcopy(self.components[name])
        module.load_state_dict(self.checkpoints[epoch - 1], strict=False)
        return module

    def component_after_step(self, name: str, step: int) -> torch.nn.Module:
        """A copy of a changed component with the weights kept after optimizer ``step`` (1-based)."""
        if step not in self.step_checkpoints:
            raise ValueError(f"no checkpoint after step {step}; kept: {sorted(self.step_checkpoints)} (erase with checkpoint_steps=...)")
        module = copy.deepcopy(self.components[name])
        module.load_state_dict(self.step_checkpoints[step], strict=False)
        return module

    def apply(self, pipeline: StableDiffusionPipeline, epoch: int | None = None, step: int | None = None) -> StableDiffusionPipeline:
        """A new pipeline sharing the unchanged components of ``pipeline``; ``pipeline`` is not modified.
        ``epoch`` or ``step`` selects a kept checkpoint instead of the final weights."""
        if epoch is not None and step is not None:
            raise ValueError("give epoch or step, not both")
        components = dict(pipeline.components)
        for name, module in self.components.items():
            if epoch is not None:
                module = self.component_at(name, epoch)
            elif step is not None:
                module = self.component_after_step(name, step)
            components[name] = module
        if "requires_safety_checker" in inspect.signature(type(pipeline)).parameters:
            components["requires_safety_checker"] = pipeline.config.get("requires_safety_checker", False)
        new = type(pipeline)(**components)
        new.set_progress_bar_config(**getattr(pipeline, "_progress_bar_config", {}))
        return new

    def install(self, pipeline: StableDiffusionPipeline) -> StableDiffusionPipeline:
        """Put the changed components into ``pipeline`` itself (in place) and return it."""
        for name, module in self.components.items():
            setattr(pipeline, name, module)
        return pipeline

    def metadata(self, base_model: str) -> dict[str, Any]:
        config = asdict(self.config) if is_dataclass(self.config) else dict(self.config)
        return {
            "method": self.method,
            "concept": self.concept,
            "base_model": base_model,
            "config": config,
            "changed_components": sorted(self.components),
            "setup_seconds": self.setup_seconds,
            "optimization_seconds": self.optimization_seconds,
            "steps": len(self.losses),
            "final_loss": self.losses[-1] if self.losses else None,
            "versions": package_versions(),
            **self.info,
        }

    def save(self, out_dir: str | Path, base_model: str, overwrite: bool = False) -> Path:
        """Write the changed components (diffusers/transformers format, safetensors) and ``erasure.json``.

        With per-epoch checkpoints, ``epoch-<k>/<component>`` holds each. The folder appears whole
        or not at all. Load an erased text encoder back with
        ``CLIPTextModel.from_pretrained(out_dir / "text_encoder")``.
        """
        out_dir = Path(out_dir)
        with atomic_directory(out_dir, overwrite=overwrite) as tmp:
            for name, module in self.components.items():
                module.save_pretrained(tmp / name, safe_serialization=True)
                for epoch in range(1, len(self.checkpoints) + 1):
                    self.component_at(name, epoch).save_pretrained(tmp / f"epoch-{epoch}" / name, safe_serialization=True)
            (tmp / "erasure.json").write_text(json.dumps(self.metadata(base_model), indent=2, sort_keys=True, default=str) + "\n")
        return out_dir

    @classmethod
    def load(cls, folder: str | Path) -> ErasureResult:
        """Read back a result written by :meth:`save` (components and metadata; no per-epoch checkpoints).

        ``config`` is the saved dictionary, not the dataclass.
        """
        from diffusers import UNet2DConditionModel
        from transformers import CLIPTextModel

        folder = Path(folder)
        record_file = folder / "erasure.json"
        if not record_file.is_file():
            raise FileNotFoundError(f"{folder} holds no erasure.json: it is not a saved erasure result")
        record = json.loads(record_file.read_text())
        loaders = {"unet": UNet2DConditionModel, "text_encoder": CLIPTextModel}
        unknown = [n for n in record["changed_components"] if n not in loaders]
        if unknown:
            raise ValueError(f"{folder}: cannot load component(s) {unknown}; known: {sorted(loaders)}")
        components = {n: loaders[n].from_pretrained(folder / n).eval().requires_grad_(False) for n in record["changed_components"]}
        return cls(method=record["method"], concept=record["concept"], components=components, config=record["config"],
                   setup_seconds=record["setup_seconds"], optimization_seconds=record["optimization_seconds"])


def _images_fingerprint(images: Any) -> str | None:
    """SHA-1 of the images' bytes (a folder's files in name order, a list of paths or PIL images)."""
    import hashlib

    from PIL import Image

    if images is None:
        return None
    if isinstance(images, str | Path):
        images = sorted(p for p in Path(images).iterdir() if p.is_file())
    digest = hashlib.sha1()
    for item in images:
        digest.update(item.tobytes() if isinstance(item, Image.Image) else Path(item).read_bytes())
    return digest.hexdigest()


def erase_or_load(
    erase: Callable[..., ErasureResult],
    pipeline: StableDiffusionPipeline,
    concept: str,
    images: Any,
    config: Any,
    folder: str | Path,
    base_model: str,
) -> ErasureResult:
    """``erase(pipeline, concept, images, config)``, saved to ``folder``; read back instead when ``folder``
    holds a result of the same method, concept, images, config and base model (``cache_key.json``).
    Notebooks share costly erasures this way; the timings are those of the run that saved it.
    """
    folder = Path(folder)
    key = {"method": erase.__module__.rsplit(".", 1)[-1], "concept": concept, "base_model": base_model,
           "images_sha1": _images_fingerprint(images), "config": json.loads(json.dumps(asdict(config), default=str))}
    key_file = folder / "cache_key.json"
    if key_file.is_file() and json.loads(key_file.read_text()) == key:
        return ErasureResult.load(folder)
    result = erase(pipeline, concept, images, config, progress_bar=False)
    result.save(folder, base_model=base_model, overwrite=True)
    atomic_write_text(key_file, json.dumps(key, indent=2, sort_keys=True) + "\n")
    return result


def check_concept(pipeline: StableDiffusionPipeline, concept: str, templates: str | Sequence[str] = "{}") -> None:
    """Check a concept before it is erased: the one check that few-shot, ESD and UCE share.

    Parameters
    ----------
    pipeline
        The pipeline whose tokenizer encodes the prompts.
    concept
        What is to be erased, e.g. ``"sneaker"``.
    templates
        The prompt template, or templates, the concept is filled into (``"{}"`` marks where it goes).

    Raises
    ------
    ValueError
        For an empty concept, or one whose longest prompt takes more tokens than the tokenizer allows.
    """
    if not concept or not concept.strip():
        raise ValueError("the concept is empty; give the name of what to erase, e.g. 'sneaker'")
    templates = (templates,) if isinstance(templates, str) else tuple(templates)
    if not templates:
        raise ValueError("no templates given; give at least one, e.g. ('{}',)")
    tokenizer = pipeline.tokenizer
    longest = max((t.format(concept) for t in templates), key=lambda p: len(tokenizer(p).input_ids))
    n = len(tokenizer(longest).input_ids)
    if n > tokenizer.model_max_length:
        raise ValueError(
            f"concept {concept!r} is too long: the prompt {longest!r} takes {n} tokens, "
            f"the tokenizer allows {tokenizer.model_max_length}; use a shorter concept name"
        )


def tokenize(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], device: torch.device | str) -> torch.Tensor:
    """Token ids (len(prompts), max length) of ``prompts``, padded and truncated to the tokenizer's
    ``model_max_length`` as Stable Diffusion encodes prompts, on ``device``."""
    if isinstance(prompts, str):
        raise TypeError(f"prompts must be a sequence of strings, got the string {prompts!r}; use [{prompts!r}]")
    return tokenizer(
        list(prompts), padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids.to(device)
