"""What every part of dgbench stands on: user-facing errors, the registry class, atomic files
and YAML / JSON reading, dotted keys, downloads with checksums, the device a run computes on."""
