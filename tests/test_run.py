"""The papermill runner: staging, scratch runs, overrides, clear errors, interrupts.

Every test runs a tiny notebook written to ``tmp_path`` (section ``test_systems``,
whose fields have no validator touching the disk) and points the runner's
``root`` (where pipeline outputs, staging and logs go) at ``tmp_path``, so
nothing is written into the repository. The real notebooks are only read, for
the wrong-section check.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
import yaml
from jupyter_client.kernelspec import find_kernel_specs

import evgrid.core.run as runner
from evgrid.core.config import load_section, section_model
from evgrid.core.paths import repo_path, repo_root
from evgrid.core.run import LOG_DIR, STAGING_DIR, apply_overrides, main, run_notebook

needs_kernel = pytest.mark.skipif(
    "evgrid" not in find_kernel_specs(), reason="the 'evgrid' Jupyter kernel is not installed (make env)"
)

PARAMETERS = """\
networks = ["ieee33"]
vmin_pu = 0.95
vmax_pu = 1.05
ieee13_regulator = "fixed"
ieee13_tolerance_pu = 0.002
results_dir = "results/test_systems"
figures_dir = "figures"
"""
PREAMBLE = "import os, time\nfrom evgrid.core.paths import output_path\n"
WRITE_CSV = 'output_path(results_dir, "x.csv").write_text(os.environ["EVGRID_OUTPUT_ROOT"] + "\\n" + str(vmin_pu))\n'


def make_notebook(path: Path, *cells: str, parameters: str = PARAMETERS) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(PREAMBLE), *(nbformat.v4.new_code_cell(c) for c in cells)]
    nb.metadata["kernelspec"] = {"name": "evgrid", "display_name": "evgrid", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def params_file(tmp_path):
    """A temporary copy of params.yaml's ``test_systems`` section."""
    section = yaml.safe_load(repo_path("params.yaml").read_text())["test_systems"]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"test_systems": section}))
    return path


@pytest.fixture
def no_execution(monkeypatch):
    """Fail the test if the runner gets as far as executing a notebook."""

    def refuse(*args, **kwargs):
        raise AssertionError("the notebook was executed")

    monkeypatch.setattr(runner, "_execute", refuse)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# --------------------------------------------------------------------------- runs that execute


@needs_kernel
def test_pipeline_run_stages_outputs_then_moves_them(tmp_path, params_file):
    notebook = make_notebook(tmp_path / "tiny.ipynb", WRITE_CSV)
    root = tmp_path / "repo"
    executed = run_notebook(
        notebook, "test_systems", params_file=params_file, progress=False, root=root
    )
    assert executed == root / "notebooks" / "tiny.ipynb"
    staged_under, vmin = (root / "results/test_systems/x.csv").read_text().splitlines()
    # The kernel wrote into a fresh staging folder, whose files were then moved.
    assert Path(staged_under).parent == root / STAGING_DIR
    assert Path(staged_under).name.startswith("test_systems-")
    assert not Path(staged_under).exists()
    assert float(vmin) == 0.95
    nb = nbformat.read(executed, as_version=4)
    assert "start_time" not in nb.metadata.get("papermill", {})
    assert not (root / LOG_DIR).exists()


@needs_kernel
def test_failed_run_moves_nothing_and_explains_briefly(tmp_path, params_file, capsys):
    root = tmp_path / "repo"
    committed_csv = root / "results/test_systems/x.csv"
    committed_nb = root / "notebooks/broken.ipynb"
    for path in (committed_csv, committed_nb):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("committed")
    notebook = make_notebook(tmp_path / "broken.ipynb", WRITE_CSV, 'raise ValueError("boom 42")')

    code = main([str(notebook), "--section", "test_systems", "--params", str(params_file),
                 "--root", str(root)])

    assert code == 1
    err = capsys.readouterr().err
    assert "broken.ipynb failed in cell In [" in err
    assert "ValueError: boom 42" in err
    assert "Traceback" not in err and len(err.splitlines()) <= 6, err
    log = root / LOG_DIR / "broken.log"
    assert f"full traceback: {log}" in err
    assert "ValueError" in log.read_text() and "boom 42" in log.read_text()
    assert (root / LOG_DIR / "broken.failed.ipynb").exists()
    assert committed_csv.read_text() == "committed"
    assert committed_nb.read_text() == "committed"
    assert not (root / STAGING_DIR).exists()


