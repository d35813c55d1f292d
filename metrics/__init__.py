"""Metrics of attribution quality: what every ``conf/metric/*.yaml`` names. Uses ``methods``' helpers, never the harness.

Public names:

* the contract: :class:`Metric`, :class:`MetricResult`, :class:`Progress` (:mod:`metrics.types`,
  :mod:`metrics.result`);
* faithfulness: :class:`Deletion`, :class:`Insertion` (one engine, :mod:`metrics.ablation`),
  :class:`ROAD`, :class:`Conservation`, :class:`Infidelity`;
* localisation and background reliance: :class:`SpuriousBackground`, :class:`BackgroundGap`,
  :class:`PointingGame`, :class:`RelevanceMass`, :class:`RelevanceRank`;
* robustness, sanity and complexity: :class:`MaxSensitivity`, :class:`Randomization`, :class:`Sparseness`.

Modules whose names start with ``_`` are private.
"""
from metrics.background_gap import BackgroundGap
from metrics.conservation import Conservation
from metrics.deletion import Deletion
from metrics.infidelity import Infidelity
from metrics.insertion import Insertion
from metrics.max_sensitivity import MaxSensitivity
from metrics.pointing_game import PointingGame
from metrics.randomization import Randomization
from metrics.relevance_mass import RelevanceMass
from metrics.relevance_rank import RelevanceRank
from metrics.result import MetricResult
from metrics.road import ROAD
from metrics.sparseness import Sparseness
from metrics.spurious_background import SpuriousBackground
from metrics.types import Metric, Progress

__all__ = [
    "ROAD", "BackgroundGap", "Conservation", "Deletion", "Infidelity", "Insertion", "MaxSensitivity", "Metric",
    "MetricResult", "PointingGame", "Progress", "Randomization", "RelevanceMass", "RelevanceRank", "Sparseness",
    "SpuriousBackground",
]
