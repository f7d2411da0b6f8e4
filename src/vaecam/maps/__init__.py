"""Anomaly maps behind one interface: ``(model, images) -> (B, H, W)`` at the image size.

One module per method (as pytorch-grad-cam lays out its CAMs), each registered by its CLI name:

* ``recon-abs``, ``recon-sq``, ``ssim``: reconstruction-error baselines (:mod:`.reconstruction`);
* ``mean-diff``, ``random``: trivial references that need no model, ``|x - mean training image|``
  (:mod:`.mean_diff`) and seeded noise (:mod:`.random_map`);
* ``attention``: Grad-CAM attention of Liu et al. 2020, one setting (:mod:`.attention`);
* ``grad-elbo``, ``grad-kl``, ``grad-recon``: input gradients of the negative ELBO and its
  terms, Zimmerer et al. 2019 (:mod:`.gradients`);
* ``combi``: reconstruction error x smoothed normalised KL gradient, Zimmerer et al. 2019
  (:mod:`.combi`);
* ``attention-x-recon``: reconstruction error weighted by attention (:mod:`.attention_x_recon`);
* ``projection``: iterative energy-based projection, Dehaene et al. 2020 (:mod:`.projection`;
  expensive: about ``steps`` forward + backward passes per batch).

```python
from vaecam.maps import compute_maps, parse_maps
from vaecam.maps.mean_diff import mean_image

methods = parse_maps("cheap,projection", {"projection": {"steps": 5},
                                          "mean-diff": {"mean_image": mean_image(train_loader)}})
maps = compute_maps(vae, images, methods)   # label -> (B, H, W), one shared forward pass
grad_kl = build_map("grad-kl", smooth_sigma=0)(vae, images)
```

Adding a method is adding a module with an :class:`AnomalyMap` subclass decorated with
:func:`register_map`. What a localisation run needs to know about it lives on the class: its
``summary`` (the ``--maps`` help), whether it ``reads_latent`` (marked on a collapsed model), its
``tuning_options`` (chosen on training data), and how it expands into settings
(:meth:`AnomalyMap.settings`, :meth:`AnomalyMap.candidates`; attention into its grid). A
setting's identity is a :class:`~vaecam.maps.setting.Setting`, whose ``label()`` names its rows
in ``results.json`` and the tables::

    @register_map
    class InkMap(AnomalyMap):
        name = "ink"
        summary = "pixel brightness"
        needs_decoder = False

        def compute(self, cache: ForwardCache) -> Tensor:
            return cache.images.mean(dim=1)
"""

from vaecam.maps.base import AnomalyMap, ForwardCache, compute_maps
from vaecam.maps.registry import (
    ALL,
    CHEAP,
    available_maps,
    build_map,
    cheap_maps,
    parse_maps,
    register_map,
)
from vaecam.maps.setting import Setting

__all__ = [
    "ALL",
    "CHEAP",
    "AnomalyMap",
    "ForwardCache",
    "available_maps",
    "build_map",
    "cheap_maps",
    "compute_maps",
    "parse_maps",
    "register_map",
    "Setting",
]
