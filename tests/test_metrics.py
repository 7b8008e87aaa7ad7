"""Metrics (images in, numbers out) and the generate-then-classify summary, on hand-made cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from erasure_lib.data import CLASSES, OBJECT_TEMPLATES, STYLES
from erasure_lib.evaluation import ClassPromptSet, per_class_accuracy, summarize
from erasure_lib.metrics.classifier import GarmentStyleClassifier, classify


def _classified(rows: dict[str, list[int]]) -> pd.DataFrame:
    """One row per image: class name, its index, and the predicted index."""
    records = []
    for name, preds in rows.items():
        for p in preds:
            records.append({"class": name, "class_index": CLASSES.index(name), "predicted": p})
    return pd.DataFrame(records)


def test_per_class_accuracy_and_summarize() -> None:
    sneaker, bag, coat = (CLASSES.index(c) for c in ("sneaker", "bag", "coat"))
    df = _classified(
        {
            "sneaker": [sneaker, bag, bag, bag],  # 1/4 still a sneaker
            "bag": [bag, bag],  # 2/2
            "coat": [coat, sneaker, coat, sneaker],  # 2/4
        }
    )
    acc = per_class_accuracy(df)
    assert acc.to_dict() == {"bag": 1.0, "coat": 0.5, "sneaker": 0.25}
    summary = summarize(df, ["sneaker"])
    assert summary == {"erased_share": 0.25, "others_accuracy": 0.75}  # mean over classes, not images
    assert summarize(df, ["sneaker", "coat"]) == {"erased_share": 0.375, "others_accuracy": 1.0}
    everything = summarize(df, ["sneaker", "bag", "coat"])
    assert everything["erased_share"] == pytest.approx((0.25 + 1 + 0.5) / 3) and np.isnan(everything["others_accuracy"])
    with pytest.raises(ValueError, match="dress"):
        summarize(df, ["dress"])


def test_class_prompt_set_table() -> None:
    table = ClassPromptSet(n_per_class=3).table()
    assert len(table) == 30
    assert list(table.columns) == ["case_number", "prompt", "evaluation_seed", "class", "class_index"]
    assert table["case_number"].tolist() == list(range(30))
    assert table["case_number"].is_unique
    for c, name in enumerate(CLASSES):
        rows = table[table["class"] == name]
        assert rows["evaluation_seed"].tolist() == [10000, 10001, 10002]  # the same seeds for every class
        assert (rows["class_index"] == c).all()
        assert rows["prompt"].tolist() == [t.format(name) for t in OBJECT_TEMPLATES[:3]]


def test_class_prompt_set_cycles_templates_and_styles() -> None:
    table = ClassPromptSet(classes=("bag", "dress"), n_per_class=30, seed_offset=5, style="sketch").table()
    assert len(table) == 60
    bag = table[table["class"] == "bag"]["prompt"].tolist()
    assert bag[27] == bag[0] == "a photo of a bag in the style of sketch"  # 27 templates, then around again
    assert table[table["class"] == "dress"]["class_index"].unique().tolist() == [CLASSES.index("dress")]
    assert table["evaluation_seed"].min() == 5 and table["evaluation_seed"].max() == 34


def test_classify_probabilities() -> None:
    torch.manual_seed(0)
    model = GarmentStyleClassifier(width=8).eval()
    rng = np.random.default_rng(0)
    arrays = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    images = [Image.fromarray(a) for a in arrays]
    class_probs, style_probs = classify(model, images)
    assert class_probs.shape == (3, len(CLASSES)) and style_probs.shape == (3, len(STYLES))
    np.testing.assert_allclose(class_probs.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(style_probs.sum(1), 1.0, rtol=1e-5)
    # PIL input and a [0, 1] tensor of the same pixels agree; batching does not change results
    tensor = torch.from_numpy(arrays.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    c2, s2 = classify(model, tensor, batch_size=1)
    np.testing.assert_allclose(c2, class_probs, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(s2, style_probs, rtol=1e-4, atol=1e-6)
    # other sizes are resized to 32 px
    c3, _ = classify(model, [Image.fromarray(a).resize((64, 64), Image.NEAREST) for a in arrays])
    assert c3.shape == (3, len(CLASSES))
