"""Piecewise-linear approximations of a square, ``x**2``, as Pyomo constraint families.

Both approximations split a range ``[-x_bar, x_bar]`` into ``n_segments``
equal segments (:func:`breakpoints`) and are added to an indexed family: one
variable ``x[i]``, its square's stand-in ``x_sq[i]`` and breakpoints chosen by
the first element of ``i`` (e.g. per line, for every period):

* :func:`declare_square_tangents`: ``x_sq >= `` the tangent of ``x**2`` at
  each segment midpoint, an outer approximation; no binaries, an LP. It is
  tight only where the objective pushes ``x_sq`` down.
* :func:`declare_square_segments`: Eqs. (17)-(19) of Kerama 2025, the chord of
  the segment that a binary selects; ``x_sq`` is then fixed by ``x``, and
  ``|x| <= x_bar`` becomes a hard limit. A MILP.

Either way the error is at most ``(x_bar / n_segments)**2``
(:func:`linearisation_error`). :mod:`evgrid.formulations.distflow` uses both
for the squared line flows of its losses.

``x`` may be in another unit than its breakpoints: ``x / scale`` is what is
squared (DistFlow keeps flows in kW and their squares in pu^2, ``scale`` kW
per pu).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import pyomo.environ as pyo

__all__ = [
    "breakpoints",
    "check_n_segments",
    "declare_square_segments",
    "declare_square_tangents",
    "linearisation_error",
]


def check_n_segments(n_segments: int) -> None:
    """Raise ``ValueError`` unless ``n_segments`` is an integer >= 1."""
    if (
        isinstance(n_segments, bool)
        or not isinstance(n_segments, int | np.integer)
        or n_segments < 1
    ):
        raise ValueError(f"n_segments={n_segments!r} must be an integer >= 1")


def linearisation_error(n_segments: int, p_bar: float) -> float:
    """Largest error of the piecewise-linear approximations of ``x**2`` on ``[-p_bar, p_bar]``.

    Both approximations split ``[-p_bar, p_bar]`` into ``n_segments`` equal
    segments of width ``h = 2 p_bar / n_segments``:

    * the chord (interpolation) of :func:`declare_square_segments` lies above
      ``x**2`` by ``(x - a)(b - x)`` on a segment ``[a, b]``, at most
      ``h**2 / 4`` at its midpoint;
    * the tangents of :func:`declare_square_tangents`, taken at the segment
      midpoints, lie below ``x**2`` by ``(x - m)**2``, at most
      ``(h / 2)**2 = h**2 / 4`` at the segment ends (adjacent tangents cross
      at the shared end).

    Either way the error is ``h**2 / 4 = (p_bar / n_segments)**2``, falling as
    ``1 / n_segments**2``. (The often-quoted ``(p_bar / n)**2 / 4`` is the same
    formula for ``n`` segments of width ``p_bar / n``, i.e. on ``[0, p_bar]``.)

    Parameters
    ----------
    n_segments : int
        Number of segments, >= 1.
    p_bar : float
        Half-width of the approximated range, > 0, in the unit of ``x``.

    Returns
    -------
    float
        The largest absolute error, in the unit of ``x**2``.
    """
    check_n_segments(n_segments)
    if not (math.isfinite(p_bar) and p_bar > 0):
        raise ValueError(f"p_bar={p_bar!r} must be a finite number > 0")
    return (p_bar / n_segments) ** 2


def breakpoints(n_segments: int, half_width: float) -> np.ndarray:
    """``n_segments + 1`` equally spaced breakpoints of ``[-half_width, half_width]``."""
    return np.linspace(-half_width, half_width, n_segments + 1)


def declare_square_tangents(
    block: pyo.Block,
    name: str,
    x: pyo.Var,
    x_sq: pyo.Var,
    over: tuple[pyo.Set, ...],
    segments: pyo.Set,
    points: Mapping[Hashable, np.ndarray],
    *,
    scale: float = 1.0,
    doc: str = "",
) -> None:
    """Add ``x_sq[i] >= 2 m_l x[i] / scale - m_l**2`` at each segment midpoint ``m_l``.

    Parameters
    ----------
    block : pyomo.environ.Block
        Where the constraint goes, as component ``name``.
    x, x_sq : pyomo.environ.Var
        Indexed by ``over``: the variable and the stand-in for ``(x / scale)**2``.
    over : tuple of pyomo.environ.Set
        The index sets of ``x``; the constraint is indexed by them and ``segments``.
    segments : pyomo.environ.Set
        Segment numbers ``1..n``.
    points : mapping
        Breakpoints (:func:`breakpoints`, in the unit of ``x / scale``) by the
        first element of the index.
    """

    def _tangent(_m: pyo.Block, *index: Any) -> Any:
        *key, seg = index
        key = tuple(key)
        mid = 0.5 * (points[key[0]][seg - 1] + points[key[0]][seg])
        return x_sq[key] >= 2.0 * mid * x[key] / scale - mid**2

    block.add_component(name, pyo.Constraint(*over, segments, rule=_tangent, doc=doc))


def declare_square_segments(
    block: pyo.Block,
    quantity: str,
    element: str,
    unit: str,
    x: pyo.Var,
    x_sq: pyo.Var,
    over: tuple[pyo.Set, ...],
    segments: pyo.Set,
    points: Mapping[Hashable, np.ndarray],
    *,
    scale: float = 1.0,
    symbol: str = "x",
) -> None:
    """Eqs. (17)-(19) of Kerama 2025: ``x_sq`` is the chord of the segment a binary selects.

    Eq. (17) as printed, ``P^2 ~ sum_l alpha^l u^l``, is a staircase in the
    binaries alone; we read ``alpha^l`` as the chord of segment ``l``
    (intercept and slope), the usual multiple-choice model: ``x`` is split
    into per-segment parts ``s_l`` with ``a_l u_l <= s_l <= c_l u_l`` on
    segment ``[a_l, c_l]``, and ``x_sq ~ sum_l ((a_l + c_l) s_l - a_l c_l u_l)``.

    Adds, for ``quantity`` ``"p"``, ``element`` ``"line"`` and ``unit``
    ``"kW"``: binaries ``u_p_segment``, parts ``p_segment_kw`` (indexed by
    ``over`` and ``segments``) and the constraints ``ineq_p_segment_line_lb``,
    ``ineq_p_segment_line_ub``, ``eq_p_flow_segments_line`` (``x`` is the sum
    of its parts), ``eq_p_segment_choice_line`` (Eq. (18)) and
    ``eq_p_flow_sq_line`` (Eq. (17)). ``points`` and ``scale`` as in
    :func:`declare_square_tangents`; ``symbol`` names ``x`` in the docs.
    """
    u = pyo.Var(
        *over,
        segments,
        within=pyo.Binary,
        doc=f"Eq. (19): u^l = 1 selects the segment l that holds {symbol}",
    )
    part = pyo.Var(*over, segments, doc=f"Part of {symbol} in segment l, 0 unless u^l = 1 [{unit}]")
    block.add_component(f"u_{quantity}_segment", u)
    block.add_component(f"{quantity}_segment_{unit.lower()}", part)

    def _part_lb(_m: pyo.Block, *index: Any) -> Any:
        return part[index] >= points[index[0]][index[-1] - 1] * scale * u[index]

    def _part_ub(_m: pyo.Block, *index: Any) -> Any:
        return part[index] <= points[index[0]][index[-1]] * scale * u[index]

    def _sum(_m: pyo.Block, *key: Any) -> Any:
        return x[key] == sum(part[(*key, seg)] for seg in segments)

    def _choice(_m: pyo.Block, *key: Any) -> Any:
        return sum(u[(*key, seg)] for seg in segments) == 1

    def _square(_m: pyo.Block, *key: Any) -> Any:
        chords = []
        for seg in segments:
            a, c = points[key[0]][seg - 1], points[key[0]][seg]
            chords.append((a + c) * part[(*key, seg)] / scale - a * c * u[(*key, seg)])
        return x_sq[key] == sum(chords)

    by_segment = (*over, segments)
    block.add_component(
        f"ineq_{quantity}_segment_{element}_lb",
        pyo.Constraint(*by_segment, rule=_part_lb, doc="Part l >= lower end of l times u^l"),
    )
    block.add_component(
        f"ineq_{quantity}_segment_{element}_ub",
        pyo.Constraint(*by_segment, rule=_part_ub, doc="Part l <= upper end of l times u^l"),
    )
    block.add_component(
        f"eq_{quantity}_flow_segments_{element}",
        pyo.Constraint(*over, rule=_sum, doc=f"{symbol} is the sum of its segment parts"),
    )
    block.add_component(
        f"eq_{quantity}_segment_choice_{element}",
        pyo.Constraint(*over, rule=_choice, doc="Eq. (18): sum_l u^l = 1"),
    )
    block.add_component(
        f"eq_{quantity}_flow_sq_{element}",
        pyo.Constraint(
            *over,
            rule=_square,
            doc=f"Eq. (17): ({symbol} / S_base)^2 ~ the chord of the selected segment l",
        ),
    )
