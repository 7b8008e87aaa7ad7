"""Where an erased concept goes: the share of its images that land in a *related* class (claim 2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd


def related_classes(concept: str, groups: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The other members of ``concept``'s group (e.g. footwear: sandal, sneaker, ankle boot)."""
    for members in groups.values():
        if concept in members:
            return tuple(m for m in members if m != concept)
    raise ValueError(f"{concept!r} is in no group of {dict(groups)}")


def related_share_table(transitions: pd.DataFrame, groups: Mapping[str, Sequence[str]], classes: Sequence[str]) -> pd.DataFrame:
    """Per erased class: of the images that left the class, the share that went to a related class,
    after erasure; against chance (related / other classes) and the base model's own confusions.

    ``transitions`` has columns ``erased_class, when, seed, predicted_class, share`` (``when`` is
    ``before`` or ``after``), as written by the object-erasure notebook. Two stronger baselines where
    the table holds what they need:

    - rows with ``when == "random direction"`` (the erasure's update redrawn at random, same size):
      ``self_share_random`` and ``related_share_of_leavers_random``;
    - a ``confidence`` column (the judge's mean top-1 probability of the images at each destination):
      ``leaver_confidence_after``, the judge's confidence in the leavers after erasure, beside
      ``reference_confidence``, its confidence in the base model's own images of the same
      destinations, weighted alike; a transition to a real neighbour is drawn as convincingly as the
      neighbour itself, a blob is not (NaN where no image left, or the base model's images of a
      destination were not judged).
    """
    own_confidence = _own_confidence(transitions) if "confidence" in transitions else pd.Series(dtype=float)
    rows = []
    for concept, part in transitions.groupby("erased_class"):
        related = related_classes(concept, groups)
        mean = part.groupby(["when", "predicted_class"])["share"].mean()
        row: dict[str, object] = {"erased_class": concept, "related": ", ".join(related)}
        for when in ("before", "after"):
            shares = mean[when]
            left = 1.0 - shares.get(concept, 0.0)
            row[f"self_share_{when}"] = shares.get(concept, 0.0)
            row[f"related_share_of_leavers_{when}"] = _to_related(shares, concept, related)
            leavers = shares.drop(concept, errors="ignore")
            row[f"top_destination_{when}"] = leavers.idxmax() if left > 0 and leavers.max() > 0 else ""
        row["chance"] = len(related) / (len(classes) - 1)
        if "random direction" in mean.index.get_level_values("when"):
            shares = mean["random direction"]
            row["self_share_random"] = shares.get(concept, 0.0)
            row["related_share_of_leavers_random"] = _to_related(shares, concept, related)
        if "confidence" in part:
            row |= _leaver_confidence(part[part.when == "after"], concept, own_confidence)
        rows.append(row)
    return pd.DataFrame(rows)


def _to_related(shares: pd.Series, concept: str, related: Sequence[str]) -> float:
    """Of the share that left ``concept``, the part that went to ``related`` (NaN when none left)."""
    left = 1.0 - shares.get(concept, 0.0)
    return sum(shares.get(r, 0.0) for r in related) / left if left > 0 else float("nan")


def _own_confidence(transitions: pd.DataFrame) -> pd.Series:
    """The judge's mean confidence in the base model's images of each class judged as that class."""
    own = transitions[(transitions.when == "before") & (transitions.predicted_class == transitions.erased_class)]
    return own.groupby("erased_class")["confidence"].mean()


def _leaver_confidence(after: pd.DataFrame, concept: str, own_confidence: pd.Series) -> dict[str, float]:
    """Share-weighted mean confidence of the images that left ``concept``, and of the base model's own
    images of the same destinations."""
    left = after[(after.predicted_class != concept) & (after.share > 0)]
    weights = left.share
    if weights.sum() == 0:
        return {"leaver_confidence_after": float("nan"), "reference_confidence": float("nan")}
    reference = left.predicted_class.map(own_confidence)
    known = reference.notna()
    return {
        "leaver_confidence_after": float((weights * left.confidence).sum(min_count=len(left)) / weights.sum()),  # NaN if one is unknown
        "reference_confidence": float((weights[known] * reference[known]).sum() / weights[known].sum()) if known.all() else float("nan"),
    }
