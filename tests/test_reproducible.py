"""Re-running a deterministic stage gives byte-identical result files, and touches no tracked file."""

import subprocess
import sys

from evgrid.core.paths import repo_path


def _run_stage_into(out):
    cmd = [sys.executable, "-m", "evgrid.core.run", "notebooks/00_test_systems.ipynb",
           "--section", "test_systems", "--out", str(out)]
    done = subprocess.run(cmd, cwd=repo_path(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return {p.relative_to(out): p.read_bytes() for p in out.rglob("*")
            if p.is_file() and p.suffix in {".csv", ".json", ".png"}}


def _git_status():
    return subprocess.run(["git", "status", "--porcelain"], cwd=repo_path(), capture_output=True,
                          text=True, check=True).stdout


def test_the_cheapest_stage_twice_gives_byte_identical_results(tmp_path):
    before = _git_status()
    first = _run_stage_into(tmp_path / "first")
    second = _run_stage_into(tmp_path / "second")
    assert {str(p) for p in first} >= {"results/test_systems/metrics.json",
                                       "results/test_systems/comparison.csv",
                                       "figures/00_voltage_profiles.png"}
    assert first.keys() == second.keys()
    differing = [str(p) for p in first if first[p] != second[p]]
    assert not differing, f"re-run changed {differing}"
    # and a scratch run wrote nothing into the repository
    assert _git_status() == before

    # The committed outputs are byte-identical to a fresh run's, so a fresh
    # clone is up to date and `make test` cannot differ from it.
    for rel, data in first.items():
        if rel.suffix in {".csv", ".json"}:
            assert repo_path(rel).read_bytes() == data, f"committed {rel} differs from a fresh run"
