"""Slow, plain references of the localisation metrics, shared by the metric tests."""

import numpy as np
from scipy import ndimage


def reference_aupro(scores, masks, connectivity=8, max_fpr=0.3, region=None):
    """PRO curve threshold by threshold, integrated up to ``max_fpr`` and normalised (MVTec-AD).

    With a ``region`` (bool, like ``masks``) only its pixels count: anomalous components are
    the components of the anomalous pixels inside it, the FPR counts its normal pixels, and the
    thresholds are its scores.
    """
    if region is None:
        region = np.ones_like(masks, dtype=bool)
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    components = []
    for image, mask in enumerate(masks & region):
        labels, n = ndimage.label(mask, structure=structure)
        components += [(image, labels == k) for k in range(1, n + 1)]
    normal = region & ~masks
    fprs, pros = [0.0], [0.0]
    for t in sorted(set(scores[region].tolist()), reverse=True):
        predicted = scores >= t
        fprs.append(np.sum(predicted & normal) / np.sum(normal))
        pros.append(np.mean([predicted[image][c].mean() for image, c in components]))
    area = 0.0
    for x0, x1, y0, y1 in zip(fprs[:-1], fprs[1:], pros[:-1], pros[1:], strict=True):
        if x0 >= max_fpr:
            break
        if x1 > max_fpr:
            y1 = y0 + (y1 - y0) * (max_fpr - x0) / (x1 - x0)
            x1 = max_fpr
        area += 0.5 * (y0 + y1) * (x1 - x0)
    return area / max_fpr
