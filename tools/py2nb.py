"""Write a notebook from a percent-format script (``# %%`` code cells, ``# %% [markdown]`` text cells).

Cells whose marker line ends with ``tags=parameters`` get papermill's ``parameters`` tag.
Usage: python tools/py2nb.py SRC.py OUT.ipynb
"""

import sys

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


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        nbformat.write(convert(f.read()), sys.argv[2])
