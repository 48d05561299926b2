"""Solution algorithms that are not one paper's (Benders' cuts, metaheuristics), a module each.

An algorithm here works on any model that hands it the right pieces (for
Benders: coupling variables, their values and the subproblems' values); the
paper that uses it builds the models (:mod:`evgrid.papers.kerama2025.decomposition`).
Like :mod:`evgrid.formulations`, it imports only :mod:`evgrid.core` and the
data layers.
"""
