"""WordNet distances between ImageNet-1k classes, from the committed hierarchy file, and the builder run
on a hand-made ``data.noun`` excerpt (so WordNet itself is not needed)."""

from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from erasure_lib.hierarchy import (
    DEFAULT_MAX_DISTANCE,
    DESTINATION_GROUPS,
    ImageNetHierarchy,
    classes_under,
    group_destinations,
    group_table,
    imagenette_related_groups,
    judge_with_neighbours,
    load_imagenet_hierarchy,
    nearest_classes,
    related_imagenet_classes,
    related_share_table,
    wordnet_distance,
)
from erasure_lib.metrics.imagenet import IMAGENETTE_CLASSES, ImageNetEvaluator
from erasure_lib.paths import REPO_ROOT

COMMITTED = REPO_ROOT / "erasure_lib" / "resources" / "imagenet_hierarchy.json"
WORDNET_DATA_NOUN = Path("/usr/share/wordnet/data.noun")
ENTITY, FISH, DOG, CANINE, CAT = "n00001740", "n02512053", "n02084071", "n02083346", "n02121620"
TENCH, GOLDFISH, CLUMBER, SPRINGER, WELSH_SPRINGER, HYENA, GOLF_BALL = 0, 1, 216, 217, 218, 276, 574
CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
IMAGENETTE_WNIDS = {
    "tench": "n01440764", "English springer": "n02102040", "cassette player": "n02979186",
    "chain saw": "n03000684", "church": "n03028079", "French horn": "n03394916",
    "garbage truck": "n03417042", "gas pump": "n03425413", "golf ball": "n03445777", "parachute": "n03888257",
}  # fmt: skip


@pytest.fixture(scope="module")
def hierarchy() -> ImageNetHierarchy:
    return load_imagenet_hierarchy()


