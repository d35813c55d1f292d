"""Metrics of attribution quality: what every ``conf/metric/*.yaml`` names. Uses ``methods``' helpers, never the harness.

Public names:

* the contract: :class:`Metric`, :class:`MetricResult`, :class:`Progress`, :class:`Retrain` (:mod:`metrics.types`,
  :mod:`metrics.result`);
* faithfulness: :class:`Deletion`, :class:`Insertion` (one engine, :mod:`metrics.ablation`, also behind
  :class:`Monotonicity`, :class:`RegionPerturbation`, :class:`Selectivity`, :class:`IROF`),
  :class:`ROAD`, :class:`ROAR` (retrains, through :class:`Retrain`), :class:`Conservation`, :class:`Infidelity`; :class:`FaithfulnessCorrelation`,
  :class:`SensitivityN`, :class:`FaithfulnessEstimate`, :class:`MonotonicityCorrelation` (one engine,
  :mod:`metrics.removal`);
* localisation and background reliance: :class:`SpuriousBackground`, :class:`BackgroundGap`,
  :class:`PointingGame`, :class:`EnergyPointingGame`, :class:`RelevanceMass`, :class:`RelevanceRank`,
  :class:`TopKIntersection`, :class:`AttributionLocalisation`, :class:`LocalisationAUC`;
* robustness, sanity and complexity: :class:`MaxSensitivity`, :class:`AverageSensitivity`, :class:`LocalLipschitz`, :class:`Continuity`,
  :class:`RelativeStability`, :class:`Randomization`, :class:`SmoothMPRT`, :class:`EfficientMPRT`, :class:`RandomLogit`,
  :class:`Sparseness`, :class:`NonSensitivity`, :class:`InputInvariance`, :class:`Sufficiency`,
  :class:`Complexity`, :class:`EffectiveComplexity`.

Modules whose names start with ``_`` are private.
"""
from metrics.attribution_localisation import AttributionLocalisation
from metrics.average_sensitivity import AverageSensitivity
from metrics.background_gap import BackgroundGap
from metrics.complexity import Complexity
from metrics.conservation import Conservation
from metrics.continuity import Continuity
from metrics.deletion import Deletion
from metrics.effective_complexity import EffectiveComplexity
from metrics.efficient_mprt import EfficientMPRT
from metrics.energy_pointing_game import EnergyPointingGame
from metrics.faithfulness_correlation import FaithfulnessCorrelation
from metrics.faithfulness_estimate import FaithfulnessEstimate
from metrics.infidelity import Infidelity
from metrics.input_invariance import InputInvariance
from metrics.insertion import Insertion
from metrics.irof import IROF
from metrics.local_lipschitz import LocalLipschitz
from metrics.localisation_auc import LocalisationAUC
from metrics.max_sensitivity import MaxSensitivity
from metrics.monotonicity import Monotonicity
from metrics.monotonicity_correlation import MonotonicityCorrelation
from metrics.non_sensitivity import NonSensitivity
from metrics.pointing_game import PointingGame
from metrics.random_logit import RandomLogit
from metrics.randomization import Randomization
from metrics.region_perturbation import RegionPerturbation
from metrics.relative_stability import RelativeStability
from metrics.relevance_mass import RelevanceMass
from metrics.relevance_rank import RelevanceRank
from metrics.result import MetricResult
from metrics.road import ROAD
from metrics.roar import ROAR
from metrics.selectivity import Selectivity
from metrics.sensitivity_n import SensitivityN
from metrics.smooth_mprt import SmoothMPRT
from metrics.sparseness import Sparseness
from metrics.spurious_background import SpuriousBackground
from metrics.sufficiency import Sufficiency
from metrics.top_k_intersection import TopKIntersection
from metrics.types import Metric, Progress, Retrain

__all__ = [
    "IROF", "ROAD", "ROAR", "AttributionLocalisation", "AverageSensitivity", "BackgroundGap", "Complexity", "Conservation",
    "Continuity", "Deletion", "EffectiveComplexity", "EfficientMPRT", "EnergyPointingGame", "FaithfulnessCorrelation",
    "FaithfulnessEstimate", "Infidelity", "InputInvariance", "Insertion", "LocalLipschitz", "LocalisationAUC",
    "MaxSensitivity", "Metric", "MetricResult", "Monotonicity", "MonotonicityCorrelation", "NonSensitivity",
    "PointingGame", "Progress", "RandomLogit", "Randomization", "RegionPerturbation", "RelativeStability",
    "RelevanceMass", "RelevanceRank", "Retrain", "Selectivity", "SensitivityN", "SmoothMPRT", "Sparseness", "SpuriousBackground",
    "Sufficiency", "TopKIntersection",
]
