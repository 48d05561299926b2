"""The paper-vs-computed join."""

import pandas as pd
import pytest

from evgrid.compare import compare_with_paper, load_paper_values


def _paper():
    return pd.DataFrame(
        {
            "table": ["T2", "T2", "T2"],
            "row": ["peak", "cost", "profit"],
            "column": ["proposed"] * 3,
            "value": [100.0, 50.0, 10.0],
        }
    )


def test_compare_adds_differences_and_status():
    computed = pd.DataFrame(
        {
            "table": ["T2", "T2", "T2"],
            "row": ["peak", "cost", "extra"],
            "column": ["proposed"] * 3,
            "computed": [103.0, 60.0, 1.0],
        }
    )
    out = compare_with_paper(computed, _paper(), rel_tol=0.05).set_index("row")
    assert out.loc["peak", "abs_diff"] == pytest.approx(3.0)
    assert out.loc["peak", "rel_diff"] == pytest.approx(0.03)
    assert out.loc["peak", "status"] == "match"
    assert out.loc["cost", "rel_diff"] == pytest.approx(0.2)
    assert out.loc["cost", "status"] == "differs"
    assert out.loc["profit", "status"] == "not computed"
    assert out.loc["extra", "status"] == "no paper value"


def test_per_value_absolute_tolerance_overrides_the_default():
    computed = pd.DataFrame(
        {"table": ["T2"], "row": ["peak"], "column": ["proposed"], "computed": [100.4],
         "abs_tol": [0.5]}
    )
    out = compare_with_paper(computed, _paper(), rel_tol=0.0)
    assert out.set_index("row").loc["peak", "status"] == "match"


def test_load_paper_values_reads_the_test_system_references():
    values = load_paper_values("test_systems")
    assert {"table", "row", "column", "value", "unit"} <= set(values.columns)
    assert 8081.53 in values["value"].tolist()


def test_load_paper_values_rejects_duplicates_and_missing_files(tmp_path):
    (tmp_path / "dup.yaml").write_text(
        "values:\n"
        "  - {table: T, row: r, column: c, value: 1}\n"
        "  - {table: T, row: r, column: c, value: 2}\n"
    )
    with pytest.raises(ValueError, match="duplicate"):
        load_paper_values("dup", tmp_path)
    with pytest.raises(FileNotFoundError, match="nope"):
        load_paper_values("nope", tmp_path)
