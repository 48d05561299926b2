"""Result writers: rounded, atomic, no NaN; the output root."""

import json

import numpy as np
import pandas as pd
import pytest

from evgrid.core.outputs import round_significant, save_figure, write_csv, write_json
from evgrid.core.paths import OUTPUT_ROOT_ENV, output_path, output_root, repo_root


def test_round_significant():
    assert round_significant(8081.526613828872) == 8081.53
    assert round_significant(8081.52661382886) == 8081.53  # the two runs that used to differ
    assert round_significant(0.000123456789) == 0.000123457
    assert round_significant(0.0) == 0.0
    assert np.isnan(round_significant(float("nan")))


def test_write_csv_keeps_six_significant_digits(tmp_path):
    frame = pd.DataFrame({"a": [8081.526613828872, 1e-9 / 3], "n": [1, 2], "s": ["x", "y"]})
    path = tmp_path / "sub" / "t.csv"
    assert write_csv(frame, path) is None
    assert path.read_text() == "a,n,s\n8081.53,1,x\n3.33333e-10,2,y\n"


def test_write_csv_rounds_floats_in_a_column_that_mixes_text_and_numbers(tmp_path):
    frame = pd.DataFrame({"k": [1, 2, 3, 4], "computed": ["HiGHS", -648.90712345678, 40, None]})
    path = tmp_path / "t.csv"
    write_csv(frame, path)
    assert path.read_text() == "k,computed\n1,HiGHS\n2,-648.907\n3,40\n4,\n"


def test_a_failed_write_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    path.write_text("old\n")

    def half_then_interrupted(self, target, **kwargs):
        with open(target, "w") as fh:
            fh.write("half a")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_csv(pd.DataFrame({"a": [1]}), path)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]  # no temporary file left


def test_write_json_rounds_and_refuses_nan(tmp_path):
    path = tmp_path / "m.json"
    write_json({"x": np.float64(2 / 3), "k": np.int64(3), "ok": np.bool_(True)}, path)
    assert json.loads(path.read_text()) == {"x": 0.666667, "k": 3, "ok": True}
    with pytest.raises(ValueError, match="non-finite"):
        write_json({"x": float("nan")}, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


def test_save_figure_is_atomic_and_typed_by_suffix(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = tmp_path / "f.png"
    save_figure(fig, path, dpi=50)
    plt.close(fig)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]


def test_output_root_defaults_to_the_repo_and_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(OUTPUT_ROOT_ENV, raising=False)
    assert output_root() == repo_root()
    monkeypatch.setenv(OUTPUT_ROOT_ENV, str(tmp_path))
    assert output_path("results", "x.csv") == tmp_path / "results" / "x.csv"
