"""Loss terms added to a VAE's own negative ELBO (which lives in each model's ``loss``).

* :mod:`vaecam.losses.factorvae`: the total-correlation penalty of FactorVAE and the loss of its
  discriminator (Kim & Mnih 2018).
* :mod:`vaecam.losses.ad`: the attention disentanglement loss on per-dimension attention maps
  (Liu et al. 2020).
"""
