"""Parity with the authors' InteractVLM code on committed golden outputs (issue 19).

``seeded`` (weights drawn from seeds derived from each tensor's name) and ``inputs`` (the synthetic image,
renders and pixel->vertex maps) depend on numpy only, so the reference side (``make_golden.py`` next to the
fixtures, run under transformers 4.31) loads them by file path and builds exactly the same model and inputs.
``check`` writes the official-layout release directories from the fixtures, runs the project on every mode and
compares each stage with the golden outputs (``interactvlm model parity``).
"""
