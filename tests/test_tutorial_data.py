"""The real Fashion-MNIST images shipped for the tutorial (notebooks/tutorials/data/fashion-mnist-sample/).

They let the tutorial run with nothing but the repository: these tests check that every class has its
folder of a few real images, that they load, that the shipped classifier names them as the class
their folder claims, that the licence and attribution travel with them, and (where the full dataset
is installed) that they are the renders the library's own exporter makes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from erasure_lib import data
from erasure_lib.metrics import classifier as clf
from erasure_lib.paths import CLASSIFIER_PATH, NOTEBOOKS_DIR

SAMPLE_DIR = NOTEBOOKS_DIR / "tutorials" / "data" / "fashion-mnist-sample"
TUTORIAL_SOURCE = NOTEBOOKS_DIR / "src" / "tutorial-01-erase-a-concept.py"


def class_folder(name: str) -> Path:
    """The folder of a class ("ankle boot" -> ankle_boot/), as the tutorial builds it."""
    return SAMPLE_DIR / name.replace(" ", "_")


def test_every_class_has_a_folder_of_four_to_eight_pngs() -> None:
    folders = sorted(p.name for p in SAMPLE_DIR.iterdir() if p.is_dir())
    assert folders == sorted(class_folder(c).name for c in data.CLASSES)
    for name in data.CLASSES:
        files = sorted(class_folder(name).iterdir())
        assert 4 <= len(files) <= 8, f"{class_folder(name)}: {len(files)} files"
        assert all(f.suffix == ".png" and f.name.startswith(f"{class_folder(name).name}_plain_train") for f in files), files


@pytest.mark.parametrize("name", data.CLASSES)
def test_images_load_as_32px_rgb(name: str) -> None:
    images = data.load_concept_images(class_folder(name))
    assert len(images) >= 4
    assert all(im.mode == "RGB" and im.size == (32, 32) for im in images)
    arrays = np.stack([np.asarray(im) for im in images])
    assert (arrays[:, :2, :2] == 0).all(), "the plain rendering is a garment on a black ground"
    assert len({a.tobytes() for a in arrays}) == len(arrays), "the images of a class are distinct"


def test_the_classifier_names_the_class_of_each_folder() -> None:
    """The built-in judge (about 0.86 accurate on the real test split) names most images as their folder says."""
    judge = clf.load_classifier(CLASSIFIER_PATH)
    correct, total = 0, 0
    for k, name in enumerate(data.CLASSES):
        probs, _ = clf.classify(judge, data.load_concept_images(class_folder(name)))
        hits = int((probs.argmax(1) == k).sum())
        assert hits >= len(probs) / 2, f"{name}: only {hits} of {len(probs)} images classified as {name}"
        correct, total = correct + hits, total + len(probs)
    assert correct / total >= 0.85, f"accuracy {correct / total:.2f} on the shipped images"


def test_licence_and_attribution_sit_beside_the_images() -> None:
    licence = (SAMPLE_DIR / "LICENSE").read_text()
    assert "MIT License" in licence and "Zalando SE" in licence and "Permission is hereby granted" in licence
    readme = (SAMPLE_DIR / "README.md").read_text()
    assert "arXiv:1708.07747" in readme and "zalandoresearch/fashion-mnist" in readme


def test_the_tutorial_reads_the_shipped_images_not_the_dataset() -> None:
    source = TUTORIAL_SOURCE.read_text()
    assert '"data" / "fashion-mnist-sample"' in source
    code = "\n".join(line for line in source.splitlines() if not line.startswith("#"))
    for needs_the_dataset in ("load_fashion_mnist(", "export_concept_images(", "export_style_images("):
        assert needs_the_dataset not in code, f"the tutorial calls {needs_the_dataset}: it would need Fashion-MNIST installed"


@pytest.mark.parametrize("name", data.CLASSES)
def test_images_are_the_exporters_renders(name: str, tmp_path: Path, fashion_mnist_available: None) -> None:
    """Provenance: the files equal, pixel for pixel and by name, a fresh export of the class's 4 images at seed 0."""
    shipped = sorted(class_folder(name).glob("*.png"))
    fresh = data.export_concept_images(tmp_path, name, n=len(shipped), seed=0)
    assert [p.name for p in shipped] == [p.name for p in fresh]
    for a, b in zip(data.load_concept_images(shipped), data.load_concept_images(fresh)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
