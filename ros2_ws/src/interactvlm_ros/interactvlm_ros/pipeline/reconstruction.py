"""The pipeline's reconstruction step (``recon.enabled``): one :class:`~interactvlm_ros.recon.scene.Reconstructor`
kept across frames (keypoint worker, person tracks: warm starts and stable body ids), and failures turned into
a reason instead of an exception, so the frame's contacts are still published (the node: with the fixed
placement) and the reason is reported.

A missing or broken MediaPipe environment (``KeypointError``) is retried at most every ``RETRY_S`` seconds
(starting the worker costs about a second); other failures (no person, bad depth or camera info) are per frame.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

LOG = logging.getLogger("interactvlm.pipeline")

RETRY_S = 10.0
"""Seconds between attempts to (re)start a MediaPipe worker that failed."""


@dataclass
class ReconAttempt:
    """One frame's outcome: the reconstruction (``None`` when skipped), the primary person (the one carrying the
    model's contacts) and, when skipped, why."""

    reconstruction: Any | None
    primary: Any | None
    reason: str = ""
    ms: float = 0.0


class ReconStage:
    """Reconstruct frames in the camera frame for the node; ``run()`` never raises for a bad frame.

    Args:
        cfg: the node parameters (``recon.*``, ``camera.default_fov_deg``, ``contact.threshold``).
        body_model: the predictor's body model (shared, so contacts transfer by vertex index), or None to load.
        library: the node's ``ObjectLibrary`` (or None to load).
        num_body_vertices: vertex count of the published body topology (a mismatch is a skipped frame).
        track: keep person tracks across frames (a camera stream); False for unrelated single images.
    """

    def __init__(self, cfg: Mapping[str, Any], body_model=None, library=None, num_body_vertices: int = 0,
                 track: bool = True) -> None:
        from interactvlm_ros.recon.scene import Reconstructor

        self.reconstructor = Reconstructor(cfg, body=body_model, library=library)
        self.num_body_vertices = int(num_body_vertices)
        self.track = bool(track)
        self.reconstructed = 0
        self.skipped = 0
        self.last_reason = ""
        self.last_failure_time: float | None = None
        self._retry_after = 0.0
        self._retry_reason = ""
        self._ms: deque[float] = deque(maxlen=64)

    def run(self, rgb: np.ndarray, result, K: np.ndarray | None, depth: np.ndarray | None,
            people: list | None = None) -> ReconAttempt:
        """Reconstruct one frame: ``rgb`` uint8 ``[H,W,3]``, ``result`` the frame's ``ContactResult``, ``K [3,3]``
        from the synced CameraInfo (None: ``camera.default_fov_deg``), ``depth [H,W]`` metres or None; ``people``:
        the frame's keypoints when already detected (the person gate's request), else MediaPipe runs here."""
        from interactvlm_ros.recon.keypoints import KeypointError

        now = time.monotonic()
        if now < self._retry_after and people is None:
            return self._skip(self._retry_reason, 0.0)
        t0 = time.perf_counter()
        try:
            h, w = rgb.shape[:2]
            intr = self.reconstructor.intrinsics_for(w, h, K)
            rec = self.reconstructor.reconstruct(rgb, result, intrinsics=intr, depth=depth, track=self.track,
                                                 people=people)
        except KeypointError as exc:
            self._retry_after = now + RETRY_S
            self._retry_reason = f"keypoints unavailable (retrying every {RETRY_S:.0f} s): {_first_line(exc)}"
            return self._skip(self._retry_reason, (time.perf_counter() - t0) * 1000.0)
        except Exception as exc:  # noqa: BLE001 - a failed reconstruction must not drop the frame's contacts
            return self._skip(f"{type(exc).__name__}: {_first_line(exc)}", (time.perf_counter() - t0) * 1000.0)
        ms = (time.perf_counter() - t0) * 1000.0
        if not rec.bodies:
            return self._skip("no person found" + (f" ({'; '.join(rec.notes)})" if rec.notes else ""), ms)
        primary = next((b for b in rec.bodies if b.contact_probs is not None), rec.bodies[0])
        if self.num_body_vertices and len(primary.vertices) != self.num_body_vertices:
            return self._skip(f"reconstructed body has {len(primary.vertices)} vertices, the body topology "
                              f"{self.num_body_vertices}", ms)
        self.reconstructed += 1
        self.last_reason = ""
        self._ms.append(ms)
        return ReconAttempt(rec, primary, "", ms)

    def _skip(self, reason: str, ms: float) -> ReconAttempt:
        self.skipped += 1
        self.last_reason = reason
        self.last_failure_time = time.monotonic()
        return ReconAttempt(None, None, reason, ms)

    @property
    def ms_p50(self) -> float:
        """Median wall time of the last successful reconstructions (nan before the first)."""
        return float(np.median(self._ms)) if self._ms else float("nan")

    @property
    def detector(self):
        """The reconstruction's keypoint detector (built on first use; the person gate shares it)."""
        return self.reconstructor.detector

    def close(self) -> None:
        """Stop the keypoint worker (it restarts on the next frame; tracks are kept)."""
        try:
            self.reconstructor.close()
        except Exception as exc:  # noqa: BLE001 - shutdown is best effort
            LOG.warning("closing the reconstruction failed: %s: %s", type(exc).__name__, exc)


def _first_line(exc: BaseException) -> str:
    """The first line of an error (and its last, e.g. the worker's final stderr line)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    return lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
