"""What a paper notebook runs on (paper, Sec. 4.1): where the few-shot images come from, which
classifier judges the generated images, and the method's settings for the model at hand.

The notebooks take the same parameters for these, so one notebook serves both worlds:

================= ===================================== ==========================================
parameter         built-in model (``"builtin"``)         Stable Diffusion v1.4 (the sd14 profile)
================= ===================================== ==========================================
images_dir        Fashion-MNIST training renders         ``data/imagenette/<class>/*.JPEG``
evaluator         the shipped garment/style classifier   ``"eva02"``: EVA02-L/14 top-1 (Imagenette)
fewshot_settings  ``FewShotConfig.builtin()`` (nb. 02)   ``"paper"``: ``FewShotConfig()``, lr 1e-5
fid_reference     Fashion-MNIST test renders             ``data/coco/val2014``
quality_prompts   the other classes' prompts             ``data/coco/coco_30k.csv``
================= ===================================== ==========================================

``evaluator`` also takes ``"package.module:function"``, a factory (called with ``device``) returning
an :class:`~erasure_lib.metrics.imagenet.ImageNetEvaluator`: any other ImageNet-1k classifier, or the
random stand-in with which the sd14 path is tested without weights (``tools/sd14_tiny.py``).
"""

from __future__ import annotations

import ast
import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
import pandas as pd
import torch
from PIL import Image

from erasure_lib import data, results, sd14
from erasure_lib.generate import GenerationConfig, Sampler, read_prompt_csv
from erasure_lib.methods import esd, spm, uce
from erasure_lib.methods.fewshot import FewShotConfig
from erasure_lib.metrics import classifier as clf
from erasure_lib.metrics import style_judge as style_judge_lib
from erasure_lib.metrics.imagenet import ImageNetEvaluator, load_eva02
from erasure_lib.metrics.style_judge import StyleJudge
from erasure_lib.paths import CLASSIFIER_PATH, REPO_ROOT

if TYPE_CHECKING:  # annotations only: erasure_lib.models imports diffusers where it loads a pipeline
    from diffusers import StableDiffusionPipeline

    from erasure_lib.methods.base import ErasureResult

BUILTIN = "builtin"
FewShotSettings = Literal["builtin", "paper"]
Judge: TypeAlias = "clf.GarmentStyleClassifier | ImageNetEvaluator"
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def torch_dtype(name: str) -> torch.dtype:
    """``"float32"``, ``"float16"`` or ``"bfloat16"`` as a torch dtype (notebook parameters are strings)."""
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {name!r}")
    return DTYPES[name]


def repo_path(path: str | Path) -> Path:
    """A path parameter of a notebook as a path: relative paths are relative to the repository root (as
    the result paths are), whatever folder the notebook runs in (``make`` runs them with papermill's
    ``--cwd /tmp``)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def model_source(model: str) -> str:
    """``model`` as :func:`erasure_lib.models.load_pipeline` takes it, with a local folder given
    relative to the repository root made absolute (hub ids and ``"builtin"`` pass through)."""
    if model != BUILTIN and repo_path(model).is_dir():
        return str(repo_path(model))
    return model


def concept_images(images_dir: str, concept: str, n: int, seed: int, work_dir: str | Path) -> list[Path]:
    """The ``n`` real images of ``concept`` a few-shot erasure with ``seed`` uses.

    ``images_dir == "builtin"``: Fashion-MNIST training renders, written to ``work_dir/<concept>-seed<seed>-n<n>``
    (``concept`` must be a garment class). Otherwise ``n`` files of ``<images_dir>/<concept>/``, drawn
    by ``seed`` (:func:`erasure_lib.sd14.concept_image_paths`); a missing folder or too few images fail
    with the folder's name.
    """
    if images_dir == BUILTIN:
        return data.export_concept_images(Path(work_dir) / f"{concept}-seed{seed}-n{n}", concept, n=n, seed=seed)
    root = repo_path(images_dir)
    if not root.is_dir():
        raise FileNotFoundError(
            f"images_dir {root} does not exist: it should hold one folder of real images per concept "
            f"({root}/<concept>/*.jpg); for the sd14 profile see the README, 'Stable Diffusion v1.4'"
        )
    return sd14.concept_image_paths(concept, n, seed, root=root)


def real_images(images_dir: str, concept: str, n: int, seed: int = 0) -> list[Image.Image]:
    """Up to ``n`` real images of ``concept`` (held-out Fashion-MNIST test renders, or files of
    ``<images_dir>/<concept>/``): the reference for an evaluator's accuracy on real images."""
    if images_dir == BUILTIN:
        test = data.load_fashion_mnist("test")
        index = np.flatnonzero(test.labels == data.CLASSES.index(concept))[:n]
        return [data.to_pil(data.render(test.images[i], "plain")) for i in index]
    folder = repo_path(images_dir) / concept
    count = len([p for p in folder.iterdir() if p.suffix.lower() in data.IMAGE_SUFFIXES]) if folder.is_dir() else 0
    return data.load_concept_images(sd14.concept_image_paths(concept, max(min(n, count), 1), seed, root=folder.parent))


