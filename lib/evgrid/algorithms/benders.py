"""Cuts of a Benders decomposition over binary coupling variables (integer L-shaped method).

The master problem holds binary coupling variables ``y`` and one estimate
``theta[s]`` per subproblem; each iteration fixes ``y`` at a 0/1 point
``hat`` and adds cuts built here from what the subproblems returned:

* :func:`integer_optimality_cut`: Laporte & Louveaux's (1993) optimality cut,
  exact at ``hat``;
* :func:`no_good_cut`: excludes ``hat`` (a point at which a subproblem is
  infeasible).

G. Laporte and F. V. Louveaux, "The integer L-shaped method for stochastic
integer programs with complete recourse", Operations Research Letters 13(3),
1993.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["integer_optimality_cut", "no_good_cut"]


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
