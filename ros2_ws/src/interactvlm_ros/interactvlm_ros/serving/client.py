"""``inference.backend: triton``: a predictor that sends each frame to a Triton server (``interactvlm serve``)
over gRPC and decodes the answer into the same :class:`~interactvlm_ros.pipeline.result.ContactResult` a local
:class:`~interactvlm_ros.model.ContactPredictor` returns.

Faults never block the caller beyond ``inference.triton_timeout_s`` and never end it: a frame whose request
fails raises :class:`ServingError` (the node counts a failed frame and goes on), :attr:`state` says why
(``connecting``, ``ready``, ``unavailable``, ``timeout``, ``model_mismatch``, ``error``) for diagnostics, and
after a failure the server is not asked again before a backoff (``inference.triton_retry_s`` doubling up to
``inference.triton_retry_max_s``) has passed: frames in between fail at once. A restarted server is picked up
by the next try; no restart of the node.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from interactvlm_ros.pipeline.result import ContactResult, ObjectContact
from interactvlm_ros.serving.protocol import MODEL_NAME, decode_result

LOG = logging.getLogger("interactvlm.serving")
OBJECT_CONTACT_REASON = "object contact is not served yet"


class ServingError(RuntimeError):
    """A frame the server did not answer; ``state`` is the client state it led to."""

    def __init__(self, state: str, message: str):
        super().__init__(f"triton {state}: {message}")
        self.state = state


class TritonContactPredictor:
    """The pipeline's predictor interface (``encode``, ``predict``, ``predict_object``, ``describe_names``)
    over a Triton server.

    Args:
        url: gRPC ``host:port`` of the server (``inference.triton_url``; a ``grpc://`` prefix is accepted).
        timeout_s: per-request deadline.
        expected_hash: the model hash the server must report ("" = accept any; the first one seen is kept in
            :attr:`server_hash`).
        retry_s / retry_max_s: first and longest backoff after a failure.
    """

    backend_name = "triton"
    body_model = None  # the node loads the body topology locally (same ``body.model``)

    def __init__(self, url: str, timeout_s: float = 10.0, expected_hash: str = "", retry_s: float = 0.5,
                 retry_max_s: float = 10.0):
        self.url = url.removeprefix("grpc://")
        self.timeout_s = float(timeout_s)
        self.expected_hash = expected_hash
        self.retry_s = float(retry_s)
        self.retry_max_s = float(retry_max_s)
        self.state = "connecting"
        self.last_error = ""
        self.server_hash = ""
        self.failures = 0
        self.requests = 0
        self._backoff = 0.0
        self._next_try = 0.0
        self._client = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg) -> TritonContactPredictor:
        i = cfg.inference
        return cls(i.triton_url, i.triton_timeout_s, i.triton_model_hash, i.triton_retry_s, i.triton_retry_max_s)

    # ------------------------------------------------------------------------------------ the pipeline's API
    def encode(self, image_rgb: np.ndarray) -> np.ndarray:
        """Nothing is encoded here: the server encodes; the image itself goes on to :meth:`predict`."""
        return image_rgb

    def predict(self, image: np.ndarray, objects: list[str]) -> ContactResult:
        """Human contact for each object name in ``image`` (uint8 ``[H,W,3]``), answered by the server.

        Raises:
            ServingError: the server is down, timed out, serves another model, or is in backoff after one of
                these (raised at once then, without a request).
        """
        if isinstance(objects, str):
            objects = [objects]
        now = time.monotonic()
        if now < self._next_try:
            raise ServingError(self.state, f"{self.last_error} (retry in {self._next_try - now:.1f} s)")
        t0 = time.perf_counter()
        try:
            probs, found, meta = self._infer(np.ascontiguousarray(image, np.uint8), list(objects))
            result, served_hash = decode_result(probs, found, meta)
            if self.expected_hash and served_hash != self.expected_hash:
                raise ServingError("model_mismatch", f"server at {self.url} serves model {served_hash}, "
                                   f"expected {self.expected_hash}")
        except ServingError as exc:
            self._failed(exc.state, str(exc))
            raise
        except Exception as exc:  # every transport failure becomes a counted, explained state
            state, text = _classify(exc)
            self._failed(state, text)
            raise ServingError(state, text) from exc
        self.server_hash = served_hash
        self.state, self.last_error, self._backoff, self._next_try = "ready", "", 0.0, 0.0
        self.requests += 1
        result.timings_ms["triton_roundtrip"] = (time.perf_counter() - t0) * 1000.0 - result.total_ms
        return result

    def predict_object(self, image, vertices, faces, label: str, mesh_id: str = "") -> ContactResult:
        """Object contact is not served yet: ``found=False`` with that reason (the node publishes it as such)."""
        return ContactResult("", 0, [ObjectContact(label=label, found=False, reason=OBJECT_CONTACT_REASON,
                                                   object_mesh_id=mesh_id)])

    def describe_names(self, objects: list[str]) -> str:
        return "; ".join(f"{n} -> resolved by the Triton server" for n in objects)

    def status(self) -> dict:
        """For diagnostics: state, url, last error, failures, served and expected model hash."""
        return {"state": self.state, "url": self.url, "last_error": self.last_error, "failures": self.failures,
                "requests": self.requests, "server_hash": self.server_hash, "expected_hash": self.expected_hash}

    # ------------------------------------------------------------------------------------ transport
    def _failed(self, state: str, text: str) -> None:
        self.failures += 1
        self.state, self.last_error = state, text
        self._backoff = min(self.retry_max_s, self._backoff * 2 if self._backoff else self.retry_s)
        self._next_try = time.monotonic() + self._backoff
        self._client = None  # a fresh channel on the next try (the server may have restarted)
        LOG.warning("%s; next try in %.1f s", text, self._backoff)

    def _infer(self, image: np.ndarray, objects: list[str]):
        import tritonclient.grpc as grpcclient

        with self._lock:
            if self._client is None:
                self._client = grpcclient.InferenceServerClient(self.url)
            client = self._client
        inputs = [grpcclient.InferInput("image", [1, *image.shape], "UINT8"),
                  grpcclient.InferInput("objects", [1, len(objects)], "BYTES")]
        inputs[0].set_data_from_numpy(image[None])
        inputs[1].set_data_from_numpy(np.array([[o.encode() for o in objects]], dtype=object))
        outputs = [grpcclient.InferRequestedOutput(n) for n in ("human_probs", "found", "meta")]
        response = client.infer(MODEL_NAME, inputs, outputs=outputs, client_timeout=self.timeout_s)
        return (response.as_numpy("human_probs")[0], response.as_numpy("found")[0],
                response.as_numpy("meta")[0][0])


def _classify(exc: Exception) -> tuple[str, str]:
    """``(state, message)`` for a failed request."""
    text = f"{type(exc).__name__}: {exc}"
    status = str(getattr(exc, "status", lambda: "")() if callable(getattr(exc, "status", None)) else "")
    low = (status + " " + text).lower()
    if "deadline" in low or "timeout" in low or "timed out" in low:
        return "timeout", text
    if "unavailable" in low or "connect" in low or "not ready" in low or "unknown model" in low:
        return "unavailable", text
    return "error", text
