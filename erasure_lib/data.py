"""Data of the built-in world and of the paper: Fashion-MNIST, styles, prompt templates, images.

The built-in world is real Fashion-MNIST (Xiao et al. 2017) rendered at 32 px in RGB, with two
visual *styles* that are real image transforms, so that object erasure and style erasure can both
be measured (paper, Sec. 4). Captions come from the Textual Inversion template lists the paper's
code uses: 27 object templates and 17 (unique) style templates.

Fashion-MNIST is read from the folder named by the environment variable ``ERASURE_FASHION_MNIST``
when it is set, else from Debian's ``/usr/share/datasets/fashion-mnist`` (:func:`fashion_mnist_dir`);
every loader also takes ``root=``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

if TYPE_CHECKING:
    import pandas as pd

# Where Debian's ``dataset-fashion-mnist`` puts the four IDX files: the default location.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
# Environment variable naming another folder with the same four files (macOS, Windows, other Linux).
FASHION_MNIST_ENV = "ERASURE_FASHION_MNIST"

# Class names used as concepts; index = Fashion-MNIST label.
CLASSES: tuple[str, ...] = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)

# Styles of the built-in world; index 0 is the plain rendering (no style).
STYLES: tuple[str, ...] = ("plain", "sketch", "sepia")

# Related classes, defined from the data (what the garments are), for the transition analysis.
CLASS_GROUPS: dict[str, tuple[str, ...]] = {
    "tops": ("t-shirt", "pullover", "coat", "shirt"),
    "footwear": ("sandal", "sneaker", "ankle boot"),
    "bottoms": ("trouser",),
    "dresses": ("dress",),
    "bags": ("bag",),
}

# Another everyday name for each class, for the paraphrase attack (notebooks 08, 12). The built-in
# model never saw these words in training: what they draw on the base model is part of the result.
PARAPHRASES: dict[str, str] = {
    "t-shirt": "tee",
    "trouser": "pants",
    "pullover": "sweater",
    "dress": "gown",
    "coat": "jacket",
    "sandal": "flip-flop",
    "shirt": "blouse",
    "sneaker": "running shoe",
    "bag": "handbag",
    "ankle boot": "boot",
}

# Textual Inversion's object templates (27), as used by the paper's code (Sec. 3).
OBJECT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}",
    "a rendering of a {}",
    "a cropped photo of the {}",
    "the photo of a {}",
    "a photo of a clean {}",
    "a photo of a dirty {}",
    "a dark photo of the {}",
    "a photo of my {}",
    "a photo of the cool {}",
    "a close-up photo of a {}",
    "a bright photo of the {}",
    "a cropped photo of a {}",
    "a photo of the {}",
    "a good photo of the {}",
    "a photo of one {}",
    "a close-up photo of the {}",
    "a rendition of the {}",
    "a photo of the clean {}",
    "a rendition of a {}",
    "a photo of a nice {}",
    "a good photo of a {}",
    "a photo of the nice {}",
    "a photo of the small {}",
    "a photo of the weird {}",
    "a photo of the large {}",
    "a photo of a cool {}",
    "a photo of a small {}",
)

# Textual Inversion's style templates without their two repeats (17).
STYLE_TEMPLATES: tuple[str, ...] = (
    "a painting in the style of {}",
    "a rendering in the style of {}",
    "a cropped painting in the style of {}",
    "the painting in the style of {}",
    "a clean painting in the style of {}",
    "a dirty painting in the style of {}",
    "a dark painting in the style of {}",
    "a picture in the style of {}",
    "a cool painting in the style of {}",
    "a close-up painting in the style of {}",
    "a bright painting in the style of {}",
    "a good painting in the style of {}",
    "a rendition in the style of {}",
    "a nice painting in the style of {}",
    "a small painting in the style of {}",
    "a weird painting in the style of {}",
    "a large painting in the style of {}",
)

# Held-out wordings for evaluation: never a training caption of the built-in model and never an
# erasure prompt (both use the templates above), so an erased concept is judged on words it was not
# erased with. Checked on the base model: 0.94-0.96 mean accuracy, as with the training templates.
HELDOUT_OBJECT_TEMPLATES: tuple[str, ...] = (
    "a picture of a {}",
    "an image of the {}",
    "a drawing of a {}",
    "a {} on display",
)

# The evaluation wordings by name (notebook 03's ``wordings``): the paper's templates, which are also
# the built-in model's training captions and the erasure's own prompts, and the held-out ones.
WORDINGS: dict[str, tuple[str, ...]] = {"paper": OBJECT_TEMPLATES, "held-out": HELDOUT_OBJECT_TEMPLATES}



def wordings_in(table: pd.DataFrame) -> list[str | None]:
    """The wordings a result table was judged in (its ``wording`` column), the paper's first, then the
    others by name; ``[None]`` for a table without the column (judged on the paper's templates alone)."""
    if "wording" not in table:
        return [None]
    return sorted(set(table["wording"]), key=lambda w: (w != "paper", w))


ConceptType = Literal["object", "style"]
# The image files a concept folder may hold (compared with the lower-cased suffix), for every loader.
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp")
_SUFFIX_NAMES = "/".join(IMAGE_SUFFIXES)  # ".png/.jpg/.jpeg/.webp", for messages


def templates_for(concept_type: ConceptType) -> tuple[str, ...]:
    """The paper's template list for a concept type (``object`` or ``style``)."""
    if concept_type == "object":
        return OBJECT_TEMPLATES
    if concept_type == "style":
        return STYLE_TEMPLATES
    raise ValueError(f"concept_type must be 'object' or 'style', got {concept_type!r}")


# --------------------------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FashionMNIST:
    """Fashion-MNIST as uint8 arrays: ``images`` (N, 28, 28) and ``labels`` (N,)."""

    images: np.ndarray
    labels: np.ndarray
    split: Literal["train", "test"]

    def subset(self, n: int) -> FashionMNIST:
        """The first ``n`` images (all of them when ``n`` is at least the split's size)."""
        if n <= 0:
            raise ValueError(f"n must be positive, got {n}")
        return FashionMNIST(images=self.images[:n], labels=self.labels[:n], split=self.split)


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fashion_mnist_dir() -> Path:
    """The folder Fashion-MNIST is read from when no ``root`` is given.

    ``$ERASURE_FASHION_MNIST`` when it is set and not empty (``~`` is expanded), otherwise
    :data:`FASHION_MNIST_DIR`, Debian's ``/usr/share/datasets/fashion-mnist``. Read at every call, so
    setting the variable in a running session (``os.environ[...] = ...``) takes effect at once.
    The folder must hold the four files of the dataset's release, ``train-images-idx3-ubyte.gz``,
    ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``.
    """
    value = os.environ.get(FASHION_MNIST_ENV, "").strip()
    return Path(value).expanduser() if value else FASHION_MNIST_DIR


def load_fashion_mnist(split: Literal["train", "test"], root: Path | str | None = None) -> FashionMNIST:
    """Load the real Fashion-MNIST split from its four IDX ``.gz`` files.

    ``root`` is the folder holding them; ``None`` (the default) means :func:`fashion_mnist_dir`:
    ``$ERASURE_FASHION_MNIST`` if set, else the Debian package ``dataset-fashion-mnist``'s folder.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    from_env = root is None and bool(os.environ.get(FASHION_MNIST_ENV, "").strip())
    root = fashion_mnist_dir() if root is None else Path(root)
    prefix = "train" if split == "train" else "t10k"
    images_path = root / f"{prefix}-images-idx3-ubyte.gz"
    labels_path = root / f"{prefix}-labels-idx1-ubyte.gz"
    for path in (images_path, labels_path):
        if not path.is_file():
            source = f" (the folder named by ${FASHION_MNIST_ENV})" if from_env else ""
            raise FileNotFoundError(
                f"Fashion-MNIST file {path} not found{source}. Set the environment variable "
                f"{FASHION_MNIST_ENV} to a folder holding the four IDX .gz files of the Fashion-MNIST "
                "release (github.com/zalandoresearch/fashion-mnist, data/fashion), pass root= such a folder, "
                "or on Debian install them with 'apt-get update && apt-get install -y dataset-fashion-mnist' "
                "(or run 'make setup')."
            )
    images, labels = _read_idx(images_path), _read_idx(labels_path)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{root}: {images.shape[0]} images but {labels.shape[0]} labels")
    return FashionMNIST(images=images, labels=labels, split=split)


# --------------------------------------------------------------------------------------------
# Rendering and styles: real image transforms on the gray garment
# --------------------------------------------------------------------------------------------


def render(image28: np.ndarray, style: str, size: int = 32) -> np.ndarray:
    """Render a 28x28 uint8 garment as a ``size`` x ``size`` RGB float image in [0, 1].

    ``plain`` is the garment in gray on black; ``sketch`` is its edge map (Sobel magnitude) drawn in
    dark lines on white paper; ``sepia`` is a warm brown tint of the garment on a cream ground.
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    if size < 28:  # render at 28 px, then downsample
        image = render(image28, style, 28)
        small = Image.fromarray((image * 255.0 + 0.5).astype(np.uint8), "RGB").resize((size, size), Image.BILINEAR)
        return np.asarray(small, dtype=np.float32) / 255.0
    pad = (size - 28) // 2
    x = np.zeros((size, size), dtype=np.float32)
    x[pad : pad + 28, pad : pad + 28] = image28.astype(np.float32) / 255.0
    if style == "plain":
        return np.repeat(x[..., None], 3, axis=-1)
    if style == "sketch":
        p = np.pad(x, 1, mode="edge")
        gx = (p[1:-1, 2:] - p[1:-1, :-2]) * 2 + (p[:-2, 2:] - p[:-2, :-2]) + (p[2:, 2:] - p[2:, :-2])
        gy = (p[2:, 1:-1] - p[:-2, 1:-1]) * 2 + (p[2:, :-2] - p[:-2, :-2]) + (p[2:, 2:] - p[:-2, 2:])
        edges = np.clip(np.hypot(gx, gy) / 2.0, 0.0, 1.0)
        ink = 1.0 - edges
        return np.stack([ink * 0.97, ink * 0.97, ink * 0.92], axis=-1)
    # sepia: cream background, brown garment whose darkness follows the gray level
    cream = np.array([0.96, 0.90, 0.76], dtype=np.float32)
    brown = np.array([0.44, 0.26, 0.08], dtype=np.float32)
    return cream * (1.0 - x[..., None]) + brown * x[..., None]


def to_pil(image: np.ndarray) -> Image.Image:
    """Float RGB image in [0, 1] (H, W, 3) to a PIL image."""
    return Image.fromarray((np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "RGB")


def caption_for(
    label: int, style: str, rng: np.random.Generator, style_only_p: float = 0.3
) -> str:
    """A training caption from the paper's templates.

    Plain images get an object template with the class name. Styled images get, with probability
    ``style_only_p``, a style template with the style name alone, otherwise an object template with
    "<class> in the style of <style>".
    """
    name = CLASSES[label]
    if style == "plain":
        return OBJECT_TEMPLATES[rng.integers(len(OBJECT_TEMPLATES))].format(name)
    if rng.random() < style_only_p:
        return STYLE_TEMPLATES[rng.integers(len(STYLE_TEMPLATES))].format(style)
    return OBJECT_TEMPLATES[rng.integers(len(OBJECT_TEMPLATES))].format(
        f"{name} in the style of {style}"
    )


def object_prompt(concept: str, style: str = "plain", template: str = "a photo of a {}") -> str:
    """The evaluation prompt for a class, optionally in a style ("a photo of a sneaker in the style of sketch")."""
    if style == "plain":
        return template.format(concept)
    return template.format(f"{concept} in the style of {style}")


def export_concept_images(
    out_dir: Path | str,
    concept: str,
    n: int,
    seed: int,
    split: Literal["train", "test"] = "train",
    style: str = "plain",
    size: int = 32,
    root: Path | str | None = None,
) -> list[Path]:
    """Write ``n`` real images of a class (chosen with ``seed``) as PNGs; the paper's few-shot set.

    ``root``: the Fashion-MNIST folder, ``None`` for :func:`fashion_mnist_dir` (``$ERASURE_FASHION_MNIST``).
    """
    if concept not in CLASSES:
        raise ValueError(f"unknown class {concept!r}; expected one of {CLASSES}")
    data = load_fashion_mnist(split, root)
    idx = np.flatnonzero(data.labels == CLASSES.index(concept))
    chosen = np.random.default_rng(seed).choice(idx, size=n, replace=False)
    return _write_renders(Path(out_dir), data, chosen, style, size)


def export_style_images(
    out_dir: Path | str,
    style: str,
    n: int,
    seed: int,
    split: Literal["train", "test"] = "train",
    size: int = 32,
    root: Path | str | None = None,
) -> list[Path]:
    """Write ``n`` real images of random classes rendered in ``style`` (a style's few-shot set).

    ``root``: the Fashion-MNIST folder, ``None`` for :func:`fashion_mnist_dir` (``$ERASURE_FASHION_MNIST``).
    """
    if style not in STYLES[1:]:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES[1:]}")
    data = load_fashion_mnist(split, root)
    chosen = np.random.default_rng(seed).choice(len(data.labels), size=n, replace=False)
    return _write_renders(Path(out_dir), data, chosen, style, size)


def _write_renders(out: Path, data: FashionMNIST, indices: np.ndarray, style: str, size: int) -> list[Path]:
    """Render the chosen images in ``style`` as ``<class>_<style>_<split><index>.png`` files."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in sorted(indices.tolist()):
        path = out / f"{CLASSES[data.labels[i]].replace(' ', '_')}_{style}_{data.split}{i:05d}.png"
        to_pil(render(data.images[i], style, size)).save(path)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------------------------
# Concept image folders (user input for the few-shot method)
# --------------------------------------------------------------------------------------------

ImageSource = Path | str | Image.Image


def load_concept_images(images: Path | str | Sequence[ImageSource]) -> list[Image.Image]:
    """Load the few real images of a concept as RGB PIL images.

    ``images`` is a folder (its files with a suffix of ``IMAGE_SUFFIXES``, sorted by name), or a list of paths
    or PIL images. Any size and mode is accepted (grayscale, RGBA, palette are converted to RGB).
    Raises ``FileNotFoundError`` / ``ValueError`` naming the offending input.
    """
    if isinstance(images, (str, Path)):
        folder = Path(images)
        if not folder.exists():
            raise FileNotFoundError(f"image folder {folder} does not exist; pass a folder of {_SUFFIX_NAMES} images")
        if not folder.is_dir():
            raise NotADirectoryError(f"{folder} is not a folder; pass a folder or a list of image paths")
        sources: list[ImageSource] = sorted(
            p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not sources:
            raise ValueError(
                f"image folder {folder} holds no {_SUFFIX_NAMES} images; put a few real images of the concept there"
            )
    else:
        sources = list(images)
        if not sources:
            raise ValueError("the list of images is empty; give at least one image of the concept")
    return [_load_one(s) for s in sources]


def _load_one(source: ImageSource) -> Image.Image:
    if isinstance(source, Image.Image):
        image = source
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"image {path} does not exist")
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise ValueError(f"{path} is not a {_SUFFIX_NAMES} image")
        try:
            with Image.open(path) as f:
                f.load()
                image = f.copy()
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            raise ValueError(f"{path} is not a readable image ({err}); replace or remove it") from err
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit gray: rescale to 8 bits (convert("RGB") would clip to 0..255).
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray((np.clip(array / top, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "P", "PA"):
        # Composite transparency on black, the built-in world's background.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def image_digest(image: str | Path | Image.Image) -> str:
    """What a cached run's key records of one real image: the file's name and a hash of its bytes
    (or of the pixels), not its absolute path, so a cache stays valid when the repository moves."""
    if isinstance(image, Image.Image):
        return f"pixels:{hashlib.sha256(image.tobytes()).hexdigest()[:16]}"
    return f"{Path(image).name}:{hashlib.sha256(Path(image).read_bytes()).hexdigest()[:16]}"


def file_sha256(path: Path | str) -> str:
    """SHA-256 of a file, for manifests."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
