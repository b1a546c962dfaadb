"""Experiment presets: YAML configs, installed as package data of ``dgbench.presets``.

``dgbench run --preset NAME`` reads ``NAME.yaml`` from this folder; ``dgbench run --config``
accepts the same files by path.
"""
