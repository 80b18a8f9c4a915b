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

    @property
    def live(self) -> bool:
        """Whether a running node takes a new value at once (``ros2 param set``); the others are read at
        *configure* and a configured node refuses to change them (:data:`LIVE_PARAMETERS`)."""
        return self.name in LIVE_PARAMETERS

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
    Param("topics.image", "str", "image", "Input image base topic, as image_transport names it: the "
          "sensor_msgs/Image itself (topics.image_transport raw) or <topics.image>/compressed."),
    Param("topics.image_transport", "str", "raw", "How the image arrives: raw (sensor_msgs/Image on topics.image) "
          "or compressed (sensor_msgs/CompressedImage, JPEG or PNG as image_transport's compressed plugin publishes "
          "it, on <topics.image>/compressed).", choices=("raw", "compressed")),
    Param("topics.camera_info", "str", "auto", "Optional sensor_msgs/CameraInfo topic paired with the image by "
          "timestamp; auto = the image topic's sibling as image_transport names it (/camera/color/image_raw -> "
          "/camera/color/camera_info); empty disables it; any other value is the topic."),
    Param("topics.depth", "str", "", "Optional depth base topic (sensor_msgs/Image 16UC1 mm or 32FC1 m); empty "
          "disables it."),
    Param("topics.depth_transport", "str", "raw", "How depth arrives: raw (sensor_msgs/Image on topics.depth) or "
          "compressedDepth (sensor_msgs/CompressedImage, 16-bit PNG as image_transport's compressedDepth plugin "
          "publishes it, on <topics.depth>/compressedDepth).", choices=("raw", "compressedDepth")),
    Param("topics.objects", "str", "~/objects", "Input std_msgs/String of comma-separated object names that "
          "replaces the objects parameter at run time."),
    Param("topics.contacts", "str", "~/contacts", "Output interactvlm_msgs/ContactArray (reliable)."),
    Param("topics.markers", "str", "~/contacts/markers", "Output visualization_msgs/MarkerArray for RViz."),
    Param("topics.human_cloud", "str", "~/contacts/human_cloud", "Output sensor_msgs/PointCloud2 of the body "
          "vertices with a probability field."),
    Param("topics.object_cloud", "str", "~/contacts/object_cloud", "Output sensor_msgs/PointCloud2 of the object "
          "mesh vertices with a probability field."),
    Param("topics.topology", "str", "~/contacts/topology", "Output interactvlm_msgs/MeshTopology of the body "
          "model, latched (transient local, depth 1)."),
    Param("topics.diagnostics", "str", "/diagnostics", "Output diagnostic_msgs/DiagnosticArray."),
    Param("topics.tf", "str", "/tf", "Output tf2_msgs/TFMessage of the body_<id> frames (children of the image "
          "frame) when recon.enabled."),
    Param("qos.image_reliability", "str", "best_effort", "Reliability of the image subscription "
          "(best_effort = SensorDataQoS).", choices=("best_effort", "reliable", "system_default")),
    Param("qos.image_depth", "int", 5, "History depth of the image subscription.", min=1, max=1000),
    Param("objects", "str_list", ["cup"], "Object names queried for every frame (semantic contact); "
          "replaced at run time by messages on ~/objects (comma-separated)."),
    # --- model and inference --------------------------------------------------------------------
    Param("model.name", "str", "default", "default (the shipped tiny model trained on synthetic data by "
          "`make train-default`; not for real photos), a preset (tiny, tiny-synth = random weights; official-7b, "
          "official-13b) or a model directory (an official InteractVLM checkpoint or one trained by "
          "`interactvlm train`)."),
    Param("model.clip_dir", "str", "", "Local CLIP ViT-L/14 directory for official checkpoints "
          "(never downloaded)."),
    Param("model.render_dir", "str", "", "Human contact on the authors' own canonical renders: the unpacked "
          "data.zip of the official release (its data/hcontact_vitruvian/ body_render_norm_<view>.png, "
          "pixel_to_vertex_map_1024.npz, bary_coords_map_1024.npz; never downloaded), with body.model smplh or "
          "smpl. Empty = our renderer's renders of the configured body."),
    Param("model.device", "str", "auto", "Where the model runs; auto = cuda when available.",
          choices=("auto", "cpu", "cuda")),
    Param("model.precision", "str", "auto", "Weights/activations precision; auto = fp32 on CPU, bf16 on CUDA.",
          choices=("auto", "fp32", "fp16", "bf16")),
    Param("model.answer", "str", "auto", "How the VLM answers: auto (the model's setting: a fixed template for "
          "'noParts' checkpoints and the tiny preset, else generation), generate (greedy decoding, KV cache), or a "
          "fixed answer containing [SEG] teacher-forced in one prefill pass (e.g. 'Sure, [SEG].')."),
    Param("model.max_new_tokens", "int", 0, "Most tokens generated per answer; 0 = the model's default (512 for "
          "official checkpoints).", min=0, max=4096),
    Param("inference.backend", "str", "onnxruntime", "Inference backend for the per-frame stages (vision, LLM, "
          "MV-Loc, SAM encoder); engines are built from ONNX at start-up and cached (engines/README.md). "
          "onnxruntime on a CUDA model without ORT's CUDA provider runs torch.",
          choices=("torch", "onnxruntime", "tensorrt", "triton")),
    Param("inference.triton_url", "str", "127.0.0.1:8001", "backend triton: gRPC host:port of the Triton server "
          "(`interactvlm serve`, docs/serving.md) that runs the model; the node sends image and object names."),
    Param("inference.triton_timeout_s", "float", 10.0, "backend triton: deadline of one request; a late answer "
          "is a failed frame (state timeout).", min=0.1, max=600.0),
    Param("inference.triton_model_hash", "str", "", "backend triton: the model hash the server must serve "
          "(printed by `interactvlm serve`); another one fails every frame (state model_mismatch); empty = any."),
    Param("inference.triton_retry_s", "float", 0.5, "backend triton: wait after a failed request before the "
          "server is asked again (frames in between fail at once), doubling per failure.", min=0.0, max=60.0),
    Param("inference.triton_retry_max_s", "float", 10.0, "backend triton: longest wait between tries.",
          min=0.0, max=600.0),
    Param("inference.fallback", "str", "none", "backend triton: what answers a frame the server does not "
          "(unavailable, timeout, other model): none = the frame fails (counted in diagnostics); local = the local "
          "model (model.name on inference.fallback_backend), loaded on the first such frame and kept; the server "
          "is asked again after its backoff (docs/serving.md).", choices=("none", "local")),
    Param("inference.fallback_backend", "str", "onnxruntime", "backend triton with inference.fallback local: "
          "the local model's inference backend.", choices=("torch", "onnxruntime", "tensorrt")),
    Param("serve.address", "str", "127.0.0.1", "interactvlm serve: address the Triton server binds (HTTP, gRPC, "
          "metrics); 0.0.0.0 to serve other machines."),
    Param("serve.http_port", "int", 8000, "interactvlm serve: HTTP/REST port (/v2/health/ready, "
          "/v2/models/interactvlm/ready, inference).", min=1, max=65535),
    Param("serve.grpc_port", "int", 8001, "interactvlm serve: gRPC port (what inference.triton_url names).",
          min=1, max=65535),
    Param("serve.metrics_port", "int", 8002, "interactvlm serve: Prometheus metrics port (/metrics).",
          min=1, max=65535),
    Param("serve.max_batch_size", "int", 8, "interactvlm serve: most requests the dynamic batcher groups into "
          "one call (requests of equal image size and name count).", min=1, max=256),
    Param("serve.max_queue_delay_us", "int", 2000, "interactvlm serve: how long the dynamic batcher waits for "
          "more requests to group (microseconds).", min=0, max=1000000),
    Param("serve.instances", "int", 1, "interactvlm serve: model instances (each its own predictor, run in "
          "parallel by Triton); more instances use more cores and memory.", min=1, max=64),
    Param("serve.threads", "int", 0, "interactvlm serve: torch intra-op threads of the server process; 0 = torch's "
          "default.", min=0, max=256),
    Param("serve.image_cache", "int", 4, "interactvlm serve: encoded images kept so a frame's object-contact "
          "request reuses its human request's encoding (0 = encode again).", min=0, max=256),
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
    Param("contact.person_gate", "str", "auto", "Person evidence before contact (MediaPipe pose + hand detectors "
          "in the keypoint worker, overlapping the model): a frame with no person gets every contact found=false, "
          "reason 'no person in the image (...)'; found contacts carry the evidence in Contact.confidence. auto = "
          "the gate where the MediaPipe environment runs, else contacts are published unchecked with reason 'person "
          "gate unavailable: ...'; required = no evidence (or no MediaPipe) means no contact; disabled = no gate.",
          choices=("auto", "required", "disabled")),
    Param("cache.dir", "str", "", "Cache for canonical renders, SAM embeddings and the Anny build; "
          "empty = $INTERACTVLM_CACHE_DIR or ~/.cache/interactvlm."),
    # --- objects and 3D reconstruction (recon) --------------------------------------------------
    Param("objects.library", "str_list",
          ["box:box.ply", "bottle:bottle.ply", "mug:mug.ply", "cup:cup.ply", "chair:chair.ply", "ball:ball.ply",
           "board:board.ply", "table:table.ply", "bench:bench.ply", "laptop:laptop.ply",
           "skateboard:skateboard.ply"],
          "Object mesh library, 'label:path' (metres, y up; glb, obj, off, ply or stl); relative paths are looked "
          "up in the shipped assets/objects folder (CC0 meshes), then next to this file, then in objects.asset_dirs. "
          "Every mesh must lie inside one of these folders after '..' and symlinks are resolved; an absolute path "
          "is allowed only inside them."),
    Param("objects.asset_dirs", "str_list", [], "Further folders objects.library may read meshes from (relative "
          "ones are relative to this file's folder), e.g. ['/data/meshes'] for 'drill:drill.obj' or "
          "'drill:/data/meshes/drill.obj'."),
    Param("recon.enabled", "bool", False, "Reconstruct the people and objects in the camera frame (body fit to "
          "MediaPipe keypoints, object pose from contacts) and publish posed meshes, contact points and body TF."),
    Param("recon.iterations", "int", 80, "Adam iterations of the body fit per person (a warm-started video "
          "frame uses half).", min=1, max=5000),
    Param("recon.object_iterations", "int", 120, "Adam iterations of the object pose fit.", min=0, max=5000),
    Param("recon.max_people", "int", 4, "At most this many people are detected and fitted per image.",
          min=1, max=32),
    Param("recon.min_visibility", "float", 0.5, "MediaPipe landmark visibility below which a keypoint is "
          "ignored by the fit.", min=0.0, max=1.0),
    Param("recon.pose_prior_weight", "float", 1.0, "Weight of the pose prior (joint angles towards a rest "
          "pose) in the body fit.", min=0.0),
    Param("recon.penetration_weight", "float", 10.0, "Weight of the object-into-body penetration term.",
          min=0.0),
    Param("recon.track_max_distance_m", "float", 0.5, "A person keeps its id when its pelvis moved less than "
          "this between frames.", min=0.0),
    Param("recon.person_tiles", "bool", False, "When MediaPipe finds nobody in the whole frame, also look in a 3x3 "
          "grid of overlapping half-size tiles: people about a quarter of the frame tall or smaller (a wide camera, "
          "people far away) are then found, for the person gate and the reconstruction. Costs up to 9 more Pose "
          "passes on frames with nobody in them (about 130 ms at 640x480 on a 2-core CPU)."),
    Param("recon.keypoint_python", "str", "", "Python interpreter of the MediaPipe environment (numpy<2); "
          "empty = $INTERACTVLM_MEDIAPIPE_PYTHON or the repository's .venv-mediapipe."),
    Param("camera.default_fov_deg", "float", 60.0, "Horizontal field of view assumed when no CameraInfo is "
          "given (pinhole, principal point at the image centre).", min=1.0, max=179.0),
    # --- node behaviour -------------------------------------------------------------------------
    Param("node.always_run", "bool", False, "Run inference even when nobody subscribes to an output."),
    Param("node.sync_tolerance_s", "float", 0.05, "Max stamp difference when pairing image, camera info and "
          "depth.", min=0.0, max=10.0),
    Param("node.name", "str", "interactvlm", "Node name; '~' in topic names stands for /<namespace>/<name> "
          "(rclpy: overridden by the launch file or --ros-args -r __node:=...)."),
    Param("node.namespace", "str", "", "Node namespace for the dds transport (rclpy takes it from the launch file)."),
    Param("node.autostart", "bool", True, "The rclpy lifecycle node configures and activates itself at start; "
          "false waits for a lifecycle manager (ros2 lifecycle set ...)."),
    Param("node.max_image_pixels", "int", 16777216, "Larger images (width x height) are rejected with a warning "
          "instead of being processed.", min=1),
    Param("node.max_objects", "int", 8, "Most object names one query may hold.", min=1, max=64),
    Param("node.publish_markers", "bool", True, "Publish the RViz MarkerArray (body and object meshes coloured by "
          "contact probability)."),
    Param("node.marker_rate_hz", "float", 2.0, "Most MarkerArray messages per second (a body mesh marker is "
          "megabytes); 0 = every frame.", min=0.0, max=1000.0),
    Param("node.publish_clouds", "bool", True, "Publish the human and object PointCloud2 outputs."),
    Param("node.object_contact", "bool", True, "Also predict contact on the object mesh of every queried name the "
          "object library knows (objects.library), for the object cloud, markers and Contact.object_*; costs one "
          "more model pass per such object."),
    Param("node.placement_distance_m", "float", 2.5, "Until reconstruction gives camera-frame meshes, the canonical "
          "body is drawn this far in front of the camera on the optical axis (object beside it).",
          min=0.1, max=100.0),
    Param("node.camera_frame", "str", "camera_optical_frame", "Frame used when an image header has an empty "
          "frame_id, and RViz's fixed frame in the launch file."),
    Param("node.diagnostics_period_s", "float", 1.0, "Seconds between diagnostics messages.", min=0.05, max=60.0),
    Param("node.warn_throttle_s", "float", 5.0, "The same kind of warning (bad image, bad query...) is logged at "
          "most once per this many seconds.", min=0.0, max=3600.0),
    Param("node.watchdog_s", "float", 10.0, "Liveness watchdog: diagnostics go ERROR when images arrive but no "
          "result was published for this many seconds (while there is work), and WARN when no image arrived for "
          "this long; 0 disables it.", min=0.0, max=3600.0),
)

PARAMETERS_BY_NAME: dict[str, Param] = {p.name: p for p in PARAMETERS}

LIVE_PARAMETERS: frozenset[str] = frozenset({
    "objects", "contact.threshold",
    "node.always_run", "node.sync_tolerance_s", "node.max_objects", "node.publish_markers", "node.marker_rate_hz",
    "node.publish_clouds", "node.object_contact", "node.placement_distance_m", "node.diagnostics_period_s",
    "node.warn_throttle_s", "node.watchdog_s",
})
"""Parameters a running node applies at once (``ContactNode.apply``). Every other one (model, backend, device,
engines, body model, transport, DDS, topics, QoS, recon, input limits...) is read at *configure*: the rclpy node
refuses to change it while configured, with a reason that says to clean up, set it and configure again."""
