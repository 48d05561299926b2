"""Single-level reformulation of a linear follower problem by its KKT conditions.

A bilevel model whose follower is an LP in its own variables ``x``, with the
leader's variables ``z`` appearing only linearly in the follower's
constraints, is replaced by one MILP: the follower's constraints (primal
feasibility) plus, added here, dual feasibility, stationarity and
complementarity linearised with one binary per inequality (Fortuny-Amat &
McCarl 1981).

Big-M values are derived, never guessed (Pineda & Morales, "Solving linear
bilevel problems using big-Ms: not all that glitters is gold", IEEE TPWRS
34(3), 2019, show what guessed values do):

* **primal** ``M`` of a row is the largest value its slack can take over the
  variable bounds (interval arithmetic), so every variable of the follower and
  every leader variable in its constraints needs finite bounds;
* **dual** bounds of the follower's constraint rows are the caller's
  ``dual_bound``, ``w``: the duals are required to satisfy ``|y| <= w``. This
  is exactly the KKT system of the *elastic* follower, which may violate each
  row at a penalty ``w`` per unit, with the violation forced to zero. Any
  follower response the MILP returns is therefore optimal for the real
  follower (it is feasible for it and optimal for a relaxation of it). The
  bound can only remove leader decisions under which the follower would value
  a unit of some constraint at more than ``w``; :class:`KktInfo` reports how
  close the duals came to it, so a binding bound is visible;
* **bound duals** of a variable ``x_j`` with ``lb < ub`` then follow from
  stationarity: at most one of the two is positive and it equals
  ``|c_j - sum_i a_ij y_i| <= |c_j| + sum_i |a_ij| w_i``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pyomo.environ as pyo
from pyomo.core.base.constraint import ConstraintData
from pyomo.core.base.var import VarData
from pyomo.repn import generate_standard_repn

_EPS = 1e-12


@dataclass(frozen=True)
class KktInfo:
    """What :func:`declare_kkt` added: sizes and the big-M of every row."""

    n_follower_vars: int
    n_rows: int
    n_binaries: int
    rows: pd.DataFrame  # row, kind, big_m_primal, big_m_dual

    def dual_usage(self, block: pyo.Block) -> float:
        """Largest ``|dual| / bound`` over the rows after a solve (1 means a bound binds)."""
        worst = 0.0
        for r in self.rows.itertuples():
            value = abs(pyo.value(block.dual[r.row]))
            if r.big_m_dual > _EPS:
                worst = max(worst, value / r.big_m_dual)
        return worst


@dataclass
class _Row:
    name: str
    kind: str  # "eq" | "ineq"
    coefs: dict[int, float]  # follower variable id -> coefficient in the ">= 0" / "= 0" form
    expr: object  # the slack (ineq) or residual (eq) as a Pyomo expression
    big_m_primal: float
    dual_bound: float = 0.0


def declare_kkt(
    block: pyo.Block,
    follower: pyo.Block,
    objective: object,
    *,
    leader_vars: list[VarData] | None = None,
    dual_bound: float | Callable[[ConstraintData], float],
) -> KktInfo:
    """Add the KKT conditions of ``min objective`` over ``follower`` to ``block``.

    Parameters
    ----------
    block : pyomo Block
        An empty block of the single-level model; receives ``dual``,
        ``is_active`` (binaries), ``eq_stationarity`` and the complementarity
        constraints ``ineq_slack_ub`` / ``ineq_dual_ub``.
    follower : pyomo Block
        Holds the follower's variables and constraints (both stay in the
        model as primal feasibility). Its unfixed variables are the follower's
        decisions; they must be continuous with finite bounds.
    objective : expression
        The follower's objective, *minimised*, linear in its variables.
    leader_vars : list of VarData
        Variables outside ``follower`` allowed in its constraints (right-hand
        sides); they need finite bounds. Any other outside variable is an error.
    dual_bound : float or callable
        ``w`` for each follower constraint (see the module docstring).

    Raises
    ------
    ValueError
        A nonlinear row or objective, an unbounded variable, or an unknown
        outside variable.
    """
    fvars = [v for v in follower.component_data_objects(pyo.Var, descend_into=True) if not v.fixed]
    for v in fvars:
        if not v.is_continuous():
            raise ValueError(f"follower variable {v.name} is not continuous: KKT needs an LP")
        if v.lb is None or v.ub is None:
            raise ValueError(f"follower variable {v.name} needs finite bounds for derived big-Ms")
    f_ids = {id(v): i for i, v in enumerate(fvars)}
    leader_ids = {id(v) for v in leader_vars or []}
    for v in leader_vars or []:
        if v.lb is None or v.ub is None:
            raise ValueError(f"leader variable {v.name} needs finite bounds for derived big-Ms")
    bound_of = dual_bound if callable(dual_bound) else (lambda _c, w=float(dual_bound): w)

    cost = [0.0] * len(fvars)
    repn = generate_standard_repn(objective, compute_values=True)
    if not repn.is_linear():
        raise ValueError("the follower objective must be linear")
    for v, c in zip(repn.linear_vars, repn.linear_coefs, strict=True):
        if id(v) not in f_ids:
            raise ValueError(f"the follower objective uses {v.name}, which is not a follower variable")
        cost[f_ids[id(v)]] += float(c)

    rows: list[_Row] = []
    for con in follower.component_data_objects(pyo.Constraint, active=True, descend_into=True):
        rows.extend(_constraint_rows(con, f_ids, leader_ids, bound_of(con)))

    # Structural duals are bounded by w; bound duals follow from stationarity.
    reach = [abs(c) for c in cost]
    for row in rows:
        for j, a in row.coefs.items():
            reach[j] += abs(a) * row.dual_bound
    for j, v in enumerate(fvars):
        lb, ub = float(v.lb), float(v.ub)
        if ub - lb <= _EPS:
            rows.append(_Row(f"{v.name}:fixed", "eq", {j: 1.0}, v - lb, 0.0, reach[j]))
            continue
        rows.append(_Row(f"{v.name}:lb", "ineq", {j: 1.0}, v - lb, ub - lb, reach[j]))
        rows.append(_Row(f"{v.name}:ub", "ineq", {j: -1.0}, ub - v, ub - lb, reach[j]))

    index = list(range(len(rows)))
    block.row = pyo.Set(initialize=index, ordered=True, doc="follower rows (constraints and bounds)")
    block.dual = pyo.Var(
        block.row,
        bounds=lambda _b, i: (
            (-rows[i].dual_bound, rows[i].dual_bound) if rows[i].kind == "eq" else (0.0, rows[i].dual_bound)
        ),
        doc="dual multiplier of each follower row; derived bounds",
    )

    by_var: list[list[tuple[int, float]]] = [[] for _ in fvars]
    for i, row in enumerate(rows):
        for j, a in row.coefs.items():
            by_var[j].append((i, a))
    block.follower_var = pyo.Set(initialize=range(len(fvars)), ordered=True)
    block.eq_stationarity = pyo.Constraint(
        block.follower_var,
        rule=lambda b, j: cost[j] == sum(a * b.dual[i] for i, a in by_var[j]),
        doc="stationarity of the follower's Lagrangian, cf. Kerama (2025) Eq. (16)",
    )

    complementary = [
        i for i, r in enumerate(rows)
        if r.kind == "ineq" and r.big_m_primal > _EPS and r.dual_bound > _EPS
    ]
    # A row whose slack is always zero needs no binary; one whose dual is
    # bounded at zero needs none either.
    for i, r in enumerate(rows):
        if r.kind == "ineq" and r.dual_bound <= _EPS:
            block.dual[i].fix(0.0)
    block.comp_row = pyo.Set(initialize=complementary, ordered=True)
    block.is_active = pyo.Var(block.comp_row, domain=pyo.Binary, doc="1: row binding, dual free")
    block.ineq_slack_ub = pyo.Constraint(
        block.comp_row,
        rule=lambda b, i: rows[i].expr <= rows[i].big_m_primal * (1 - b.is_active[i]),
        doc="complementarity, slack side: slack <= M_primal (1 - u)",
    )
    block.ineq_dual_ub = pyo.Constraint(
        block.comp_row,
        rule=lambda b, i: b.dual[i] <= rows[i].dual_bound * b.is_active[i],
        doc="complementarity, dual side: dual <= M_dual u",
    )
    table = pd.DataFrame(
        [(i, r.name, r.kind, r.big_m_primal, r.dual_bound) for i, r in enumerate(rows)],
        columns=["row", "name", "kind", "big_m_primal", "big_m_dual"],
    )
    return KktInfo(len(fvars), len(rows), len(complementary), table)


def _constraint_rows(
    con: ConstraintData, f_ids: dict[int, int], leader_ids: set[int], w: float
) -> list[_Row]:
    repn = generate_standard_repn(con.body, compute_values=True)
    if not repn.is_linear():
        raise ValueError(f"follower constraint {con.name} is not linear")
    coefs: dict[int, float] = {}
    lo = hi = float(repn.constant)
    for v, a in zip(repn.linear_vars, repn.linear_coefs, strict=True):
        a = float(a)
        if id(v) in f_ids:
            coefs[f_ids[id(v)]] = coefs.get(f_ids[id(v)], 0.0) + a
        elif id(v) not in leader_ids and not v.fixed:
            raise ValueError(
                f"follower constraint {con.name} uses {v.name}, neither a follower nor a leader variable"
            )
        if v.fixed:
            lo += a * v.value
            hi += a * v.value
            continue
        if v.lb is None or v.ub is None:
            raise ValueError(f"{v.name} in {con.name} needs finite bounds for derived big-Ms")
        lo += min(a * v.lb, a * v.ub)
        hi += max(a * v.lb, a * v.ub)
    body = con.body
    if con.equality:
        rhs = float(pyo.value(con.upper))
        return [_Row(con.name, "eq", coefs, body - rhs, 0.0, w)]
    rows = []
    if con.has_lb():
        lb = float(pyo.value(con.lower))
        rows.append(_Row(f"{con.name}:lb", "ineq", coefs, body - lb, max(hi - lb, 0.0), w))
    if con.has_ub():
        ub = float(pyo.value(con.upper))
        neg = {j: -a for j, a in coefs.items()}
        rows.append(_Row(f"{con.name}:ub", "ineq", neg, ub - body, max(ub - lo, 0.0), w))
    return rows
