"""Which ``lib/evgrid`` files a DVC stage runs: the import closure of its entry points."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat

from evgrid.core.config import section_model
from evgrid.core.paths import repo_path

LIB = repo_path("lib")


def module_file(module: str) -> Path | None:
    """The file of ``module`` (``evgrid.a.b``) under ``lib/``, or None if it is not ours."""
    if module != "evgrid" and not module.startswith("evgrid."):
        return None
    base = LIB.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(source: str, package: str = "") -> set[str]:
    """Every ``evgrid`` module that ``source`` imports, at any depth in the code."""
    source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import inside the package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}  # `from evgrid import x`
    return {m for m in found if module_file(m) is not None}


def closure(modules: set[str]) -> set[Path]:
    """Files of ``modules``, their parent packages and everything they import, transitively."""
    seen: set[Path] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        parts = module.split(".")
        for k in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
            path = module_file(".".join(parts[:k]))
            if path is None or path in seen:
                continue
            seen.add(path)
            package = ".".join(parts[:k]) if path.name == "__init__.py" else ".".join(parts[: k - 1])
            todo += imported_modules(path.read_text(), package)
    return seen


def stage_entry_modules(cmd: str) -> set[str]:
    """The evgrid modules a stage command runs.

    The ``-m`` module (for a package, also its ``__main__``, which ``python -m``
    runs), the model of the ``--section`` the runner validates (named in
    :func:`evgrid.core.config.section_model`, imported on use) and the notebook's imports.
    """
    modules = set()
    for module in re.findall(r"-m\s+(evgrid[\w.]*)", cmd):
        modules.add(module)
        path = module_file(module)
        if path is not None and path.name == "__init__.py":
            modules.add(f"{module}.__main__")
    for section in re.findall(r"--section\s+(\w+)", cmd):
        modules.add(section_model(section).__module__)
    for notebook in re.findall(r"(notebooks/\S+\.ipynb)", cmd):
        nb = nbformat.read(repo_path(notebook), as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                modules |= imported_modules(cell.source)
    return modules