def other_images(images_dir: str, concept: str, n: int, exclude: Sequence[str | Path], seed: int = 0) -> list[Image.Image]:
    """``n`` real images of ``concept`` that are none of ``exclude`` (an erasure's own images), for an
    attacker who has other pictures of the concept than the eraser had.

    ``images_dir == "builtin"``: Fashion-MNIST *test* renders (the erasures draw from the training
    split), the first ``n``. Otherwise ``n`` files of ``<images_dir>/<concept>/`` not in ``exclude``
    (compared by file name), drawn by ``seed``; too few left fails with the counts.
    """
    if images_dir == BUILTIN:
        return real_images(images_dir, concept, n)
    folder = repo_path(images_dir) / concept
    if not folder.is_dir():
        raise FileNotFoundError(f"no image folder {folder} for concept {concept!r}")
    taken = {Path(p).name for p in exclude}
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in data.IMAGE_SUFFIXES and p.name not in taken)
    if len(files) < n:
        raise ValueError(f"{folder} holds {len(files)} images besides the {len(taken)} excluded; {n} are needed")
    order = np.random.default_rng(seed).permutation(len(files))[:n]
    return data.load_concept_images([files[int(i)] for i in sorted(order)])


def attack_image_source(
    images_dir: str, n: int, seed: int, which: Literal["other", "erasure"] = "other"
) -> Callable[[str, Sequence[Path]], list[Image.Image]] | None:
    """What the attacks of notebook 08 learn from (:func:`erasure_lib.attacks.robustness`'s
    ``attack_images``): ``"other"``, ``n`` real images the erasure never saw (:func:`other_images`);
    ``"erasure"``, the erasure's own images (``None``)."""
    if which == "erasure":
        return None
    if which != "other":
        raise ValueError(f"attack images must be 'other' or 'erasure', got {which!r}")
    if n < 1:
        raise ValueError(f"the attacks need at least 1 image, got {n}")
    return lambda concept, shots: other_images(images_dir, concept, n, shots, seed)


def reference_images(fid_reference: str, n: int, seed: int = 0) -> tuple[list[Image.Image], list[str]]:
    """Real images for FID / KID and the class of each: the first ``n`` Fashion-MNIST test renders
    (``"builtin"``), or ``n`` image files anywhere under the folder ``fid_reference`` (e.g.
    ``data/coco/val2014``), drawn by ``seed``, each of the class its first sub-folder names
    (``<fid_reference>/<class>/...``; ``""`` for a file directly in the folder)."""
    if fid_reference == BUILTIN:
        test = data.load_fashion_mnist("test")
        return [data.to_pil(data.render(test.images[i], "plain")) for i in range(n)], [data.CLASSES[int(c)] for c in test.labels[:n]]
    folder = repo_path(fid_reference)
    if not folder.is_dir():
        raise FileNotFoundError(f"fid_reference {folder} does not exist: give a folder of real images (README, 'Stable Diffusion v1.4')")
    files = sorted(f for f in folder.rglob("*") if f.suffix.lower() in data.IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"fid_reference {folder} holds no images ({', '.join(data.IMAGE_SUFFIXES)})")
    order = np.random.default_rng(seed).permutation(len(files))[: min(n, len(files))]
    chosen = [files[int(i)] for i in sorted(order)]
    classes = [f.relative_to(folder).parts[0] if len(f.relative_to(folder).parts) > 1 else "" for f in chosen]
    return data.load_concept_images(chosen), classes


