"""Running runs: the training loop, checkpoints, the per-epoch history, executing a plan into
a results folder, the record of a finished run, and the launchers (local, Ray, SLURM)."""
