"""``interactvlm serve``: one Triton Inference Server (the ``tritonserver`` inside the ``nvidia-pytriton`` wheel)
hosting the project's own :class:`~interactvlm_ros.model.ContactPredictor` as the model ``interactvlm``.

Models (tensors: :mod:`.protocol`): ``interactvlm`` (human contact, dynamically batched), ``interactvlm_objects``
(object contact on a frame's meshes) and ``interactvlm_mesh`` (a client sends a mesh once). Endpoints (``serve.*``
parameters): HTTP/REST with ``/v2/health/live``, ``/v2/health/ready`` and ``/v2/models/interactvlm/ready``; gRPC
(what ``inference.triton_url`` names); Prometheus metrics at ``http://ADDRESS:METRICS_PORT/metrics``. Requests of
equal image size and name count from different clients are batched by Triton's dynamic batcher (clients send the
model's square input, so every camera's requests have one size) and a batch is computed together
(:mod:`.batched`: one LLM prefill and one MV-Loc call for all of its images).

Two environment facts of these machines are handled here (``shared/reference/triton_on_cpu.md``):

- The Python backend stub embeds libpython by soname: the interpreter's own library directory goes first on
  ``LD_LIBRARY_PATH`` of the server process.
- The stub's data path needs numpy < 2 (with numpy 2 every output tensor arrives empty), while the project runs
  numpy 2. The stub therefore runs in a small side environment (``.venv-triton-stub``, made by ``make setup``:
  numpy 1.26 plus a ``.pth`` line onto the main environment's packages); the model itself runs in this
  process with the main environment.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pathlib
import sys
import sysconfig
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from interactvlm_ros.pipeline.result import ContactResult
from interactvlm_ros.serving.batched import batch_problem, predict_human_batch
from interactvlm_ros.serving.protocol import (
    MESH_MODEL_NAME,
    MODEL_NAME,
    OBJECTS_MODEL_NAME,
    encode_error,
    encode_objects,
    encode_result,
    mesh_arrays,
)
from interactvlm_ros.serving.protocol import mesh_key as mesh_key_of

LOG = logging.getLogger("interactvlm.serve")
STUB_ENV_VARIABLE = "INTERACTVLM_TRITON_STUB_ENV"
START_ATTEMPTS = 3


def _is_startup_race(error: Exception) -> bool:
    """True for pytriton's multi-instance handshake race: a second model instance asks the first one's handshake
    socket for its config between bind() and listen() (ConnectionRefusedError) or before the socket exists
    (TimeoutError), and Triton reports the model UNAVAILABLE. A fresh start usually wins the race."""
    return "handshake" in str(error)


def pytriton_problem() -> str:
    """"" when pytriton and its server can run here, else why not (for skips and error messages)."""
    try:
        import pytriton.triton  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means no server here
        return f"nvidia-pytriton is not importable ({type(exc).__name__}: {exc}); `make setup` installs it"
    if stub_env() is None:
        return ("no Python environment with numpy<2 for Triton's Python backend stub (.venv-triton-stub, made by "
                f"`make setup`, or ${STUB_ENV_VARIABLE})")
    return ""


def stub_env() -> pathlib.Path | None:
    """The environment Triton's Python backend stub runs in: ``$INTERACTVLM_TRITON_STUB_ENV``, else
    ``.venv-triton-stub`` beside this environment, else this environment when its numpy is < 2; None if none."""
    candidates = [os.environ.get(STUB_ENV_VARIABLE, ""), str(pathlib.Path(sys.prefix).parent / ".venv-triton-stub")]
    for c in candidates:
        if c and (pathlib.Path(c) / "bin" / "python").exists():
            return pathlib.Path(c)
    if int(np.__version__.split(".")[0]) < 2:
        return pathlib.Path(sys.exec_prefix)
    return None


def _prepare_environment() -> None:
    """Point pytriton at the stub environment and put this interpreter's libpython first for the server."""
    import pytriton.server.triton_server as triton_server

    env = stub_env()
    if env is None:
        raise RuntimeError(pytriton_problem())
    triton_server.get_triton_python_backend_python_env = lambda: env
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    current = os.environ.get("LD_LIBRARY_PATH", "")
    if libdir and not current.startswith(libdir):
        os.environ["LD_LIBRARY_PATH"] = f"{libdir}:{current}" if current else libdir