def quality_prompts(path: str, n: int) -> pd.DataFrame | None:
    """The first ``n`` rows of a prompt CSV (``case_number, prompt, evaluation_seed``; the paper's
    COCO-30k) for FID and CLIP score, or ``None`` for ``""`` (score the class prompts instead)."""
    if not path:
        return None
    csv = repo_path(path)
    if not csv.is_file():
        raise FileNotFoundError(
            f"quality_prompts {csv} does not exist: it should be a CSV with columns case_number,prompt,evaluation_seed "
            "(the COCO-30k set for the sd14 profile; README, 'Stable Diffusion v1.4')"
        )
    return read_prompt_csv(csv).iloc[:n].reset_index(drop=True)


def real_accuracy(judge: Judge, images_dir: str, classes: Sequence[str], n_per_class: int) -> dict[str, float]:
    """The judge's accuracy on real images of each class: every held-out Fashion-MNIST test render
    (``"builtin"``), or up to ``n_per_class`` files of each ``<images_dir>/<class>/``."""
    from erasure_lib.evaluation import classify_images

    if images_dir == BUILTIN:
        return clf.real_accuracy(judge, data.load_fashion_mnist("test"), styles=("plain",))["plain"]  # type: ignore[arg-type]
    universe = evaluator_classes(judge)
    accuracy = {}
    for concept in classes:
        images = real_images(images_dir, concept, n_per_class)
        rows = pd.DataFrame({"class": [concept] * len(images), "class_index": universe.index(concept)})
        classified = classify_images(judge, rows, images)
        accuracy[concept] = float((classified["predicted"] == classified["class_index"]).mean())
    return accuracy


def load_evaluator(evaluator: str, device: str | torch.device = "cpu") -> Judge:
    """The classifier that judges generated images: ``"builtin"``, ``"eva02"`` or ``"module:function"``."""
    if evaluator == BUILTIN:
        return clf.load_classifier(CLASSIFIER_PATH)
    if evaluator == "eva02":
        return load_eva02(device=device)
    module, sep, name = evaluator.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"evaluator must be 'builtin', 'eva02' or 'package.module:function', got {evaluator!r}")
    factory = getattr(importlib.import_module(module), name, None)
    if factory is None:
        raise ValueError(f"evaluator {evaluator!r}: {module} has no attribute {name!r}")
    judge = factory(device=device)
    if not isinstance(judge, ImageNetEvaluator | clf.GarmentStyleClassifier):
        raise TypeError(f"evaluator {evaluator!r} returned {type(judge).__name__}, not an ImageNetEvaluator")
    return judge


def evaluator_classes(judge: Judge) -> tuple[str, ...]:
    """The classes a judge names, in the order of its ``predicted`` indices."""
    return tuple(judge.classes) if isinstance(judge, ImageNetEvaluator) else data.CLASSES


def has_styles(judge: Judge) -> bool:
    """Whether the judge also names a style (only the built-in classifier does)."""
    return isinstance(judge, clf.GarmentStyleClassifier)


def fewshot_config(settings: FewShotSettings, **overrides: object) -> FewShotConfig:
    """The method's settings: ``"paper"`` (Sec. 4.1: lr 1e-5, batch 2, 4 epochs, ``mlp-final-attn``)
    or ``"builtin"`` (the same with notebook 02's calibrated lr and epochs), then ``overrides``."""
    if settings == "paper":
        return FewShotConfig(**overrides)  # type: ignore[arg-type]
    if settings == BUILTIN:
        return FewShotConfig.builtin(**overrides)
    raise ValueError(f"fewshot settings must be 'builtin' or 'paper', got {settings!r}")


