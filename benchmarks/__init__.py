"""The project's benchmarks and the probes that chose a default: each a
module run as `python -m benchmarks.NAME` from the repository root (see
project.yml), each printing what it measured and writing it under metrics/."""
