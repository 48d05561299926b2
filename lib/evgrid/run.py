"""Run one notebook of the compendium with a validated ``params.yaml`` section.

Usage (from the repo root; this is what every ``dvc.yaml`` stage calls)::

    python -m evgrid.run notebooks/00_test_systems.ipynb --section test_systems
    python -m evgrid.run NOTEBOOK --section NAME --out results/NAME --set key=value

The runner

1. validates the section (a bad value fails here, before any model is built);
2. creates the output folders (papermill does not);
3. injects the section's values through papermill and executes the notebook
   with the repo root as working directory, into ``<out>/<notebook>``;
4. on success, when the run used exactly ``params.yaml``'s values, copies the
   executed notebook over ``notebooks/<notebook>``, the committed copy that
   nbval validates. A failed run leaves the committed notebook untouched and
   keeps the failed one in ``<out>`` for inspection.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
import yaml

from evgrid.config import ConfigError, load_section, validate_section
from evgrid.paths import repo_path, repo_root

KERNEL_NAME = "evgrid"


def run_notebook(
    notebook: str | Path,
    section: str,
    *,
    out: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    params_file: str | Path = "params.yaml",
    kernel_name: str = KERNEL_NAME,
    progress: bool = True,
) -> Path:
    """Validate ``section``, execute ``notebook`` with it and return the executed path."""
    notebook = Path(notebook)
    notebook = notebook if notebook.is_absolute() else repo_path(notebook)
    if not notebook.exists():
        raise FileNotFoundError(f"notebook {notebook} does not exist")
    params = load_section(section, params_file)
    values = params.model_dump(mode="json")
    if out is not None:
        values["results_dir"] = str(out)
    values.update(overrides or {})
    params = validate_section(section, values)
    values = params.model_dump(mode="json")
    canonical = not overrides and out is None

    out_dir = repo_path(values["results_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    if "figures_dir" in values:
        repo_path(values["figures_dir"]).mkdir(parents=True, exist_ok=True)
    executed = out_dir / notebook.name
    pm.execute_notebook(
        str(notebook),
        str(executed),
        parameters=values,
        kernel_name=kernel_name,
        cwd=str(repo_root()),
        progress_bar=progress,
    )
    _strip_volatile_metadata(executed)
    if canonical:
        shutil.copyfile(executed, notebook)
    return executed


def _strip_volatile_metadata(path: Path) -> None:
    """Drop papermill's per-cell timestamps so re-runs give small diffs."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.get("papermill", {}).pop("start_time", None)
    nb.metadata.get("papermill", {}).pop("end_time", None)
    nb.metadata.get("papermill", {}).pop("duration", None)
    nb.metadata.get("papermill", {}).pop("input_path", None)
    nb.metadata.get("papermill", {}).pop("output_path", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)


def _parse_set(items: list[str]) -> dict[str, Any]:
    overrides = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        overrides[key] = yaml.safe_load(raw)
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evgrid.run", description=__doc__.split("\n")[0])
    parser.add_argument("notebook", help="notebook to execute, e.g. notebooks/00_test_systems.ipynb")
    parser.add_argument("--section", required=True, help="params.yaml section to inject")
    parser.add_argument("--out", default=None, help="results folder (default: the section's)")
    parser.add_argument("--params", default="params.yaml", help="parameter file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--kernel", default=KERNEL_NAME, help="Jupyter kernel name")
    args = parser.parse_args(argv)
    try:
        executed = run_notebook(
            args.notebook,
            args.section,
            out=args.out,
            overrides=_parse_set(args.set),
            params_file=args.params,
            kernel_name=args.kernel,
        )
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"executed {args.notebook} -> {executed.relative_to(repo_root())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
