"""How contact is drawn on meshes in figures and exported PLYs: light grey (no contact) to red (contact)."""

from __future__ import annotations

import numpy as np

LOW = np.array([0.82, 0.82, 0.86])   # no contact: light grey
HIGH = np.array([0.85, 0.05, 0.05])  # contact: red


def contact_colors(probs: np.ndarray) -> np.ndarray:
    """Per-vertex RGB in [0,1]: grey (0) to red (1)."""
    p = np.clip(np.nan_to_num(np.asarray(probs, np.float32)), 0, 1)[:, None]
    return (1 - p) * LOW + p * HIGH
