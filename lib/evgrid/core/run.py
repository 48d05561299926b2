"""Run one notebook of the compendium with a validated ``params.yaml`` section.

Usage (from the repo root; the first form is what every ``dvc.yaml`` stage calls)::

    python -m evgrid.core.run notebooks/00_test_systems.ipynb --section test_systems
    python -m evgrid.core.run NOTEBOOK --section NAME --out /tmp/try1 --set solver.time_limit_s=60

**Pipeline run** (no ``--out``, no ``--set``). The runner

1. checks that the notebook's ``parameters`` cell takes exactly the section's
   fields, and validates the section (a bad value fails here, before anything
   is built);
2. executes the notebook through papermill (working directory: the repo root)
   with ``EVGRID_OUTPUT_ROOT`` pointing at a fresh staging folder
   ``.evgrid-staging/<section>-<random>/``: every result, figure and the
   executed notebook (``<staging>/notebooks/<name>``) land there;
3. only if the whole notebook succeeded, moves every staged file into the same
   place under the repo root (``os.replace`` per file) and removes the staging
   folder. A failed or interrupted run moves nothing: the committed
   ``results/``, ``figures/`` and ``notebooks/`` stay exactly as they were.

**Scratch run** (``--out DIR`` and/or ``--set KEY=VALUE``). ``EVGRID_OUTPUT_ROOT``
is ``DIR`` (resolved against the current directory; it may lie outside the
repo), and everything, the executed notebook included (``DIR/notebooks/<name>``),
goes under it; nothing committed is written. ``--set`` without ``--out`` writes
under ``results/scratch/<section>``. ``--set`` takes YAML values and dotted
keys (``--set solver.time_limit_s=60``); a mapping is merged into the block it
names (``--set 'solver={solver: scip}'`` keeps the block's other fields).

**Failures.** A bad section, override, notebook or parameter file: one
``error: ...`` line, exit 2. An exception inside the notebook: which notebook,
which cell, ``ename: evalue`` and the log holding the full traceback
(``.evgrid-logs/<notebook>.log``, beside ``<notebook>.failed.ipynb``), exit 1.
SIGINT (Ctrl-C), SIGTERM or SIGHUP, or the death of the process that started
the runner (DVC ignores SIGINT and does not forward SIGTERM), stop the run: the
notebook's kernel is killed, nothing is moved, exit 128 + the signal number
(130 for SIGINT, 143 for SIGTERM).
"""

# ruff: noqa: E402 - the signal guard below must come before the slow imports

from __future__ import annotations

import os
import signal

if __name__ == "__main__":
    # Until main() takes over, a stop signal just ends the runner, without a
    # traceback: nothing has started yet (importing nbformat takes a second or two).
    for _sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(_sig, lambda signum, _frame: os._exit(128 + signum))

import argparse
import ast
import datetime as _dt
import re
import shutil
import sys
import tempfile
import threading
import traceback as _traceback
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import psutil
import yaml
from pydantic import BaseModel

from evgrid.core.config import (
    ConfigError,
    known_sections,
    load_section,
    section_model,
    validate_section,
)
from evgrid.core.paths import OUTPUT_ROOT_ENV, repo_root

KERNEL_NAME = "evgrid"
#: Folder (under the repo root) holding the staging folders of pipeline runs.
STAGING_DIR = ".evgrid-staging"
#: Folder (under the repo root) holding the logs and failed notebooks of failed runs.
LOG_DIR = ".evgrid-logs"
#: Signals that stop a run (exit code 128 + signal number).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_INTERRUPTED_MSG = "interrupted: committed outputs left as they were"
_KILL_GRACE_S = 3.0


class RunError(Exception):
    """The run cannot start: bad notebook, section, override or output folder (exit 2)."""


