"""Fashion-MNIST loading, style rendering, prompt templates and concept image folders."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from erasure_lib import data
from erasure_lib.data import (
    CLASSES,
    OBJECT_TEMPLATES,
    STYLE_TEMPLATES,
    STYLES,
    caption_for,
    export_concept_images,
    load_concept_images,
    load_fashion_mnist,
    object_prompt,
    render,
    templates_for,
)

# --------------------------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fmnist_test(fashion_mnist_available: None) -> data.FashionMNIST:
    return load_fashion_mnist("test")


def test_load_fashion_mnist_train_shapes(fashion_mnist_available: None) -> None:
    train = load_fashion_mnist("train")
    assert train.images.shape == (60000, 28, 28)
    assert train.labels.shape == (60000,)
    assert train.images.dtype == np.uint8
    assert train.split == "train"
    # Fashion-MNIST is balanced: 6000 images per class.
    assert np.bincount(train.labels, minlength=10).tolist() == [6000] * 10


def test_load_fashion_mnist_test_shapes(fmnist_test: data.FashionMNIST) -> None:
    assert fmnist_test.images.shape == (10000, 28, 28)
    assert fmnist_test.labels.shape == (10000,)
    assert sorted(np.unique(fmnist_test.labels).tolist()) == list(range(10))
    assert fmnist_test.images.max() == 255 and fmnist_test.images.min() == 0


def test_subset(fmnist_test: data.FashionMNIST) -> None:
    sub = fmnist_test.subset(5)
    assert sub.images.shape == (5, 28, 28)
    np.testing.assert_array_equal(sub.labels, fmnist_test.labels[:5])
    assert len(fmnist_test.subset(10**6).labels) == 10000
    with pytest.raises(ValueError):
        fmnist_test.subset(0)


def test_missing_root_gives_install_hint(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="apt-get install") as err:
        load_fashion_mnist("train", root=tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value)


def test_bad_split_is_rejected() -> None:
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("validation")  # type: ignore[arg-type]


def test_load_from_custom_root(tmp_path: Path, fashion_mnist_available: None) -> None:
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(data.FASHION_MNIST_DIR / name, tmp_path / name)
    assert load_fashion_mnist("test", root=tmp_path).images.shape == (10000, 28, 28)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_render_shape_and_range(fmnist_test: data.FashionMNIST, style: str) -> None:
    out = render(fmnist_test.images[0], style)
    assert out.shape == (32, 32, 3)
    assert out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_styles_differ(fmnist_test: data.FashionMNIST) -> None:
    renders = {s: render(fmnist_test.images[0], s) for s in STYLES}
    for i, a in enumerate(STYLES):
        for b in STYLES[i + 1 :]:
            assert np.abs(renders[a] - renders[b]).mean() > 0.05, (a, b)
    # plain is gray on black; sepia is on a cream ground; sketch on white paper
    plain = renders["plain"]
    assert np.allclose(plain[..., 0], plain[..., 1]) and np.allclose(plain[..., 1], plain[..., 2])
    assert np.allclose(plain[0, 0], 0.0)
    assert np.allclose(renders["sepia"][0, 0], [0.96, 0.90, 0.76])
    assert renders["sketch"][0, 0].min() > 0.9


def test_render_plain_places_the_garment_in_the_centre(fmnist_test: data.FashionMNIST) -> None:
    image = fmnist_test.images[0]
    out = render(image, "plain")
    np.testing.assert_allclose(out[2:30, 2:30, 0], image / 255.0, atol=1e-6)
    assert out[:2].max() == 0 and out[30:].max() == 0


def test_render_small_size_is_handled_or_clearly_refused() -> None:
    try:
        out = render(np.zeros((28, 28), np.uint8), "plain", size=16)
    except ValueError as err:
        assert "size" in str(err)
    else:
        assert out.shape == (16, 16, 3)


def test_render_rejects_unknown_style() -> None:
    with pytest.raises(ValueError, match="unknown style"):
        render(np.zeros((28, 28), np.uint8), "watercolor")


# --------------------------------------------------------------------------------------------
# Templates and captions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("templates", "n"), [(OBJECT_TEMPLATES, 27), (STYLE_TEMPLATES, 17)])
def test_template_lists(templates: tuple[str, ...], n: int) -> None:
    assert len(templates) == n
    assert len(set(templates)) == n
    assert all(t.count("{}") == 1 for t in templates)
    assert all(t.format("X").count("X") == 1 for t in templates)


def test_templates_for() -> None:
    assert templates_for("object") is OBJECT_TEMPLATES
    assert templates_for("style") is STYLE_TEMPLATES
    with pytest.raises(ValueError):
        templates_for("scene")  # type: ignore[arg-type]


def test_caption_for_is_deterministic_for_a_seed() -> None:
    def captions(seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        return [caption_for(label, style, rng) for label in range(10) for style in STYLES]

    assert captions(3) == captions(3)
    assert captions(3) != captions(4)


def test_caption_for_uses_the_templates() -> None:
    rng = np.random.default_rng(0)
    object_patterns = [re.compile("^" + re.escape(t).replace(r"\{\}", "(.+)") + "$") for t in OBJECT_TEMPLATES]
    for _ in range(50):
        caption = caption_for(CLASSES.index("ankle boot"), "plain", rng)
        assert any(p.match(caption) and p.match(caption).group(1) == "ankle boot" for p in object_patterns)
    styled = {caption_for(0, "sepia", rng, style_only_p=1.0) for _ in range(30)}
    assert styled <= {t.format("sepia") for t in STYLE_TEMPLATES}
    mixed = {caption_for(0, "sepia", rng, style_only_p=0.0) for _ in range(30)}
    assert mixed <= {t.format("t-shirt in the style of sepia") for t in OBJECT_TEMPLATES}


def test_object_prompt() -> None:
    assert object_prompt("sneaker") == "a photo of a sneaker"
    assert object_prompt("sneaker", "sketch") == "a photo of a sneaker in the style of sketch"
    assert object_prompt("bag", template="a rendering of a {}") == "a rendering of a bag"


# --------------------------------------------------------------------------------------------
# Export of the few-shot set
# --------------------------------------------------------------------------------------------


def test_export_concept_images(tmp_path: Path, fashion_mnist_available: None) -> None:
    paths = export_concept_images(tmp_path / "a", "ankle boot", n=3, seed=1, split="test", style="sepia")
    assert len(paths) == 3 and all(p.is_file() and p.suffix == ".png" for p in paths)
    assert all(" " not in p.name for p in paths)
    test = load_fashion_mnist("test")
    for p in paths:
        index = int(re.search(r"test(\d{5})\.png$", p.name).group(1))
        assert CLASSES[test.labels[index]] == "ankle boot"
        with Image.open(p) as im:
            assert im.size == (32, 32) and im.mode == "RGB"
            np.testing.assert_allclose(np.asarray(im) / 255.0, render(test.images[index], "sepia"), atol=1 / 255 + 1e-6)
    again = export_concept_images(tmp_path / "b", "ankle boot", n=3, seed=1, split="test", style="sepia")
    assert [p.name for p in again] == [p.name for p in paths]
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]


def test_export_rejects_unknown_class(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown class"):
        export_concept_images(tmp_path, "snoopy", n=2, seed=0)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# Concept image folders
# --------------------------------------------------------------------------------------------


def _write(path: Path, image: Image.Image, **kwargs: object) -> Path:
    image.save(path, **kwargs)
    return path


def test_load_concept_folder(concept_dir: Path) -> None:
    images = load_concept_images(concept_dir)
    assert len(images) == 4
    assert all(im.mode == "RGB" and im.size == (32, 32) for im in images)
    # Sorted by file name, so the same folder always gives the same order.
    expected = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(concept_dir.glob("*.png"))]
    for im, ref in zip(images, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(im), ref)
    assert load_concept_images(str(concept_dir))[0].tobytes() == images[0].tobytes()


def test_load_concept_list_of_paths_and_pil(concept_dir: Path) -> None:
    paths = sorted(concept_dir.glob("*.png"))
    from_paths = load_concept_images(paths[:2])
    assert len(from_paths) == 2
    pil = [Image.open(p) for p in paths]
    from_pil = load_concept_images(pil)
    assert [im.tobytes() for im in from_pil] == [im.tobytes() for im in load_concept_images(concept_dir)]
    mixed = load_concept_images([str(paths[0]), pil[1]])
    assert [im.tobytes() for im in mixed] == [im.tobytes() for im in from_pil[:2]]


def test_modes_are_converted_to_rgb(tmp_path: Path) -> None:
    gray = Image.fromarray(np.full((20, 24), 100, np.uint8), "L")
    rgba = Image.new("RGBA", (10, 10), (200, 100, 50, 255))
    rgba.putpixel((0, 0), (255, 255, 255, 0))  # fully transparent: composited on black
    palette = Image.new("RGB", (12, 12), (10, 200, 30)).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    _write(tmp_path / "a_gray.png", gray)
    _write(tmp_path / "b_rgba.png", rgba)
    _write(tmp_path / "c_palette.png", palette)
    _write(tmp_path / "d_photo.jpg", Image.new("RGB", (16, 16), (0, 0, 255)), quality=95)
    _write(tmp_path / "e_photo.JPEG", Image.new("RGB", (16, 16), (0, 255, 0)), format="JPEG", quality=95)
    (tmp_path / "notes.txt").write_text("not an image, ignored")
    images = load_concept_images(tmp_path)
    assert len(images) == 5
    assert all(im.mode == "RGB" for im in images)
    g, a, p, j, j2 = (np.asarray(im).astype(int) for im in images)
    assert g.shape == (20, 24, 3) and (g == 100).all()
    assert tuple(a[0, 0]) == (0, 0, 0) and tuple(a[5, 5]) == (200, 100, 50)
    assert tuple(p[3, 3]) == (10, 200, 30)
    assert np.abs(j[8, 8] - [0, 0, 255]).max() <= 3
    assert np.abs(j2[8, 8] - [0, 255, 0]).max() <= 3
    # PIL images given directly get the same conversions.
    direct = load_concept_images([gray, rgba, palette])
    assert [im.mode for im in direct] == ["RGB"] * 3
    assert tuple(np.asarray(direct[1])[0, 0]) == (0, 0, 0)


def test_webp_folder_loads(tmp_path: Path) -> None:
    """A folder of .webp files (as Imagenette ships in some mirrors) loads like any other."""
    assert ".webp" in data.IMAGE_SUFFIXES
    colours = [(255, 0, 0), (0, 128, 255), (10, 20, 30)]
    for k, colour in enumerate(colours):
        _write(tmp_path / f"img_{k}.webp", Image.new("RGB", (16, 12), colour), lossless=True)
    _write(tmp_path / "img_3.WEBP", Image.new("RGBA", (8, 8), (1, 2, 3, 0)), lossless=True)  # any case, transparency
    images = load_concept_images(tmp_path)
    assert [im.size for im in images] == [(16, 12)] * 3 + [(8, 8)]
    assert [tuple(np.asarray(im)[5, 5]) for im in images] == [*colours, (0, 0, 0)]
    (one,) = load_concept_images([tmp_path / "img_1.webp"])
    assert one.tobytes() == images[1].tobytes()


def test_16_bit_grayscale_png_keeps_its_content(tmp_path: Path) -> None:
    values8 = (np.arange(32 * 32).reshape(32, 32) % 256).astype(np.uint16)
    Image.fromarray(values8 * 257).save(tmp_path / "deep.png")  # mode I;16
    (loaded,) = load_concept_images(tmp_path)
    assert np.abs(np.asarray(loaded)[..., 0].astype(int) - values8).max() <= 1


def test_missing_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        load_concept_images(missing)


def test_missing_file_in_list_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ghost.png"):
        load_concept_images([tmp_path / "ghost.png"])


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=re.escape(str(tmp_path))):
        load_concept_images(tmp_path)


def test_file_instead_of_folder(tmp_path: Path) -> None:
    f = tmp_path / "x.txt"
    f.write_text("x")
    with pytest.raises(NotADirectoryError, match="x.txt"):
        load_concept_images(f)


def test_corrupt_png_is_named(tmp_path: Path) -> None:
    _write(tmp_path / "good.png", Image.new("RGB", (8, 8)))
    (tmp_path / "broken.png").write_bytes(b"this is not a png at all" * 10)
    with pytest.raises(ValueError, match="broken.png"):
        load_concept_images(tmp_path)


def test_truncated_png_is_named(tmp_path: Path) -> None:
    good = _write(
        tmp_path / "full.png", Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    )
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(ValueError, match="cut.png"):
        load_concept_images([tmp_path / "cut.png"])


def test_wrong_suffix_in_list(tmp_path: Path) -> None:
    path = _write(tmp_path / "image.bmp", Image.new("RGB", (8, 8)))
    with pytest.raises(ValueError, match="image.bmp"):
        load_concept_images([path])


def test_empty_list() -> None:
    with pytest.raises(ValueError, match="empty"):
        load_concept_images([])


def test_file_sha256(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    assert data.file_sha256(tmp_path / "f") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# --------------------------------------------------------------------------------------------
# The Fashion-MNIST location: $ERASURE_FASHION_MNIST, read at call time
# --------------------------------------------------------------------------------------------


def _write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file as the Fashion-MNIST release writes it: magic (0, 0, 0x08 = uint8, ndim), big-endian dims, bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    import gzip

    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _tiny_fashion_mnist(folder: Path, labels: list[int], fill: int) -> np.ndarray:
    """A hand-written train split of ``len(labels)`` 28x28 images (pixel values ``fill + i``) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    images = np.stack([np.full((28, 28), fill + i, dtype=np.uint8) for i in range(len(labels))])
    _write_idx(folder / "train-images-idx3-ubyte.gz", images)
    _write_idx(folder / "train-labels-idx1-ubyte.gz", np.asarray(labels, dtype=np.uint8))
    return images


