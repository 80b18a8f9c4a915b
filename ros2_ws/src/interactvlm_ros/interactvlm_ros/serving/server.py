"""``interactvlm serve``: one Triton Inference Server (the ``tritonserver`` inside the ``nvidia-pytriton`` wheel)
hosting the project's own :class:`~interactvlm_ros.model.ContactPredictor` as the model ``interactvlm``.

Tensors: :mod:`.protocol`. Endpoints (``serve.*`` parameters): HTTP/REST with ``/v2/health/live``,
``/v2/health/ready`` and ``/v2/models/interactvlm/ready``; gRPC (what ``inference.triton_url`` names); Prometheus
metrics at ``http://ADDRESS:METRICS_PORT/metrics``. Requests of equal image size and name count from different
clients are batched by Triton's dynamic batcher; the predictor then runs them one image after the other (it
batches an image's object prompts, not images).

Two environment facts of these machines are handled here (``shared/reference/triton_on_cpu.md``):

- The Python backend stub embeds libpython by soname: the interpreter's own library directory goes first on
  ``LD_LIBRARY_PATH`` of the server process.
- The stub's data path needs numpy < 2 (with numpy 2 every output tensor arrives empty), while the project runs
  numpy 2. The stub therefore runs in a small side environment (``.venv-triton-stub``, made by ``make setup``:
  numpy 1.26 plus a ``.pth`` line onto the main environment's packages); the model itself runs in this
  process with the main environment.
"""

from __future__ import annotations

import logging
import os
import pathlib
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass

import numpy as np

from interactvlm_ros.serving.protocol import MODEL_NAME, encode_result

LOG = logging.getLogger("interactvlm.serve")
STUB_ENV_VARIABLE = "INTERACTVLM_TRITON_STUB_ENV"


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

    @classmethod
    def from_config(cls, cfg) -> ServeConfig:
        s = cfg.serve
        return cls(s.address, int(s.http_port), int(s.grpc_port), int(s.metrics_port), int(s.max_batch_size),
                   int(s.max_queue_delay_us), int(s.instances), int(s.threads))


def model_hash(predictor) -> str:
    """The served weights' hash (``engines.fingerprint.module_weights_hash``): clients compare it with
    ``inference.triton_model_hash`` to know they talk to the model they expect."""
    from interactvlm_ros.engines.fingerprint import module_weights_hash

    return module_weights_hash(predictor.model)


def make_infer_function(predictor, weights_hash: str):
    """The batched Triton inference function over ``predictor`` (one image after the other, a lock around the
    predictor: Triton may call from several threads)."""
    from pytriton.decorators import batch

    lock = threading.Lock()

    @batch
    def infer(image: np.ndarray, objects: np.ndarray):
        probs, found, meta = [], [], []
        for img, names in zip(image, objects, strict=True):
            labels = [n.decode() if isinstance(n, bytes) else str(n) for n in names.reshape(-1)]
            with lock:
                result = predictor.predict(np.ascontiguousarray(img, np.uint8), labels)
            p, f, m = encode_result(result, weights_hash)
            probs.append(p)
            found.append(f)
            meta.append(np.array([m], dtype=object))
        return {"human_probs": np.stack(probs), "found": np.stack(found), "meta": np.stack(meta)}

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
        from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
        from pytriton.triton import Triton, TritonConfig

        c = self.config
        tcfg = TritonConfig(http_address=c.address, http_port=c.http_port, grpc_address=c.address,
                            grpc_port=c.grpc_port, metrics_port=c.metrics_port, allow_metrics=True,
                            log_verbose=self._log_verbose)
        if c.threads:
            import torch

            torch.set_num_threads(c.threads)
        t0 = time.monotonic()
        self._triton = Triton(config=tcfg)
        self._triton.bind(
            model_name=MODEL_NAME,
            infer_func=[make_infer_function(p, self.model_hash) for p in self.predictors],
            inputs=[Tensor(name="image", dtype=np.uint8, shape=(-1, -1, 3)),
                    Tensor(name="objects", dtype=np.bytes_, shape=(-1,))],
            outputs=[Tensor(name="human_probs", dtype=np.float32, shape=(-1, -1)),
                     Tensor(name="found", dtype=np.bool_, shape=(-1,)),
                     Tensor(name="meta", dtype=np.bytes_, shape=(1,))],
            config=ModelConfig(max_batch_size=c.max_batch_size,
                               batcher=DynamicBatcher(max_queue_delay_microseconds=c.max_queue_delay_us)),
            strict=False,
        )
        self._triton.run()
        LOG.info("Triton serving %s (hash %s, %d instance(s)) in %.1f s: gRPC %s:%d, HTTP %s:%d, "
                 "metrics http://%s:%d/metrics", MODEL_NAME, self.model_hash, len(self.predictors),
                 time.monotonic() - t0, c.address, c.grpc_port, c.address, c.http_port, c.address, c.metrics_port)
        return self

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
