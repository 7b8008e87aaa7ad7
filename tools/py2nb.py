"""Write a notebook from a percent-format script (``# %%`` code cells, ``# %% [markdown]`` text cells).

Cells whose marker line ends with ``tags=parameters`` get papermill's ``parameters`` tag.
With ``--keep-outputs OLD.ipynb``, every cell whose type and source are identical to a cell of OLD
keeps that cell's outputs, execution count and metadata, and the notebook keeps OLD's metadata
(papermill's record of the run): an edit of a few lines does not throw away a long run's outputs.
Usage: python tools/py2nb.py SRC.py OUT.ipynb [--keep-outputs OLD.ipynb]
"""

import argparse
import copy
from collections import defaultdict, deque

import nbformat


def convert(src: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    chunks: list[tuple[str, list[str]]] = []
    for line in src.splitlines():
        if line.startswith("# %%"):
            chunks.append((line, []))
        elif chunks:
            chunks[-1][1].append(line)
    for header, lines in chunks:
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if "[markdown]" in header:
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines)
            nb.cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            cell = nbformat.v4.new_code_cell("\n".join(lines))
            if "tags=parameters" in header:
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    return nb


def _injected(cell: nbformat.NotebookNode) -> bool:
    return "injected-parameters" in cell.get("metadata", {}).get("tags", [])


def keep_outputs(nb: nbformat.NotebookNode, old: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` (from :func:`convert`) with what ``old`` recorded for its unchanged cells.

    Cells are matched by type and source text, in order (the k-th copy of a source in ``nb`` takes
    the k-th in ``old``). A matched cell takes the old cell's outputs, execution count and metadata
    (the source still decides its ``parameters`` tag); papermill's injected-parameters cell is kept
    after the cell it followed, if that one matched.
    Unmatched cells stay fresh. The notebook takes ``old``'s metadata.
    """
    nb = copy.deepcopy(nb)
    old_cells = old.cells
    unused: dict[tuple[str, str], deque[int]] = defaultdict(deque)
    for i, cell in enumerate(old_cells):
        if not _injected(cell):
            unused[(cell.cell_type, cell.source)].append(i)
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        candidates = unused.get((cell.cell_type, cell.source))
        if not candidates:
            continue
        i = candidates.popleft()
        parameters = "parameters" in cell.metadata.get("tags", [])  # the source decides this tag
        cell.metadata = copy.deepcopy(old_cells[i].metadata)
        if parameters != ("parameters" in cell.metadata.get("tags", [])):
            others = [t for t in cell.metadata.get("tags", []) if t != "parameters"]
            cell.metadata["tags"] = ["parameters", *others] if parameters else others
        if cell.cell_type == "code":
            cell.outputs = copy.deepcopy(old_cells[i].outputs)
            cell.execution_count = old_cells[i].execution_count
        if i + 1 < len(old_cells) and _injected(old_cells[i + 1]):
            cells.append(copy.deepcopy(old_cells[i + 1]))
    nb.cells = cells
    nb.metadata = copy.deepcopy(old.metadata)
    return nb


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="the percent-format script")
    parser.add_argument("out", help="the notebook to write")
    parser.add_argument("--keep-outputs", metavar="OLD.ipynb", help="take outputs, execution counts and metadata of unchanged cells from this notebook")
    args = parser.parse_args(argv)
    with open(args.src) as f:
        nb = convert(f.read())
    if args.keep_outputs:
        nb = keep_outputs(nb, nbformat.read(args.keep_outputs, as_version=4))
    nbformat.write(nb, args.out)


if __name__ == "__main__":
    main()