@dataclass
class ServeConfig:
    """Where and how the server listens (``serve.*`` parameters)."""

    address: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    max_batch_size: int = 8
    max_queue_delay_us: int = 2000
    instances: int = 1
    threads: int = 0
    image_cache: int = 4

    @classmethod
    def from_config(cls, cfg) -> ServeConfig:
        s = cfg.serve
        return cls(s.address, int(s.http_port), int(s.grpc_port), int(s.metrics_port), int(s.max_batch_size),
                   int(s.max_queue_delay_us), int(s.instances), int(s.threads), int(s.image_cache))


def model_hash(predictor) -> str:
    """The served weights' hash (``engines.fingerprint.module_weights_hash``): clients compare it with
    ``inference.triton_model_hash`` to know they talk to the model they expect."""
    from interactvlm_ros.engines.fingerprint import module_weights_hash

    return module_weights_hash(predictor.model)


class ServedModel:
    """The Triton inference functions over one or more predictors (same weights): per instance ``i`` the human
    model's batched function and the object model's function, and one mesh-upload function.

    Caches (all shared by the instances):

    - encoded images: the last ``image_cache`` images of human requests (keyed by content digest) with the
      predictor that encoded them, so a frame's object request reuses the encoding of its human request (encode
      once, as a local pipeline does) on that predictor, under its lock; a human request always encodes;
    - meshes: object meshes by :func:`~.protocol.mesh_key` (``mesh_cache`` most recent), sent once by a client;
      their renders and SAM embeddings are the predictors' own caches.
    """

    def __init__(self, predictors, weights_hash: str, image_cache: int = 4, mesh_cache: int = 256):
        self.predictors = list(predictors)
        self.weights_hash = weights_hash
        self.locks = [threading.Lock() for _ in self.predictors]
        self.image_cache, self.mesh_cache = int(image_cache), int(mesh_cache)
        self._images: OrderedDict[str, tuple[int, object]] = OrderedDict()
        self._meshes: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.encoded_reused = 0

    # ------------------------------------------------------------------------------------ caches
    @staticmethod
    def _digest(img: np.ndarray) -> str:
        return hashlib.blake2b(str(img.shape).encode() + img.tobytes(), digest_size=16).hexdigest()

    def _cached_image(self, digest: str):
        with self._cache_lock:
            hit = self._images.get(digest)
            if hit is not None:
                self._images.move_to_end(digest)
                self.encoded_reused += 1
            return hit

    def _keep_image(self, digest: str, owner: int, encoded) -> None:
        with self._cache_lock:
            self._images[digest] = (owner, encoded)
            self._images.move_to_end(digest)
            while len(self._images) > self.image_cache:
                self._images.popitem(last=False)

    def _encode_on(self, i: int, img: np.ndarray):
        """``(owner, EncodedImage)`` for an object request: the encoding its frame's human request kept (made by
        predictor ``owner``) if the cache still holds it, else ``img`` encoded by predictor ``i`` now and kept.
        The caller takes the owner's lock to use it."""
        if self.image_cache <= 0:
            with self.locks[i]:
                return i, self.predictors[i].encode(img.copy())  # not a view of Triton's reused shared memory
        digest = self._digest(img)
        hit = self._cached_image(digest)
        if hit is not None:
            return hit
        with self.locks[i]:
            encoded = self.predictors[i].encode(img.copy())  # kept: not a view of Triton's reused shared memory
        self._keep_image(digest, i, encoded)
        return i, encoded

    # ------------------------------------------------------------------------------------ Triton functions
    def human_function(self, i: int):
        """Batched: one image and its object names per request, a batch computed together
        (:func:`~.batched.predict_human_batch`; ``predict`` per image for models it does not cover). A request
        whose names the model refuses gets its error (the client raises ``ValueError``), the others are
        answered."""
        from pytriton.decorators import batch

        predictor = self.predictors[i]
        problem = batch_problem(predictor)
        if problem:
            LOG.info("instance %d: requests of a batch run one after the other (%s)", i, problem)

        @batch
        def infer(image: np.ndarray, objects: np.ndarray):
            imgs = [np.array(img, np.uint8) for img in image]  # own copies: Triton reuses the input memory
            names = [[n.decode() if isinstance(n, bytes) else str(n) for n in row.reshape(-1)] for row in objects]
            size = predictor.clip_processor.size
            with self.locks[i]:
                if problem:
                    results, encoded = [], []
                    for img, labels in zip(imgs, names, strict=True):
                        try:
                            predictor.resolve_names(labels)  # refused names: before the image is encoded
                            encoded.append(predictor.encode(img))
                            results.append(predictor.predict(encoded[-1], labels))
                        except ValueError as exc:
                            encoded.append(None)
                            results.append(exc)
                else:
                    done = predict_human_batch(predictor, imgs, names)
                    results, encoded = done.results, done.encoded
            nb = next((int(r.num_body_vertices) for r in results if isinstance(r, ContactResult)), 1)
            probs, found, meta = [], [], []
            for img, labels, result, enc in zip(imgs, names, results, encoded, strict=True):
                if isinstance(result, ValueError):
                    p, f, m = encode_error(str(result), self.weights_hash)
                    p, f = np.zeros((len(labels), nb), np.float32), np.zeros(len(labels), bool)
                else:
                    p, f, m = encode_result(result, self.weights_hash, size, len(imgs))
                    if enc is not None and self.image_cache > 0:
                        self._keep_image(self._digest(img), i, enc)
                probs.append(p)
                found.append(f)
                meta.append(np.array([m], dtype=object))
            return {"human_probs": np.stack(probs), "found": np.stack(found), "meta": np.stack(meta)}

        return infer

    def object_function(self, i: int):
        """Not batched: one frame's meshes (by key) with their object names."""
        from pytriton.decorators import sample

        @sample
        def infer(image: np.ndarray, objects: np.ndarray, mesh_keys: np.ndarray, mesh_ids: np.ndarray):
            labels, keys, ids = ([n.decode() if isinstance(n, bytes) else str(n) for n in a.reshape(-1)]
                                 for a in (objects, mesh_keys, mesh_ids))
            with self._cache_lock:
                meshes = [self._meshes.get(k) for k in keys]
                for k in keys:
                    if k in self._meshes:
                        self._meshes.move_to_end(k)
            missing = sorted({k for k, m in zip(keys, meshes, strict=True) if m is None})
            if missing:
                meta = json.dumps({"missing": missing, "model_hash": self.weights_hash}).encode()
                return {"object_probs": np.zeros((len(keys), 1), np.float32), "found": np.zeros(len(keys), bool),
                        "meta": np.array([meta], dtype=object)}
            owner, encoded = self._encode_on(i, np.ascontiguousarray(image, np.uint8))
            try:
                with self.locks[owner]:
                    result = self.predictors[owner].predict_objects(encoded, meshes, labels, ids)
            except ValueError as exc:  # refused names: the client raises it
                p, f, m = encode_error(str(exc), self.weights_hash)
                return {"object_probs": p, "found": f, "meta": np.array([m], dtype=object)}
            p, f, m = encode_objects(result, self.weights_hash, self.predictors[owner].clip_processor.size)
            return {"object_probs": p, "found": f, "meta": np.array([m], dtype=object)}

        return infer

    def mesh_function(self):
        """Not batched: keep one mesh under its content key (checked)."""
        from pytriton.decorators import sample

        @sample
        def infer(mesh_key: np.ndarray, vertices: np.ndarray, faces: np.ndarray):
            key = mesh_key.reshape(-1)[0]
            key = key.decode() if isinstance(key, bytes) else str(key)
            v, f = (a.copy() for a in mesh_arrays(vertices, faces))  # the inputs live in reused shared memory
            if mesh_key_of(v, f) != key:
                raise ValueError(f"mesh {key}: its content does not match its key (corrupted in transit?)")
            with self._cache_lock:
                self._meshes[key] = (v, f)
                self._meshes.move_to_end(key)
                while len(self._meshes) > self.mesh_cache:
                    self._meshes.popitem(last=False)
                held = len(self._meshes)
            meta = json.dumps({"stored": key, "meshes": held, "model_hash": self.weights_hash}).encode()
            return {"meta": np.array([meta], dtype=object)}

        return infer


