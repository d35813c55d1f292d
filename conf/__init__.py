"""The config tree, which is also the registry: a method, metric, dataset or model exists because its YAML here exists.

``conf/config.yaml`` composes one ``model``, ``dataset`` and ``method`` and a list of
``metric`` entries (plus ``tracking`` and optional ``experiment``); each YAML's ``_target_`` names
the one class it builds, and its values equal that class's Python defaults
(``tests/test_defaults.py``). Installed as a package so Hydra finds it as ``pkg://conf``.
"""