class NotebookFailed(RuntimeError):
    """The notebook raised (or its kernel died); the full story is in ``log_path``."""

    def __init__(
        self,
        notebook: str,
        ename: str,
        evalue: str,
        *,
        log_path: Path,
        failed_notebook: Path | None = None,
        cell_index: int | None = None,
        exec_count: int | None = None,
        cell_source: str = "",
    ) -> None:
        self.notebook = notebook
        self.ename = ename
        self.evalue = evalue
        self.log_path = log_path
        self.failed_notebook = failed_notebook
        self.cell_index = cell_index
        self.exec_count = exec_count
        self.cell_source = cell_source
        super().__init__(f"{notebook}: {ename}: {evalue}")

    def summary(self) -> str:
        """A few lines for the terminal: notebook, cell, exception, log."""
        where = ""
        if self.cell_index is not None:
            where = f" in cell In [{self.exec_count}] (cell #{self.cell_index} of the executed notebook)"
        lines = [f"error: {self.notebook} failed{where}:"]
        first = next((s for s in self.cell_source.splitlines() if s.strip()), "")
        if first:
            lines.append(f"  cell starts: {_shorten(first, 100)}")
        evalue = _shorten(self.evalue, 300)
        lines.append(f"  {self.ename}: {evalue}" if evalue else f"  {self.ename}")
        lines.append(f"  full traceback: {_show(self.log_path)}")
        if self.failed_notebook is not None:
            lines.append(f"  failed notebook: {_show(self.failed_notebook)}")
        return "\n".join(lines)


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (or by the death of its parent process)."""

    def __init__(self, signum: int, *, installed: bool = False) -> None:
        self.signum = signum
        #: True when the signal came while the finished run's outputs were being moved
        #: into place: the move was completed first.
        self.installed = installed
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


# --------------------------------------------------------------------------- public API


def run_notebook(
    notebook: str | Path,
    section: str,
    *,
    out: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    params_file: str | Path = "params.yaml",
    kernel_name: str = KERNEL_NAME,
    progress: bool = True,
    root: str | Path | None = None,
) -> Path:
    """Validate ``section``, execute ``notebook`` with it and return the executed notebook's path.

    ``out`` (resolved against the current directory) makes a scratch run whose
    outputs all go under it; ``overrides`` (``{"solver.time_limit_s": 60}``)
    also makes a scratch run, under ``<root>/results/scratch/<section>`` unless
    ``out`` is given. Otherwise it is a pipeline run: outputs are staged and moved
    under ``root`` (default: the repo root) only if the whole notebook succeeded.
    ``root`` also holds the staging and log folders; the notebook always runs
    with the repo root as working directory.

    Raises :class:`RunError` or :class:`~evgrid.core.config.ConfigError` before
    executing anything, :class:`NotebookFailed` when the notebook fails and
    :class:`Interrupted` (or ``KeyboardInterrupt``) when stopped; in all three
    cases nothing is moved into ``root`` and no kernel is left running.
    """
    root = Path(root).resolve() if root is not None else repo_root()
    nb_path = Path(notebook)
    nb_path = (nb_path if nb_path.is_absolute() else repo_root() / nb_path).resolve()
    if not nb_path.is_file():
        raise RunError(f"notebook {_show(nb_path)} does not exist")
    known = known_sections()
    if section not in known:
        raise RunError(f"unknown params.yaml section {section!r}: known {', '.join(known)}")
    check_notebook_section(nb_path, section)

    params = load_section(section, params_file)
    values = params.model_dump(mode="json")
    if overrides:
        values = apply_overrides(section, values, overrides)
        params = validate_section(section, values)
        values = params.model_dump(mode="json")

    canonical = out is None and not overrides
    if canonical:
        staging_parent = root / STAGING_DIR
        staging_parent.mkdir(parents=True, exist_ok=True)
        output_root = Path(tempfile.mkdtemp(prefix=f"{section}-", dir=staging_parent))
    else:
        output_root = Path(out).resolve() if out is not None else root / "results" / "scratch" / section
        if output_root == root or output_root == repo_root():
            raise RunError(
                f"--out {output_root} is the repository itself: a scratch run there would "
                "overwrite the committed outputs (omit --out and --set for a pipeline run)"
            )
        check_writable(output_root)

    try:
        executed = output_root / "notebooks" / nb_path.name
        for folder in (
            executed.parent,
            *(output_root / values[k] for k in ("results_dir", "figures_dir") if k in values),
        ):
            folder.mkdir(parents=True, exist_ok=True)
        _execute(nb_path, executed, values, output_root, kernel_name, progress, root)
        _strip_volatile_metadata(executed)
        if not canonical:
            return executed
        with _deferred_signals(redeliver=False) as pending:
            _install(output_root, root)
        if pending:
            raise Interrupted(pending[0], installed=True)
        return root / "notebooks" / nb_path.name
    finally:
        if canonical:
            _remove_staging(output_root)


def check_notebook_section(notebook: Path, section: str) -> None:
    """Raise :class:`RunError` unless ``notebook``'s parameters cell assigns exactly ``section``'s fields."""
    names = notebook_parameter_names(notebook)
    fields = set(section_model(section).model_fields)
    if names == fields:
        return
    matching = [s for s in known_sections() if set(section_model(s).model_fields) == names]
    if matching:
        raise RunError(f"{_show(notebook)} takes section {matching[0]!r}, not {section!r}")
    parts = []
    if fields - names:
        parts.append("lacks " + ", ".join(sorted(fields - names)))
    if names - fields:
        parts.append("has extra " + ", ".join(sorted(names - fields)))
    raise RunError(
        f"{_show(notebook)}'s parameters cell does not match section {section!r}: it "
        f"{' and '.join(parts)} (no section's fields match it)"
    )


def notebook_parameter_names(notebook: Path) -> set[str]:
    """Names assigned in the cells tagged ``parameters`` (assignments only)."""
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception as err:  # nbformat raises several kinds
        raise RunError(f"{_show(notebook)} is not a readable notebook: {err}") from None
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise RunError(f"{_show(notebook)} has no cell tagged 'parameters'")
    names: set[str] = set()
    for cell in cells:
        try:
            tree = ast.parse(cell.source)
        except SyntaxError as err:
            raise RunError(f"{_show(notebook)}: its parameters cell is not valid Python: {err}") from None
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, ast.AnnAssign) else []
            )
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def apply_overrides(section: str, values: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``values`` with ``overrides`` applied: dotted keys, mappings merged into their block.

    A key that is not a field of the section (or of the block it names) raises
    :class:`~evgrid.core.config.ConfigError` naming the key and the known fields.
    """
    model = section_model(section)
    merged = values
    for key, value in overrides.items():
        parts = key.split(".")
        if not all(parts):
            raise ConfigError(f"--set {key}: empty field name in {key!r}")
        nested: Any = value
        for part in reversed(parts):
            nested = {part: nested}
        merged = _merge(merged, nested, model, section, key, "")
    return merged


