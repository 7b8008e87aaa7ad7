"""What every erasure method returns, and how it is applied to a pipeline or saved."""

from __future__ import annotations

import copy
import hashlib
import importlib
import inspect
import json
import types
import typing
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, Self, TypeVar, Union

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


RecordT = TypeVar("RecordT")

# The layout of erasure.json. Before format 2 (no "format" key) it held the config and the info as a
# summary only; format 2 adds the classes of both, the info in full and every loss, so that
# ErasureResult.load gives them back typed.
SAVE_FORMAT = 2


def to_json_value(value: Any) -> Any:
    """``value`` as JSON data, without loss for what configs and info records hold.

    Tuples and lists become lists, dataclasses and mappings objects (keys as strings), a ``Path`` its
    string; ``None``, booleans, numbers and strings stay as they are (JSON keeps a float exactly).

    Raises
    ------
    TypeError
        For anything else, a tensor say: a record with such a field writes it itself
        (:meth:`ErasureInfo.to_json`).
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Path):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json_value(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    raise TypeError(f"cannot write a {type(value).__name__} to erasure.json: {value!r:.80}")


def from_json_value(value: Any, hint: Any) -> Any:
    """The inverse of :func:`to_json_value` for a value of the (resolved) type ``hint``.

    A list comes back as a tuple where ``hint`` says tuple, an object as the dataclass it names,
    object keys as ints where the mapping's key type is int. Scalars come back as JSON holds them
    (the float that was written, an int as an int). A union other than ``X | None`` is not
    converted.

    Raises
    ------
    ValueError
        When ``value`` does not fit ``hint`` (a string for a number, a value outside a ``Literal``,
        a tuple of the wrong length, an unknown dataclass field).
    """
    if value is None or hint is Any:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union or origin is types.UnionType:
        options = [a for a in args if a is not type(None)]
        return from_json_value(value, options[0]) if len(options) == 1 else value
    if origin is Literal:
        if value not in args:
            raise ValueError(f"{value!r} is not one of {args}")
        return value
    if isinstance(hint, type) and is_dataclass(hint):
        return rebuild(hint, value)
    if hint in (int, float, str, bool):
        if not (isinstance(value, hint) or (hint is float and isinstance(value, int))):
            raise ValueError(f"expected a {hint.__name__}, got {value!r}")
        return value
    if origin is tuple or hint is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"expected a list for a tuple, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_json_value(v, args[0]) for v in value)
        if args and len(args) != len(value):
            raise ValueError(f"expected {len(args)} values, got {value!r}")
        return tuple(from_json_value(v, a) for v, a in zip(value, args)) if args else tuple(value)
    if origin is list or hint is list:
        if not isinstance(value, list | tuple):
            raise ValueError(f"expected a list, got {value!r}")
        return [from_json_value(v, args[0]) for v in value] if args else list(value)
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"expected an object, got {value!r}")
        key_type, item_type = args or (str, Any)
        return {(key_type(k) if key_type in (int, float) else k): from_json_value(v, item_type) for k, v in value.items()}
    return value


def rebuild(cls: type[RecordT], data: Mapping[str, Any], given: Mapping[str, Any] | None = None) -> RecordT:
    """An instance of the dataclass ``cls`` from its JSON form, each field converted by its annotation
    (:func:`from_json_value`); a field missing from ``data`` takes its default. ``given`` holds fields
    already rebuilt (taken as they are, in place of their JSON in ``data``).

    Raises
    ------
    ValueError
        For a key that ``cls`` has no field for, a missing field without default, or a value that
        does not fit (``cls`` itself may reject it, as the configs check their options).
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{cls.__name__} is saved as a JSON object, got {data!r:.80}")
    given = dict(given or {})
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls) if f.init]  # type: ignore[arg-type]
    unknown = sorted((set(data) | set(given)) - set(names))
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {unknown}")
    required = [f.name for f in fields(cls) if f.init and f.default is MISSING and f.default_factory is MISSING]  # type: ignore[arg-type]
    missing = [name for name in required if name not in data and name not in given]
    if missing:
        raise ValueError(f"{cls.__name__} needs the field(s) {missing}")
    converted = {name: from_json_value(data[name], hints[name]) for name in names if name in data and name not in given}
    return cls(**converted, **given)


