"""dgbench: a benchmark harness for feature-level domain-generalization augmenters.

Importing the package is cheap; the registries import torch and the built-ins on first use.
"""

__version__ = "0.1.0"
