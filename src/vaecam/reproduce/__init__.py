"""``vaecam reproduce``: the whole reproduction of Liu et al. (CVPR 2020) as resumable stages.

* :mod:`~vaecam.reproduce.discover`: which datasets a data folder holds;
* :mod:`~vaecam.reproduce.plan`: the stages of every experiment, in a fixed layout;
* :mod:`~vaecam.reproduce.stages`: running stages once, skipping finished ones, reporting
  failures;
* :mod:`~vaecam.reproduce.report`: ``report.md``, ``report.html`` and ``results.json``.
"""