class ErasureInfo(Mapping[str, Any]):
    """Base of the typed records that the methods put in :attr:`ErasureResult.info`.

    Each method's record (``FewShotInfo``, ``ESDInfo``, ``UCEInfo``, ``SPMInfo``) is a frozen
    dataclass of what its run measured; read its fields as attributes (``info.steps_run``). It is
    also a read-only ``collections.abc.Mapping`` from field name to value, so code written when
    ``info`` was a plain dict keeps working: ``info["steps_run"]``, ``info.get("stop_reason")``,
    ``"probe_trace" in info``, ``dict(info)`` and ``**info`` read the fields. Two records are equal
    when they are of the same class with equal fields.
    """

    def __getitem__(self, key: str) -> Any:
        if key not in self._field_names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._field_names())

    def __len__(self) -> int:
        return len(self._field_names())

    def _field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self))  # type: ignore[arg-type]

    def to_json(self, folder: Path) -> dict[str, Any]:
        """The record as JSON data, for ``erasure.json``.

        ``folder`` is the result folder being written: a record with fields that JSON cannot hold
        (tensors) overrides this to write them there as files and record their names.
        """
        return {name: to_json_value(getattr(self, name)) for name in self}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], folder: Path) -> Self:
        """The record back from :meth:`to_json`'s ``data`` (and the files it wrote into ``folder``)."""
        return rebuild(cls, data)



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
    info
        What the run measured: the method's typed record (an :class:`ErasureInfo`: ``FewShotInfo``,
        ``ESDInfo``, ``UCEInfo``, ``SPMInfo``), read as attributes or, like the dict it replaces, by
        key. A result built by hand may hold a plain dict.
    step_checkpoints
        State dicts of the trained parameters after chosen optimizer steps (few-shot's ``checkpoint_steps``).
    """

    method: str
    concept: str
    components: dict[str, torch.nn.Module]
    config: Any
    losses: list[float] = field(default_factory=list)
    checkpoints: list[dict[str, torch.Tensor]] = field(default_factory=list)
    setup_seconds: float = 0.0
    optimization_seconds: float = 0.0
    info: ErasureInfo | dict[str, Any] = field(default_factory=dict)
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

    def placed_like(self, pipeline: StableDiffusionPipeline) -> ErasureResult:
        """Move each changed component (in place) to the device and floating-point type of the
        component it replaces in ``pipeline``, and return this result: :meth:`load` reads weights
        onto the CPU in float32, which a CUDA or half-precision pipeline cannot mix with its own."""
        for name, module in self.components.items():
            own = getattr(pipeline, name)
            module.to(device=own.device, dtype=own.dtype)
        return self

    def install(self, pipeline: StableDiffusionPipeline) -> StableDiffusionPipeline:
        """Put the changed components into ``pipeline`` itself (in place) and return it."""
        for name, module in self.components.items():
            setattr(pipeline, name, module)
        return pipeline

    def metadata(self, base_model: str) -> dict[str, Any]:
        """The summary that ``erasure.json`` opens with: method, concept, base model, config, timings,
        step count and last loss, package versions, and each info field at the top level (as text
        where JSON cannot hold it)."""
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

    def typed_record(self, folder: Path) -> dict[str, Any]:
        """What ``erasure.json`` holds beyond :meth:`metadata` so that :meth:`load` gives the result back
        (format 2): the classes of the config and of the info, the info in full and every loss.

        ``folder`` is the folder being written; an info record holding tensors writes them there.
        """
        if isinstance(self.info, ErasureInfo):
            info_class, info = _class_path(self.info), self.info.to_json(folder)
        else:
            info_class, info = None, json.loads(json.dumps(dict(self.info), default=str))
        return {
            "format": SAVE_FORMAT,
            "config_class": _class_path(self.config) if is_dataclass(self.config) else None,
            "info_class": info_class,
            "info": info,
            "losses": [float(x) for x in self.losses],
        }

    def save(self, out_dir: str | Path, base_model: str, overwrite: bool = False) -> Path:
        """Write the changed components (diffusers/transformers format, safetensors) and ``erasure.json``.

        With per-epoch checkpoints, ``epoch-<k>/<component>`` holds each. The folder appears whole
        or not at all. Load an erased text encoder back with
        ``CLIPTextModel.from_pretrained(out_dir / "text_encoder")`` (or the whole result with
        :meth:`load`). ``erasure.json`` holds :meth:`metadata` and :meth:`typed_record`; an info
        record may add files of its own (SPM's ``adapter.safetensors``).
        """
        out_dir = Path(out_dir)
        with atomic_directory(out_dir, overwrite=overwrite) as tmp:
            for name, module in self.components.items():
                module.save_pretrained(tmp / name, safe_serialization=True)
                for epoch in range(1, len(self.checkpoints) + 1):
                    self.component_at(name, epoch).save_pretrained(tmp / f"epoch-{epoch}" / name, safe_serialization=True)
            record = self.metadata(base_model) | self.typed_record(tmp)
            (tmp / "erasure.json").write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
        return out_dir

    @classmethod
    def load(cls, folder: str | Path) -> ErasureResult:
        """Read back a result written by :meth:`save`: components, config, losses, info and timings
        (not the per-epoch or per-step checkpoints).

        The config comes back as its dataclass (``FewShotConfig``, ``ESDConfig``, ``UCEConfig``,
        ``SPMConfig``) and the info as the method's record, both equal to what was saved.

        A folder saved before ``erasure.json`` had a ``format`` (before the typed records) gives back
        what it holds: the config as its method's dataclass, no losses (only the last was saved), and
        the info as the method's record when every field was saved, else as a dict of the fields that
        were (SPM's adapter weights, for one, were saved as a summary only). Whenever a config or an
        info cannot be rebuilt (a class renamed, or an option it no longer accepts) it comes back as
        the saved dict, with a warning that says why.
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
        if "format" in record:
            config_class, info_class = record["config_class"], record["info_class"]
            info_data, losses = record["info"], record["losses"]
        else:  # saved before format 2: the info fields sit at the top level, next to the summary
            config_class, info_class = _METHOD_CLASSES.get(record["method"], (None, None))
            info_data = {k: v for k, v in record.items() if k not in _SUMMARY_KEYS}
            losses = []
        config = _rebuild_or_keep(config_class, record["config"], folder, "config")
        info = _rebuild_or_keep(info_class, info_data, folder, "info")
        return cls(method=record["method"], concept=record["concept"], components=components, config=config,
                   losses=losses, setup_seconds=record["setup_seconds"],
                   optimization_seconds=record["optimization_seconds"], info=info)


# The config and info classes of each method, for folders saved before erasure.json named them.
_METHOD_CLASSES: dict[str, tuple[str, str]] = {
    "fewshot": ("erasure_lib.methods.fewshot.FewShotConfig", "erasure_lib.methods.fewshot.FewShotInfo"),
    "esd": ("erasure_lib.methods.esd.ESDConfig", "erasure_lib.methods.esd.ESDInfo"),
    "uce": ("erasure_lib.methods.uce.UCEConfig", "erasure_lib.methods.uce.UCEInfo"),
    "spm": ("erasure_lib.methods.spm.SPMConfig", "erasure_lib.methods.spm.SPMInfo"),
}
# The keys of ErasureResult.metadata other than the info fields.
_SUMMARY_KEYS = frozenset({"method", "concept", "base_model", "config", "changed_components", "setup_seconds",
                           "optimization_seconds", "steps", "final_loss", "versions"})


def _class_path(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _rebuild_or_keep(class_path: str | None, data: Any, folder: Path, what: str) -> Any:
    """The ``what`` (config or info) saved as ``data``, rebuilt as the class ``class_path`` names; the
    saved data itself when there is no class, or (with a warning) when it cannot be rebuilt.
    Only classes of ``erasure_lib`` are imported."""
    if class_path is None:
        return data
    module, _, name = class_path.rpartition(".")
    try:
        if module.split(".")[0] != "erasure_lib":
            raise ValueError(f"{class_path} is not a class of erasure_lib")
        try:
            record_class = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"there is no class {class_path}") from error
        if isinstance(record_class, type) and issubclass(record_class, ErasureInfo):
            return record_class.from_json(data, folder)
        return rebuild(record_class, data)
    except (ValueError, TypeError, KeyError, OSError) as error:
        warnings.warn(f"{folder}: the {what} is given back as the saved dict, not as {name}: {error}", stacklevel=3)
        return data


def _images_fingerprint(images: Any) -> str | None:
    """SHA-1 of the images' bytes (a folder's files in name order, a list of paths or PIL images)."""

    from PIL import Image

    if images is None:
        return None
    if isinstance(images, str | Path):
        images = sorted(p for p in Path(images).iterdir() if p.is_file())
    digest = hashlib.sha1()
    for item in images:
        digest.update(item.tobytes() if isinstance(item, Image.Image) else Path(item).read_bytes())
    return digest.hexdigest()


def model_digest(pipeline: StableDiffusionPipeline) -> str:
    """A hash of a pipeline's weights (text encoder and U-Net): the caches key what they keep by it (an
    erasure by its base model, a window run by the model it starts from, a verdict by the judged model),
    so that nothing kept for one model is read back for another that shares its name or folder."""
    return weights_digest({"text_encoder": pipeline.text_encoder, "unet": pipeline.unet})


def weights_digest(modules: Mapping[str, torch.nn.Module]) -> str:
    """A hash of the named modules' weights (each state-dict entry's name and bytes)."""
    digest = hashlib.sha256()
    for name, module in modules.items():
        for key, tensor in sorted(module.state_dict().items()):
            digest.update(f"{name}.{key}".encode())
            digest.update(tensor.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def erase_or_load(
    erase: Callable[..., ErasureResult],
    pipeline: StableDiffusionPipeline,
    concept: str,
    images: Any,
    config: Any,
    folder: str | Path,
    base_model: str,
    revision: int = 1,
    base_weights: str | None = None,
) -> ErasureResult:
    """``erase(pipeline, concept, images, config)``, saved to ``folder``; read back instead when ``folder``
    holds a result of the same method, concept, images, config, base model and method ``revision``
    (:data:`erasure_lib.methods.REVISIONS`; a key written before revisions existed is revision 1) in
    ``cache_key.json``. The base model is keyed by its name and by its weights (:func:`model_digest`
    of ``pipeline``), so a re-trained built-in model, or another model under the same name, is erased
    anew (a key written before the digest was part of it is never read back); a caller erasing the same
    base model several times passes that digest once as ``base_weights`` (hashing SD's weights takes
    seconds). Notebooks share costly erasures this way; the timings are those of the run that saved it.
    """
    folder = Path(folder)
    key = {"method": erase.__module__.rsplit(".", 1)[-1], "concept": concept, "base_model": base_model,
           "base_weights": base_weights or model_digest(pipeline), "images_sha1": _images_fingerprint(images),
           "config": json.loads(json.dumps(asdict(config), default=str)), "revision": revision}  # fmt: skip
    key_file = folder / "cache_key.json"
    if key_file.is_file() and {"revision": 1} | json.loads(key_file.read_text()) == key:
        return ErasureResult.load(folder).placed_like(pipeline)
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
