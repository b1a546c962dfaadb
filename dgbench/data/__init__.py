"""Data, knowing no model: the dataset base classes (``base``, ``reid``), the protocols that
split datasets into runs (``protocols``), the samplers and loaders that feed training, the
decoded-image cache, and the generated re-identification stand-in (``synthreid``)."""
