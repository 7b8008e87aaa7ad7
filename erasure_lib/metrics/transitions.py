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
    ``before`` or ``after``), as written by the object-erasure notebook.
    """
    rows = []
    for concept, part in transitions.groupby("erased_class"):
        related = related_classes(concept, groups)
        mean = part.groupby(["when", "predicted_class"])["share"].mean()
        row: dict[str, object] = {"erased_class": concept, "related": ", ".join(related)}
        for when in ("before", "after"):
            shares = mean[when]
            left = 1.0 - shares.get(concept, 0.0)
            to_related = sum(shares.get(r, 0.0) for r in related)
            row[f"self_share_{when}"] = shares.get(concept, 0.0)
            row[f"related_share_of_leavers_{when}"] = to_related / left if left > 0 else float("nan")
            leavers = shares.drop(concept, errors="ignore")
            row[f"top_destination_{when}"] = leavers.idxmax() if left > 0 and leavers.max() > 0 else ""
        row["chance"] = len(related) / (len(classes) - 1)
        rows.append(row)
    return pd.DataFrame(rows)
