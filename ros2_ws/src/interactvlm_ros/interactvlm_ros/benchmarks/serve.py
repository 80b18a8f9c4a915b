"""``interactvlm bench serve --json``: one Triton server (``interactvlm serve``, a subprocess) against 1, 2, 4 and
8 concurrent camera clients (separate processes, 640×480 frames over loopback gRPC), and the same 8 cameras as 8
separate local predictors (``vs_separate_processes``).

Keys: ``clients.<n>.throughput_fps`` (frames answered per second, all clients together), ``latency_ms_p50`` /
``latency_ms_p99`` (per frame, client side), ``batching_gain`` (throughput at 8 clients / at 1),
``vs_separate_processes`` (throughput_fps, rss_mb of the 8 local predictors), ``server_rss_mb`` (server process
with tritonserver and the Python backend stub), ``throughput_ratio_server_vs_separate``, ``cpu_count``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLIENT_COUNTS = (1, 2, 4, 8)
OBJECTS = ["cup"]
DEMO_IMAGE = Path(__file__).resolve().parents[1] / "assets" / "demo" / "20251125_0001_mug.png"


def _image() -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(DEMO_IMAGE).convert("RGB").resize((640, 480)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def _client_worker(url: str, seconds: float, start, out) -> None:
    from interactvlm_ros.serving.client import TritonContactPredictor

    client = TritonContactPredictor(url, timeout_s=120.0)
    image = _image()
    start.wait()
    lat, t_end = [], time.monotonic() + seconds
    while time.monotonic() < t_end:
        t0 = time.perf_counter()
        client.predict(image, OBJECTS)
        lat.append((time.perf_counter() - t0) * 1000.0)
    out.put(lat)


def _local_worker(params: str, seconds: float, ready, start, out) -> None:
    import torch

    from interactvlm_ros.config import load_config
    from interactvlm_ros.model import ContactPredictor

    torch.set_num_threads(1)
    predictor = ContactPredictor.from_config(load_config(params))
    image = _image()
    predictor.predict(image, OBJECTS)  # warm
    ready.put(os.getpid())
    start.wait()
    lat, t_end = [], time.monotonic() + seconds
    while time.monotonic() < t_end:
        t0 = time.perf_counter()
        predictor.predict(image, OBJECTS)
        lat.append((time.perf_counter() - t0) * 1000.0)
    out.put(lat)


def _run_clients(ctx, target, args_for, n: int, seconds: float, ready=None) -> tuple[list[float], float, list]:
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args_for, seconds, *((ready,) if ready else ()), start, out))
             for _ in range(n)]
    for p in procs:
        p.start()
    pids = [ready.get(timeout=600) for _ in procs] if ready else []
    time.sleep(0.5 if not ready else 0.0)
    t0 = time.monotonic()
    start.set()
    rss = sum(_rss_mb(pid) for pid in pids) if pids else 0.0
    lats = [x for _ in procs for x in out.get(timeout=seconds + 600)]
    wall = time.monotonic() - t0
    for p in procs:
        p.join(30)
    return lats, len(lats) / wall, [rss]


def _figures(lats: list[float], fps: float) -> dict:
    return {"throughput_fps": round(fps, 3), "frames": len(lats),
            "latency_ms_p50": round(float(np.percentile(lats, 50)), 1) if lats else None,
            "latency_ms_p99": round(float(np.percentile(lats, 99)), 1) if lats else None}


def run(cfg, args) -> dict:
    from interactvlm_ros.serving.server import pytriton_problem

    problem = pytriton_problem()
    if problem:
        return {"skipped": problem}
    quick = bool(getattr(args, "quick", False))
    seconds = 6.0 if quick else 20.0
    if cfg.inference.backend == "triton":
        cfg = cfg.replace(inference__backend="onnxruntime")
    ports = {k: _free_port() for k in ("http_port", "grpc_port", "metrics_port")}
    cfg = cfg.replace(serve__address="127.0.0.1", **{f"serve__{k}": v for k, v in ports.items()})
    work = Path(tempfile.mkdtemp(prefix="interactvlm-bench-serve-"))
    params = work / "params.yaml"
    params.write_text(cfg.to_yaml())
    log = open(work / "server.log", "w")  # closed in the finally below
    server = subprocess.Popen([sys.executable, "-m", "interactvlm_ros", "serve", "--config", str(params)],
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"127.0.0.1:{ports['grpc_port']}"
    ctx = mp.get_context("spawn")
    result: dict = {"cpu_count": os.cpu_count(), "seconds_per_level": seconds, "image": "640x480",
                    "objects": OBJECTS, "backend": cfg.inference.backend, "clients": {}}
    try:
        from interactvlm_ros.serving.client import ServingError, TritonContactPredictor

        probe, t_end = TritonContactPredictor(url, timeout_s=60.0, retry_s=0.0), time.monotonic() + 300
        while True:
            try:
                probe.predict(_image(), OBJECTS)
                break
            except ServingError:
                if server.poll() is not None or time.monotonic() > t_end:
                    raise RuntimeError(f"server did not come up; log: {work / 'server.log'}") from None
                time.sleep(0.5)
        for n in CLIENT_COUNTS:
            lats, fps, _ = _run_clients(ctx, _client_worker, (url,), n, seconds)
            result["clients"][str(n)] = _figures(lats, fps)
        result["server_rss_mb"] = round(_rss_mb(server.pid), 1)
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    lats, fps, rss = _run_clients(ctx, _local_worker, (str(params),), 8, seconds, ready=ctx.Queue())
    sep = _figures(lats, fps)
    sep["rss_mb"] = round(rss[0], 1)
    result["vs_separate_processes"] = sep
    one, eight = result["clients"]["1"]["throughput_fps"], result["clients"]["8"]["throughput_fps"]
    result["batching_gain"] = round(eight / one, 3) if one else None
    result["throughput_ratio_server_vs_separate"] = round(eight / sep["throughput_fps"], 3) \
        if sep["throughput_fps"] else None
    result["memory_ratio_server_vs_separate"] = round(result["server_rss_mb"] / sep["rss_mb"], 3) \
        if sep["rss_mb"] else None
    return result
