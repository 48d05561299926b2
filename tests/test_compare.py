"""The paper-vs-computed join."""

import numpy as np
import pandas as pd
import pytest

from evgrid.core.compare import compare_with_paper, load_paper_values, paper_ids, within_tolerance


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


def test_zero_against_zero_is_a_match_whatever_the_relative_tolerance():
    paper = pd.DataFrame({"table": ["T2"], "row": ["violations"], "column": ["proposed"],
                          "value": [0]})
    computed = pd.DataFrame({"table": ["T2"], "row": ["violations"], "column": ["proposed"],
                             "computed": [0.0]})
    out = compare_with_paper(computed, paper, rel_tol=0.05)
    assert out["status"].tolist() == ["match"]
    assert np.isnan(out["rel_diff"].iloc[0])  # undefined, and still a match
    # The report re-judges values with its own rel_tol through the same rule.
    assert within_tolerance(out["abs_diff"], out["rel_diff"], rel_tol=0.0).tolist() == [True]
    assert within_tolerance(pd.Series([1.0]), pd.Series([np.nan]), rel_tol=0.05).tolist() == [False]


def test_text_values_match_only_when_equal():
    paper = pd.DataFrame({"table": ["T1"] * 3, "row": ["Solver", "Network", "Scenarios"],
                          "column": ["name", "kV", "count"], "value": ["CPLEX", 4.16, 10]})
    computed = pd.DataFrame({"table": ["T1"] * 3, "row": ["Solver", "Network", "Scenarios"],
                             "column": ["name", "kV", "count"], "computed": ["HiGHS", 12.66, 10]})
    out = compare_with_paper(computed, paper, rel_tol=0.0).set_index("row")
    assert out["status"].to_dict() == {"Solver": "differs", "Network": "differs", "Scenarios": "match"}
    assert np.isnan(out.loc["Solver", "abs_diff"]) and np.isnan(out.loc["Solver", "rel_diff"])
    assert out.loc["Network", "abs_diff"] == pytest.approx(8.5)
    same = computed.assign(computed=["CPLEX", 12.66, 10])
    assert compare_with_paper(same, paper).set_index("row").loc["Solver", "status"] == "match"
    # Read back from a CSV every cell of a mixed column is text: numbers are still numbers.
    as_read = computed.assign(computed=["HiGHS", "12.66", "10"])
    again = compare_with_paper(as_read, paper, rel_tol=0.0).set_index("row")
    assert again["status"].to_dict() == out["status"].to_dict()
    assert again.loc["Scenarios", "computed"] == 10


def test_text_in_other_tables_leaves_numeric_comparisons_numeric():
    paper = pd.DataFrame({"table": ["T1", "T2"], "row": ["Solver", "peak"],
                          "column": ["name", "proposed"], "value": ["CPLEX", 100.0]})
    computed = pd.DataFrame({"table": ["T2"], "row": ["peak"], "column": ["proposed"],
                             "computed": [103.0]})
    out = compare_with_paper(computed, paper[paper["table"] == "T2"])
    assert out["paper"].dtype == float and out["computed"].dtype == float


def test_a_deviations_file_is_not_a_paper(tmp_path):
    (tmp_path / "p.yaml").write_text("values:\n  - {table: T, row: r, column: c, value: 1}\n")
    (tmp_path / "p_deviations.yaml").write_text(
        "deviations:\n  - {table: T, category: definition, reason: why}\n")
    assert paper_ids(tmp_path) == ["p"]
    with pytest.raises(ValueError, match="deviations file, not a paper"):
        load_paper_values("p_deviations", tmp_path)
    (tmp_path / "q.yaml").write_text("deviations: []\n")
    with pytest.raises(ValueError, match="no 'values' list"):
        load_paper_values("q", tmp_path)
    assert "kerama2025_deviations" not in paper_ids()
