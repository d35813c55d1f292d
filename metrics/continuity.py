"""Continuity (Montavon, Samek & Mueller, "Methods for interpreting and understanding deep neural
networks", Digital Signal Processing 2018, section 7.2).

Definition: an explanation is continuous if nearly identical inputs get nearly identical
explanations; Montavon et al. measure it as the strongest variation of the explanation in
the input domain,
  max_{x' near x} || R(x) - R(x') ||_1 / || x - x' ||_2,
a Lipschitz quotient with the L1 norm on the explanation (local Lipschitz,
:mod:`metrics.local_lipschitz`, uses L2 on both). Estimated over the same seeded
perturbations (uniform in an L-inf ball of radius ``radius``, or FGSM iterates), the
explainer re-run on each for the same targets. Quantus's Continuity instead translates
the image and correlates patch sums; that is a different quantity.

Known answer: for R(x) = c x the quotient is |c| ||d||_1 / ||d||_2, between |c| and
|c| sqrt(D) for D input values.

``scores``: the quotient per sample; lower is better; headline: mean. Extra ``mean_ratio``.
On the same perturbations it equals Quantus 0.6's LocalLipschitzEstimate with
``norm_numerator=distance_manhattan`` (tests/metrics/test_quantus_reference.py).
"""
from __future__ import annotations

from metrics.local_lipschitz import LocalLipschitz


class Continuity(LocalLipschitz):
    """Continuity (Montavon et al.): the largest ||R(x) - R(x')||_1 / ||x - x'||_2 over seeded perturbations x' near x.

    Lower is better; headline: mean. ``needs`` is empty.

    Args:
        radius (float, optional): L-inf radius of the perturbations in normalised input units, > 0. Default: 0.1.
        **kwargs: ``n_samples``, ``perturbation``, ``batch_size`` and ``seed`` of
            :class:`~metrics.max_sensitivity.MaxSensitivity`, documented there.
    """

    name = "continuity"
    explanation_norm = 1