def check_writable(folder: Path) -> None:
    """Create ``folder`` and check a file can be written in it; raise :class:`RunError` if not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".evgrid-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or str(err)
        raise RunError(f"output folder {folder} is not writable: {reason}") from None


# --------------------------------------------------------------------------- execution


def _execute(
    nb_path: Path,
    executed: Path,
    values: dict[str, Any],
    output_root: Path,
    kernel_name: str,
    progress: bool,
    root: Path,
) -> None:
    """Run papermill in a worker thread; kill the kernel whatever happens.

    Papermill runs in a worker thread so that its event loop does not take over
    the process's SIGINT/SIGTERM handlers (nbclient installs its own in the main
    thread, and removing them restores the default handlers): the main thread
    waits here, where a signal raises :class:`Interrupted`.
    """
    import papermill as pm  # slow to import: only when a notebook runs

    outcome: dict[str, BaseException] = {}

    def target() -> None:
        try:
            pm.execute_notebook(
                str(nb_path),
                str(executed),
                parameters=values,
                kernel_name=kernel_name,
                cwd=str(repo_root()),
                progress_bar=progress,
            )
        except BaseException as err:  # noqa: BLE001 - handed to the main thread
            outcome["error"] = err

    before = _descendants()
    worker = threading.Thread(target=target, name="evgrid-papermill", daemon=True)
    with _output_root_env(output_root):
        try:
            worker.start()
            while worker.is_alive():
                worker.join(0.2)
        finally:
            _stop_kernel(before, worker)
    error = outcome.get("error")
    if error is None:
        return
    if isinstance(error, KeyboardInterrupt):
        raise error
    raise _failure(nb_path, executed, error, root) from None


@contextmanager
def _output_root_env(output_root: Path) -> Iterator[None]:
    """Set ``EVGRID_OUTPUT_ROOT`` for the kernel (it inherits this process's environment)."""
    old = os.environ.get(OUTPUT_ROOT_ENV)
    os.environ[OUTPUT_ROOT_ENV] = str(output_root)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(OUTPUT_ROOT_ENV, None)
        else:
            os.environ[OUTPUT_ROOT_ENV] = old


def _descendants() -> set[int]:
    try:
        return {p.pid for p in psutil.Process().children(recursive=True)}
    except psutil.Error:
        return set()


def _kill_tree(exclude: set[int]) -> int:
    """Terminate, then kill, every descendant of this process not in ``exclude``; return how many."""
    try:
        procs = [p for p in psutil.Process().children(recursive=True) if p.pid not in exclude]
    except psutil.Error:
        return 0
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=_KILL_GRACE_S)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=_KILL_GRACE_S)
    return len(procs)


