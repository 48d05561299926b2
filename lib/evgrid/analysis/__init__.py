"""Checks of a schedule or a model against the AC truth, and the figures of networks.

* :mod:`~evgrid.analysis.powerflow`: AC power flow and AC OPF of a network,
  pandapower or OpenDSS by the network's ``backend``;
* :mod:`~evgrid.analysis.acverify`: one AC power flow per period of a schedule,
  with voltage and thermal violations;
* :mod:`~evgrid.analysis.distflow_check`: linearised DistFlow against AC;
* :mod:`~evgrid.analysis.plotting`: one-line diagrams and voltage profiles;
* :mod:`~evgrid.analysis.test_systems`: the ``test_systems`` section (notebook 00).

Nothing here knows about a paper.
"""