def evaluation_seeds(
    seeds: Sequence[int],
    settings: FewShotSettings,
    calibration_file: str = "results/fewshot_calibration_summary.csv",
    manifest: str | Path = "results/manifest.json",
    also_calibrated_on: Sequence[int | None] = (),
) -> list[int]:
    """``seeds`` after checking that none was used to choose the settings: the ``"builtin"`` settings
    were calibrated by notebook 02 on the seed its manifest entry records (the paper's settings were
    chosen on none of ours), and ``also_calibrated_on`` holds the seeds of other calibrations the
    evaluation uses (notebook 17's for ESD; ``None`` entries are ignored). Raises if the sets meet:
    a setting is never reported on its own seeds."""
    calibration = [int(results.recorded_parameters(calibration_file, manifest)["seed"])] if settings == BUILTIN else []
    calibration += [int(s) for s in also_calibrated_on if s is not None]
    if set(map(int, seeds)) & set(calibration):
        raise ValueError(f"evaluation seeds {list(seeds)} include the calibration seed(s) {calibration} of {calibration_file}")
    return [int(s) for s in seeds]


MethodConfig: TypeAlias = "FewShotConfig | esd.ESDConfig | uce.UCEConfig | spm.SPMConfig"


def method_configs(
    fewshot_settings: FewShotSettings,
    seed: int,
    esd_train_method: esd.TrainMethod = "noxattn",
    esd_iterations: int = 1000,
    esd_lr: float = 1e-5,
    spm_iterations: int = 3000,
    only: Sequence[str] | None = None,
    spm_lr: float | None = None,
) -> dict[str, MethodConfig]:
    """One config per method compared (Sec. 4.3): few-shot unlearning, ESD (published defaults: 1000
    iterations at lr 1e-5; ESD-u for objects), UCE and SPM (its published defaults, 3000 iterations
    on its warm-up and cosine schedule; with ``spm_lr``, that rate held constant, as notebook 17's
    sweep runs it), all seeded alike; ``only`` keeps the methods it names, in its order."""
    spm_config = (spm.SPMConfig(iterations=int(spm_iterations), seed=seed) if spm_lr is None
                  else spm.SPMConfig.constant_lr(iterations=int(spm_iterations), lr=float(spm_lr), seed=seed))  # fmt: skip
    configs: dict[str, MethodConfig] = {
        "fewshot": fewshot_config(fewshot_settings, seed=seed),
        "esd": esd.ESDConfig(train_method=esd_train_method, iterations=int(esd_iterations), lr=float(esd_lr), seed=seed),
        "uce": uce.UCEConfig(seed=seed),
        "spm": spm_config,
    }
    if only is None:
        return configs
    unknown = [m for m in only if m not in configs]
    if unknown or not only:
        raise ValueError(f"methods must be some of {list(configs)}, got {list(only)}")
    return {method: configs[method] for method in only}