@pytest.fixture(scope="module")
def builder() -> ModuleType:
    path = REPO_ROOT / "tools" / "build_imagenet_hierarchy.py"
    spec = importlib.util.spec_from_file_location("build_imagenet_hierarchy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the committed file ---------------------------------------------------------------------------


def test_committed_file_is_small_and_in_index_order(hierarchy: ImageNetHierarchy) -> None:
    assert COMMITTED.stat().st_size < 512 * 1024
    doc = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert [c["index"] for c in doc["classes"]] == list(range(1000))
    assert len(hierarchy) == 1000 and len(set(hierarchy.wnids)) == 1000
    assert list(hierarchy.wnids) == sorted(hierarchy.wnids)  # ImageNet-1k's index order is the sorted wnids
    for name, index in IMAGENETTE_CLASSES.items():
        assert hierarchy.names[index] == name
        assert hierarchy.wnids[index] == IMAGENETTE_WNIDS[name]
    for wnid, paths in zip(hierarchy.wnids, hierarchy.paths):
        assert all(p[0] == ENTITY and p[-1] == wnid for p in paths)
        assert all(s in hierarchy.synset_names for p in paths for s in p)
    assert doc["source"]["wnids"]["sha256"] and doc["source"]["wordnet"]["sha256"]
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in doc["wordnet_license"]


def test_distances_symmetric_zero_on_diagonal(hierarchy: ImageNetHierarchy) -> None:
    d = hierarchy.distances
    assert d.shape == (1000, 1000) and (d == d.T).all() and (np.diag(d) == 0).all()
    assert (d[~np.eye(1000, dtype=bool)] > 0).all()
    rng = np.random.default_rng(0)
    for a, b in rng.integers(0, 1000, size=(50, 2)):
        assert wordnet_distance(int(a), int(b), hierarchy) == wordnet_distance(int(b), int(a), hierarchy) == d[a, b]


def test_tench_and_goldfish_related_golf_ball_not(hierarchy: ImageNetHierarchy) -> None:
    assert wordnet_distance(TENCH, GOLDFISH, hierarchy) == 2  # both cyprinids
    assert hierarchy.synset_names[hierarchy.lowest_common_hypernyms(TENCH, GOLDFISH)[0]] == "cyprinid"
    assert wordnet_distance(TENCH, TENCH, hierarchy) == 0
    tench = related_imagenet_classes(TENCH, hierarchy=hierarchy)
    assert GOLDFISH in tench and GOLF_BALL not in tench and TENCH not in tench
    assert set(tench) <= set(classes_under(FISH, hierarchy))  # only fishes at the default radius
    assert wordnet_distance(TENCH, GOLF_BALL, hierarchy) > DEFAULT_MAX_DISTANCE


def test_english_springer_group_is_dogs_not_cats(hierarchy: ImageNetHierarchy) -> None:
    dogs = classes_under(DOG, hierarchy)
    assert dogs == list(range(151, 269))  # ImageNet's 118 dog breeds
    assert classes_under(FISH, hierarchy) == [*range(0, 7), *range(389, 398)]
    springer = related_imagenet_classes(SPRINGER, hierarchy=hierarchy)
    assert {CLUMBER, WELSH_SPRINGER} <= set(springer)
    assert not set(springer) & set(CATS) and not set(springer) & set(classes_under(CAT, hierarchy))
    assert set(springer) - set(dogs) == {HYENA}  # WordNet 3.0 files the hyena under canine
    assert set(springer) <= set(classes_under(CANINE, hierarchy))
    # One link more and the domestic cats join (through "domestic animal"): why the default is 7.
    assert set(CATS) <= set(hierarchy.related(SPRINGER, DEFAULT_MAX_DISTANCE + 1))


def test_related_grows_with_distance(hierarchy: ImageNetHierarchy) -> None:
    sizes = [len(hierarchy.related(SPRINGER, d)) for d in range(0, 12)]
    assert sizes == sorted(sizes) and sizes[0] == 0
    assert hierarchy.related(TENCH, 2) == [GOLDFISH]
    with pytest.raises(ValueError, match="max_distance"):
        hierarchy.related(TENCH, -1)
    with pytest.raises(ValueError, match="0..999"):
        wordnet_distance(0, 1000, hierarchy)
    with pytest.raises(ValueError, match="no hypernym path"):
        classes_under("n99999999", hierarchy)


def test_imagenette_groups_at_the_default(hierarchy: ImageNetHierarchy) -> None:
    groups = imagenette_related_groups(hierarchy=hierarchy)
    assert list(groups) == list(IMAGENETTE_CLASSES)
    sizes = {name: len(g.among_imagenet) for name, g in groups.items()}
    assert sizes == {
        "tench": 6, "English springer": 90, "cassette player": 262, "chain saw": 106, "church": 69,
        "French horn": 95, "garbage truck": 84, "gas pump": 87, "golf ball": 134, "parachute": 262,
    }  # fmt: skip
    among = {name: g.among_classes for name, g in groups.items() if g.among_classes}
    # Only the three kinds of WordNet "equipment" are within the default radius of each other.
    assert among == {
        "cassette player": ("golf ball", "parachute"),
        "golf ball": ("cassette player", "parachute"),
        "parachute": ("cassette player", "golf ball"),
    }
    rows = group_table(groups, hierarchy)
    assert [r["related_count"] for r in rows] == list(sizes.values())
    assert rows[0]["related_names"] == "goldfish, eel, coho, sturgeon, gar, puffer"


def test_group_destinations(hierarchy: ImageNetHierarchy) -> None:
    top1 = np.array([TENCH, TENCH, GOLDFISH, 394, GOLF_BALL, SPRINGER, 2])  # 394: sturgeon; 2: great white shark
    counts = group_destinations(top1, TENCH, hierarchy=hierarchy)
    assert tuple(counts) == DESTINATION_GROUPS
    assert counts == {"erased": 2, "related": 2, "unrelated": 3}
    fishes = classes_under(FISH, hierarchy)
    assert group_destinations(top1, TENCH, hierarchy=hierarchy, related=fishes) == {
        "erased": 2,
        "related": 3,
        "unrelated": 2,
    }
    assert group_destinations([], TENCH, hierarchy=hierarchy) == {"erased": 0, "related": 0, "unrelated": 0}
    with pytest.raises(ValueError, match="predicted indices"):
        group_destinations([1000], TENCH, hierarchy=hierarchy)


@pytest.mark.skipif(not WORDNET_DATA_NOUN.is_file(), reason="WordNet 3.0 (Debian wordnet-base) not installed")
def test_rebuild_matches_committed(tmp_path: Path, builder: ModuleType, hierarchy: ImageNetHierarchy) -> None:
    wnids = tmp_path / "imagenet_synsets.txt"
    wnids.write_text("\n".join(hierarchy.wnids) + "\n")
    out = builder.main(
        ["--wnids", str(wnids), "--wordnet-dir", str(WORDNET_DATA_NOUN.parent), "--output", str(tmp_path / "h.json")]
    )
    new, old = json.loads(out.read_text()), json.loads(COMMITTED.read_text())
    assert new["source"]["wnids"]["sha256"] == old["source"]["wnids"]["sha256"]
    assert new["source"]["wordnet"] == old["source"]["wordnet"]
    assert {k: v for k, v in new.items() if k != "source"} == {k: v for k, v in old.items() if k != "source"}


# --- the builder on a hand-made excerpt -------------------------------------------------------------

# Real data.noun syntax: offset lex_filenum ss_type w_cnt (hex) [word lex_id]... p_cnt [symbol offset pos
# source/target]... | gloss. Besides hypernyms (@) and an instance hypernym (@i) it has pointers that
# must be ignored: hyponyms (~), a member holonym (#m) to a synset not in the excerpt, a verb pointer (+).
DATA_NOUN = """\
  1 This software and database is being provided to you, the LICENSEE, by  
  2 WordNet 3.0 Copyright 2006 by Princeton University.  All rights reserved.  
00001740 03 n 01 entity 0 002 ~ 00015388 n 0000 ~ 00021939 n 0000 | that which is perceived  
00015388 03 n 02 animal 0 animate_being 0 004 @ 00001740 n 0000 ~ 02512053 n 0000 ~ 02084071 n 0000 + 01234567 v 0101 | a living organism  
00021939 06 n 01 artifact 0 001 @ 00001740 n 0000 | a man-made object  
01317541 05 n 02 domestic_animal 0 domesticated_animal 0 001 @ 00015388 n 0000 | tame animal  
02512053 05 n 01 fish 0 002 @ 00015388 n 0000 ~ 01440764 n 0000 | cold-blooded vertebrate  
01440764 05 n 02 tench 0 Tinca_tinca 0 002 @ 02512053 n 0000 #m 01440655 n 0000 | freshwater dace-like game fish  
01443537 05 n 01 goldfish 0 001 @ 02512053 n 0000 | small golden or orange-red freshwater fishes  
02084071 05 n 01 dog 0 002 @ 00015388 n 0000 @ 01317541 n 0000 | a member of the genus Canis  
02102040 05 n 02 English_springer 0 English_springer_spaniel 0 001 @ 02084071 n 0000 | a breed  
03445777 06 n 01 golf_ball 0 001 @ 00021939 n 0000 | a small hard ball  
11111111 18 n 01 Laika 0 001 @i 02084071 n 0000 | the first dog in orbit (made up here)  
99999999 06 n 01 unused 0 001 @ 00021939 n 0000 | not on any class's path  
"""
WNIDS = ["n01440764", "n01443537", "n02102040", "n03445777", "n11111111"]
ANIMAL, DOMESTIC, ARTIFACT = "n00015388", "n01317541", "n00021939"


def _build(builder: ModuleType, tmp_path: Path, wnids: list[str] = WNIDS, name: str = "out.json") -> Path:
    wordnet = tmp_path / "wordnet"
    wordnet.mkdir(exist_ok=True)
    (wordnet / "data.noun").write_text(DATA_NOUN)
    (tmp_path / "wnids.txt").write_text("\n".join(wnids) + "\n")
    argv = ["--wnids", str(tmp_path / "wnids.txt"), "--wordnet-dir", str(wordnet), "--output", str(tmp_path / name)]
    return builder.main(argv)


def test_builder_writes_expected_paths(tmp_path: Path, builder: ModuleType) -> None:
    out = _build(builder, tmp_path)
    doc = json.loads(out.read_text())
    assert [c["wnid"] for c in doc["classes"]] == WNIDS and [c["index"] for c in doc["classes"]] == list(range(5))
    assert [c["name"] for c in doc["classes"]] == ["tench", "goldfish", "English springer", "golf ball", "Laika"]
    paths = {c["wnid"]: c["paths"] for c in doc["classes"]}
    assert paths["n01440764"] == [[ENTITY, ANIMAL, FISH, "n01440764"]]
    assert paths["n02102040"] == [  # two hypernyms of dog: two paths, sorted
        [ENTITY, ANIMAL, DOMESTIC, DOG, "n02102040"],
        [ENTITY, ANIMAL, DOG, "n02102040"],
    ]
    assert paths["n03445777"] == [[ENTITY, ARTIFACT, "n03445777"]]
    assert paths["n11111111"] == [[ENTITY, ANIMAL, DOMESTIC, DOG, "n11111111"], [ENTITY, ANIMAL, DOG, "n11111111"]]
    assert doc["synsets"] == {
        ENTITY: "entity", ANIMAL: "animal", ARTIFACT: "artifact", DOMESTIC: "domestic animal", FISH: "fish",
        "n01440764": "tench", "n01443537": "goldfish", DOG: "dog", "n02102040": "English springer",
        "n03445777": "golf ball", "n11111111": "Laika",
    }  # fmt: skip
    assert list(doc["synsets"]) == sorted(doc["synsets"]) and list(doc) == sorted(doc)
    assert doc["wordnet_license"] == (
        "This software and database is being provided to you, the LICENSEE, by\n"
        "WordNet 3.0 Copyright 2006 by Princeton University.  All rights reserved."
    )
    assert doc["source"]["wordnet"]["debian_package"] is None  # a file in tmp_path belongs to no package
    # One class a line.
    assert sum(line.startswith('  {"index": ') for line in out.read_text().splitlines()) == 5


def test_builder_output_loads_and_measures(tmp_path: Path, builder: ModuleType) -> None:
    small = load_imagenet_hierarchy(_build(builder, tmp_path))
    assert small.distance(0, 1) == 2  # tench, goldfish: sisters under fish
    assert small.distance(0, 2) == 4  # tench, English springer: through animal
    assert small.distance(0, 3) == 5  # tench, golf ball: through entity
    assert small.distance(2, 4) == 2  # English springer, Laika: through dog
    assert small.related(0, 2) == [1] and small.related(2, 2) == [4]
    assert small.classes_under(DOG) == [2, 4]
    assert group_destinations([0, 1, 3, 4], 0, max_distance=2, hierarchy=small) == {
        "erased": 1,
        "related": 1,
        "unrelated": 2,
    }


def test_builder_is_deterministic_and_reads_a_wheel(tmp_path: Path, builder: ModuleType) -> None:
    first = _build(builder, tmp_path, name="a.json").read_bytes()
    assert _build(builder, tmp_path, name="b.json").read_bytes() == first
    wheel = tmp_path / "timm-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("timm/data/_info/imagenet_synsets.txt", "\n".join(WNIDS) + "\n")
    wnids, label = builder.read_wnids(wheel)
    assert wnids == WNIDS and label.endswith(":timm/data/_info/imagenet_synsets.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json", wheel.name, "wnids.txt", "wordnet"]


def test_builder_clear_errors(tmp_path: Path, builder: ModuleType) -> None:
    with pytest.raises(ValueError, match="not noun synsets"):
        _build(builder, tmp_path, wnids=["n01440764", "n00000001"])
    with pytest.raises(ValueError, match="not wnids"):
        _build(builder, tmp_path, wnids=["tench"])
    with pytest.raises(ValueError, match="line 1"):
        builder.parse_data_noun("01440764 05 n 02 tench 0\n")
    with pytest.raises(SystemExit):
        builder.main(["--wnids", str(tmp_path / "w.txt"), "--wordnet-dir", str(tmp_path / "none")])


def test_related_share_table_over_imagenet_destinations(hierarchy: ImageNetHierarchy) -> None:
    """Claim 2 on SD: of the images leaving tench, the share landing within 7 WordNet links (other fishes)."""
    tench = IMAGENETTE_CLASSES["tench"]
    fish, unrelated = hierarchy.related(tench)[0], IMAGENETTE_CLASSES["church"]
    rows = [("before", -1, tench, 0.75), ("before", -1, unrelated, 0.25),
            ("after", 0, fish, 0.5), ("after", 0, unrelated, 0.5), ("after", 1, fish, 0.25), ("after", 1, tench, 0.75)]  # fmt: skip
    destinations = pd.DataFrame([{"erased_class": "tench", "when": w, "seed": s, "imagenet_index": i, "share": v}
                                 for w, s, i, v in rows])  # fmt: skip
    row = related_share_table(destinations, hierarchy=hierarchy).iloc[0]
    assert row.self_share_before == 0.75 and row.related_share_of_leavers_before == 0.0
    assert row.top_destination_before == hierarchy.names[unrelated]
    # after: mean over the two seeds: tench 0.375, fish 0.375, church 0.25 -> of the 0.625 leaving, 0.6 to a fish
    assert row.self_share_after == pytest.approx(0.375)
    assert row.related_share_of_leavers_after == pytest.approx(0.375 / 0.625)
    assert row.top_destination_after == hierarchy.names[fish]
    assert row.chance == pytest.approx(len(hierarchy.related(tench)) / 999)
    assert row.related == f"{len(hierarchy.related(tench))} classes within {DEFAULT_MAX_DISTANCE} WordNet links"
    with pytest.raises(ValueError, match="no ImageNet index"):
        related_share_table(destinations.assign(erased_class="sneaker"), hierarchy=hierarchy)


# --- related classes to judge on Stable Diffusion (notebook 12) -------------------------------------


def _judge_of(top1: list[int], classes: dict[str, int] = IMAGENETTE_CLASSES) -> ImageNetEvaluator:
    """An ImageNet judge whose logits put image k's top-1 on class ``top1[k]``."""

    def logits(x):
        out = np.zeros((len(x), 1000), dtype=np.float32)
        out[np.arange(len(x)), top1[: len(x)]] = 1.0
        return torch.from_numpy(out)

    return ImageNetEvaluator(logits, image_size=4, classes=classes)


def test_nearest_classes_nearest_first_within_the_radius(hierarchy: ImageNetHierarchy) -> None:
    near = nearest_classes(TENCH, 3, hierarchy=hierarchy)
    assert near[0] == GOLDFISH  # the other cyprinid, 2 links away
    distances = [wordnet_distance(TENCH, j, hierarchy) for j in near]
    assert distances == sorted(distances) and max(distances) <= DEFAULT_MAX_DISTANCE
    assert all(j in classes_under(FISH, hierarchy) for j in near)
    assert GOLDFISH not in nearest_classes(TENCH, 3, exclude={GOLDFISH}, hierarchy=hierarchy)
    assert nearest_classes(TENCH, 3, max_distance=0, hierarchy=hierarchy) == []  # nothing within 0 links
    assert len(nearest_classes(TENCH, 100, hierarchy=hierarchy)) == len(related_imagenet_classes(TENCH, hierarchy=hierarchy))
    crane = [k for k, name in enumerate(hierarchy.names) if name == "crane"]
    assert len(crane) == 2 and not set(crane) & set(nearest_classes(crane[0], 1000, max_distance=30, hierarchy=hierarchy))
    with pytest.raises(ValueError, match="non-negative integer"):
        nearest_classes(TENCH, -1, hierarchy=hierarchy)


def test_judge_with_neighbours_evaluates_each_group(hierarchy: ImageNetHierarchy) -> None:
    judge = _judge_of([GOLDFISH, SPRINGER, WELSH_SPRINGER, 999])
    extended, groups = judge_with_neighbours(judge, ["tench", "English springer"], 2, hierarchy=hierarchy)
    assert judge.classes == IMAGENETTE_CLASSES  # the judge given is unchanged
    assert groups["tench"][0] == "tench" and groups["tench"][1] == "goldfish" and len(groups["tench"]) == 3
    assert groups["English springer"][1:] == tuple(hierarchy.names[j] for j in nearest_classes(SPRINGER, 2, exclude=set(IMAGENETTE_CLASSES.values()), hierarchy=hierarchy))
    assert list(extended.classes)[:10] == list(IMAGENETTE_CLASSES)  # its own classes first, in order
    assert len(extended.classes) == 10 + 4 and set(extended.classes.values()) >= {GOLDFISH}
    members = {m for g in groups.values() for m in g[1:]}
    assert not members & set(IMAGENETTE_CLASSES)  # no group holds another's erased class
    # The extended judge names the neighbours: goldfish is now an evaluated class, not "none of them".
    images = [Image.new("RGB", (4, 4))] * 4
    predicted = extended.predict(images)
    names = list(extended.classes)
    assert [names[p] if ok else None for p, ok in zip(predicted.predicted, predicted.in_classes)] == [
        "goldfish", "English springer", hierarchy.names[WELSH_SPRINGER], None,
    ]  # fmt: skip
    assert not judge.predict(images).in_classes[0]  # the original judge still calls goldfish none of its classes
    with pytest.raises(ValueError, match="not evaluated by the judge"):
        judge_with_neighbours(judge, ["goldfish"], 2, hierarchy=hierarchy)


def test_with_classes_checks_the_map() -> None:
    judge = _judge_of([0])
    assert judge.with_classes({"tench": 0}).classes == {"tench": 0}
    for bad in ({}, {"a": 0, "b": 0}, {"a": 1000}):
        with pytest.raises(ValueError, match="distinct ImageNet-1k indices"):
            judge.with_classes(bad)
