"""Which ImageNet-1k classes are related: WordNet 3.0 hypernym distances between the 1000 classes.

Where does an erased class go (paper, claim 2)? On Stable Diffusion the destinations are the 1000-way
top-1 predictions of the ImageNet classifier (:mod:`erasure_lib.metrics.imagenet`), and "related"
means close in WordNet: tench -> other fishes, English springer -> other dogs.

The hypernym paths come from ``erasure_lib/resources/imagenet_hierarchy.json``, built once from
WordNet 3.0 by ``tools/build_imagenet_hierarchy.py`` and committed, so WordNet is not needed here.

The distance between two classes is the length of the shortest path between them through a common
hypernym (NLTK's ``shortest_path_distance`` on WordNet nouns): ``d(a, b) = min_c d(a, c) + d(c, b)``
over the synsets ``c`` that are hypernyms of both (or the classes themselves), each ``d(x, c)`` the
fewest hypernym links from ``x`` up to ``c``. Two sister classes are at 2, a class and itself at 0.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from erasure_lib.metrics.imagenet import IMAGENETTE_CLASSES, ImageNetEvaluator

# The default relatedness radius, in WordNet links: the largest at which English springer's group is
# still dogs (89 of the 117 other breeds, plus the hyena, which WordNet 3.0 files under canine; at 8
# wolves, foxes and the domestic cats join, the cats through "domestic animal"); tench's group is then
# 6 of the 15 other fishes (goldfish, eel, coho, sturgeon, gar, puffer; the spiny-finned fishes are 8
# links away, the rays 10, the sharks 10 to 11). Shallow artifact classes get broad groups at any
# radius (cassette player: 262 classes, most related only through "instrumentality"): for them pass a
# hand-picked group from :func:`classes_under`.
DEFAULT_MAX_DISTANCE = 7
DESTINATION_GROUPS = ("erased", "related", "unrelated")
_RESOURCE = "imagenet_hierarchy.json"
_FORMAT = 1


@dataclass(frozen=True)
class ImageNetHierarchy:
    """The WordNet hypernym paths of ImageNet-1k's classes, as read from the committed JSON.

    Attributes
    ----------
    wnids
        The class wnids in index order (``n`` + the WordNet 3.0 noun offset).
    names
        Each class's readable name (its first WordNet lemma; ``crane`` and ``maillot`` occur twice).
    paths
        Per class, every hypernym path from the root ``entity`` down to the class itself, as wnids.
    synset_names
        wnid -> first lemma, for every synset on those paths.
    """

    wnids: tuple[str, ...]
    names: tuple[str, ...]
    paths: tuple[tuple[tuple[str, ...], ...], ...]
    synset_names: Mapping[str, str]

    def __post_init__(self) -> None:
        n = len(self.wnids)
        if not (len(self.names) == len(self.paths) == n):
            raise ValueError(f"wnids, names and paths must be as long: {n}, {len(self.names)}, {len(self.paths)}")
        for k, (wnid, class_paths) in enumerate(zip(self.wnids, self.paths)):
            if not class_paths or any(not p or p[-1] != wnid for p in class_paths):
                raise ValueError(f"class {k} ({wnid}): every hypernym path must end at the class itself")

    def __len__(self) -> int:
        return len(self.wnids)

    def _check(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 0 <= index < len(self):
            raise ValueError(f"class index must be an integer in 0..{len(self) - 1}, got {index!r}")
        return int(index)

    @cached_property
    def _up(self) -> tuple[dict[str, int], ...]:
        # Per class: each hypernym (and the class itself) -> fewest links up to it, over all paths.
        out = []
        for class_paths in self.paths:
            up: dict[str, int] = {}
            for path in class_paths:
                for steps, synset in enumerate(reversed(path)):
                    up[synset] = min(steps, up.get(synset, steps))
            out.append(up)
        return tuple(out)

    def distance(self, a: int, b: int) -> int:
        """WordNet path length between classes ``a`` and ``b`` through their nearest common hypernym."""
        up_a, up_b = self._up[self._check(a)], self._up[self._check(b)]
        return min(up_a[c] + up_b[c] for c in up_a.keys() & up_b.keys())

    def lowest_common_hypernyms(self, a: int, b: int) -> list[str]:
        """The common hypernyms (wnids) through which ``a`` and ``b`` are nearest, sorted."""
        up_a, up_b = self._up[self._check(a)], self._up[self._check(b)]
        common = up_a.keys() & up_b.keys()
        best = min(up_a[c] + up_b[c] for c in common)
        return sorted(c for c in common if up_a[c] + up_b[c] == best)

    @cached_property
    def distances(self) -> np.ndarray:
        """All pairwise distances, an (N, N) int array (symmetric, zero on the diagonal)."""
        n = len(self)
        below: dict[str, list[tuple[int, int]]] = {}  # synset -> (class, links up to the synset)
        for k, up in enumerate(self._up):
            for synset, steps in up.items():
                below.setdefault(synset, []).append((k, steps))
        out = np.full((n, n), np.iinfo(np.int32).max, dtype=np.int32)
        for members in below.values():
            idx = np.array([k for k, _ in members])
            steps = np.array([s for _, s in members], dtype=np.int32)
            block = np.ix_(idx, idx)
            out[block] = np.minimum(out[block], steps[:, None] + steps[None, :])
        out.flags.writeable = False
        return out

    def classes_under(self, synset: str) -> list[int]:
        """The classes that have ``synset`` (a wnid) on a hypernym path, in index order (a class is under itself)."""
        if synset not in self.synset_names:
            raise ValueError(
                f"{synset!r} is on no hypernym path of these classes; e.g. fish is 'n02512053', dog 'n02084071'"
            )
        return [k for k, up in enumerate(self._up) if synset in up]

    def related(self, index: int, max_distance: int = DEFAULT_MAX_DISTANCE) -> list[int]:
        """The other classes within ``max_distance`` of class ``index``, in index order."""
        k = self._check(index)
        if isinstance(max_distance, bool) or not isinstance(max_distance, int | np.integer) or max_distance < 0:
            raise ValueError(f"max_distance must be a non-negative integer, got {max_distance!r}")
        return [int(j) for j in np.flatnonzero(self.distances[k] <= max_distance) if j != k]


def load_imagenet_hierarchy(path: Path | str | None = None) -> ImageNetHierarchy:
    """Read the hierarchy JSON (by default the committed one, from the installed package).

    Parameters
    ----------
    path
        A file written by ``tools/build_imagenet_hierarchy.py``; ``None`` for the package's own
        ``erasure_lib/resources/imagenet_hierarchy.json`` (the 1000 ImageNet-1k classes).

    Returns
    -------
    ImageNetHierarchy
    """
    if path is None:
        text = resources.files("erasure_lib").joinpath("resources").joinpath(_RESOURCE).read_text(encoding="utf-8")
        where = f"erasure_lib/resources/{_RESOURCE}"
    else:
        text, where = Path(path).read_text(encoding="utf-8"), str(path)
    doc: dict[str, Any] = json.loads(text)
    if doc.get("format") != _FORMAT:
        raise ValueError(
            f"{where}: format {doc.get('format')!r}, expected {_FORMAT}; rebuild it with tools/build_imagenet_hierarchy.py"
        )
    classes = doc["classes"]
    if [c["index"] for c in classes] != list(range(len(classes))):
        raise ValueError(f"{where}: classes are not in index order 0..{len(classes) - 1}")
    return ImageNetHierarchy(
        wnids=tuple(c["wnid"] for c in classes),
        names=tuple(c["name"] for c in classes),
        paths=tuple(tuple(tuple(p) for p in c["paths"]) for c in classes),
        synset_names=dict(doc["synsets"]),
    )


def _or_default(hierarchy: ImageNetHierarchy | None) -> ImageNetHierarchy:
    return load_imagenet_hierarchy() if hierarchy is None else hierarchy


def wordnet_distance(a: int, b: int, hierarchy: ImageNetHierarchy | None = None) -> int:
    """WordNet path length between two ImageNet-1k classes through their lowest common hypernym.

    Parameters
    ----------
    a, b
        ImageNet-1k class indices (0..999).
    hierarchy
        A loaded hierarchy; ``None`` loads the committed one (pass one in loops: loading reads the file).

    Returns
    -------
    int
        0 for a class and itself, 2 for sister classes (e.g. tench and goldfish, both cyprinids).
    """
    hierarchy = _or_default(hierarchy)
    return hierarchy.distance(a, b)


def related_imagenet_classes(
    index: int, max_distance: int = DEFAULT_MAX_DISTANCE, hierarchy: ImageNetHierarchy | None = None
) -> list[int]:
    """The ImageNet-1k classes within ``max_distance`` of class ``index`` (itself excluded), in index order.

    Parameters
    ----------
    index
        An ImageNet-1k class index.
    max_distance
        The relatedness radius in WordNet links (:data:`DEFAULT_MAX_DISTANCE`: fishes for tench,
        dogs for English springer).
    hierarchy
        A loaded hierarchy; ``None`` loads the committed one.
    """
    hierarchy = _or_default(hierarchy)
    return hierarchy.related(index, max_distance)


def classes_under(synset: str, hierarchy: ImageNetHierarchy | None = None) -> list[int]:
    """The ImageNet-1k classes below a WordNet synset, in index order: a hand-picked related group.

    Parameters
    ----------
    synset
        A wnid on some class's hypernym path, e.g. ``"n02512053"`` (fish: 16 classes) or
        ``"n02084071"`` (dog: 118 classes); see ``hierarchy.synset_names``.
    hierarchy
        A loaded hierarchy; ``None`` loads the committed one.
    """
    hierarchy = _or_default(hierarchy)
    return hierarchy.classes_under(synset)


def nearest_classes(
    index: int,
    n: int,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    exclude: Collection[int] = (),
    hierarchy: ImageNetHierarchy | None = None,
) -> list[int]:
    """The ``n`` ImageNet-1k classes nearest class ``index`` in WordNet, within ``max_distance``
    links, nearest first (ties by index), leaving out ``exclude`` and classes whose name another
    class also has (``crane``, ``maillot``: a prompt could not tell them apart). Fewer when fewer
    lie within the radius."""
    hierarchy = _or_default(hierarchy)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    ambiguous = {name for name, count in Counter(hierarchy.names).items() if count > 1}
    candidates = [j for j in hierarchy.related(index, max_distance) if j not in exclude and hierarchy.names[j] not in ambiguous]
    return sorted(candidates, key=lambda j: (int(hierarchy.distances[index, j]), j))[:n]


def judge_with_neighbours(
    judge: ImageNetEvaluator,
    classes: Sequence[str],
    n_related: int,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    hierarchy: ImageNetHierarchy | None = None,
) -> tuple[ImageNetEvaluator, dict[str, tuple[str, ...]]]:
    """Related classes to judge on Stable Diffusion (notebook 12's "keep the neighbours"): each of
    ``classes`` (evaluated classes of ``judge``) with its ``n_related`` nearest ImageNet-1k classes in
    WordNet (:func:`nearest_classes`: tench -> goldfish, eel, ...; English springer -> other
    spaniels), none of them a class the judge already evaluates, so that no group holds another's
    erased class.

    Returns
    -------
    judge, groups
        The judge extended by the new classes (named by their first WordNet lemma, appended after
        its own in a stable order), and ``{class: (class, *its neighbours)}``, the related groups in
        the form :func:`erasure_lib.evaluation.summarize_related` takes.
    """
    hierarchy = _or_default(hierarchy)
    unknown = [c for c in classes if c not in judge.classes]
    if unknown:
        raise ValueError(f"classes {unknown} are not evaluated by the judge (its classes: {list(judge.classes)})")
    evaluated = dict(judge.classes)
    own = set(judge.classes.values())
    groups: dict[str, tuple[str, ...]] = {}
    for concept in classes:
        near = nearest_classes(judge.classes[concept], n_related, max_distance, exclude=own, hierarchy=hierarchy)
        names = []
        for j in near:
            name = hierarchy.names[j]
            if evaluated.get(name, j) != j:
                raise ValueError(f"ImageNet class {j} is named {name!r}, as the judge's class {evaluated[name]}")
            evaluated[name] = j
            names.append(name)
        groups[concept] = (concept, *names)
    return judge.with_classes(evaluated), groups


def group_destinations(
    predicted_indices: Iterable[int],
    erased_index: int,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    hierarchy: ImageNetHierarchy | None = None,
    related: Collection[int] | None = None,
) -> dict[str, int]:
    """Bucket 1000-way top-1 predictions of images of an erased class by where they landed.

    Parameters
    ----------
    predicted_indices
        ImageNet-1k top-1 index per image (e.g. :attr:`ImageNetPredictions.top1`).
    erased_index
        The erased class's ImageNet-1k index.
    max_distance
        Classes within this many WordNet links of the erased class count as related.
    hierarchy
        A loaded hierarchy; ``None`` loads the committed one.
    related
        The related classes, given explicitly (e.g. ``classes_under("n02512053")``); then
        ``max_distance`` is not used. The erased class itself is never counted as related.

    Returns
    -------
    dict
        Counts under :data:`DESTINATION_GROUPS`, always all three, in that order: ``"erased"`` (still
        the erased class), ``"related"`` (another class within ``max_distance``), ``"unrelated"``.
    """
    hierarchy = _or_default(hierarchy)
    erased = hierarchy._check(erased_index)
    predicted = np.asarray(list(predicted_indices), dtype=np.int64)
    if predicted.size and (predicted.min() < 0 or predicted.max() >= len(hierarchy)):
        raise ValueError(
            f"predicted indices must be in 0..{len(hierarchy) - 1}, got {predicted.min()}..{predicted.max()}"
        )
    if related is None:
        group = np.asarray(hierarchy.related(erased, max_distance), dtype=np.int64)
    else:
        group = np.asarray([hierarchy._check(j) for j in related], dtype=np.int64)
    is_erased = predicted == erased
    is_related = ~is_erased & np.isin(predicted, group)
    return {
        "erased": int(is_erased.sum()),
        "related": int(is_related.sum()),
        "unrelated": int((~is_erased & ~is_related).sum()),
    }


@dataclass(frozen=True)
class RelatedGroup:
    """One class's related group.

    Attributes
    ----------
    name, index
        The class and its ImageNet-1k index.
    among_classes
        The other given classes (e.g. the other Imagenette ones) within the radius, by name.
    among_imagenet
        Every other ImageNet-1k class within the radius, in index order.
    """

    name: str
    index: int
    among_classes: tuple[str, ...]
    among_imagenet: tuple[int, ...]


def imagenette_related_groups(
    max_distance: int = DEFAULT_MAX_DISTANCE,
    hierarchy: ImageNetHierarchy | None = None,
    classes: Mapping[str, int] = IMAGENETTE_CLASSES,
) -> dict[str, RelatedGroup]:
    """For each Imagenette class, its related classes among the ten and among all 1000.

    The ten Imagenette classes were picked to be unlike each other: at the default radius 7 the
    groups among themselves are empty except for three kinds of WordNet "equipment", cassette player,
    golf ball and parachute (4 and 5 links apart); the next nearest pairs are 8 apart. The related
    groups live in the other 990 classes.

    Parameters
    ----------
    max_distance
        The relatedness radius in WordNet links.
    hierarchy
        A loaded hierarchy; ``None`` loads the committed one.
    classes
        Class name -> ImageNet-1k index (default: the ten Imagenette classes).

    Returns
    -------
    dict
        Class name -> :class:`RelatedGroup`, in the order of ``classes``.
    """
    hierarchy = _or_default(hierarchy)
    out = {}
    for name, index in classes.items():
        related = hierarchy.related(index, max_distance)
        among = tuple(other for other, j in classes.items() if j != index and j in related)
        out[name] = RelatedGroup(name=name, index=int(index), among_classes=among, among_imagenet=tuple(related))
    return out


def group_table(
    groups: Mapping[str, RelatedGroup], hierarchy: ImageNetHierarchy | None = None
) -> list[dict[str, object]]:
    """Tidy rows (one a class) of :func:`imagenette_related_groups`: sizes and member names."""
    hierarchy = _or_default(hierarchy)
    return [
        {
            "class": g.name,
            "index": g.index,
            "related_among_classes": ", ".join(g.among_classes),
            "related_count": len(g.among_imagenet),
            "related_names": ", ".join(hierarchy.names[j] for j in g.among_imagenet),
        }
        for g in groups.values()
    ]


def related_share_table(
    destinations: pd.DataFrame,
    classes: Mapping[str, int] = IMAGENETTE_CLASSES,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    hierarchy: ImageNetHierarchy | None = None,
) -> pd.DataFrame:
    """Claim 2 on Stable Diffusion: per erased class, of its images that left it (by the ImageNet
    judge's 1000-way top-1), the share that landed in a related class, one within ``max_distance``
    WordNet links (tench -> other fishes), before and after erasure; against chance (the related
    classes out of the other 999) and the base model's own leavers.

    ``destinations`` has the columns ``erased_class, when, seed, imagenet_index, share`` (``when`` is
    ``before`` or ``after``; one judged model per seed), as :func:`erasure_lib.evaluation.imagenet_destinations`
    writes them; the shares of a (class, when) are averaged over its seeds. The columns are those of
    :func:`erasure_lib.metrics.transitions.related_share_table` (the built-in model's), with
    ``related`` the size of the group and ``top_destination_*`` a class name.
    """
    hierarchy = _or_default(hierarchy)
    rows = []
    for concept, part in destinations.groupby("erased_class", sort=False):
        if concept not in classes:
            raise ValueError(f"erased class {concept!r} has no ImageNet index in {list(classes)}")
        index = int(classes[concept])
        related = set(hierarchy.related(index, max_distance))
        runs = part.groupby("when")["seed"].nunique()
        share = part.groupby(["when", "imagenet_index"])["share"].sum().div(runs, level="when")  # mean over seeds
        row: dict[str, object] = {"erased_class": concept, "related": f"{len(related)} classes within {max_distance} WordNet links"}
        for when in ("before", "after"):
            shares = share[when] if when in share.index.get_level_values(0) else pd.Series(dtype=float)
            left = 1.0 - float(shares.get(index, 0.0))
            leavers = shares.drop(index, errors="ignore")
            row[f"self_share_{when}"] = float(shares.get(index, 0.0))
            to_related = float(leavers[leavers.index.isin(list(related))].sum())
            row[f"related_share_of_leavers_{when}"] = to_related / left if left > 1e-12 else float("nan")
            row[f"top_destination_{when}"] = hierarchy.names[int(leavers.idxmax())] if len(leavers) and leavers.max() > 0 else ""
        row["chance"] = len(related) / (len(hierarchy) - 1)
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = [
    "DEFAULT_MAX_DISTANCE",
    "DESTINATION_GROUPS",
    "ImageNetHierarchy",
    "RelatedGroup",
    "classes_under",
    "group_destinations",
    "group_table",
    "imagenette_related_groups",
    "judge_with_neighbours",
    "load_imagenet_hierarchy",
    "nearest_classes",
    "related_imagenet_classes",
    "related_share_table",
    "wordnet_distance",
]
