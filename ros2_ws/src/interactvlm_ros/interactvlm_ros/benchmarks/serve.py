"""``interactvlm bench serve --json``: one Triton server (``interactvlm serve``, a subprocess) against 1, 2, 4 and
8 concurrent camera clients (separate processes, 640×480 frames over loopback gRPC), and the same 8 cameras as 8
separate local predictors (``vs_separate_processes``: the backend a local node runs, ``inference.backend``, one
thread each, each predicting the full 640×480 frame).

The machine may be shared: the whole sweep runs ``rounds`` times (2 with ``--quick``, 3 otherwise), the server
levels and the separate predictors alternating in each round (both stay loaded, idle while the other runs), and
the headline figures are medians over the rounds with the per-round values beside them (``*_rounds``).

Keys: ``clients.<n>.throughput_fps`` (frames answered per second, all clients together), ``latency_ms_p50`` /
``latency_ms_p99`` (per frame, client side), ``model_ms_p50`` (the frame's share of the server's model compute),
``batch_size_mean`` / ``queue_ms_mean`` / ``infer_ms_per_batch`` (Triton's metrics: requests per model run, time
a request waited in the dynamic batcher, one batch through pytriton's hop and the model), ``batching_gain``
(throughput at 8 clients / at 1), ``vs_separate_processes`` (throughput_fps, rss_mb of the 8 local predictors),
``server_rss_mb`` (server process with tritonserver and the Python backend stubs),
``throughput_ratio_server_vs_separate`` (median of the per-round ratios at 8 cameras),
``memory_ratio_server_vs_separate``, ``serve`` (the server's settings), ``cpu_count``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
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
    """One camera: the same frame again and again; latencies and the server's model time per frame."""
    from interactvlm_ros.serving.client import TritonContactPredictor

    client = TritonContactPredictor(url, timeout_s=120.0)
    image = _image()
    client.predict(image, OBJECTS)  # learns the model's input size (later frames travel as its square)
    start.wait()
    lat, model, t_end = [], [], time.monotonic() + seconds
    while time.monotonic() < t_end:
        t0 = time.perf_counter()
        result = client.predict(image, OBJECTS)
        lat.append((time.perf_counter() - t0) * 1000.0)
        model.append(sum(v for k, v in result.timings_ms.items() if k != "triton_roundtrip"))
    out.put((lat, model))


def _local_worker(params: str, seconds: float, ready, starts, out) -> None:
    """One local predictor (as a node loads it, one thread), loaded once, measured once per round."""
    import torch

    from interactvlm_ros.config import load_config
    from interactvlm_ros.model import ContactPredictor

    torch.set_num_threads(1)
    predictor = ContactPredictor.from_config(load_config(params))
    image = _image()
    predictor.predict(image, OBJECTS)  # warm
    ready.put(os.getpid())
    for start in starts:
        start.wait()
        lat, t_end = [], time.monotonic() + seconds
        while time.monotonic() < t_end:
            t0 = time.perf_counter()
            predictor.predict(image, OBJECTS)
            lat.append((time.perf_counter() - t0) * 1000.0)
        out.put(lat)


def _server_level(ctx, url: str, n: int, seconds: float) -> tuple[list[float], list[float], float]:
    """``n`` client processes against the server for ``seconds``: latencies, model times, frames per second."""
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_client_worker, args=(url, seconds, start, out)) for _ in range(n)]
    for p in procs:
        p.start()
    time.sleep(2.0)  # the clients import and send their first frame before the clock starts
    t0 = time.monotonic()
    start.set()
    got = [out.get(timeout=seconds + 600) for _ in procs]
    wall = time.monotonic() - t0
    for p in procs:
        p.join(30)
    lats = [x for lat, _ in got for x in lat]
    return lats, [x for _, model in got for x in model], len(lats) / wall


def _separate_round(start, out, n: int, seconds: float) -> tuple[list[float], float]:
    """One round of the (already loaded) local predictors: latencies, frames per second."""
    t0 = time.monotonic()
    start.set()
    lats = [x for _ in range(n) for x in out.get(timeout=seconds + 600)]
    return lats, len(lats) / (time.monotonic() - t0)


