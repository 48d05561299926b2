"""Cells and writing shared by the notebook builders (``build_nb04.py``, ``build_nb05.py``).

A builder lists its notebook's cells with :func:`md` and :func:`code`, takes its parameters cell
from its params.yaml section with :func:`parameters`, and writes the unexecuted notebook with
:func:`write_notebook`; DVC then executes it.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def md(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {"tags": []}, "source": text.strip("\n").splitlines(keepends=True)}


def code(text: str, tags: list[str] | None = None) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {"tags": tags or []}, "outputs": [],
            "source": text.strip("\n").splitlines(keepends=True)}


def parameters(section: str) -> str:
    """The parameters cell: one assignment per key of ``section`` in params.yaml."""
    values = yaml.safe_load((ROOT / "params.yaml").read_text())[section]
    return "\n".join(f"{k} = {v!r}" for k, v in values.items())


def write_notebook(cells: list[dict], name: str) -> Path:
    """Write ``notebooks/<name>`` from ``cells`` (stable cell ids) and return its path."""
    nb = {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3 (evgrid)", "language": "python",
                                                      "name": "python3"},
                                       "language_info": {"name": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"cell-{i:02d}"
    path = ROOT / "notebooks" / name
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return path
