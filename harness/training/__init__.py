"""Training: the loop, what a trained model does on the data, and the cached trained model of a run.

Public names: :func:`trained_model`, :class:`TrainedModel` and :class:`Retrainer` (:mod:`harness.training.trained`),
:func:`train` and :func:`check_training` (:mod:`harness.training.loop`), :func:`summarise` and
:func:`accuracy` (:mod:`harness.training.evaluation`).
"""
from harness.training.evaluation import accuracy, summarise
from harness.training.loop import augment, check_training, train
from harness.training.trained import Retrainer, TrainedModel, retrained_key, trained_model

__all__ = ["Retrainer", "TrainedModel", "accuracy", "augment", "check_training", "retrained_key", "summarise", "train", "trained_model"]
