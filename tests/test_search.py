"""Random search and differential evolution on a fixed evaluation budget (evgrid.algorithms.search)."""

import numpy as np
import pytest

from evgrid.algorithms.search import differential_evolution_minimise, random_search_minimise


def shifted_sphere(x):
    return ((x - 3.0) ** 2).sum(axis=1)


LO, HI = np.full(10, -10.0), np.full(10, 10.0)


@pytest.mark.parametrize("method", [random_search_minimise, differential_evolution_minimise])
def test_each_spends_exactly_its_budget_and_is_seeded(method):
    calls = []

    def f(x):
        calls.append(len(x))
        return shifted_sphere(x)

    a = method(f, LO, HI, budget=2550, seed=4)
    assert a.evaluations == sum(calls) == 2550
    b = method(shifted_sphere, LO, HI, budget=2550, seed=4)
    assert a.fitness == b.fitness and np.array_equal(a.x, b.x)
    assert np.all(np.diff(a.history) <= 0)
    assert a.fitness == pytest.approx(shifted_sphere(a.x[None, :])[0])
    assert np.all((a.x >= LO) & (a.x <= HI))


def test_differential_evolution_beats_random_search_on_a_shifted_sphere():
    de = np.median([differential_evolution_minimise(shifted_sphere, LO, HI, budget=2550, seed=s).fitness
                    for s in range(3)])
    rs = np.median([random_search_minimise(shifted_sphere, LO, HI, budget=2550, seed=s).fitness
                    for s in range(3)])
    assert de < 1.0 < 10.0 < rs


def test_bad_budgets_and_boxes_are_refused():
    with pytest.raises(ValueError, match="budget"):
        random_search_minimise(shifted_sphere, LO, HI, budget=0, seed=0)
    with pytest.raises(ValueError, match="population"):
        differential_evolution_minimise(shifted_sphere, LO, HI, budget=60, seed=0)
    with pytest.raises(ValueError, match="lower <= upper"):
        random_search_minimise(shifted_sphere, HI, LO, budget=10, seed=0)