def test_environment_variable_names_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images = _tiny_fashion_mnist(tmp_path / "fmnist", [7, 7, 0], fill=10)
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(tmp_path / "fmnist"))
    assert data.FASHION_MNIST_ENV == "ERASURE_FASHION_MNIST"
    assert data.fashion_mnist_dir() == tmp_path / "fmnist"
    loaded = load_fashion_mnist("train")
    np.testing.assert_array_equal(loaded.images, images)
    np.testing.assert_array_equal(loaded.labels, [7, 7, 0])
    # The exporters take the same default: two of the three images are sneakers (label 7).
    written = export_concept_images(tmp_path / "out", "sneaker", n=2, seed=0)
    assert [p.name for p in written] == ["sneaker_plain_train00000.png", "sneaker_plain_train00001.png"]


def test_environment_variable_is_read_at_call_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tiny_fashion_mnist(tmp_path / "a", [1, 2], fill=0)
    _tiny_fashion_mnist(tmp_path / "b", [3, 4, 5], fill=50)
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(tmp_path / "a"))
    assert load_fashion_mnist("train").labels.tolist() == [1, 2]
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(tmp_path / "b"))  # changed in a running session
    assert load_fashion_mnist("train").labels.tolist() == [3, 4, 5]
    monkeypatch.delenv(data.FASHION_MNIST_ENV)
    assert data.fashion_mnist_dir() == data.FASHION_MNIST_DIR == Path("/usr/share/datasets/fashion-mnist")
    monkeypatch.setenv(data.FASHION_MNIST_ENV, "  ")  # set but blank: the default
    assert data.fashion_mnist_dir() == data.FASHION_MNIST_DIR


