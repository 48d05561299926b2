"""Priolkar & Kunkolienkar (2025): the paper's numbers checked against each other, with no data.

Every check takes the published values (``data/paper_values/priolkar2025.yaml``,
read by :func:`evgrid.core.compare.load_paper_values`) and recomputes one
claim from the paper's own numbers and Table 3: a percentage column, an
energy implied by a load factor, a bound on a variance or a deviation, a
correlation, a weight sum. :func:`paper_consistency` returns them all as a
table; notebook 03 shows it and its tests assert each verdict.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evgrid.papers.priolkar2025.case import N_PERIODS

__all__ = ["paper_consistency", "min_variance_kw2"]


def _v(values: pd.DataFrame, table: str, row: str, column: str) -> float:
    hit = values[(values["table"] == table) & (values["row"] == row) & (values["column"] == column)]
    if len(hit) != 1:
        raise KeyError(f"no single paper value at ({table!r}, {row!r}, {column!r})")
    return float(hit["value"].iloc[0])


def min_variance_kw2(peak: float, low: float, mean: float, n: int = N_PERIODS) -> float:
    """The smallest population variance of ``n`` hourly loads with this peak, minimum and mean.

    One hour at the peak, one at the minimum, the other ``n - 2`` equal (which
    the variance's convexity makes the minimiser).
    """
    rest = (n * mean - peak - low) / (n - 2)
    return (peak**2 + low**2 + (n - 2) * rest**2) / n - mean**2


def paper_consistency(values: pd.DataFrame, *, n_evs: int = 50, charger_kw: float = 7.0,
                      energy_kwh: tuple[float, float] = (10.0, 50.0)) -> pd.DataFrame:
    """One row per check: ``check``, ``claimed``, ``recomputed``, ``consistent`` and ``why``.

    ``n_evs``, ``charger_kw`` and ``energy_kwh`` are Table 3's fleet.
    """
    rows = []

    def add(check, claimed, recomputed, consistent, why):
        rows.append({"check": check, "claimed": claimed, "recomputed": recomputed,
                     "consistent": bool(consistent), "why": why})

    def pct(new, old):
        return 100 * (new - old) / old

    # percentage columns
    for table, row, a, b in [
        ("Table 4", "Waiting time (Mean)", "Normal", "Optimal"),
        ("Table 4", "Waiting time (Median)", "Normal", "Optimal"),
        ("Table 4", "Waiting time (Maximum)", "Normal", "Optimal"),
        ("Table 4", "Standard deviation", "Normal", "Optimal"),
        ("Table 5", "Variance of load", "Unoptimized", "Optimized"),
        ("Table 5", "Max. deviation", "Unoptimized", "Optimized"),
        ("Table 5", "LF", "Unoptimized", "Optimized"),
        ("Table 10", "Peak demand", "Unoptimized", "Optimized"),
        ("Table 10", "Waiting time avg.", "Unoptimized", "Optimized"),
        ("Table 10", "EV user cost", "Unoptimized", "Optimized"),
    ]:
        claimed = _v(values, table, row, "Improvement")
        got = pct(_v(values, table, row, b), _v(values, table, row, a))
        tol = 1.0 if float(claimed).is_integer() else 0.5  # a whole percent, or printed with decimals
        add(f"{table} {row}: improvement (%)", claimed, round(got, 2), abs(got - claimed) <= tol,
            "recomputed from the table's own two columns (which are rounded)")

    peak_u, peak_o = _v(values, "Table 10", "Peak demand", "Unoptimized"), _v(values, "Table 10", "Peak demand", "Optimized")
    lf_u, lf_o = _v(values, "Table 10", "LF", "Unoptimized"), _v(values, "Table 10", "LF", "Optimized")
    mean_u, mean_o = lf_u * peak_u, lf_o * peak_o
    min_u, min_o = _v(values, "Text", "Fig. 2 minimum load", "Unoptimized"), _v(values, "Text", "Fig. 2 minimum load", "Optimized")
    max_draw = n_evs * charger_kw
    add("Peak demand within what the fleet can draw (kW)", peak_u, max_draw, peak_u <= max_draw,
        f"{n_evs} EVs x {charger_kw:g} kW is the most the fleet can draw at once")
    e_u, e_o = N_PERIODS * mean_u, N_PERIODS * mean_o
    add("Daily energy, uncontrolled: 24 h x LF x peak (kWh)", round(e_u), n_evs * energy_kwh[1],
        e_u <= n_evs * energy_kwh[1],
        f"the fleet needs {n_evs * energy_kwh[0]:g}-{n_evs * energy_kwh[1]:g} kWh (Table 3)")
    add("Energy kept when optimising: 24 h x LF x peak, optimised / uncontrolled", 1.0,
        round(e_o / e_u, 3), abs(e_o / e_u - 1) < 0.01,
        "the text says the total energy is kept without curtailment")
    for label, var, peak, low, mean in [("uncontrolled", _v(values, "Table 5", "Variance of load", "Unoptimized"), peak_u, min_u, mean_u),
                                        ("optimised", _v(values, "Table 5", "Variance of load", "Optimized"), peak_o, min_o, mean_o)]:
        bound = min_variance_kw2(peak, low, mean)
        add(f"Variance of load, {label} (kW^2) at least the bound", var, round(bound), var >= bound - 1,
            "the least variance of 24 hourly loads with Table 10's peak and LF and the text's minimum")
    for label, dev, peak, low, mean in [("Unoptimized", _v(values, "Table 5", "Max. deviation", "Unoptimized"), peak_u, min_u, mean_u),
                                        ("Optimized", _v(values, "Table 5", "Max. deviation", "Optimized"), peak_o, min_o, mean_o)]:
        bound = max(peak - mean, mean - low)
        add(f"Max. deviation, {label.lower()} (kW) at least the bound", dev, round(bound, 1), dev >= bound - 1,
            "a load at the peak or at the minimum is that far from the mean")

    # Table 9
    w = values[values["table"] == "Table 9"]
    labels = list(dict.fromkeys(w["row"]))
    for label in labels:
        total = sum(float(x) for x in label.split(":"))
        add(f"Table 9 weights {label} sum to 1", 1.0, round(total, 2), abs(total - 1) < 1e-9,
            "Sec. IV-B.VIII: alpha_1 + alpha_2 + alpha_3 = 1")
    col = {c: np.array([_v(values, "Table 9", r, c) for r in labels]) for c in
           ("DR benefit", "Grid stress", "Waiting time", "Fitness value")}
    for (a, b), name in [(("DR benefit", "Grid stress"), "DR benefit - grid stress"),
                         (("DR benefit", "Waiting time"), "DR benefit - wait"),
                         (("Grid stress", "Waiting time"), "grid stress - wait")]:
        claimed = _v(values, "Text", f"Table 9 correlation {name}", "value")
        got = float(np.corrcoef(col[a], col[b])[0, 1])
        add(f"Table 9 correlation {name}", claimed, round(got, 2), np.sign(got) == np.sign(claimed)
            and abs(got - claimed) < 0.1, "Pearson correlation of the table's own columns")
    raw = [sum(float(x) * y for x, y in zip(label.split(":"), (col["DR benefit"][i], -col["Grid stress"][i],
                                                               -col["Waiting time"][i]), strict=True))
           for i, label in enumerate(labels)]
    add("Table 9 fitness from Eq. 9 without normalisation (largest)", float(col["Fitness value"].max()),
        round(max(raw), 1), False,
        "alpha_1 F1 - alpha_2 F2 - alpha_3 F3 is negative in every row, the printed fitness positive; "
        "the normalisation factors are not given")

    # waiting times
    counts = [_v(values, "Text", f"Fig. 3 EVs waiting {b}", "count") for b in ("0-1 h", "1-2 h", "2-3 h", "> 3 h")]
    under_2h = 100 * (counts[0] + counts[1]) / sum(counts)
    claimed = _v(values, "Text", "EVs waiting less than 1.5 h", "share")
    add("Share of EVs waiting under 1.5 h (%) at most the share under 2 h (Fig. 3)", claimed, under_2h,
        claimed <= under_2h, "Fig. 3's histogram has 41 of 50 EVs under 2 h")
    t4, t11 = _v(values, "Table 4", "Waiting time (Maximum)", "Optimal"), _v(values, "Table 11", "Wait time (max)", "Achieved")
    add("Maximum wait, Table 4 = Table 11 (h)", t11, t4, t4 == t11,
        f"Table 11's threshold is {_v(values, 'Table 11', 'Wait time (max)', 'Threshold'):g} h")

    # revenue
    rev = _v(values, "Table 8", "DR revenue", "Optimized")
    share = _v(values, "Text", "DR revenue share", "peak hours 18-21") / 100
    margin = _v(values, "Text", "Fig. 1 peak DR price (18-20 h)", "high") - 0.12
    need = share * rev / margin / 4
    add("Mean load in 18-21 h that the peak-hour DR revenue needs (kW), at most the optimised peak",
        peak_o, round(need, 1), need <= peak_o,
        "68% of $149 at a margin of at most 0.205 - 0.12 $/kWh over 4 h")
    saving = _v(values, "Table 8", "Cost for EV user", "Unoptimized") - _v(values, "Table 8", "Cost for EV user", "Optimized")
    total = _v(values, "Table 8", "Total savings", "Optimized")
    add("Total savings count no transfer twice: user saving + DR revenue ($/day)", total,
        round(saving + rev, 2), False,
        "it adds the users' saving to the revenue they pay the aggregator: a transfer counted twice")
    util = values[(values["table"] == "Table 7") & (values["column"] == "Utilization")]["value"].astype(float)
    add("Average station utilisation, Table 7 (%)", _v(values, "Text", "Average station utilization", "Optimized"),
        round(float(util.mean()), 1), abs(util.mean() - 85) < 1, "the mean of Table 7's column")
    return pd.DataFrame(rows)
