"""The reproduction report says why: every value that differs has a reason, every reason a value.

The first tests read the committed ``results/reproduction_report/report.csv``
(written by notebook 99) and the ``data/paper_values/*_deviations.yaml`` files;
the others check the deviations machinery on small files.
"""

import pandas as pd
import pytest

from evgrid.core.compare import (
    CATEGORIES,
    attach_reasons,
    load_deviations,
    stale_deviations,
    unexplained,
)
from evgrid.core.paths import repo_path

PAPER_VALUES = "data/paper_values"


@pytest.fixture(scope="module")
def report():
    table = pd.read_csv(repo_path("results/reproduction_report/report.csv"),
                        dtype={"row": str, "column": str})
    missing = {"paper_id", "status", "reason_category", "reason"} - set(table.columns)
    assert not missing, f"the committed report lacks columns {sorted(missing)}: re-run notebook 99"
    return table


def _listing(rows, what):
    return "\n".join(f"  {r.paper_id}: {r.table} | {r.row} | {r.column} ({r.status})"
                     for r in rows.itertuples()) + f"\n{what}"


def test_every_value_that_differs_or_is_not_computed_has_a_reason(report):
    missing = unexplained(report)
    assert missing.empty, (
        f"{len(missing)} value(s) of the committed report differ or are not computed without a "
        "reason:\n" + _listing(missing, f"add them to {PAPER_VALUES}/<paper>_deviations.yaml "
                                        "(a whole row or column may share one entry) and re-run "
                                        "notebook 99"))


def test_every_deviation_entry_explains_a_value(report):
    stale = stale_deviations(report, PAPER_VALUES)
    lines = [f"  {r.paper_id}_deviations.yaml #{r.entry}: {r.table} | {r.row or '(every row)'} | "
             f"{r.column or '(every column)'}" for r in stale.itertuples()]
    assert stale.empty, (
        f"{len(stale)} deviation entr(ies) explain no value that differs, is not computed or has no "
        "paper value in the committed report (renamed row? the value now matches?):\n"
        + "\n".join(lines))


def test_report_categories_are_the_six(report):
    used = set(report["reason_category"].dropna())
    assert used <= set(CATEGORIES), f"unknown categories in the report: {used - set(CATEGORIES)}"
    assert report["reason"].notna().eq(report["reason_category"].notna()).all()
    assert report.loc[report["status"] == "match", "reason"].isna().all()


def test_committed_report_carries_the_reasons_of_the_deviations_files(report):
    fresh = attach_reasons(report.drop(columns=["reason_category", "reason"]), PAPER_VALUES)
    stale_rows = fresh["reason"].fillna("") != report["reason"].fillna("")
    assert not stale_rows.any(), (
        "the committed report's reasons are not those of the deviations files; re-run notebook 99:\n"
        + _listing(report[stale_rows], ""))


def test_zero_against_zero_is_not_reported_as_differing(report):
    exact = report[pd.to_numeric(report["abs_diff"], errors="coerce") == 0]
    assert not exact.empty and (exact["status"] == "match").all()


# --- the machinery, on small files -----------------------------------------------------------

def _rows(*keys, status="differs"):
    return pd.DataFrame([{"paper_id": "p", "table": t, "row": r, "column": c, "status": status}
                         for t, r, c in keys])


def _write(folder, body):
    (folder / "p_deviations.yaml").write_text("paper: p\ndeviations:\n" + body)