def _metrics(port: int) -> dict[str, float]:
    """Triton's cumulative counters of the human-contact model (Prometheus text)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    found = {}
    for name in ("inference_count", "inference_exec_count", "inference_queue_duration_us",
                 "inference_compute_infer_duration_us"):
        m = re.search(rf'^nv_{name}{{model="interactvlm",version="1"}} (\S+)$', text, re.M)
        found[name] = float(m.group(1)) if m else 0.0
    return found


def _figures(lats: list[float], fps: float) -> dict:
    return {"throughput_fps": round(fps, 3), "frames": len(lats),
            "latency_ms_p50": round(float(np.percentile(lats, 50)), 1) if lats else None,
            "latency_ms_p99": round(float(np.percentile(lats, 99)), 1) if lats else None}


def _median(values: list[float]) -> float:
    return round(float(np.median(values)), 3)


def run(cfg, args) -> dict:
    from interactvlm_ros.serving.server import pytriton_problem

    problem = pytriton_problem()
    if problem:
        return {"skipped": problem}
    quick = bool(getattr(args, "quick", False))
    seconds, rounds = (6.0, 2) if quick else (20.0, 3)
    if cfg.inference.backend == "triton":
        cfg = cfg.replace(inference__backend="onnxruntime")
    ports = {k: _free_port() for k in ("http_port", "grpc_port", "metrics_port")}
    cfg = cfg.replace(serve__address="127.0.0.1", **{f"serve__{k}": v for k, v in ports.items()})
    work = Path(tempfile.mkdtemp(prefix="interactvlm-bench-serve-"))
    params = work / "params.yaml"
    params.write_text(cfg.to_yaml())
    s = cfg.serve
    result: dict = {"cpu_count": os.cpu_count(), "seconds_per_level": seconds, "rounds": rounds, "image": "640x480",
                    "objects": OBJECTS, "backend": cfg.inference.backend, "clients": {},
                    "serve": {"instances": int(s.instances), "threads": int(s.threads),
                              "max_batch_size": int(s.max_batch_size),
                              "max_queue_delay_us": int(s.max_queue_delay_us)}}
    ctx = mp.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    starts = [ctx.Event() for _ in range(rounds)]
    local = [ctx.Process(target=_local_worker, args=(str(params), seconds, ready, starts, out)) for _ in range(8)]
    for p in local:
        p.start()
    local_pids = [ready.get(timeout=900) for _ in local]  # loaded first; idle while the server is measured
    log = open(work / "server.log", "w")  # closed in the finally below
    server = subprocess.Popen([sys.executable, "-m", "interactvlm_ros", "serve", "--config", str(params)],
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"127.0.0.1:{ports['grpc_port']}"
    levels: dict = {n: {"fps": [], "lat": [], "model": [], "batch": [], "queue": [], "infer": []}
                    for n in CLIENT_COUNTS}
    separate: dict = {"fps": [], "lat": []}
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
        for r in range(rounds):
            for n in CLIENT_COUNTS:
                before = _metrics(ports["metrics_port"])
                lats, model, fps = _server_level(ctx, url, n, seconds)
                d = {k: v - before[k] for k, v in _metrics(ports["metrics_port"]).items()}
                lv = levels[n]
                lv["fps"].append(fps)
                lv["lat"] += lats
                lv["model"] += model
                runs = max(1.0, d["inference_exec_count"])
                lv["batch"].append(d["inference_count"] / runs)
                lv["queue"].append(d["inference_queue_duration_us"] / 1000.0 / max(1.0, d["inference_count"]))
                lv["infer"].append(d["inference_compute_infer_duration_us"] / 1000.0 / runs)
            lats, fps = _separate_round(starts[r], out, len(local), seconds)
            separate["fps"].append(fps)
            separate["lat"] += lats
        result["server_rss_mb"] = round(_rss_mb(server.pid), 1)
        separate_rss = round(sum(_rss_mb(pid) for pid in local_pids), 1)
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        for p in local:
            p.join(10)
            if p.is_alive():
                p.terminate()
    for n, lv in levels.items():
        fig = _figures(lv["lat"], _median(lv["fps"]))
        fig.update({"throughput_fps_rounds": [round(x, 2) for x in lv["fps"]],
                    "model_ms_p50": round(float(np.percentile(lv["model"], 50)), 2) if lv["model"] else None,
                    "batch_size_mean": round(float(np.mean(lv["batch"])), 2),
                    "queue_ms_mean": round(float(np.mean(lv["queue"])), 2),
                    "infer_ms_per_batch": round(float(np.mean(lv["infer"])), 2)})
        result["clients"][str(n)] = fig
    sep = _figures(separate["lat"], _median(separate["fps"]))
    sep.update({"throughput_fps_rounds": [round(x, 2) for x in separate["fps"]], "rss_mb": separate_rss})
    result["vs_separate_processes"] = sep
    one, eight = levels[1]["fps"], levels[8]["fps"]
    gains = [e / o for o, e in zip(one, eight, strict=True) if o]
    ratios = [e / f for e, f in zip(eight, separate["fps"], strict=True) if f]
    result["batching_gain"] = _median(gains) if gains else None
    result["batching_gain_rounds"] = [round(g, 3) for g in gains]
    result["throughput_ratio_server_vs_separate"] = _median(ratios) if ratios else None
    result["throughput_ratio_rounds"] = [round(x, 3) for x in ratios]
    result["memory_ratio_server_vs_separate"] = round(result["server_rss_mb"] / separate_rss, 3) \
        if separate_rss else None
    return result