def test_environment_variable_expands_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(data.FASHION_MNIST_ENV, "~/datasets/fashion-mnist")
    assert data.fashion_mnist_dir() == tmp_path / "datasets" / "fashion-mnist"


def test_explicit_root_wins_over_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tiny_fashion_mnist(tmp_path / "env", [1], fill=0)
    _tiny_fashion_mnist(tmp_path / "root", [9, 9], fill=0)
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(tmp_path / "env"))
    assert load_fashion_mnist("train", root=tmp_path / "root").labels.tolist() == [9, 9]
    assert load_fashion_mnist("train", root=str(tmp_path / "root")).labels.tolist() == [9, 9]


def test_environment_variable_without_the_files_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(empty))
    with pytest.raises(FileNotFoundError, match=r"\$ERASURE_FASHION_MNIST") as err:
        load_fashion_mnist("test")
    message = str(err.value)
    assert str(empty / "t10k-images-idx3-ubyte.gz") in message
    assert "four IDX .gz files" in message
    # Only the images present: the missing labels file is the one named.
    _tiny_fashion_mnist(tmp_path / "half", [1], fill=0)
    (tmp_path / "half" / "train-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(tmp_path / "half"))
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte.gz"):
        export_concept_images(tmp_path / "out", "sneaker", n=1, seed=0)


def test_missing_default_folder_mentions_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the variable, the error still tells a macOS or Windows user how to point at the files."""
    monkeypatch.delenv(data.FASHION_MNIST_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="ERASURE_FASHION_MNIST") as err:
        load_fashion_mnist("train", root=tmp_path / "nowhere")
    assert "$ERASURE_FASHION_MNIST)" not in str(err.value)  # the folder came from root=, not the variable