def test_the_most_specific_entry_decides(tmp_path):
    _write(tmp_path,
           "  - {table: T3, column: cost, category: definition, reason: cost undefined}\n"
           "  - {table: T3, row: dup, category: paper error, reason: row repeated}\n"
           "  - {table: T3, row: dup, column: cost, category: missing data, reason: this cell}\n"
           "  - {table: [T4, T5], category: solver, reason: whole tables}\n")
    rows = _rows(("T3", "a", "cost"), ("T3", "dup", "peak"), ("T3", "dup", "cost"),
                 ("T4", "x", "y"), ("T5", "z", "w"), ("T6", "a", "cost"))
    out = attach_reasons(rows, tmp_path)
    assert out["reason"].fillna("-").tolist() == ["cost undefined", "row repeated", "this cell",
                                                  "whole tables", "whole tables", "-"]
    assert out["reason_category"].tolist()[:2] == ["definition", "paper error"]
    assert unexplained(out)[["table", "row", "column"]].values.tolist() == [["T6", "a", "cost"]]
    assert stale_deviations(out, tmp_path).empty


def test_two_entries_with_the_same_keys_are_ambiguous(tmp_path):
    # Entries of different levels may overlap (the more specific decides); entries of one level
    # overlap only where their keys are equal, so that is the one ambiguity, and an error.
    _write(tmp_path,
           "  - {table: T3, column: cost, category: definition, reason: one}\n"
           "  - {table: T3, row: dup, category: paper error, reason: two}\n"
           "  - {table: T3, row: [other, dup], category: paper error, reason: three}\n")
    with pytest.raises(ValueError, match=r"entries \[2, 3\] cover the same values "
                                         r"\(T3 \| dup \| \(every column\)\).*ambiguous"):
        load_deviations("p", tmp_path)


def test_a_value_that_matches_carries_no_reason_and_an_entry_for_it_alone_is_stale(tmp_path):
    _write(tmp_path,
           "  - {table: T2, row: violations, category: definition, reason: counted differently}\n"
           "  - {table: T2, row: peak, category: missing data, reason: no load data}\n")
    rows = pd.concat([_rows(("T2", "violations", "baseline")),
                      _rows(("T2", "violations", "proposed"), ("T2", "peak", "x"), status="match")])
    out = attach_reasons(rows, tmp_path)
    assert out["reason"].fillna("-").tolist() == ["counted differently", "-", "-"]
    stale = stale_deviations(out, tmp_path)
    assert stale[["entry", "table", "row"]].values.tolist() == [[2, "T2", "peak"]]


def test_a_typo_in_a_list_is_stale(tmp_path):
    _write(tmp_path, "  - {table: [T3, Table 4], column: cost, category: definition, reason: r}\n")
    stale = stale_deviations(_rows(("T3", "a", "cost"), ("T4", "a", "cost")), tmp_path)
    assert stale["table"].tolist() == ["Table 4"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{table: T, category: typo, reason: r}", "category 'typo' is not one of paper error"),
        ("{table: T, category: solver}", "lacks reason"),
        ("{row: r, category: solver, reason: r}", "lacks table"),
        ("{table: T, colum: c, category: solver, reason: r}", r"unknown keys \['colum'\]"),
        ("{table: T, category: solver, reason: \"two\\nlines\"}", "one line"),
        ("{table: T, row: 3, category: solver, reason: r}", "row must be a string"),
        ("{table: T, row: [a, null], category: solver, reason: r}", "row must be a string"),
    ],
)
def test_deviations_file_errors_name_the_entry(tmp_path, entry, message):
    _write(tmp_path, f"  - {entry}\n")
    with pytest.raises(ValueError, match=message):
        load_deviations("p", tmp_path)


def test_a_paper_without_a_deviations_file_has_none(tmp_path):
    assert load_deviations("p", tmp_path).empty
    out = attach_reasons(_rows(("T", "r", "c")), tmp_path)
    assert out["reason"].isna().all() and len(unexplained(out)) == 1


def test_committed_deviations_files_load_with_known_categories():
    files = sorted(repo_path(PAPER_VALUES).glob("*_deviations.yaml"))
    assert files, "no deviations file"
    for path in files:
        deviations = load_deviations(path.stem.removesuffix("_deviations"), PAPER_VALUES)
        assert set(deviations["category"]) <= set(CATEGORIES)
