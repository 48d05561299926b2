"""Locate the repository root, and the root that outputs are written under.

Papermill runs notebooks from the repo root; JupyterLab runs them from
``notebooks/``. Every repo-relative *input* goes through :func:`repo_path`;
every *output* (result tables, ``metrics.json``, figures) goes through
:func:`output_path`, which is the repo too unless ``EVGRID_OUTPUT_ROOT`` names
another folder. The runner sets it for scratch runs (``--out``) and for the
staging folder of a pipeline run; the nbval plugin sets it to a temporary
folder, so that validating the notebooks never rewrites the committed results.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

#: Environment variable naming the folder outputs are written under.
OUTPUT_ROOT_ENV = "EVGRID_OUTPUT_ROOT"


@cache
def repo_root() -> Path:
    """The folder holding ``dvc.yaml`` and ``params.yaml``, searched upwards from here."""
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in (start, *start.parents):
            if (folder / "params.yaml").exists() and (folder / "lib" / "evgrid").exists():
                return folder
    raise FileNotFoundError("cannot find the evgrid repository root (no params.yaml above here)")


def repo_path(*parts: str | Path) -> Path:
    """``repo_root() / parts``, for any repo-relative input path."""
    return repo_root().joinpath(*parts)


def output_root() -> Path:
    """Where outputs go: ``$EVGRID_OUTPUT_ROOT`` if set (made absolute), else the repo root."""
    value = os.environ.get(OUTPUT_ROOT_ENV, "").strip()
    return Path(value).resolve() if value else repo_root()


def output_path(*parts: str | Path) -> Path:
    """``output_root() / parts``, for a repo-relative output path (``results/...``, ``figures``).

    An absolute ``parts[0]`` is kept as it is (``Path`` semantics).
    """
    return output_root().joinpath(*parts)