def _stop_kernel(before: set[int], worker: threading.Thread) -> None:
    """Make sure no process the run started (the kernel, its children) survives it.

    After a normal end nbclient has shut the kernel down already and this finds
    nothing. After an interrupt the worker thread may still be starting a
    kernel: look again until the worker is done or has had a few seconds.
    """
    with _deferred_signals():
        for _ in range(10):
            killed = _kill_tree(before)
            worker.join(0.5)
            if not worker.is_alive() and not killed:
                break
        _kill_tree(before)


def _failure(nb_path: Path, executed: Path, error: BaseException, root: Path) -> NotebookFailed:
    """Log a failed run (full traceback, failed notebook) and describe it."""
    from papermill.exceptions import PapermillExecutionError

    log_dir = root / LOG_DIR
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{nb_path.stem}.log"
    failed = None
    if executed.exists():
        failed = log_dir / f"{nb_path.stem}.failed.ipynb"
        shutil.copyfile(executed, failed)
    if isinstance(error, PapermillExecutionError):
        info = NotebookFailed(
            _show(nb_path),
            error.ename,
            str(error.evalue),
            log_path=log_path,
            failed_notebook=failed,
            cell_index=error.cell_index,
            exec_count=error.exec_count,
            cell_source=error.source or "",
        )
        body = f"cell In [{error.exec_count}] (cell #{error.cell_index}):\n{error.source}\n\n"
        body += _strip_ansi("\n".join(error.traceback or [])) or f"{error.ename}: {error.evalue}"
    else:
        info = NotebookFailed(
            _show(nb_path), type(error).__name__, str(error), log_path=log_path, failed_notebook=failed
        )
        body = "".join(_traceback.format_exception(error))
    _write_log(log_path, f"notebook: {nb_path}\n", body)
    return info


def _write_log(log_path: Path, header: str, body: str) -> None:
    stamp = _dt.datetime.now().isoformat(timespec="seconds")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text(f"{stamp} python -m evgrid.core.run {' '.join(sys.argv[1:])}\n{header}\n{body}\n")


