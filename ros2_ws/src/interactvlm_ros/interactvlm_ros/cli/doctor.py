"""``interactvlm doctor``: what this machine can run, and whether the configured setup is ready.

Every backend, body model, model asset and the engine cache is probed for real (imports, files, devices).
Items the configuration needs are *required*; a missing required item makes the command exit 1 with one
actionable line: what is missing, where it was looked for, how to get it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from interactvlm_ros.config import Config
from interactvlm_ros.config.paths import cache_dir, engines_dir


@dataclass
class Check:
    """One probed item. ``ok`` False with ``required`` True makes the setup not ready."""

    group: str
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = False


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _import(module: str) -> tuple[object | None, str]:
    try:
        return importlib.import_module(module), ""
    except Exception as exc:  # noqa: BLE001 - any import failure is a finding, not a crash
        return None, f"{type(exc).__name__}: {exc}".splitlines()[0]


def transport_checks(cfg: Config) -> list[Check]:
    want = cfg.transport
    rclpy, err = _import("rclpy")
    distro = os.environ.get("ROS_DISTRO", "?")
    rclpy_check = Check(
        "transport", "rclpy", rclpy is not None,
        f"ROS 2 {distro}" if rclpy is not None else f"not importable from {sys.executable} ({err})",
        fix="install ROS 2 Jazzy (apt ros-jazzy-ros-base) and `source /opt/ros/jazzy/setup.bash`, "
            "or use the Docker image (README)",
        required=want == "rclpy")
    dds, err = _import("cyclonedds.domain")
    dds_check = Check(
        "transport", "dds (Cyclone DDS)", dds is not None,
        f"cyclonedds {_version('cyclonedds')}" if dds is not None else f"not importable ({err})",
        fix="`make setup` (pip install cyclonedds==11.0.1)",
        required=want == "dds" or (want == "auto" and rclpy is None))
    return [rclpy_check, dds_check]


def inference_checks(cfg: Config) -> list[Check]:
    backend, device = cfg.inference.backend, cfg.model.device
    checks = []
    torch, err = _import("torch")
    checks.append(Check("inference", "torch", torch is not None,
                        f"torch {torch.__version__}" if torch is not None else err,
                        fix="`make setup` (pip install torch==2.13.0)", required=True))
    cuda_ok = bool(torch is not None and torch.cuda.is_available())
    cuda_detail = (f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})" if cuda_ok
                   else f"no CUDA device visible to torch {getattr(torch, '__version__', '?')}")
    checks.append(Check("inference", "CUDA", cuda_ok, cuda_detail,
                        fix="on an NVIDIA machine install CUDA torch: pip install torch==2.13.0 --index-url "
                            "https://download.pytorch.org/whl/cu128 (README, GPU)",
                        required=device == "cuda" or backend == "tensorrt"))
    ort, err = _import("onnxruntime")
    checks.append(Check("inference", "ONNX Runtime", ort is not None,
                        f"onnxruntime {ort.__version__}, providers {', '.join(ort.get_available_providers())}"
                        if ort is not None else err,
                        fix="`make setup` (pip install onnxruntime)", required=backend == "onnxruntime"))
    trt, err = _import("tensorrt")
    checks.append(Check("inference", "TensorRT", trt is not None,
                        f"tensorrt {trt.__version__}" if trt is not None else f"not importable ({err})",
                        fix="on an NVIDIA machine: pip install tensorrt-cu12==10.* from NVIDIA's index, or the "
                            "Docker image built with --build-arg VARIANT=gpu",
                        required=backend == "tensorrt"))
    return checks


def body_checks(cfg: Config) -> list[Check]:
    body = cfg.body.model
    checks = []
    anny, err = _import("anny")
    anny_cache = Path(os.environ.get("ANNY_CACHE_DIR", cache_dir(cfg.cache.dir) / "anny"))
    built = anny_cache.is_dir() and any(anny_cache.iterdir())
    checks.append(Check(
        "body model", "anny", anny is not None,
        (f"anny {_version('anny')}; cache {anny_cache} " + ("built" if built else "not built yet (~60 s on first use)"))
        if anny is not None else err,
        fix="`make setup` (pip install anny)", required=body == "anny"))
    if body != "anny":
        smplx, err = _import("smplx")
        checks.append(Check("body model", "smplx package", smplx is not None,
                            f"smplx {_version('smplx')}" if smplx is not None else err,
                            fix="pip install -e 'ros2_ws/src/interactvlm_ros[smplx]' (MPI non-commercial licence)",
                            required=True))
        model_dir = Path(cfg.body.model_dir).expanduser() if cfg.body.model_dir else None
        stem = {"smplx": "SMPLX_NEUTRAL", "smplh": "SMPLH_NEUTRAL", "smpl": "SMPL_NEUTRAL"}[body]
        found = None
        if model_dir is not None:
            found = next((model_dir / body / f"{stem}{ext}" for ext in (".npz", ".pkl")
                          if (model_dir / body / f"{stem}{ext}").is_file()), None)
        where = f"{model_dir / body / stem}.npz|.pkl" if model_dir else "body.model_dir is empty"
        checks.append(Check("body model", f"{body} model file", found is not None,
                            str(found) if found else f"not found ({where})",
                            fix=f"register at the {body.upper()} website, download the model, and set "
                                f"body.model_dir so that <dir>/{body}/{stem}.npz exists",
                            required=True))
    return checks


def model_checks(cfg: Config) -> list[Check]:
    from interactvlm_ros.model.configuration import PRESET_NAMES, inspect_model_source

    name = cfg.model.name
    ok, detail, fix = inspect_model_source(name, cfg.model.clip_dir)
    return [Check("model", "model" if name in PRESET_NAMES else "model directory", ok, detail, fix=fix,
                  required=True)]


def engine_checks(cfg: Config) -> list[Check]:
    path = engines_dir(cfg.engines.cache_dir)
    n = len([p for p in path.rglob("*") if p.is_file() and p.name != "README.md"]) if path.is_dir() else 0
    return [Check("engines", "engine cache", True, f"{path} ({n} cached artifact(s))")]


def recon_checks(cfg: Config) -> list[Check]:
    from interactvlm_ros.recon.keypoints import probe_mediapipe

    ok, detail = probe_mediapipe(cfg.recon.keypoint_python)
    o3d, err = _import("open3d")
    need = bool(cfg.recon.enabled)
    return [Check("recon", "MediaPipe keypoints", ok, detail, fix="`make setup` (creates .venv-mediapipe) or set "
                  "recon.keypoint_python", required=need),
            Check("recon", "open3d", o3d is not None, f"open3d {getattr(o3d, '__version__', '?')}"
                  if o3d is not None else err, fix="pip install open3d-cpu; apt-get install libusb-1.0-0",
                  required=need)]


def run_checks(cfg: Config) -> list[Check]:
    return (transport_checks(cfg) + inference_checks(cfg) + body_checks(cfg) + model_checks(cfg)
            + engine_checks(cfg) + recon_checks(cfg))


def add_parser(sub, common) -> None:
    p = sub.add_parser("doctor", parents=[common], help="report backends, body models, models and engines; "
                       "exit 1 unless the configured setup is ready")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(run=run)


def run(args) -> int:
    cfg: Config = args.cfg
    checks = run_checks(cfg)
    missing = [c for c in checks if c.required and not c.ok]
    setup = (f"transport={cfg.transport} backend={cfg.inference.backend} device={cfg.model.device} "
             f"body={cfg.body.model} model={cfg.model.name}")
    if args.json:
        print(json.dumps({"ready": not missing, "setup": setup, "config": cfg.source,
                          "python": sys.version.split()[0], "checks": [asdict(c) for c in checks]}, indent=2))
        return 1 if missing else 0
    print(f"interactvlm doctor — python {platform.python_version()} on {platform.machine()}; "
          f"config {cfg.source or '(built-in defaults)'}")
    for c in checks:
        mark = "ok  " if c.ok else ("MISS" if c.required else "--  ")
        print(f"  [{mark}] {c.group:<11} {c.name:<20} {c.detail}")
        if not c.ok and not c.required and c.fix:
            print(f"  {'':<6} {'':<11} {'':<20} to get it: {c.fix}")
    if missing:
        print(f"\nnot ready ({setup}):")
        for c in missing:
            print(f"  - {c.name}: {c.detail}; {c.fix}")
        return 1
    print(f"\nready: {setup}")
    return 0
