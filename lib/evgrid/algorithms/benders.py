"""Cuts of a Benders decomposition over binary coupling variables (integer L-shaped method).

The master problem holds binary coupling variables ``y`` and one estimate
``theta[s]`` per subproblem; each iteration fixes ``y`` at a 0/1 point
``hat`` and adds cuts built here from what the subproblems returned:

* :func:`integer_optimality_cut`: Laporte & Louveaux's (1993) optimality cut,
  exact at ``hat``;
* :func:`feasibility_cut`: from a subproblem that is infeasible at ``hat``,
  the linearisation of its distance to feasibility, a convex function of
  ``y`` that is zero wherever the subproblem is feasible (the dual
  information of the infeasible LP, as in Benders' feasibility cuts);
* :func:`no_good_cut`: excludes ``hat`` alone, whatever the subproblem says
  (needed only where a feasibility cut cannot: see there).

G. Laporte and F. V. Louveaux, "The integer L-shaped method for stochastic
integer programs with complete recourse", Operations Research Letters 13(3),
1993.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["feasibility_cut", "integer_optimality_cut", "no_good_cut"]


def integer_optimality_cut(theta: Any, bits: Sequence[Any], hat: Sequence[int], value: float,
                           lower: float) -> Any:
    """Laporte & Louveaux's (1993) integer L-shaped optimality cut, as a Pyomo inequality.

    ``theta >= lower + (value - lower) * (sum_{hat=1} bit - sum_{hat=0} bit - |hat=1| + 1)``:
    at ``hat`` the bracket is 1 and the cut says ``theta >= value`` (the
    subproblem's exact cost there); at any other 0/1 point the bracket is at
    most 0, and the cut asks no more than ``lower``, a bound valid at every
    point (e.g. a relaxation's). A cut from reduced costs comes from the
    subproblem with the bits relaxed, which may be weak between 0/1 points;
    this one is what makes Benders exact on them.
    """
    ones = sum(hat)
    agree = sum(b if h else -b for b, h in zip(bits, hat, strict=True))
    return theta >= lower + (value - lower) * (agree - ones + 1)


def no_good_cut(bits: Sequence[Any], hat: Sequence[int]) -> Any:
    """``sum_{hat=1} (1 - bit) + sum_{hat=0} bit >= 1``: any 0/1 point but ``hat``."""
    return sum(1 - b if h else b for b, h in zip(bits, hat, strict=True)) >= 1


def feasibility_cut(bits: Sequence[Any], hat: Sequence[int], distance: float,
                    subgradient: Sequence[float]) -> Any:
    """Benders' feasibility cut ``distance + sum g_i (bit_i - hat_i) <= 0``, as a Pyomo inequality.

    ``distance`` is ``F(hat)``, the optimum of a feasibility subproblem: the
    least weighted L1 distance from ``hat`` to a ``y`` (with ``y`` relaxed to
    ``[0, 1]``) at which the subproblem's constraints hold; ``subgradient`` is
    ``dF/dhat``, the duals of ``y = hat`` (the reduced costs of ``hat`` fixed
    by bounds). ``F`` is the value function of an LP in its right-hand side,
    so it is convex and lies above each of its linearisations; at a 0/1 point
    where the subproblem is feasible ``F`` is 0, so the cut keeps every such
    point, and at ``hat`` it reads ``F(hat) <= 0``, which excludes it. This is
    the classical cut from the dual ray of an infeasible LP (Benders 1962),
    made robust by measuring infeasibility in the linking variables only.

    A relaxed subproblem that is feasible at ``hat`` (``distance`` zero, up to
    the solver's tolerance) while the exact one is not cannot give a valid
    cut; :func:`no_good_cut` is then the fallback.
    """
    return distance + sum(g * (b - h) for b, h, g in zip(bits, hat, subgradient, strict=True)) <= 0
