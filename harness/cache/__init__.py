"""The content-addressed cache of generated splits, trained models and attributions.

Public names:

* :class:`Store` and :func:`store`: one kind of entry under a cache folder, written
  atomically and computed once under a cross-process lock (:mod:`harness.cache.store`);
* keys (:mod:`harness.cache.keys`, the only place keys are computed): :func:`content_key`,
  :func:`split_key`, :func:`model_key`, :func:`attribution_key`, :func:`config_hash`,
  :func:`target_fingerprint`, :func:`code_version`;
* stages (:mod:`harness.cache.stages`): :func:`cached_split`, :class:`SplitSource` (a split made or loaded only
  when asked for), :func:`cached_attribution_batch`.

``python -m harness.cache list | prune`` (:mod:`harness.cache.maintenance`) lists and prunes it.
"""
from harness.cache.keys import attribution_key, code_version, config_hash, content_key, model_key, split_key, target_fingerprint
from harness.cache.stages import SplitSource, attribution_set_key, batch_seed, cached_attribution_batch, cached_split, mark_attributions_cached
from harness.cache.store import KINDS, Store, store, torch_load, torch_save

__all__ = [
    "KINDS", "SplitSource", "Store", "attribution_key", "attribution_set_key", "batch_seed", "cached_attribution_batch", "cached_split", "code_version",
    "config_hash", "content_key", "mark_attributions_cached", "model_key", "split_key", "store", "target_fingerprint", "torch_load", "torch_save",
]