def _install(staging: Path, root: Path) -> None:
    """Move every file under ``staging`` to the same relative place under ``root``."""
    for dirpath, _, filenames in os.walk(staging):
        for name in sorted(filenames):
            src = Path(dirpath) / name
            dest = root / src.relative_to(staging)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)


def _remove_staging(staging: Path) -> None:
    with _deferred_signals():
        for _ in range(3):  # a dying worker thread may still write its notebook there
            shutil.rmtree(staging, ignore_errors=True)
            if not staging.exists():
                break
        try:
            staging.parent.rmdir()  # only if no other run is staging
        except OSError:
            pass


@contextmanager
def _deferred_signals(redeliver: bool = True) -> Iterator[list[int]]:
    """Hold the stop signals (recorded in the yielded list) while the block runs.

    With ``redeliver``, a signal held while the block succeeded is raised again
    once the previous handlers are back; after an exception it is dropped (the
    run is stopping anyway).
    """
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    pending: list[int] = []
    old = {s: signal.signal(s, lambda signum, _frame: pending.append(signum)) for s in STOP_SIGNALS}
    try:
        yield pending
    except BaseException:
        _restore(old)
        raise
    _restore(old)
    if redeliver and pending:
        signal.raise_signal(pending[0])


def _restore(handlers: dict[int, Any]) -> None:
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


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


# --------------------------------------------------------------------------- overrides


def _block_model(model: type[BaseModel] | None, field_name: str) -> type[BaseModel] | None:
    """The model of ``model.field_name`` if that field is a block of fields (e.g. ``solver``)."""
    if model is None:
        return None
    annotation = model.model_fields[field_name].annotation
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _merge(
    base: Any, new: dict[str, Any], model: type[BaseModel] | None, section: str, key: str, prefix: str
) -> Any:
    if not isinstance(base, dict):
        return new
    merged = dict(base)
    for name, value in new.items():
        path = f"{prefix}{name}"
        if model is not None and name not in model.model_fields:
            where = f"section {section!r}" if not prefix else f"block {prefix[:-1]!r} of section {section!r}"
            raise ConfigError(
                f"--set {key}: {path!r} is not a field of {where}; known fields: "
                f"{', '.join(model.model_fields)}"
            )
        sub_model = _block_model(model, name)
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = _merge(merged[name], value, sub_model, section, key, f"{path}.")
        elif isinstance(value, dict) and sub_model is not None:
            merged[name] = _merge({}, value, sub_model, section, key, f"{path}.")
        else:
            merged[name] = value
    return merged


