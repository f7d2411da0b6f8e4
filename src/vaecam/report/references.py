"""Published numbers that vaecam's results are printed beside.

Sources:
* "paper": Liu et al., "Towards Visually Explaining Variational Autoencoders", CVPR 2020.
* "reproduction": the reproduction study of that paper (pixel-level numbers from its Figure 4
  and Table 2; dSprites numbers from the public AD-FactorVAE reproduction it describes).
* Kim & Mnih, "Disentangling by Factorising", ICML 2018, for the FactorVAE baseline.
"""

from __future__ import annotations

# UCSD Ped1 pixel AUROC. Reproduction columns: (method, activation).
UCSD_PED1_PIXEL_AUROC: dict[str, dict[str, float]] = {
    "baseline": {"paper": 0.86, "repro 1 relu": 0.82, "repro 1 abs": 0.82,
                 "repro 2 relu": 0.82, "repro 2 abs": 0.82},
    "conv1": {"paper": 0.89, "repro 1 relu": 0.71, "repro 1 abs": 0.70,
              "repro 2 relu": 0.56, "repro 2 abs": 0.59},
    "conv2": {"paper": 0.92, "repro 1 relu": 0.80, "repro 1 abs": 0.78,
              "repro 2 relu": 0.63, "repro 2 abs": 0.69},
    "conv3": {"paper": 0.91, "repro 1 relu": 0.68, "repro 1 abs": 0.73,
              "repro 2 relu": 0.52, "repro 2 abs": 0.64},
}

# MVTec-AD: category -> (AUROC paper, AUROC repro relu, AUROC repro abs,
#                        IoU paper, IoU repro relu, IoU repro abs). Reproduction used method 2.
MVTEC_PIXEL: dict[str, tuple[float, float, float, float, float, float]] = {
    "carpet": (0.78, 0.51, 0.47, 0.10, 0.02, 0.02),
    "grid": (0.73, 0.55, 0.50, 0.02, 0.02, 0.02),
    "leather": (0.95, 0.52, 0.67, 0.24, 0.13, 0.18),
    "tile": (0.80, 0.59, 0.62, 0.23, 0.14, 0.14),
    "wood": (0.77, 0.42, 0.63, 0.14, 0.05, 0.07),
    "bottle": (0.87, 0.53, 0.46, 0.27, 0.08, 0.08),
    "cable": (0.90, 0.50, 0.62, 0.18, 0.05, 0.08),
    "capsule": (0.74, 0.54, 0.69, 0.11, 0.03, 0.04),
    "hazelnut": (0.98, 0.63, 0.75, 0.44, 0.08, 0.09),
    "metal_nut": (0.94, 0.39, 0.46, 0.49, 0.15, 0.15),
    "pill": (0.83, 0.53, 0.60, 0.18, 0.05, 0.06),
    "screw": (0.97, 0.52, 0.51, 0.17, 0.00, 0.00),
    "toothbrush": (0.94, 0.64, 0.65, 0.14, 0.04, 0.03),
    "transistor": (0.93, 0.47, 0.61, 0.30, 0.12, 0.15),
}

# dSprites FactorVAE disentanglement metric.
DSPRITES_FACTORVAE_SCORE: dict[str, str] = {
    "Kim & Mnih FactorVAE (gamma 40, latent 10)": "about 0.82",
    "public reproduction FactorVAE (gamma 40, latent 32, 3e5 it, 3 seeds)": "0.74-0.84",
    "public reproduction AD-FactorVAE (lambda 40)": "0.85-0.86",
}

# Pixel AUROC of other map methods, mean over the 15 MVTec-AD categories, as quoted in the
# project's issue from Dehaene et al., "Iterative energy-based projection on a normal data
# manifold for anomaly localization" (ICLR 2020), whose table compares with the autoencoder
# baselines of Bergmann et al. (CVPR 2019). Means, not per-category numbers: context only.
MVTEC_MAPS_MEAN_PIXEL_AUROC: dict[str, float] = {
    "projection (Dehaene et al. 2020)": 0.89,
    "SSIM autoencoder (Bergmann et al. 2019)": 0.87,
    "L2 autoencoder (Bergmann et al. 2019)": 0.82,
}
