"""Every parameter the node and the CLI understand, with its type, default, allowed values and doc.

Keys are dotted (``render.resolution``); in the YAML file they may be written nested or dotted, under
``/**: ros__parameters:`` exactly as ROS 2 parameter files are. The same table declares the rclpy node's
parameters, so a key that is not here is an error everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    """One typed parameter. ``kind`` is one of bool, int, float, str, str_list, float_list."""

    name: str
    kind: str
    default: Any
    doc: str
    choices: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None

    def describe(self) -> str:
        """Human-readable expected type, e.g. ``int in [64, 4096]`` or ``one of 'a', 'b'``."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        text = {"str_list": "list of strings", "float_list": "list of numbers"}.get(self.kind, self.kind)
        if self.min is not None or self.max is not None:
            lo = "-inf" if self.min is None else _fmt(self.min)
            hi = "inf" if self.max is None else _fmt(self.max)
            text += f" in [{lo}, {hi}]"
        return text


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


PARAMETERS: tuple[Param, ...] = (
    # --- transport and topics -------------------------------------------------------------------
    Param("transport", "str", "auto", "Message transport: rclpy (ROS 2 install), dds (Cyclone DDS speaking the "
          "ROS 2 wire protocol, no ROS needed), auto (rclpy when importable, else dds).",
          choices=("auto", "rclpy", "dds")),
    Param("dds.domain_id", "int", -1, "DDS domain for the dds transport; -1 reads ROS_DOMAIN_ID (default 0).",
          min=-1, max=232),
    Param("topics.image", "str", "image", "Input sensor_msgs/Image topic."),
    Param("topics.camera_info", "str", "camera_info", "Optional sensor_msgs/CameraInfo topic paired with the "
          "image by timestamp; empty disables it."),
    Param("topics.depth", "str", "", "Optional depth sensor_msgs/Image (16UC1 mm or 32FC1 m); empty disables it."),
    Param("qos.image_reliability", "str", "best_effort", "Reliability of the image subscription "
          "(best_effort = SensorDataQoS).", choices=("best_effort", "reliable", "system_default")),
    Param("qos.image_depth", "int", 5, "History depth of the image subscription.", min=1, max=1000),
    Param("objects", "str_list", ["object"], "Object names queried for every frame (semantic contact); "
          "replaced at run time by messages on ~/objects (comma-separated)."),
    # --- model and inference --------------------------------------------------------------------
    Param("model.name", "str", "tiny", "A preset (tiny, official-7b, official-13b) or a model directory "
          "(an official InteractVLM checkpoint or one trained by `interactvlm train`)."),
    Param("model.clip_dir", "str", "", "Local CLIP ViT-L/14 directory for official checkpoints "
          "(never downloaded)."),
    Param("model.device", "str", "auto", "Where the model runs; auto = cuda when available.",
          choices=("auto", "cpu", "cuda")),
    Param("model.precision", "str", "auto", "Weights/activations precision; auto = fp32 on CPU, bf16 on CUDA.",
          choices=("auto", "fp32", "fp16", "bf16")),
    Param("inference.backend", "str", "torch", "Inference backend for the per-frame stages.",
          choices=("torch", "onnxruntime", "tensorrt")),
    Param("engines.cache_dir", "str", "", "Where ONNX/TensorRT engines are cached; empty = the repository's "
          "engines/ folder when run from source, else ~/.cache/interactvlm/engines."),
    Param("engines.force_rebuild", "bool", False, "Rebuild engines at start-up even when a valid cached one "
          "exists."),
    # --- body model and geometry ----------------------------------------------------------------
    Param("body.model", "str", "anny", "Body model: anny (open, bundled) or smplx/smplh/smpl (user files).",
          choices=("anny", "smplx", "smplh", "smpl")),
    Param("body.model_dir", "str", "", "Directory holding smplx/SMPLX_NEUTRAL.npz, smplh/SMPLH_NEUTRAL.pkl, "
          "smpl/SMPL_NEUTRAL.pkl (licensed files supplied by the user)."),
    Param("body.smpl_to_smplx", "str", "", "Path to the official smpl_to_smplx.pkl (key 'matrix', "
          "10475x6890) used to transfer SMPL/SMPL-H contact to SMPL-X."),
    Param("contact.threshold", "float", 0.5, "Probability at which a vertex counts as in contact.",
          min=0.0, max=1.0),
    Param("cache.dir", "str", "", "Cache for canonical renders, SAM embeddings and the Anny build; "
          "empty = $INTERACTVLM_CACHE_DIR or ~/.cache/interactvlm."),
    # --- node behaviour -------------------------------------------------------------------------
    Param("node.always_run", "bool", False, "Run inference even when nobody subscribes to an output."),
    Param("node.sync_tolerance_s", "float", 0.05, "Max stamp difference when pairing image, camera info and "
          "depth.", min=0.0, max=10.0),
)

PARAMETERS_BY_NAME: dict[str, Param] = {p.name: p for p in PARAMETERS}
