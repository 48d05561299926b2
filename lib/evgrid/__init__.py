"""evgrid: a reproducible research compendium for coordinated EV charging.

The package is the thin library under the notebooks: network loaders
(:mod:`evgrid.networks`), the solver layer (:mod:`evgrid.core.solvers`), validated
notebook parameters (:mod:`evgrid.core.config`), the papermill runner
(:mod:`evgrid.core.run`) and the paper-vs-computed comparison
(:mod:`evgrid.core.compare`).
"""

__version__ = "0.1.0"
