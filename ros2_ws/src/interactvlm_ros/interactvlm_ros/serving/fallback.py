"""``inference.fallback: local``: the Triton client with the local model as a stand-in while the server does not
answer.

Each frame is first sent to the server (:class:`~.client.TritonContactPredictor`, with its backoff: during a
backoff it refuses at once, so no frame waits for a server known to be down). A frame the server does not answer
(``ServingError``: unavailable, timeout, model mismatch, error) is run by a local
:class:`~interactvlm_ros.model.ContactPredictor` instead, and so are that frame's remaining queries (its object
contact), so one frame is answered by one model. When the backoff has passed the server is asked again; once it
answers, frames go to it again.

The local model is loaded lazily, on the first frame the server does not answer (``inference.fallback_backend``
engine, the node's ``model.name``), in the thread that runs the frame (the node's worker: the image callback never
waits). It then stays loaded until the predictor is dropped (node cleanup), so a flapping server does not reload it.
Loading at configure would hold the model's memory on every robot all the time, which is what serving avoids.
:meth:`FallbackPredictor.diagnostics` says which backend answered the last frame and why.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from interactvlm_ros.serving.client import ServingError, TritonContactPredictor

LOG = logging.getLogger("interactvlm.serving")
LOAD_RETRY_S = 60.0
"""After the local model failed to load, frames fail at once for this long before it is loaded again."""


@dataclass
class FallbackFrame:
    """One frame's image for :class:`FallbackPredictor`: the uint8 RGB the server gets, the local encoding once
    the frame fell back (made once, shared by the frame's queries) and whether it fell back."""

    rgb: np.ndarray
    local: Any = None
    fell_back: bool = False
    counted: bool = False


class FallbackPredictor:
    """The pipeline's predictor interface over a :class:`TritonContactPredictor` with a local stand-in.

    Args:
        remote: the Triton client.
        load_local: builds the local predictor (called once, on first need).
        local_backend: the local predictor's backend name (for diagnostics before it is loaded).
    """

    def __init__(self, remote: TritonContactPredictor, load_local, local_backend: str = ""):
        self.remote = remote
        self._load_local = load_local
        self.local_backend = local_backend
        self.local = None
        self.local_load_s: float | None = None
        self.local_error = ""
        self.answered_by = "none"
        self.fallback_reason = ""
        self.frames_remote = 0
        self.frames_local = 0
        self._load_lock = threading.Lock()
        self._failed_at = 0.0

    @classmethod
    def from_config(cls, cfg, remote: TritonContactPredictor) -> FallbackPredictor:
        """``remote`` with ``model.name`` run locally on ``inference.fallback_backend`` as the stand-in."""
        backend = str(cfg.inference.fallback_backend)

        def load():
            from interactvlm_ros.model import ContactPredictor

            return ContactPredictor.from_config(cfg.replace(inference__backend=backend))

        return cls(remote, load, backend)

    @property
    def backend_name(self) -> str:
        return f"triton (fallback: local {self.local_backend})"

    @property
    def body_model(self):
        return self.remote.body_model

    # ------------------------------------------------------------------------------------ the pipeline's API
    def encode(self, image_rgb) -> FallbackFrame:
        """The frame (nothing is encoded unless it falls back)."""
        return FallbackFrame(self.remote.encode(image_rgb))

    def predict(self, image, objects):
        return self._answer(image, lambda r: self.remote.predict(r, objects),
                            lambda p, enc: p.predict(enc, objects))

    def predict_objects(self, image, meshes, labels, mesh_ids=None):
        meshes, labels = list(meshes), list(labels)
        return self._answer(image, lambda r: self.remote.predict_objects(r, meshes, labels, mesh_ids),
                            lambda p, enc: p.predict_objects(enc, meshes, labels, mesh_ids))

    def predict_object(self, image, vertices, faces, label: str, mesh_id: str = ""):
        return self.predict_objects(image, [(vertices, faces)], [label], [mesh_id])

    def predict_points(self, image, points, label: str):
        """Not served: always the local model."""
        frame = self._frame(image)
        return self._run_local(frame, lambda p, enc: p.predict_points(enc, points, label), "points are not served")

    def describe_names(self, objects: list[str]) -> str:
        if self.answered_by == "local" and self.local is not None:
            return self.local.describe_names(objects)
        return self.remote.describe_names(objects)

    def status(self) -> dict:
        return {**self.remote.status(), **self.diagnostics()}

    def diagnostics(self) -> dict[str, str]:
        """Diagnostics values: ``answered_by`` (triton / local / none yet) with the reason of a fallback, the
        server's state, frame counts per backend and the local model's state."""
        if self.local is not None:
            local = f"loaded ({self.local.backend_name}, {self.local_load_s:.1f} s)"
        elif self.local_error:
            local = f"failed to load: {self.local_error}"
        else:
            local = "not loaded (loads on the first frame the server does not answer)"
        answered = self.answered_by
        if answered == "local":
            answered = f"local (fallback: {self.fallback_reason})"
        return {"answered_by": answered, "triton_state": self.remote.state, "triton_url": self.remote.url,
                "frames_triton": str(self.frames_remote), "frames_local": str(self.frames_local),
                "fallback_model": local}

    # ------------------------------------------------------------------------------------ internals
    def _frame(self, image) -> FallbackFrame:
        return image if isinstance(image, FallbackFrame) else self.encode(image)

    def _answer(self, image, remote_call, local_call):
        frame = self._frame(image)
        if not frame.fell_back:
            try:
                result = remote_call(frame.rgb)
            except ServingError as exc:
                frame.fell_back = True
                return self._run_local(frame, local_call, str(exc))
            self.answered_by, self.fallback_reason = "triton", ""
            if not frame.counted:
                frame.counted, self.frames_remote = True, self.frames_remote + 1
            return result
        return self._run_local(frame, local_call, self.fallback_reason or "the frame fell back")

    def _run_local(self, frame: FallbackFrame, call, reason: str):
        local = self._local()
        if frame.local is None:
            frame.local = local.encode(frame.rgb)
        result = call(local, frame.local)
        if self.answered_by != "local":
            LOG.warning("Triton server not answering (%s): running the local model meanwhile", reason)
        self.answered_by, self.fallback_reason = "local", reason
        if not frame.counted:
            frame.counted, self.frames_local = True, self.frames_local + 1
        return result

    def _local(self):
        with self._load_lock:
            if self.local is None:
                if self.local_error and time.monotonic() - self._failed_at < LOAD_RETRY_S:
                    raise RuntimeError(f"the Triton server does not answer and the local fallback model failed "
                                       f"to load: {self.local_error}")
                t0 = time.monotonic()
                try:
                    self.local = self._load_local()
                except Exception as exc:
                    self.local_error, self._failed_at = f"{type(exc).__name__}: {exc}", time.monotonic()
                    raise RuntimeError(f"the Triton server does not answer and the local fallback model failed "
                                       f"to load: {self.local_error}") from exc
                self.local_load_s = time.monotonic() - t0
                LOG.info("local fallback model loaded (%s) in %.1f s", self.local.backend_name, self.local_load_s)
            return self.local