def timed_methods(
    fewshot_settings: FewShotSettings,
    seed: int,
    methods: Sequence[str],
    esd_train_method: esd.TrainMethod = "noxattn",
    esd_settings: Sequence[Sequence[float]] = ((1000, 1e-5),),
    spm_iterations: int = 3000,
    spm_settings: Sequence[Sequence[float]] = (),
) -> dict[str, tuple[str, MethodConfig]]:
    """Label -> (method name, config) for :func:`erasure_lib.benchmark.time_methods`: every method of
    ``methods`` with :func:`method_configs`' settings, and ESD once per ``(iterations, lr)`` of
    ``esd_settings``, labelled ``"esd <iterations> it, lr <lr>"``, so that a time ratio can compare the
    ESD whose quality another notebook reports (notebook 13's setting) as well as the published one.
    SPM is timed at its published schedule (``spm_iterations``), labelled ``"spm"``, and once more per
    ``(iterations, lr)`` of ``spm_settings`` at that constant rate (the schedule of notebook 17's SPM
    sweep, :meth:`SPMConfig.constant_lr`), labelled ``"spm <iterations> it, lr <lr> constant"``."""
    unknown = sorted(set(methods) - {"fewshot", "esd", "uce", "spm"})
    if unknown:
        raise ValueError(f"unknown methods {unknown}; expected 'fewshot', 'esd', 'uce' or 'spm'")
    if "esd" in methods and not esd_settings:
        raise ValueError("ESD is timed but esd_settings is empty: give at least one (iterations, lr)")
    if spm_settings and "spm" not in methods:
        raise ValueError(f"spm_settings {[list(s) for s in spm_settings]} given but methods {list(methods)} lacks 'spm'")
    variants: dict[str, tuple[str, MethodConfig]] = {}
    for method in methods:
        if method == "esd":
            for iterations, lr in esd_settings:
                config = esd.ESDConfig(train_method=esd_train_method, iterations=int(iterations), lr=float(lr), seed=seed)
                variants[f"esd {int(iterations)} it, lr {float(lr):g}"] = ("esd", config)
            continue
        variants[method] = (method, method_configs(fewshot_settings, seed, spm_iterations=spm_iterations)[method])
        if method == "spm":
            for iterations, lr in spm_settings:
                config = method_configs(fewshot_settings, seed, spm_iterations=int(iterations), spm_lr=float(lr))["spm"]
                variants[f"spm {int(iterations)} it, lr {float(lr):g} constant"] = ("spm", config)
    return variants


def erase_with_methods(
    pipeline: StableDiffusionPipeline,
    concept: str,
    images: Sequence[Path],
    configs: Mapping[str, Any],
    erasure_cache: str | Path,
    base_model: str,
) -> dict[str, ErasureResult]:
    """One erasure of ``concept`` per method of ``configs`` (name -> config, e.g. from
    :func:`method_configs`), each saved under ``erasure_cache/<method>/<concept>`` and read back
    when an earlier run saved the same erasure (:func:`erasure_lib.methods.base.erase_or_load`):
    notebooks 08, 12 and 13 share ESD's costly runs this way. ``erasure_cache`` is relative to the
    repository root."""
    from erasure_lib.methods import REVISIONS, get_method
    from erasure_lib.methods.base import erase_or_load, model_digest

    folder = repo_path(erasure_cache)
    base_weights = model_digest(pipeline)  # once for all methods: every erasure starts from the same weights
    return {
        method: erase_or_load(get_method(method), pipeline, concept, images, config, folder / method / concept, base_model,
                              REVISIONS[method], base_weights)  # fmt: skip
        for method, config in configs.items()
    }


def check_classes(classes: Sequence[str], judge: Judge) -> list[str]:
    """``classes`` as a list, failing early when the judge cannot name one of them."""
    if isinstance(classes, str):
        raise TypeError(f"classes is a list of class names, not one string: use [{classes!r}] (papermill: -y 'classes: [...]', not -p)")
    known = evaluator_classes(judge)
    unknown = [c for c in classes if c not in known]
    if unknown:
        raise ValueError(f"the evaluator does not know {unknown}; it names {list(known)}")
    return list(classes)


