"""Benchmarks that measure the running system from outside (``interactvlm bench NAME --json``)."""
