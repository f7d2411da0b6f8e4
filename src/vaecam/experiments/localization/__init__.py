"""Anomaly-localisation evaluation shared by MNIST, UCSD and MVTec: every map, every seed.

One streaming pass per trained model (one per seed) computes every anomaly map of
:mod:`vaecam.maps` on each test batch from one shared forward pass: the reconstruction
baselines, the attention grid (encoder layer x method x activation, the papers' ambiguities)
and the methods beyond the papers. Each map is scored exactly (pixel AUROC, best IoU, AUPRO up to
FPR 0.3, image AUROC from the map's maximum) and kept for the bootstrap over test units
(:mod:`vaecam.metrics.bootstrap`; images, or whole clips of a video set): 95% intervals per
seed. Over seeds every number becomes ``mean ± std`` with the two-level interval of the seed
mean (seeds, then test units, resampled), and every map gets two paired verdicts from it:
against the ``recon-abs`` baseline and against the better of the trivial references
``mean-diff`` and ``random`` (chosen per metric), which every run scores. A map is a win only
when both verdicts are ``better``. Degenerate maps (constant over every image, or the same for
every image) are marked and left out of every mean.

Resolution (``resize``): ``upsample-maps`` compares every map with the masks at the image size;
``downscale-masks`` keeps attention maps at their layer's resolution and reduces the masks
there for pixel AUROC and best IoU (the reproduction's alternative), while AUPRO regions and
image labels always come from the full-size masks (the attention map is enlarged by repeating
its cells for them).

Every report also states the latent health of the model it explains: KL, active units and the
spread of ``mu`` on the test images. A model with no active unit has no latent code left; its
attention rows are marked, since gradients of a constant ``mu`` carry no information.

The package, one concern per module:

- :mod:`.config`: the switches of a run and the grid of settings they expand to;
- :mod:`.evaluation`: every setting of one trained model scored in one streaming pass;
- :mod:`.aggregation`: the seeds' evaluations combined into cells with intervals and verdicts;
- :mod:`.run`: models, devices, the test subset, tuning on training data, every seed evaluated;
- :mod:`.results`: ``results.json``, ``table.md`` and the figures of a run.

:mod:`vaecam.experiments.anomaly` composes them into the one pipeline every dataset runs.
"""