# --- the set-up of a paper notebook ---------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """What a paper notebook runs on: the model, the judge, the judge's classes, the classes the
    notebook erases (checked against the judge's) and the sampling settings (:func:`setup`)."""

    pipeline: StableDiffusionPipeline = field(repr=False)
    judge: Judge = field(repr=False)
    universe: tuple[str, ...]
    classes: tuple[str, ...]
    generation: GenerationConfig


def setup(
    model: str,
    evaluator: str,
    device: str = "cpu",
    dtype: str = "float32",
    classes: Sequence[str] | None = None,
    num_inference_steps: int = 25,
    guidance_scale: float = 7.5,
    threads: int | None = None,
    sampler: Sampler = "model",
) -> Setup:
    """Set a paper notebook up from its parameters, in this order: ``torch.set_num_threads(threads)``
    (``None`` leaves it), the sampling settings (``sampler``: the model's own scheduler, or another
    where notebook 18 shows it gives the same verdicts), the model (:func:`model_source`, then
    :func:`erasure_lib.models.load_pipeline` in ``dtype`` on ``device``), the judge
    (:func:`load_evaluator`), its classes (:func:`evaluator_classes`) and ``classes`` checked against
    them (:func:`check_classes`; ``None``: all of the judge's classes)."""
    from erasure_lib.models import load_pipeline

    if threads is not None:
        torch.set_num_threads(threads)
    generation = GenerationConfig(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, sampler=sampler)
    pipeline = load_pipeline(model_source(model), device=device, dtype=torch_dtype(dtype))
    judge = load_evaluator(evaluator, device)
    universe = evaluator_classes(judge)
    checked = check_classes(universe if classes is None else classes, judge)
    return Setup(pipeline, judge, universe, tuple(checked), generation)


Relatedness = Literal["garment groups", "wordnet"]


def related_groups(
    setup: Setup, relatedness: Relatedness, n_related: int = 3, max_distance: int = 7
) -> tuple[Setup, dict[str, tuple[str, ...]]]:
    """Which classes count as related to each erased one (notebooks 06 and 12), and the set-up whose
    judge also evaluates them. ``"garment groups"``: the built-in world's groups
    (:data:`erasure_lib.data.CLASS_GROUPS`: tops, footwear, ...), the set-up unchanged. ``"wordnet"``
    (an ImageNet judge, Stable Diffusion): each erased class with its ``n_related`` nearest ImageNet
    classes within ``max_distance`` WordNet links (:func:`erasure_lib.hierarchy.judge_with_neighbours`),
    which the returned set-up's judge evaluates beside its own, so that their prompts are drawn and
    judged like every other class's."""
    from erasure_lib import hierarchy

    if relatedness == "garment groups":
        if not has_styles(setup.judge):
            raise ValueError("relatedness 'garment groups' needs the built-in judge; with an ImageNet judge use 'wordnet'")
        return setup, {name: tuple(members) for name, members in data.CLASS_GROUPS.items()}
    if relatedness == "wordnet":
        if not isinstance(setup.judge, ImageNetEvaluator):
            raise ValueError("relatedness 'wordnet' needs an ImageNet judge (evaluator 'eva02' or a factory); the built-in one uses 'garment groups'")
        judge, groups = hierarchy.judge_with_neighbours(setup.judge, setup.classes, n_related, max_distance)
        return replace(setup, judge=judge, universe=evaluator_classes(judge)), groups
    raise ValueError(f"relatedness must be 'garment groups' or 'wordnet', got {relatedness!r}")


def image_source(images_dir: str, n_images: int, work_dir: str | Path) -> Callable[[str, int], list[Path]]:
    """``(concept, seed) -> ``:func:`concept_images` ``(images_dir, concept, n_images, seed, work_dir)``:
    the real images of one erasure, as :func:`erasure_lib.evaluation.sweep` takes them (``work_dir``
    relative to the repository root)."""
    folder = repo_path(work_dir)

    def images(concept: str, seed: int) -> list[Path]:
        return concept_images(images_dir, concept, n_images, seed, folder)

    return images


def notebook_parameters(notebook: str | Path, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The values in ``namespace`` (a notebook's ``globals()``) of every parameter the notebook
    declares in its cell tagged ``parameters``, for :func:`erasure_lib.results.record_run`: the
    parameters are declared once, in the notebook, and recorded as they were run (papermill's
    values included). ``notebook`` is relative to the repository root."""
    path = repo_path(notebook)
    cells = json.loads(path.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(f"{path} has {len(tagged)} cells tagged 'parameters', expected 1")
    source = "".join(tagged[0]["source"]) if isinstance(tagged[0]["source"], list) else tagged[0]["source"]
    names: list[str] = []
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    missing = [n for n in names if n not in namespace]
    if missing:
        raise KeyError(f"parameters of {path.name} not defined here: {missing}")
    return {n: namespace[n] for n in names}


# --- styles (notebook 07) -------------------------------------------------------------------------

StyleJudgeName = Literal["builtin", "clip"]


def style_images(images_dir: str, style: str, n: int, seed: int, work_dir: str | Path) -> list[Path]:
    """The ``n`` real images in ``style`` that an erasure of it with ``seed`` uses.

    ``images_dir == "builtin"``: Fashion-MNIST training renders of random garments in the style
    (``sketch`` or ``sepia``), written to ``work_dir/<style>-seed<seed>``. Otherwise ``n`` files of
    ``<images_dir>/<style>/`` (e.g. ``data/styles/Van Gogh/``: real paintings), drawn by ``seed`` as
    :func:`concept_images` draws them.
    """
    if images_dir == BUILTIN:
        return data.export_style_images(Path(work_dir) / f"{style}-seed{seed}", style, n=n, seed=seed)
    return concept_images(images_dir, style, n, seed, work_dir)


def load_style_judge(
    style_judge: StyleJudgeName, styles: Sequence[str], clip_model: str = "models/clip", device: str | torch.device = "cpu"
) -> clf.GarmentStyleClassifier | StyleJudge:
    """The judge of a style erasure: ``"builtin"`` (the shipped garment/style classifier, which names
    ``sketch`` and ``sepia``) or ``"clip"`` (zero-shot over ``styles`` and "none" with ``clip_model``,
    a CLIP folder or hub id: :class:`~erasure_lib.metrics.style_judge.StyleJudge`)."""
    if style_judge == BUILTIN:
        return clf.load_classifier(CLASSIFIER_PATH)
    if style_judge == "clip":
        return style_judge_lib.load_style_judge(clip_model, styles, device=device)
    raise ValueError(f"style_judge must be 'builtin' or 'clip', got {style_judge!r}")


def judged_styles(judge: clf.GarmentStyleClassifier | StyleJudge) -> tuple[str, ...]:
    """The styles a style judge names (the built-in classifier: ``sketch`` and ``sepia``, not ``plain``)."""
    return data.STYLES[1:] if isinstance(judge, clf.GarmentStyleClassifier) else judge.styles


def style_prompt_tables(
    judge: clf.GarmentStyleClassifier | StyleJudge,
    n_per_class: int,
    subjects: Sequence[str] = data.CLASSES,
    wordings: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, pd.DataFrame]:
    """One prompt table per judged style: ``n_per_class`` prompts of every subject in that style
    ("a photo of a sneaker in the style of sketch", cycling through the object templates), with the
    same evaluation seeds for every style. With the built-in classifier the subjects must be garment
    classes (``class_index`` is their index in :data:`erasure_lib.data.CLASSES`). With ``wordings``
    (named template sets, e.g. :data:`erasure_lib.data.WORDINGS`) each table holds the prompts of every
    wording on the same evaluation seeds, one after another, named in a ``wording`` column
    (:func:`erasure_lib.evaluation.style_erasure_table` judges each wording apart)."""
    from erasure_lib.evaluation import ClassPromptSet

    subjects = tuple(subjects)
    if isinstance(judge, clf.GarmentStyleClassifier):
        unknown = [s for s in subjects if s not in data.CLASSES]
        if unknown:
            raise ValueError(f"the built-in classifier knows the garment classes only, not {unknown}")
        universe = data.CLASSES
    else:
        universe = subjects
    if wordings is None:
        return {s: ClassPromptSet(subjects, n_per_class, style=s, universe=universe).table() for s in judged_styles(judge)}
    if not wordings:
        raise ValueError("give at least one wording, or None for the paper's templates alone")
    return {s: pd.concat([ClassPromptSet(subjects, n_per_class, style=s, templates=tuple(templates), universe=universe).table().assign(wording=name)
                          for name, templates in wordings.items()], ignore_index=True)
            for s in judged_styles(judge)}  # fmt: skip