def _parse_set(items: list[str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            overrides[key] = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {key}: value {raw!r} is not valid YAML: {err}") from None
    return overrides


# --------------------------------------------------------------------------- CLI


def _show(path: Path) -> str:
    """``path`` relative to the repo root if it lies inside it, else absolute."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(repo_root()))
    except (ValueError, OSError):
        return str(path.resolve())


def _shorten(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _say(text: str) -> None:
    """Print to stderr; the terminal (or DVC's pipe) may be gone already."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


_SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "mksh", "fish"}


class _ParentWatchdog(threading.Thread):
    """Send SIGTERM to this process when the process that started it dies.

    DVC ignores SIGINT (it waits for its stage to stop) and, killed by SIGTERM,
    does not forward it: without this the runner and its kernel would keep
    running, and writing, after ``dvc repro`` is gone. DVC starts the stage
    through ``$SHELL -c``; bash and dash exec the runner in the shell's place,
    but a shell that stays in between is looked through (under DVC only, where
    ``DVC_STAGE`` is set), so that DVC's death is noticed all the same.
    """

    def __init__(self, interval_s: float = 0.5) -> None:
        super().__init__(name="evgrid-parent-watchdog", daemon=True)
        self.parent = os.getppid()
        self.watched = _watched_ancestors(self.parent)
        self.interval_s = interval_s
        self._stop_event = threading.Event()

    def run(self) -> None:
        if self.parent <= 1:  # started by init: nothing to watch
            return
        while not self._stop_event.wait(self.interval_s):
            if os.getppid() != self.parent or not all(_alive(pid) for pid in self.watched):
                os.kill(os.getpid(), signal.SIGTERM)
                return

    def stop(self) -> None:
        self._stop_event.set()


def _watched_ancestors(parent: int) -> list[int]:
    watched = [parent]
    if "DVC_STAGE" not in os.environ:
        return watched
    try:
        proc = psutil.Process(parent)
        if proc.name() in _SHELLS and proc.ppid() > 1:
            watched.append(proc.ppid())
    except psutil.Error:
        pass
    return watched


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Turn SIGINT/SIGTERM/SIGHUP (and the parent's death) into :class:`Interrupted`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping: list[int] = []

    def handler(signum: int, _frame: Any) -> None:
        if stopping:  # already on the way out: let the cleanup finish
            return
        stopping.append(signum)
        raise Interrupted(signum)

    old = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    watchdog = _ParentWatchdog()
    watchdog.start()
    try:
        yield
    finally:
        watchdog.stop()
        _restore(old)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evgrid.core.run", description=__doc__.split("\n")[0])
    parser.add_argument("notebook", help="notebook to execute, e.g. notebooks/00_test_systems.ipynb")
    parser.add_argument("--section", required=True, help="params.yaml section to inject")
    parser.add_argument(
        "--out",
        default=None,
        help="scratch run: write every output and the executed notebook under this folder",
    )
    parser.add_argument("--params", default="params.yaml", help="parameter file (repo-relative)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field (scratch run); YAML value, dotted keys for blocks",
    )
    parser.add_argument("--kernel", default=KERNEL_NAME, help="Jupyter kernel name")
    parser.add_argument(
        "--root",
        default=None,
        help="folder that pipeline outputs, staging and logs go under (default: the repo root)",
    )
    args = parser.parse_args(argv)
    root = Path(args.root).resolve() if args.root else None
    progress = sys.stderr.isatty()
    with _stop_on_signals():
        try:
            overrides = _parse_set(args.set)
            out = Path(args.out).resolve() if args.out is not None else None
            if out is None and overrides:
                scratch = (root or repo_root()) / "results" / "scratch" / args.section
                _say(f"note: --set without --out: a scratch run, outputs go to {_show(scratch)}/")
            executed = run_notebook(
                args.notebook,
                args.section,
                out=out,
                overrides=overrides,
                params_file=args.params,
                kernel_name=args.kernel,
                progress=progress,
                root=root,
            )
        except Interrupted as stop:
            if stop.installed:
                _say("interrupted: the run had finished, its outputs were moved into place")
            else:
                _say(_INTERRUPTED_MSG)
            return stop.exit_code
        except KeyboardInterrupt:
            _say(_INTERRUPTED_MSG)
            return 130
        except (ConfigError, RunError) as err:
            _say(f"error: {err}")
            return 2
        except NotebookFailed as failed:
            _say(failed.summary())
            return 1
        except Exception as err:  # noqa: BLE001 - a bug or an environment problem: log it
            stem = Path(args.notebook).stem
            log_path = (root or repo_root()) / LOG_DIR / f"{stem}.log"
            try:
                _write_log(log_path, f"notebook: {args.notebook}\n", _traceback.format_exc())
                where = f"\n  full traceback: {_show(log_path)}"
            except OSError:
                where = ""
            _say(f"error: running {args.notebook} failed:\n  {type(err).__name__}: {_shorten(str(err), 300)}{where}")
            return 1
    print(f"executed {args.notebook} -> {_show(executed)}")
    return 0


if __name__ == "__main__":
    code = main()
    if code > 128:
        # Stopped by a signal: the papermill thread may still be winding down
        # (its kernel is dead); do not wait for it or for its exit hooks.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)
