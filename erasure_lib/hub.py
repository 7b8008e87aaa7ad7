"""The one place that talks to the model hub: pinned revisions, name resolution, and clear errors
when the hub cannot be reached or the weights are not in the local cache.

Nothing here downloads at import time. Loaders elsewhere (``models.load_pipeline``,
``metrics.imagenet.load_eva02``) resolve a name here and wrap their hub call in :func:`hub_access`,
so an offline machine gets one message saying what to download, with which command, and that a
local folder can be passed instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Library = Literal["diffusers", "transformers", "timm"]


@dataclass(frozen=True)
class HubModel:
    """A model on the hub, pinned to a revision (a commit hash where one is known)."""

    repo_id: str
    revision: str | None  # None: not pinned (see the comment in PINNED)
    library: Library
    role: str  # what the paper uses it for


# Pinned revisions. The Stable Diffusion and CLIP hashes are the public commits seen in many
# hub-cache snapshot paths (models--CompVis--stable-diffusion-v1-4/snapshots/133a221b...,
# models--openai--clip-vit-large-patch14/snapshots/32bd6428...); they could not be checked against
# the hub itself from this offline machine. No commit of the timm EVA02 repository could be
# verified offline, so it is NOT pinned: pin it after the first download (``hf cache scan``).
PINNED: dict[str, HubModel] = {
    "CompVis/stable-diffusion-v1-4": HubModel(
        "CompVis/stable-diffusion-v1-4", "133a221b8aa7292a167afc5127cb63fb5005638b", "diffusers", "base model"
    ),
    "openai/clip-vit-large-patch14": HubModel(
        "openai/clip-vit-large-patch14", "32bd64288804d66eefd0ccbe215aa642df71cc41", "transformers", "CLIP score"
    ),
    "timm/eva02_large_patch14_448.mim_m38m_ft_in22k_in1k": HubModel(
        "timm/eva02_large_patch14_448.mim_m38m_ft_in22k_in1k", None, "timm", "ImageNet classifier"
    ),
}

# Short names accepted wherever a hub name is.
ALIASES: dict[str, str] = {
    "sd14": "CompVis/stable-diffusion-v1-4",
    "clip-l14": "openai/clip-vit-large-patch14",
    "eva02-l": "timm/eva02_large_patch14_448.mim_m38m_ft_in22k_in1k",
    "eva02_large_patch14_448.mim_m38m_ft_in22k_in1k": "timm/eva02_large_patch14_448.mim_m38m_ft_in22k_in1k",
}


class HubUnavailableError(OSError):
    """The hub could not be reached, or the weights are not in the local cache."""


def pinned(name: str) -> HubModel | None:
    """The table entry of a name or alias (a trailing ``@revision`` is ignored); ``None`` if unknown."""
    repo_id = name.partition("@")[0]
    return PINNED.get(ALIASES.get(repo_id, repo_id))


def resolve(name: str, revision: str | None = None, pin: bool = True) -> tuple[str, str | None]:
    """A hub name to ``(repo_id, revision)``.

    Parameters
    ----------
    name
        ``"owner/name"``, ``"owner/name@revision"`` or an alias from :data:`ALIASES` (``"sd14"``...).
    revision
        An explicit revision; it wins over an ``@revision`` in ``name``.
    pin
        Without any revision given, use the pinned one of :data:`PINNED` (aliases are always pinned).
        With ``pin=False`` a full id without a revision stays unpinned (the hub's default branch).

    Returns
    -------
    tuple[str, str | None]
        The repository id and the revision (``None``: the hub's default branch).
    """
    base, _, at_revision = name.strip().partition("@")
    if not base:
        raise ValueError("the hub name is empty: expected 'owner/name', 'owner/name@revision' or an alias")
    is_alias = base in ALIASES
    repo_id = ALIASES.get(base, base)
    chosen = revision or at_revision or None
    entry = PINNED.get(repo_id)
    if chosen is None and entry is not None:
        if pin or is_alias:
            chosen = entry.revision
        elif entry.revision is not None:
            warnings.warn(
                f"{repo_id} is loaded without a revision (the hub's current default branch); the pinned "
                f"revision is {entry.revision}: pass '{repo_id}@{entry.revision}' to reproduce the paper profile",
                stacklevel=3,
            )
    return repo_id, chosen


def download_command(repo_id: str, revision: str | None) -> str:
    """The shell command that fills the local hub cache with a model."""
    command = f"hf download {repo_id}"
    return command + (f" --revision {revision}" if revision else "")


def unavailable_message(repo_id: str, revision: str | None, cause: BaseException | None = None) -> str:
    """What went wrong and what to do: the download command, the cache, the local-folder alternative."""
    from huggingface_hub import constants

    where = f"{repo_id}@{revision}" if revision else repo_id
    because = f" ({type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''})" if cause else ""
    return (
        f"cannot load {where} from the model hub: it is offline or unreachable, or the weights are not in the "
        f"local cache{because}.\n"
        f"Download it once on a machine with network access:\n"
        f"    {download_command(repo_id, revision)}\n"
        f"(older huggingface_hub: huggingface-cli download {repo_id}"
        f"{' --revision ' + revision if revision else ''}), into the hub cache {constants.HF_HUB_CACHE} "
        f"(set HF_HOME or HF_HUB_CACHE to move it; gated models also need `hf auth login`).\n"
        f"Or pass a local folder instead of the hub id: e.g. `{download_command(repo_id, revision)} --local-dir <folder>` "
        f"and then model='<folder>' (any diffusers / transformers folder saved with save_pretrained works)."
    )


def _hub_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "no network" or "not cached" across huggingface_hub/httpx versions."""
    errors: list[type[BaseException]] = [OSError, ConnectionError, TimeoutError]
    try:
        from huggingface_hub import errors as hf_errors

        errors += [hf_errors.HfHubHTTPError, hf_errors.LocalEntryNotFoundError]
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency of diffusers
        pass
    try:
        import httpx

        errors.append(httpx.HTTPError)
    except ImportError:  # pragma: no cover
        pass
    try:
        import requests

        errors.append(requests.exceptions.RequestException)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


@contextmanager
def hub_access(repo_id: str, revision: str | None) -> Iterator[None]:
    """Run a hub call; network and missing-cache errors become one :class:`HubUnavailableError`."""
    try:
        yield
    except HubUnavailableError:
        raise
    except _hub_errors() as err:
        raise HubUnavailableError(unavailable_message(repo_id, revision, err)) from err


def local_snapshot(name: str, revision: str | None = None, cache_dir: str | Path | None = None) -> Path:
    """The folder of a model already in the local hub cache; never downloads.

    Raises :class:`HubUnavailableError` (with the download command) when it is not cached.
    """
    from huggingface_hub import snapshot_download

    repo_id, revision = resolve(name, revision)
    with hub_access(repo_id, revision):
        folder = snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, local_files_only=True)
    return Path(folder)
