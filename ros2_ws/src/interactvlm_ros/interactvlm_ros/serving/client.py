"""``inference.backend: triton``: a predictor that sends each frame to a Triton server (``interactvlm serve``)
over gRPC and decodes the answer into the same :class:`~interactvlm_ros.pipeline.result.ContactResult` a local
:class:`~interactvlm_ros.model.ContactPredictor` returns.

Faults never block the caller beyond ``inference.triton_timeout_s`` and never end it: a frame whose request
fails raises :class:`ServingError` (the node counts a failed frame and goes on), :attr:`state` says why
(``connecting``, ``ready``, ``unavailable``, ``timeout``, ``model_mismatch``, ``error``) for diagnostics, and
after a failure the server is not asked again before a backoff (``inference.triton_retry_s`` doubling up to
``inference.triton_retry_max_s``) has passed: frames in between fail at once. A restarted server is picked up
by the next try; no restart of the node.

Once an answer has told the client the model's input size ``S``, frames travel as the ``S×S`` square the model
reads of them (:func:`~interactvlm_ros.serving.protocol.model_input_image`: same contacts, ~1/18 of the bytes of
a 640×480 frame); an answer made for another input size (the server now runs another model) is asked again
with the full frame.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from interactvlm_ros.pipeline.result import ContactResult
from interactvlm_ros.serving.protocol import (
    MESH_MODEL_NAME,
    MODEL_NAME,
    OBJECTS_MODEL_NAME,
    RequestRefused,
    decode_objects,
    decode_result,
    mesh_arrays,
    mesh_key,
    model_input_image,
)

LOG = logging.getLogger("interactvlm.serving")


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

    def __init__(self, url: str, timeout_s: float = 10.0, expected_hash: str = "", retry_s: float = 0.5,
                 retry_max_s: float = 10.0, body_loader=None):
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
        self.meshes_sent = 0
        self.input_size = 0  # the served model's square input side, from its answers (0: send full frames)
        self._square: tuple[np.ndarray, int, np.ndarray] | None = None  # last (frame copy, size, its square)
        self._client = None
        self._lock = threading.Lock()
        self._body_loader = body_loader
        self._body_model = None

    @classmethod
    def from_config(cls, cfg) -> TritonContactPredictor:
        """The client ``inference.triton_*`` describe; its :attr:`body_model` is ``body.model``, loaded here
        (locally) when first asked for."""
        from interactvlm_ros.body import load_body_model

        i = cfg.inference
        return cls(i.triton_url, i.triton_timeout_s, i.triton_model_hash, i.triton_retry_s, i.triton_retry_max_s,
                   body_loader=lambda: load_body_model(cfg))

    @property
    def body_model(self):
        """The body model whose topology the served ``human_probs`` index (loaded locally on first use: the
        node's markers and clouds, evaluation and reconstruction need its mesh), or None without a loader."""
        if self._body_model is None and self._body_loader is not None:
            self._body_model = self._body_loader()
        return self._body_model

    # ------------------------------------------------------------------------------------ the pipeline's API
    def encode(self, image_rgb: np.ndarray) -> np.ndarray:
        """Nothing is encoded here: the server encodes (once per frame for its human and object requests); the
        image, as uint8 ``[H,W,3]``, goes on to :meth:`predict` and :meth:`predict_objects`."""
        return _rgb(image_rgb)

    def predict(self, image: np.ndarray, objects: list[str]) -> ContactResult:
        """Human contact for each object name in ``image`` (uint8 ``[H,W,3]``), answered by the server.

        Raises:
            ServingError: the server is down, timed out, serves another model, or is in backoff after one of
                these (raised at once then, without a request).
        """
        if isinstance(objects, str):
            objects = [objects]
        image, objects = _rgb(image), list(objects)

        def ask():
            size = self.input_size
            result, served_hash, served_size = decode_result(*self._infer(self._model_input(image, size), objects))
            if size and served_size != size:  # another model now: its answer read our square, not the frame
                result, served_hash, served_size = decode_result(*self._infer(image, objects))
            self.input_size = served_size
            return result, served_hash

        return self._request(ask)

    def predict_object(self, image, vertices, faces, label: str, mesh_id: str = "") -> ContactResult:
        """Object contact on one mesh (``vertices [No,3]``, ``faces [F,3]``): :meth:`predict_objects` of one."""
        return self.predict_objects(image, [(vertices, faces)], [label], [mesh_id])

    def predict_objects(self, image: np.ndarray, meshes, labels, mesh_ids=None) -> ContactResult:
        """Object contact on a frame's meshes (``meshes[i] = (vertices, faces)`` asked about ``labels[i]``), the
        same :class:`ContactResult` as ``ContactPredictor.predict_objects``. Meshes the server does not hold yet
        are sent to it once (``interactvlm_mesh``), then the frame is asked again.

        Raises:
            ServingError: as :meth:`predict`.
        """
        labels = list(labels)
        meshes = [mesh_arrays(v, f) for v, f in meshes]
        mesh_ids = list(mesh_ids) if mesh_ids is not None else [""] * len(labels)
        if not len(meshes) == len(labels) == len(mesh_ids):
            raise ValueError(f"predict_objects needs one label and mesh id per mesh; got {len(meshes)} meshes, "
                             f"{len(labels)} labels, {len(mesh_ids)} mesh ids")
        image = _rgb(image)
        keys = [mesh_key(v, f) for v, f in meshes]

        def ask():
            size = self.input_size
            sent = self._model_input(image, size)
            answer = decode_objects(*self._infer_objects(sent, labels, keys, mesh_ids))
            if answer[2]:  # meshes the server does not hold: send them, ask again
                by_key = dict(zip(keys, meshes, strict=True))
                for k in answer[2]:
                    if k not in by_key:
                        raise ServingError("error", f"the server asks for a mesh this frame did not name: {k}")
                    self._upload_mesh(k, *by_key[k])
                    self.meshes_sent += 1
                answer = decode_objects(*self._infer_objects(sent, labels, keys, mesh_ids))
            if size and answer[3] != size and not answer[2]:  # another model now (see predict): the full frame
                answer = decode_objects(*self._infer_objects(image, labels, keys, mesh_ids))
            result, served_hash, missing, self.input_size = answer
            if missing:
                raise ServingError("error", f"the server dropped meshes {missing} again (mesh cache too small?)")
            return result, served_hash

        return self._request(ask)

    def predict_points(self, image, points, label: str) -> ContactResult:
        """Point clouds (PIAD) are not served: use a local backend for them."""
        raise NotImplementedError("object affordance on point clouds (PIAD) is not served by Triton; run it "
                                  "with a local inference.backend")

    def describe_names(self, objects: list[str]) -> str:
        return "; ".join(f"{n} -> resolved by the Triton server" for n in objects)

    def status(self) -> dict:
        """For diagnostics: state, url, last error, failures, served and expected model hash."""
        return {"state": self.state, "url": self.url, "last_error": self.last_error, "failures": self.failures,
                "requests": self.requests, "meshes_sent": self.meshes_sent, "server_hash": self.server_hash,
                "expected_hash": self.expected_hash}

    def diagnostics(self) -> dict[str, str]:
        """Diagnostics values of the node (``inference.fallback: none``): who answered the last frame
        (``triton``, or ``none`` when it failed), the server's state, url and last error."""
        return {"answered_by": "triton" if self.state == "ready" else "none", "triton_state": self.state,
                "triton_url": self.url, "triton_last_error": self.last_error}

    # ------------------------------------------------------------------------------------ transport
    def _model_input(self, image: np.ndarray, size: int) -> np.ndarray:
        """What travels for ``image``: the frame itself (``size`` 0), its ``size×size`` model input, or the frame
        when it is already that small. The last square is kept for the frame's next request (object contact),
        checked against a copy of its frame (a camera may reuse its buffer)."""
        if not size or (image.shape[0] == image.shape[1] == size):
            return image
        last = self._square
        if last is not None and last[1] == size and last[0].shape == image.shape and np.array_equal(last[0], image):
            return last[2]
        square = model_input_image(image, size)
        self._square = (image.copy(), size, square)
        return square

    def _request(self, ask) -> ContactResult:
        """Run ``ask() -> (ContactResult, served hash)`` with the backoff, the hash check and the states."""
        now = time.monotonic()
        if now < self._next_try:
            raise ServingError(self.state, f"{self.last_error} (retry in {self._next_try - now:.1f} s)")
        t0 = time.perf_counter()
        try:
            result, served_hash = ask()
            if self.expected_hash and served_hash != self.expected_hash:
                raise ServingError("model_mismatch", f"server at {self.url} serves model {served_hash}, "
                                   f"expected {self.expected_hash}")
        except RequestRefused:  # the server answered: the request was wrong (bad names), as locally
            self.state, self.last_error, self._backoff, self._next_try = "ready", "", 0.0, 0.0
            raise
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

    def _failed(self, state: str, text: str) -> None:
        self.failures += 1
        self.state, self.last_error = state, text
        self._backoff = min(self.retry_max_s, self._backoff * 2 if self._backoff else self.retry_s)
        self._next_try = time.monotonic() + self._backoff
        self._client = None  # a fresh channel on the next try (the server may have restarted)
        LOG.warning("%s; next try in %.1f s", text, self._backoff)

    def _infer(self, image: np.ndarray, objects: list[str]):
        grpcclient, client = self._grpc()
        inputs = [grpcclient.InferInput("image", [1, *image.shape], "UINT8"),
                  grpcclient.InferInput("objects", [1, len(objects)], "BYTES")]
        inputs[0].set_data_from_numpy(image[None])
        inputs[1].set_data_from_numpy(np.array([[o.encode() for o in objects]], dtype=object))
        outputs = [grpcclient.InferRequestedOutput(n) for n in ("human_probs", "found", "meta")]
        response = client.infer(MODEL_NAME, inputs, outputs=outputs, client_timeout=self.timeout_s)
        return (response.as_numpy("human_probs")[0], response.as_numpy("found")[0],
                response.as_numpy("meta")[0][0])

    def _grpc(self):
        import tritonclient.grpc as grpcclient

        with self._lock:
            if self._client is None:
                self._client = grpcclient.InferenceServerClient(self.url)
            return grpcclient, self._client

    def _infer_objects(self, image: np.ndarray, labels: list[str], keys: list[str], mesh_ids: list[str]):
        grpcclient, client = self._grpc()
        inputs = [grpcclient.InferInput("image", list(image.shape), "UINT8")]
        inputs[0].set_data_from_numpy(image)
        for name, values in (("objects", labels), ("mesh_keys", keys), ("mesh_ids", mesh_ids)):
            inputs.append(grpcclient.InferInput(name, [len(values)], "BYTES"))
            inputs[-1].set_data_from_numpy(np.array([str(v).encode() for v in values], dtype=object))
        outputs = [grpcclient.InferRequestedOutput(n) for n in ("object_probs", "found", "meta")]
        response = client.infer(OBJECTS_MODEL_NAME, inputs, outputs=outputs, client_timeout=self.timeout_s)
        return response.as_numpy("object_probs"), response.as_numpy("found"), response.as_numpy("meta")[0]

    def _upload_mesh(self, key: str, vertices: np.ndarray, faces: np.ndarray) -> None:
        grpcclient, client = self._grpc()
        inputs = [grpcclient.InferInput("mesh_key", [1], "BYTES"),
                  grpcclient.InferInput("vertices", list(vertices.shape), "FP32"),
                  grpcclient.InferInput("faces", list(faces.shape), "INT64")]
        inputs[0].set_data_from_numpy(np.array([key.encode()], dtype=object))
        inputs[1].set_data_from_numpy(vertices)
        inputs[2].set_data_from_numpy(faces)
        client.infer(MESH_MODEL_NAME, inputs, outputs=[grpcclient.InferRequestedOutput("meta")],
                     client_timeout=self.timeout_s)


def _rgb(image) -> np.ndarray:
    """The image as the model reads it (uint8 ``[H,W,3]``, as ``ContactPredictor.encode`` converts it). A camera's
    uint8 RGB passes as is; only other layouts import the model's converter (torch, transformers: seconds)."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3 and min(arr.shape[:2]) >= 2:
        return np.ascontiguousarray(arr)
    from interactvlm_ros.model.vision import to_rgb_uint8

    return np.ascontiguousarray(to_rgb_uint8(arr))


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