class ContactServer:
    """A running Triton server with the predictor bound as ``interactvlm`` (context manager; :meth:`stop`).

    ``predictor`` may be a list: one Triton model instance per predictor (same weights), run in parallel."""

    def __init__(self, predictor, config: ServeConfig | None = None, log_verbose: int = 0):
        self.predictors = list(predictor) if isinstance(predictor, (list, tuple)) else [predictor]
        self.predictor = self.predictors[0]
        self.config = config or ServeConfig()
        self.model_hash = model_hash(self.predictor)
        self._triton = None
        self._log_verbose = log_verbose

    def start(self) -> ContactServer:
        _prepare_environment()
        from pytriton.triton import Triton, TritonConfig

        c = self.config
        tcfg = TritonConfig(http_address=c.address, http_port=c.http_port, grpc_address=c.address,
                            grpc_port=c.grpc_port, metrics_port=c.metrics_port, allow_metrics=True,
                            log_verbose=self._log_verbose)
        if c.threads:
            import torch

            torch.set_num_threads(c.threads)
        t0 = time.monotonic()
        self.served = ServedModel(self.predictors, self.model_hash, c.image_cache)
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._launch(Triton(config=tcfg))
                break
            except Exception as e:
                # A failed start must not leave tritonserver holding the ports for the next try or the caller.
                self.stop()
                if attempt == START_ATTEMPTS or not _is_startup_race(e):
                    raise
                LOG.warning("Triton start %d/%d failed in pytriton's instance handshake (%s); starting again",
                            attempt, START_ATTEMPTS, str(e).splitlines()[0][:160])
        LOG.info("Triton serving %s (hash %s, %d instance(s)) in %.1f s: gRPC %s:%d, HTTP %s:%d, "
                 "metrics http://%s:%d/metrics", MODEL_NAME, self.model_hash, len(self.predictors),
                 time.monotonic() - t0, c.address, c.grpc_port, c.address, c.http_port, c.address, c.metrics_port)
        return self

    def _launch(self, triton) -> None:
        """Bind the three models on ``triton`` and run it (blocks until every instance is loaded)."""
        from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

        c = self.config
        n = range(len(self.predictors))
        self._triton = triton
        self._triton.bind(
            model_name=MODEL_NAME,
            infer_func=[self.served.human_function(i) for i in n],
            inputs=[Tensor(name="image", dtype=np.uint8, shape=(-1, -1, 3)),
                    Tensor(name="objects", dtype=np.bytes_, shape=(-1,))],
            outputs=[Tensor(name="human_probs", dtype=np.float32, shape=(-1, -1)),
                     Tensor(name="found", dtype=np.bool_, shape=(-1,)),
                     Tensor(name="meta", dtype=np.bytes_, shape=(1,))],
            config=ModelConfig(max_batch_size=c.max_batch_size,
                               batcher=DynamicBatcher(max_queue_delay_microseconds=c.max_queue_delay_us)),
            strict=False,
        )
        self._triton.bind(
            model_name=OBJECTS_MODEL_NAME,
            infer_func=[self.served.object_function(i) for i in n],
            inputs=[Tensor(name="image", dtype=np.uint8, shape=(-1, -1, 3)),
                    Tensor(name="objects", dtype=np.bytes_, shape=(-1,)),
                    Tensor(name="mesh_keys", dtype=np.bytes_, shape=(-1,)),
                    Tensor(name="mesh_ids", dtype=np.bytes_, shape=(-1,))],
            outputs=[Tensor(name="object_probs", dtype=np.float32, shape=(-1, -1)),
                     Tensor(name="found", dtype=np.bool_, shape=(-1,)),
                     Tensor(name="meta", dtype=np.bytes_, shape=(1,))],
            config=ModelConfig(batching=False),
            strict=False,
        )
        self._triton.bind(
            model_name=MESH_MODEL_NAME,
            infer_func=self.served.mesh_function(),
            inputs=[Tensor(name="mesh_key", dtype=np.bytes_, shape=(1,)),
                    Tensor(name="vertices", dtype=np.float32, shape=(-1, 3)),
                    Tensor(name="faces", dtype=np.int64, shape=(-1, 3))],
            outputs=[Tensor(name="meta", dtype=np.bytes_, shape=(1,))],
            config=ModelConfig(batching=False),
            strict=False,
        )
        self._triton.run()

    def serve_forever(self) -> None:
        """Block until the server dies or SIGINT, then stop it."""
        try:
            while self._triton is not None and self._triton.is_alive():
                time.sleep(1.0)
        except KeyboardInterrupt:
            LOG.info("SIGINT: stopping the server")
        self.stop()

    def stop(self) -> None:
        if self._triton is not None:
            self._triton.stop()
            self._triton = None

    def __enter__(self) -> ContactServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
