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
        """Largest ``|dual| / bound`` over the rows after a solve.

        Below 1, the bound ``w`` did not shape this solution. At 1 it may have:
        duals are not unique, so re-solve with a larger ``w`` to tell.
        """
        worst = 0.0
        for r in self.rows.itertuples():
            value = abs(pyo.value(block.dual[r.row]))
            if r.big_m_dual > _EPS:
                worst = max(worst, value / r.big_m_dual)
        return worst


@dataclass
class _Row:
    """One follower row in the form ``a x + h(z) >= 0`` (``kind="ineq"``) or ``= 0`` ("eq")."""

    name: str
    kind: str  # "eq" | "ineq"
    coefs: dict[int, float]  # follower variable index -> a
    expr: object  # the slack (ineq) or residual (eq) as a Pyomo expression
    big_m_primal: float
    dual_bound: float = 0.0
    h_const: float = 0.0  # constant part of h(z)
    h_leader: tuple = ()  # ((leader VarData, coefficient g), ...): h(z) = h_const + sum g z


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
    fvars, cost, rows = _follower_rows(follower, objective, leader_vars, dual_bound)
    _declare_dual_feasibility(block, cost, rows)

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


def _dual_range(row: _Row) -> tuple[float, float]:
    """Derived bounds of a row's dual: ``[-w, w]`` for equalities, ``[0, w]`` otherwise."""
    return (-row.dual_bound, row.dual_bound) if row.kind == "eq" else (0.0, row.dual_bound)


def _declare_dual_feasibility(block: pyo.Block, cost: list[float], rows: list[_Row]) -> None:
    """Duals with their derived bounds and the stationarity of the follower's Lagrangian."""
    block.row = pyo.Set(initialize=range(len(rows)), ordered=True, doc="follower rows")
    block.dual = pyo.Var(
        block.row, bounds=lambda _b, i: _dual_range(rows[i]), doc="dual multiplier of each row"
    )
    by_var: list[list[tuple[int, float]]] = [[] for _ in cost]
    for i, row in enumerate(rows):
        for j, a in row.coefs.items():
            by_var[j].append((i, a))
    block.follower_var = pyo.Set(initialize=range(len(cost)), ordered=True)
    block.eq_stationarity = pyo.Constraint(
        block.follower_var,
        rule=lambda b, j: cost[j] == sum(a * b.dual[i] for i, a in by_var[j]),
        doc="stationarity of the follower's Lagrangian, cf. Kerama (2025) Eq. (16)",
    )


def _follower_rows(follower, objective, leader_vars, dual_bound):
    """The follower's variables, objective coefficients and rows, with derived bounds."""
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
            rows.append(_Row(f"{v.name}:fixed", "eq", {j: 1.0}, v - lb, 0.0, reach[j], -lb))
            continue
        rows.append(_Row(f"{v.name}:lb", "ineq", {j: 1.0}, v - lb, ub - lb, reach[j], -lb))
        rows.append(_Row(f"{v.name}:ub", "ineq", {j: -1.0}, ub - v, ub - lb, reach[j], ub))

    return fvars, cost, rows


def _constraint_rows(
    con: ConstraintData, f_ids: dict[int, int], leader_ids: set[int], w: float
) -> list[_Row]:
    repn = generate_standard_repn(con.body, compute_values=True)
    if not repn.is_linear():
        raise ValueError(f"follower constraint {con.name} is not linear")
    coefs: dict[int, float] = {}
    leader: list[tuple[VarData, float]] = []
    const = lo = hi = float(repn.constant)
    for v, a in zip(repn.linear_vars, repn.linear_coefs, strict=True):
        a = float(a)
        if id(v) in f_ids:
            coefs[f_ids[id(v)]] = coefs.get(f_ids[id(v)], 0.0) + a
        elif id(v) in leader_ids:
            leader.append((v, a))
        elif not v.fixed:
            raise ValueError(
                f"follower constraint {con.name} uses {v.name}, neither a follower nor a leader variable"
            )
        if v.fixed:
            lo += a * v.value
            hi += a * v.value
            const += a * v.value
            continue
        if v.lb is None or v.ub is None:
            raise ValueError(f"{v.name} in {con.name} needs finite bounds for derived big-Ms")
        lo += min(a * v.lb, a * v.ub)
        hi += max(a * v.lb, a * v.ub)
    body = con.body
    if con.equality:
        rhs = float(pyo.value(con.upper))
        return [_Row(con.name, "eq", coefs, body - rhs, 0.0, w, const - rhs, tuple(leader))]
    rows = []
    if con.has_lb():
        lb = float(pyo.value(con.lower))
        rows.append(
            _Row(f"{con.name}:lb", "ineq", coefs, body - lb, max(hi - lb, 0.0), w, const - lb,
                 tuple(leader))
        )
    if con.has_ub():
        ub = float(pyo.value(con.upper))
        neg = {j: -a for j, a in coefs.items()}
        rows.append(
            _Row(f"{con.name}:ub", "ineq", neg, ub - body, max(ub - lo, 0.0), w, ub - const,
                 tuple((v, -g) for v, g in leader))
        )
    return rows