@needs_kernel
def test_scratch_run_outside_the_repo_writes_only_there(tmp_path, params_file, capsys):
    notebook = make_notebook(tmp_path / "scratchy.ipynb", WRITE_CSV)
    out = tmp_path / "elsewhere" / "try1"
    real = [repo_path(p) for p in (STAGING_DIR, LOG_DIR, "results/scratch",
                                   "notebooks/scratchy.ipynb", "results/test_systems/x.csv")]
    before = {p: p.exists() for p in real}

    code = main([str(notebook), "--section", "test_systems", "--params", str(params_file),
                 "--out", str(out), "--set", "vmin_pu=0.9"])

    assert code == 0, capsys.readouterr().err
    executed = out / "notebooks" / "scratchy.ipynb"
    assert f"-> {executed}" in capsys.readouterr().out  # absolute: outside the repo
    assert executed.exists()
    assert (out / "results/test_systems/x.csv").read_text().splitlines() == [str(out), "0.9"]
    assert {p: p.exists() for p in real} == before


# --------------------------------------------------------------------------- refused before running


def test_unwritable_out_under_a_file_fails_early(tmp_path, params_file, no_execution, capsys):
    (tmp_path / "afile").write_text("")
    notebook = make_notebook(tmp_path / "tiny.ipynb", WRITE_CSV)
    bad = tmp_path / "afile" / "sub"
    code = main([str(notebook), "--section", "test_systems", "--params", str(params_file),
                 "--out", str(bad)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(bad) in err and "not writable" in err


@pytest.mark.parametrize("kind", ["read-only folder", "read-only file system"])
def test_unwritable_out_folder_fails_early(kind, tmp_path, params_file, no_execution, capsys):
    notebook = make_notebook(tmp_path / "tiny.ipynb", WRITE_CSV)
    if kind == "read-only folder":
        bad = tmp_path / "ro"
        bad.mkdir()
        bad.chmod(0o500)
        if os.access(bad, os.W_OK):
            pytest.skip("running as root: a 0o500 folder is writable anyway")
    else:
        bad = Path("/sys/evgrid-test-out")  # sysfs refuses new entries, even to root
        if not Path("/sys/kernel").is_dir() or bad.exists():
            pytest.skip("no sysfs here to stand in for a read-only mount")
    code = main([str(notebook), "--section", "test_systems", "--params", str(params_file),
                 "--out", str(bad / "sub")])
    assert code == 2
    assert str(bad / "sub") in capsys.readouterr().err


def test_out_must_not_be_the_repository(tmp_path, params_file, no_execution, capsys):
    notebook = make_notebook(tmp_path / "tiny.ipynb", WRITE_CSV)
    code = main([str(notebook), "--section", "test_systems", "--params", str(params_file),
                 "--out", str(repo_root())])
    assert code == 2
    assert "repository itself" in capsys.readouterr().err


def test_set_merges_nested_blocks_and_takes_dotted_keys():
    values = load_section("kerama2025").model_dump(mode="json")
    solver = values["solver"]
    merged = apply_overrides("kerama2025", values, {"solver": {"solver": "highs"}})
    assert merged["solver"] == {**solver, "solver": "highs"}
    merged = apply_overrides("kerama2025", values, runner._parse_set(["solver.time_limit_s=60"]))
    assert merged["solver"] == {**solver, "time_limit_s": 60}
    merged = apply_overrides("kerama2025", values, runner._parse_set(["fleet={n_evs: 3}", "seed=7"]))
    assert merged["fleet"] == {**values["fleet"], "n_evs": 3} and merged["seed"] == 7
    assert values["solver"] == solver  # the input is not modified


@pytest.mark.parametrize(
    ("item", "named", "known"),
    [
        ("vmin=0.9", "'vmin'", "vmin_pu"),
        ("networks.x=1", "'networks.x'", None),  # not a block: pydantic says why
    ],
)
def test_unknown_set_key_fails_naming_key_and_fields(
    item, named, known, tmp_path, params_file, no_execution, capsys
):
    notebook = make_notebook(tmp_path / "tiny.ipynb", WRITE_CSV)
    code = main([str(notebook), "--section", "test_systems", "--params", str(params_file),
                 "--out", str(tmp_path / "o"), "--set", item])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    if known:
        assert named in err and known in err.split("known fields: ", 1)[1].split(", ")


def test_unknown_nested_set_key(no_execution, tmp_path, capsys):
    code = main(["notebooks/01_kerama2025_bilevel.ipynb", "--section", "kerama2025",
                 "--out", str(tmp_path / "o"), "--set", "solver.timelimit=5"])
    assert code == 2
    err = capsys.readouterr().err
    assert "'solver.timelimit' is not a field of block 'solver'" in err
    assert "solver, time_limit_s, mip_gap" in err


def test_wrong_section_for_a_real_notebook_fails_at_once(no_execution, tmp_path, capsys):
    start = time.monotonic()
    code = main(["notebooks/01_kerama2025_bilevel.ipynb", "--section", "test_systems",
                 "--root", str(tmp_path)])
    assert code == 2
    assert time.monotonic() - start < 5
    err = capsys.readouterr().err
    assert "error: notebooks/01_kerama2025_bilevel.ipynb takes section 'kerama2025', not 'test_systems'" in err
    assert not any(tmp_path.iterdir())


def test_parameters_cell_matching_no_section(tmp_path, params_file, no_execution, capsys):
    notebook = make_notebook(tmp_path / "odd.ipynb", "pass", parameters=PARAMETERS + "extra = 1\n")
    code = main([str(notebook), "--section", "test_systems", "--params", str(params_file)])
    assert code == 2
    err = capsys.readouterr().err
    assert "does not match section 'test_systems'" in err and "extra" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["notebooks/no_such.ipynb", "--section", "test_systems"], "notebooks/no_such.ipynb does not exist"),
        (["notebooks/00_test_systems.ipynb", "--section", "nope"], "unknown params.yaml section 'nope'"),
        (["notebooks/00_test_systems.ipynb", "--section", "test_systems", "--params", "{tmp}/missing.yaml"],
         "does not exist"),
        (["notebooks/00_test_systems.ipynb", "--section", "test_systems", "--params", "{tmp}/bad.yaml"],
         "is not valid YAML"),
        (["notebooks/00_test_systems.ipynb", "--section", "test_systems", "--set", "vmin_pu"],
         "--set expects KEY=VALUE"),
    ],
    ids=["missing notebook", "unknown section", "missing params", "malformed params", "bad --set"],
)
def test_clear_errors_exit_2(args, expected, tmp_path, no_execution, capsys):
    (tmp_path / "bad.yaml").write_text("test_systems: [unclosed\n")
    code = main([a.replace("{tmp}", str(tmp_path)) for a in args] + ["--root", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err, err
    assert "Traceback" not in err


def test_unexpected_exception_is_logged_not_dumped(tmp_path, params_file, monkeypatch, capsys):
    def explode(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(runner, "_execute", explode)
    notebook = make_notebook(tmp_path / "tiny.ipynb", WRITE_CSV)
    code = main([str(notebook), "--section", "test_systems", "--params", str(params_file),
                 "--root", str(tmp_path / "repo")])
    assert code == 1
    err = capsys.readouterr().err
    assert "RuntimeError: kaboom" in err and "Traceback" not in err
    log = tmp_path / "repo" / LOG_DIR / "tiny.log"
    assert "Traceback" in log.read_text() and str(log) in err
    assert not (tmp_path / "repo" / STAGING_DIR).exists()


def test_sections_used_here_exist():
    assert set(section_model("test_systems").model_fields) == {
        line.split(" = ")[0] for line in PARAMETERS.splitlines()
    }


# --------------------------------------------------------------------------- interrupts


def _runner_cmd(notebook: Path, params_file: Path, root: Path) -> list[str]:
    return [sys.executable, "-m", "evgrid.core.run", str(notebook), "--section", "test_systems",
            "--params", str(params_file), "--root", str(root)]


def _sleeping_notebook(tmp_path: Path) -> tuple[Path, Path]:
    pid_file = tmp_path / "kernel.pid"
    notebook = make_notebook(
        tmp_path / "sleepy.ipynb",
        WRITE_CSV,
        f"open({str(pid_file)!r} + '.tmp', 'w').write(str(os.getpid()))\n"
        f"os.replace({str(pid_file)!r} + '.tmp', {str(pid_file)!r})\n"
        "time.sleep(60)",
    )
    return notebook, pid_file


def _kernel_pid(pid_file: Path, process) -> int:
    assert _wait_for(lambda: pid_file.exists() or process.poll() is not None, 60), "kernel never started"
    assert process.poll() is None, "the runner ended before the sleeping cell"
    return int(pid_file.read_text())


@needs_kernel
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "SIGINT"])
def test_signal_stops_runner_and_kernel_and_moves_nothing(signum, code, tmp_path, params_file):
    notebook, pid_file = _sleeping_notebook(tmp_path)
    root = tmp_path / "repo"
    with open(tmp_path / "stderr", "w") as err:
        process = subprocess.Popen(_runner_cmd(notebook, params_file, root), cwd=repo_root(),
                                   stdout=subprocess.DEVNULL, stderr=err)
        try:
            kernel = _kernel_pid(pid_file, process)
            assert psutil.Process(kernel).ppid() == process.pid
            process.send_signal(signum)
            assert process.wait(timeout=15) == code
        finally:
            if process.poll() is None:
                process.kill()
    # Gone already, killed by the runner: not ~1 s later by ipykernel's own parent poller
    # (which misses a re-parenting to a subreaper anyway).
    assert _gone(kernel), "the kernel survived the runner"
    assert "interrupted: committed outputs left as they were" in (tmp_path / "stderr").read_text()
    assert not (root / "results").exists() and not (root / "notebooks").exists()
    assert not (root / STAGING_DIR).exists()


@needs_kernel
@pytest.mark.parametrize("via_shell", [False, True], ids=["direct", "through a shell, as DVC does"])
def test_death_of_the_parent_stops_runner_and_kernel(via_shell, tmp_path, params_file):
    notebook, pid_file = _sleeping_notebook(tmp_path)
    root = tmp_path / "repo"
    runner_pid = tmp_path / "runner.pid"
    cmd = _runner_cmd(notebook, params_file, root)
    if via_shell:  # `; true` keeps bash from exec-ing the runner in its place
        cmd = ["bash", "-c", " ".join(map(shlex.quote, cmd)) + "; true"]
    # Stands in for DVC (which sets DVC_STAGE): starts the runner and is then
    # killed without a word, as `kill -9 <dvc>` or a SIGTERM to DVC does.
    wrapper = subprocess.Popen(
        [sys.executable, "-c",
         "import os, subprocess, sys, time\n"
         f"err = open({str(tmp_path / 'stderr')!r}, 'w')\n"
         f"p = subprocess.Popen({cmd!r}, stderr=err, stdout=subprocess.DEVNULL,"
         " env={**os.environ, 'DVC_STAGE': 'test'})\n"
         f"open({str(runner_pid)!r}, 'w').write(str(p.pid))\n"
         "p.wait()\n"],
        cwd=repo_root(),
    )
    pid = kernel = None
    try:
        kernel = _kernel_pid(pid_file, wrapper)
        pid = psutil.Process(kernel).ppid()  # the runner
        started = int(runner_pid.read_text())  # the runner, or the shell above it
        assert (psutil.Process(pid).ppid() if via_shell else pid) == started
        wrapper.kill()
        wrapper.wait(timeout=5)
        start = time.monotonic()
        assert _wait_for(lambda: _gone(pid), 15), "the runner outlived its parent"
        assert _gone(kernel), "the kernel outlived the runner"
        assert time.monotonic() - start < 15
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
        for leftover in (pid, kernel):
            if leftover and not _gone(leftover):
                os.kill(leftover, signal.SIGKILL)
    assert "interrupted" in (tmp_path / "stderr").read_text()
    assert not (root / "results").exists() and not (root / STAGING_DIR).exists()


@pytest.mark.parametrize("tty", [True, False])
def test_progress_bar_only_on_a_terminal(tty, tmp_path, params_file, monkeypatch, capsys):
    seen = {}

    def fake_execute(nb_path, executed, values, output_root, kernel_name, progress, root):
        seen["progress"] = progress
        nbformat.write(nbformat.read(nb_path, as_version=4), executed)

    monkeypatch.setattr(runner, "_execute", fake_execute)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    notebook = make_notebook(tmp_path / "tiny.ipynb", WRITE_CSV)
    assert main([str(notebook), "--section", "test_systems", "--params", str(params_file),
                 "--out", str(tmp_path / "o")]) == 0
    assert seen["progress"] is tty
