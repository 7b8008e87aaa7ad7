"""Run a paper notebook's percent-format source (``notebooks/src/NN-*.py``) as a plain script, with
parameter files laid over its ``parameters`` cell as papermill does: for machines without Jupyter
(a lent GPU, say). Later files and ``-p`` values win, as with ``papermill -f ... -p ...``::

    python tools/run_src.py notebooks/src/03-erase-objects.py \\
        -f notebooks/params/sd14/03-erase-objects.yaml -f notebooks/params/sd14-tiny/03-erase-objects.yaml -p device=cuda

The notebooks themselves (``make results``) stay the way results are regenerated; this runs the
same code without their outputs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

PARAMETERS_CELL = "# %% tags=parameters\n"


def with_parameters(source: str, overrides: dict[str, Any]) -> str:
    """``source`` with assignments of ``overrides`` right after its parameters cell (papermill's injection)."""
    if PARAMETERS_CELL not in source:
        raise ValueError("the source has no '# %% tags=parameters' cell")
    head, rest = source.split(PARAMETERS_CELL, 1)
    cell, sep, tail = rest.partition("\n# %%")
    injected = "".join(f"{name} = {value!r}\n" for name, value in overrides.items())
    return head + PARAMETERS_CELL + cell + "\n# injected parameters\n" + injected + sep + tail


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("-f", "--parameters-file", action="append", default=[], type=Path)
    parser.add_argument("-p", "--parameter", action="append", default=[], help="name=value (value read as YAML)")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    for path in args.parameters_file:
        overrides |= yaml.safe_load(path.read_text()) or {}
    for item in args.parameter:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"-p expects name=value, got {item!r}")
        overrides[name] = yaml.safe_load(value)
    code = compile(with_parameters(args.source.read_text(), overrides), str(args.source), "exec")
    sys.argv = [str(args.source)]
    exec(code, {"__name__": "__main__", "display": print})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