@dataclass(frozen=True)
class LeaderGrid:
    """Leader variables restricted to a binary grid: ``z = lb + step * sum_k 2^k bit_k``."""

    lb: dict[int, float]
    step: dict[int, float]
    bits: dict[int, list[VarData]]


def declare_binary_grid(block: pyo.Block, leader_vars: list[VarData], n_bits: int) -> LeaderGrid:
    """Restrict each leader variable to ``2**n_bits`` evenly spaced values over its bounds.

    With the leader on a grid, the products ``z * y`` of the strong-duality
    condition become products of binaries and bounded duals, which McCormick
    envelopes represent exactly. ``block`` receives ``bit`` and ``eq_grid``.
    """
    if n_bits < 1:
        raise ValueError(f"n_bits={n_bits} must be >= 1")
    index = [(i, k) for i in range(len(leader_vars)) for k in range(n_bits)]
    block.bit = pyo.Var(index, domain=pyo.Binary, doc="binary expansion of the leader's decisions")
    lb, step, bits = {}, {}, {}
    for i, v in enumerate(leader_vars):
        if v.lb is None or v.ub is None:
            raise ValueError(f"leader variable {v.name} needs finite bounds for a grid")
        lb[id(v)] = float(v.lb)
        step[id(v)] = (float(v.ub) - float(v.lb)) / (2**n_bits - 1)
        bits[id(v)] = [block.bit[i, k] for k in range(n_bits)]
    block.eq_grid = pyo.Constraint(
        range(len(leader_vars)),
        rule=lambda b, i: leader_vars[i]
        == lb[id(leader_vars[i])]
        + step[id(leader_vars[i])] * sum(2**k * b.bit[i, k] for k in range(n_bits)),
        doc="leader decision on its grid",
    )
    return LeaderGrid(lb, step, bits)


def declare_strong_duality(
    block: pyo.Block,
    follower: pyo.Block,
    objective: object,
    *,
    grid: LeaderGrid,
    leader_vars: list[VarData] | None = None,
    dual_bound: float | Callable[[ConstraintData], float],
) -> KktInfo:
    """Optimality of the follower by strong duality, instead of complementarity.

    Adds dual feasibility (the same stationarity and derived dual bounds as
    :func:`declare_kkt`) and one inequality, ``c x <= b(z) y``: with primal
    and dual feasibility, weak duality makes it an equality, so ``x`` is
    optimal. The dual objective ``b(z) y`` is bilinear where a leader
    variable ``z`` enters a row; ``z`` must lie on ``grid``
    (:func:`declare_binary_grid`), and each product ``bit * y`` is
    represented exactly by its McCormick envelope over the dual's bounds.
    No binary is added per follower row: the binaries are the grid's.
    Equivalent to :func:`declare_kkt` on the same grid.
    """
    fvars, cost, rows = _follower_rows(follower, objective, leader_vars, dual_bound)
    index = list(range(len(rows)))
    _declare_dual_feasibility(block, cost, rows)
    products = []  # (row, leader id, bit number)
    for i, row in enumerate(rows):
        for v, _g in row.h_leader:
            if id(v) not in grid.bits:
                raise ValueError(f"leader variable {v.name} in {row.name} is not on the grid")
            products += [(i, id(v), k) for k in range(len(grid.bits[id(v)]))]
    block.product = pyo.Set(initialize=range(len(products)), ordered=True)
    block.bit_times_dual = pyo.Var(block.product, doc="bit * dual, McCormick-exact")

    def mccormick(b, p, side):
        i, vid, k = products[p]
        lo, hi = _dual_range(rows[i])
        bit, y, w = grid.bits[vid][k], b.dual[i], b.bit_times_dual[p]
        return {
            0: w <= hi * bit,
            1: w >= lo * bit,
            2: w <= y - lo * (1 - bit),
            3: w >= y - hi * (1 - bit),
        }[side]

    block.ineq_mccormick = pyo.Constraint(block.product, range(4), rule=mccormick)
    where = {(i, vid, k): p for p, (i, vid, k) in enumerate(products)}

    def h_times_dual(i):
        row = rows[i]
        expr = row.h_const * block.dual[i]
        for v, g in row.h_leader:
            vid = id(v)
            expr += g * grid.lb[vid] * block.dual[i]
            expr += g * grid.step[vid] * sum(
                2**k * block.bit_times_dual[where[i, vid, k]] for k in range(len(grid.bits[vid]))
            )
        return expr

    block.dual_objective = pyo.Expression(expr=-sum(h_times_dual(i) for i in index))
    block.ineq_strong_duality = pyo.Constraint(
        expr=objective <= block.dual_objective,
        doc="primal objective <= dual objective: the follower is optimal",
    )
    table = pd.DataFrame(
        [(i, r.name, r.kind, r.big_m_primal, r.dual_bound) for i, r in enumerate(rows)],
        columns=["row", "name", "kind", "big_m_primal", "big_m_dual"],
    )
    return KktInfo(len(fvars), len(rows), 0, table)
