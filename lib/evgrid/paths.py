"""Locate the repository root so that notebooks find files wherever they run.

Papermill runs notebooks from the repo root; JupyterLab runs them from
``notebooks/``. Every repo-relative path goes through :func:`repo_path`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def repo_root() -> Path:
    """The folder holding ``dvc.yaml`` and ``params.yaml``, searched upwards from here."""
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in (start, *start.parents):
            if (folder / "params.yaml").exists() and (folder / "lib" / "evgrid").exists():
                return folder
    raise FileNotFoundError("cannot find the evgrid repository root (no params.yaml above here)")


def repo_path(*parts: str | Path) -> Path:
    """``repo_root() / parts``, for any repo-relative path."""
    return repo_root().joinpath(*parts)
