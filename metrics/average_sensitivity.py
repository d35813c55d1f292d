"""Average sensitivity (Yeh, Hsieh, Suggala, Inouye & Ravikumar, "On the (in)fidelity and sensitivity
of explanations", NeurIPS 2019; Bhatt et al., IJCAI 2020).

Definition: SENS_avg = E_{||delta||_inf <= r} ||Phi(x + delta) - Phi(x)|| (``normalise:
false``) or the same divided by ||Phi(x)|| (``normalise: true``, default, scale-free; see
:mod:`metrics.max_sensitivity` for why), estimated as the mean over the same seeded
perturbations (uniform draws or FGSM iterates) that max-sensitivity maximises over; the
extra ``max_sensitivity`` is that maximum. Same conventions as
:class:`metrics.max_sensitivity.MaxSensitivity`.

``scores``: SENS_avg per sample; lower is better; headline: mean.
"""
from __future__ import annotations

from metrics.max_sensitivity import MaxSensitivity


class AverageSensitivity(MaxSensitivity):
    """Average sensitivity: the mean (relative) change of the explanation under small input perturbations.

    Lower is better; headline: mean. ``needs`` is empty.

    Args:
        **kwargs: ``radius``, ``n_samples``, ``perturbation``, ``batch_size``, ``seed`` and ``normalise`` of
            :class:`~metrics.max_sensitivity.MaxSensitivity`, documented there, with its defaults.
    """

    name = "average_sensitivity"
    average = True
