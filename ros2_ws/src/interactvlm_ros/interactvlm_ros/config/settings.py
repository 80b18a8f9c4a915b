"""Typed settings: one frozen dataclass per parameter section. GENERATED from ``config/schema.py`` by
``python -m interactvlm_ros.config.generate_settings``; do not edit by hand.

``Config`` (``config/loader.py``) builds them once at load, after validation, and exposes them as
``cfg.<section>`` (and ``cfg.<name>`` for plain top-level parameters); list parameters are tuples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DdsSettings:
    """The ``dds.*`` parameters."""

    domain_id: int
    """``dds.domain_id``: DDS domain for the dds transport; -1 reads ROS_DOMAIN_ID (default 0)."""

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> DdsSettings:
        return cls(domain_id=values["dds.domain_id"])


@dataclass(frozen=True)
class TopicsSettings:
    """The ``topics.*`` parameters."""

    image: str
    """``topics.image``: Input image base topic, as image_transport names it: the sensor_msgs/Image itself
    (topics.image_transport raw) or <topics.image>/compressed."""
    image_transport: str
    """``topics.image_transport``: How the image arrives: raw (sensor_msgs/Image on topics.image) or compressed
    (sensor_msgs/CompressedImage, JPEG or PNG as image_transport's compressed plugin publishes it, on
    <topics.image>/compressed)."""
    camera_info: str
    """``topics.camera_info``: Optional sensor_msgs/CameraInfo topic paired with the image by timestamp; auto = the
    image topic's sibling as image_transport names it (/camera/color/image_raw -> /camera/color/camera_info);
    empty disables it; any other value is the topic."""
    depth: str
    """``topics.depth``: Optional depth base topic (sensor_msgs/Image 16UC1 mm or 32FC1 m); empty disables it."""
    depth_transport: str
    """``topics.depth_transport``: How depth arrives: raw (sensor_msgs/Image on topics.depth) or compressedDepth
    (sensor_msgs/CompressedImage, 16-bit PNG as image_transport's compressedDepth plugin publishes it, on
    <topics.depth>/compressedDepth)."""
    objects: str
    """``topics.objects``: Input std_msgs/String of comma-separated object names that replaces the objects parameter
    at run time."""
    contacts: str
    """``topics.contacts``: Output interactvlm_msgs/ContactArray (reliable)."""
    markers: str
    """``topics.markers``: Output visualization_msgs/MarkerArray for RViz."""
    human_cloud: str
    """``topics.human_cloud``: Output sensor_msgs/PointCloud2 of the body vertices with a probability field."""
    object_cloud: str
    """``topics.object_cloud``: Output sensor_msgs/PointCloud2 of the object mesh vertices with a probability field."""
    topology: str
    """``topics.topology``: Output interactvlm_msgs/MeshTopology of the body model, latched (transient local, depth
    1)."""
    diagnostics: str
    """``topics.diagnostics``: Output diagnostic_msgs/DiagnosticArray."""
    tf: str
    """``topics.tf``: Output tf2_msgs/TFMessage of the body_<id> frames (children of the image frame) when
    recon.enabled."""

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> TopicsSettings:
        return cls(image=values["topics.image"], image_transport=values["topics.image_transport"],
            camera_info=values["topics.camera_info"], depth=values["topics.depth"],
            depth_transport=values["topics.depth_transport"], objects=values["topics.objects"],
            contacts=values["topics.contacts"], markers=values["topics.markers"],
            human_cloud=values["topics.human_cloud"], object_cloud=values["topics.object_cloud"],
            topology=values["topics.topology"], diagnostics=values["topics.diagnostics"], tf=values["topics.tf"])


@dataclass(frozen=True)
class QosSettings:
    """The ``qos.*`` parameters."""

    image_reliability: str
    """``qos.image_reliability``: Reliability of the image subscription (best_effort = SensorDataQoS)."""
    image_depth: int
    """``qos.image_depth``: History depth of the image subscription."""

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> QosSettings:
        return cls(image_reliability=values["qos.image_reliability"], image_depth=values["qos.image_depth"])


@dataclass(frozen=True)
class ObjectsSettings:
    """The ``objects.*`` parameters."""

    names: tuple[str, ...]
    """``objects``: Object names queried for every frame (semantic contact); replaced at run time by messages on
    ~/objects (comma-separated)."""
    library: tuple[str, ...]
    """``objects.library``: Object mesh library, 'label:path' (metres, y up; glb, obj, off, ply or stl); relative
    paths are looked up in the shipped assets/objects folder (CC0 meshes), then next to this file, then in
    objects.asset_dirs. Every mesh must lie inside one of these folders after '..' and symlinks are resolved; an
    absolute path is allowed only inside them."""
    asset_dirs: tuple[str, ...]
    """``objects.asset_dirs``: Further folders objects.library may read meshes from (relative ones are relative to
    this file's folder), e.g. ['/data/meshes'] for 'drill:drill.obj' or 'drill:/data/meshes/drill.obj'."""

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ObjectsSettings:
        return cls(names=tuple(values["objects"]), library=tuple(values["objects.library"]),
            asset_dirs=tuple(values["objects.asset_dirs"]))


@dataclass(frozen=True)
class ModelSettings:
    """The ``model.*`` parameters."""

    name: str
    """``model.name``: default (the shipped tiny model trained on synthetic data by `make train-default`; not for
    real photos), a preset (tiny, tiny-synth = random weights; official-7b, official-13b) or a model directory (an
    official InteractVLM checkpoint or one trained by `interactvlm train`)."""
    clip_dir: str
    """``model.clip_dir``: Local CLIP ViT-L/14 directory for official checkpoints (never downloaded)."""
    render_dir: str
    """``model.render_dir``: Human contact on the authors' own canonical renders: the unpacked data.zip of the
    official release (its data/hcontact_vitruvian/ body_render_norm_<view>.png, pixel_to_vertex_map_1024.npz,
    bary_coords_map_1024.npz; never downloaded), with body.model smplh or smpl. Empty = our renderer's renders of
    the configured body."""
    device: str
    """``model.device``: Where the model runs; auto = cuda when available."""
    precision: str
    """``model.precision``: Weights/activations precision; auto = fp32 on CPU, bf16 on CUDA."""
    answer: str
    """``model.answer``: How the VLM answers: auto (the model's setting: a fixed template for 'noParts' checkpoints
    and the tiny preset, else generation), generate (greedy decoding, KV cache), or a fixed answer containing
    [SEG] teacher-forced in one prefill pass (e.g. 'Sure, [SEG].')."""
    max_new_tokens: int
    """``model.max_new_tokens``: Most tokens generated per answer; 0 = the model's default (512 for official
    checkpoints)."""

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ModelSettings:
        return cls(name=values["model.name"], clip_dir=values["model.clip_dir"], render_dir=values["model.render_dir"],
            device=values["model.device"], precision=values["model.precision"], answer=values["model.answer"],
            max_new_tokens=values["model.max_new_tokens"])


@dataclass(frozen=True)
class InferenceSettings:
    """The ``inference.*`` parameters."""

    backend: str
    """``inference.backend``: Inference backend for the per-frame stages (vision, LLM, MV-Loc, SAM encoder); engines
    are built from ONNX at start-up and cached (engines/README.md). onnxruntime on a CUDA model without ORT's CUDA
    provider runs torch."""
    triton_url: str
    """``inference.triton_url``: backend triton: gRPC host:port of the Triton server (`interactvlm serve`,
    docs/serving.md) that runs the model; the node sends image and object names."""
    triton_timeout_s: float
    """``inference.triton_timeout_s``: backend triton: deadline of one request; a late answer is a failed frame
    (state timeout)."""
    triton_model_hash: str
    """``inference.triton_model_hash``: backend triton: the model hash the server must serve (printed by `interactvlm
    serve`); another one fails every frame (state model_mismatch); empty = any."""
    triton_retry_s: float
    """``inference.triton_retry_s``: backend triton: wait after a failed request before the server is asked again
    (frames in between fail at once), doubling per failure."""
    triton_retry_max_s: float
    """``inference.triton_retry_max_s``: backend triton: longest wait between tries."""
    fallback: str
    """``inference.fallback``: backend triton: what answers a frame the server does not (unavailable, timeout, other
    model): none = the frame fails (counted in diagnostics); local = the local model (model.name on
    inference.fallback_backend), loaded on the first such frame and kept; the server is asked again after its
    backoff (docs/serving.md)."""
    fallback_backend: str
    """``inference.fallback_backend``: backend triton with inference.fallback local: the local model's inference
    backend."""

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> InferenceSettings:
        return cls(backend=values["inference.backend"], triton_url=values["inference.triton_url"],
            triton_timeout_s=values["inference.triton_timeout_s"],
            triton_model_hash=values["inference.triton_model_hash"], triton_retry_s=values["inference.triton_retry_s"],
            triton_retry_max_s=values["inference.triton_retry_max_s"], fallback=values["inference.fallback"],
            fallback_backend=values["inference.fallback_backend"])


@dataclass(frozen=True)
class ServeSettings:
    """The ``serve.*`` parameters."""

    address: str
    """``serve.address``: interactvlm serve: address the Triton server binds (HTTP, gRPC, metrics); 0.0.0.0 to serve
    other machines."""
    http_port: int
    """``serve.http_port``: interactvlm serve: HTTP/REST port (/v2/health/ready, /v2/models/interactvlm/ready,
    inference)."""
    grpc_port: int
    """``serve.grpc_port``: interactvlm serve: gRPC port (what inference.triton_url names)."""
    metrics_port: int
    """``serve.metrics_port``: interactvlm serve: Prometheus metrics port (/metrics)."""
    max_batch_size: int
    """``serve.max_batch_size``: interactvlm serve: most requests the dynamic batcher groups into one call (requests
    of equal image size and name count)."""
    max_queue_delay_us: int
    """``serve.max_queue_delay_us``: interactvlm serve: how long the dynamic batcher waits for more requests to group
    (microseconds)."""
    instances: int
    """``serve.instances``: interactvlm serve: model instances (each its own predictor, run in parallel by Triton);
    more instances use more cores and memory."""
    threads: int
    """``serve.threads``: interactvlm serve: torch intra-op threads of the server process; 0 = torch's default."""
    image_cache: int
    """``serve.image_cache``: interactvlm serve: encoded images kept so a frame's object-contact request reuses its
    human request's encoding (0 = encode again)."""

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ServeSettings:
        return cls(address=values["serve.address"], http_port=values["serve.http_port"],
            grpc_port=values["serve.grpc_port"], metrics_port=values["serve.metrics_port"],
            max_batch_size=values["serve.max_batch_size"], max_queue_delay_us=values["serve.max_queue_delay_us"],
            instances=values["serve.instances"], threads=values["serve.threads"],
            image_cache=values["serve.image_cache"])


@dataclass(frozen=True)
class EnginesSettings:
    """The ``engines.*`` parameters."""

    cache_dir: str
    """``engines.cache_dir``: Where ONNX/TensorRT engines are cached; empty = the repository's engines/ folder when
    run from source, else ~/.cache/interactvlm/engines."""
    force_rebuild: bool
    """``engines.force_rebuild``: Rebuild engines at start-up even when a valid cached one exists."""

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> EnginesSettings:
        return cls(cache_dir=values["engines.cache_dir"], force_rebuild=values["engines.force_rebuild"])


@dataclass(frozen=True)
class BodySettings:
    """The ``body.*`` parameters."""

    model: str
    """``body.model``: Body model: anny (open, bundled) or smplx/smplh/smpl (user files)."""
    model_dir: str
    """``body.model_dir``: Directory holding smplx/SMPLX_NEUTRAL.npz, smplh/SMPLH_NEUTRAL.pkl, smpl/SMPL_NEUTRAL.pkl
    (licensed files supplied by the user)."""
    smpl_to_smplx: str
    """``body.smpl_to_smplx``: Path to the official smpl_to_smplx.pkl (key 'matrix', 10475x6890) used to transfer
    SMPL/SMPL-H contact to SMPL-X."""

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> BodySettings:
        return cls(model=values["body.model"], model_dir=values["body.model_dir"],
            smpl_to_smplx=values["body.smpl_to_smplx"])


@dataclass(frozen=True)
class ContactSettings:
    """The ``contact.*`` parameters."""

    threshold: float
    """``contact.threshold``: Probability at which a vertex counts as in contact."""
    person_gate: str
    """``contact.person_gate``: Person evidence before contact (MediaPipe pose + hand detectors in the keypoint
    worker, overlapping the model): a frame with no person gets every contact found=false, reason 'no person in
    the image (...)'; found contacts carry the evidence in Contact.confidence. auto = the gate where the MediaPipe
    environment runs, else contacts are published unchecked with reason 'person gate unavailable: ...'; required =
    no evidence (or no MediaPipe) means no contact; disabled = no gate."""

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ContactSettings:
        return cls(threshold=values["contact.threshold"], person_gate=values["contact.person_gate"])


@dataclass(frozen=True)
class CacheSettings:
    """The ``cache.*`` parameters."""

    dir: str
    """``cache.dir``: Cache for canonical renders, SAM embeddings and the Anny build; empty = $INTERACTVLM_CACHE_DIR
    or ~/.cache/interactvlm."""

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> CacheSettings:
        return cls(dir=values["cache.dir"])


@dataclass(frozen=True)
class ReconSettings:
    """The ``recon.*`` parameters."""

    enabled: bool
    """``recon.enabled``: Reconstruct the people and objects in the camera frame (body fit to MediaPipe keypoints,
    object pose from contacts) and publish posed meshes, contact points and body TF."""
    iterations: int
    """``recon.iterations``: Adam iterations of the body fit per person (a warm-started video frame uses half)."""
    object_iterations: int
    """``recon.object_iterations``: Adam iterations of the object pose fit."""
    max_people: int
    """``recon.max_people``: At most this many people are detected and fitted per image."""
    min_visibility: float
    """``recon.min_visibility``: MediaPipe landmark visibility below which a keypoint is ignored by the fit."""
    pose_prior_weight: float
    """``recon.pose_prior_weight``: Weight of the pose prior (joint angles towards a rest pose) in the body fit."""
    penetration_weight: float
    """``recon.penetration_weight``: Weight of the object-into-body penetration term."""
    track_max_distance_m: float
    """``recon.track_max_distance_m``: A person keeps its id when its pelvis moved less than this between frames."""
    person_tiles: bool
    """``recon.person_tiles``: When MediaPipe finds nobody in the whole frame, also look in a 3x3 grid of overlapping
    half-size tiles: people about a quarter of the frame tall or smaller (a wide camera, people far away) are then
    found, for the person gate and the reconstruction. Costs up to 9 more Pose passes on frames with nobody in
    them (about 130 ms at 640x480 on a 2-core CPU)."""
    keypoint_python: str
    """``recon.keypoint_python``: Python interpreter of the MediaPipe environment (numpy<2); empty =
    $INTERACTVLM_MEDIAPIPE_PYTHON or the repository's .venv-mediapipe."""

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ReconSettings:
        return cls(enabled=values["recon.enabled"], iterations=values["recon.iterations"],
            object_iterations=values["recon.object_iterations"], max_people=values["recon.max_people"],
            min_visibility=values["recon.min_visibility"], pose_prior_weight=values["recon.pose_prior_weight"],
            penetration_weight=values["recon.penetration_weight"],
            track_max_distance_m=values["recon.track_max_distance_m"], person_tiles=values["recon.person_tiles"],
            keypoint_python=values["recon.keypoint_python"])


@dataclass(frozen=True)
class CameraSettings:
    """The ``camera.*`` parameters."""

    default_fov_deg: float
    """``camera.default_fov_deg``: Horizontal field of view assumed when no CameraInfo is given (pinhole, principal
    point at the image centre)."""

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> CameraSettings:
        return cls(default_fov_deg=values["camera.default_fov_deg"])


@dataclass(frozen=True)
class NodeSettings:
    """The ``node.*`` parameters."""

    always_run: bool
    """``node.always_run``: Run inference even when nobody subscribes to an output."""
    sync_tolerance_s: float
    """``node.sync_tolerance_s``: Max stamp difference when pairing image, camera info and depth."""
    name: str
    """``node.name``: Node name; '~' in topic names stands for /<namespace>/<name> (rclpy: overridden by the launch
    file or --ros-args -r __node:=...)."""
    namespace: str
    """``node.namespace``: Node namespace for the dds transport (rclpy takes it from the launch file)."""
    autostart: bool
    """``node.autostart``: The rclpy lifecycle node configures and activates itself at start; false waits for a
    lifecycle manager (ros2 lifecycle set ...)."""
    max_image_pixels: int
    """``node.max_image_pixels``: Larger images (width x height) are rejected with a warning instead of being
    processed."""
    max_objects: int
    """``node.max_objects``: Most object names one query may hold."""
    publish_markers: bool
    """``node.publish_markers``: Publish the RViz MarkerArray (body and object meshes coloured by contact
    probability)."""
    marker_rate_hz: float
    """``node.marker_rate_hz``: Most MarkerArray messages per second (a body mesh marker is megabytes); 0 = every
    frame."""
    publish_clouds: bool
    """``node.publish_clouds``: Publish the human and object PointCloud2 outputs."""
    object_contact: bool
    """``node.object_contact``: Also predict contact on the object mesh of every queried name the object library
    knows (objects.library), for the object cloud, markers and Contact.object_*; costs one more model pass per
    such object."""
    placement_distance_m: float
    """``node.placement_distance_m``: Until reconstruction gives camera-frame meshes, the canonical body is drawn
    this far in front of the camera on the optical axis (object beside it)."""
    camera_frame: str
    """``node.camera_frame``: Frame used when an image header has an empty frame_id, and RViz's fixed frame in the
    launch file."""
    diagnostics_period_s: float
    """``node.diagnostics_period_s``: Seconds between diagnostics messages."""
    warn_throttle_s: float
    """``node.warn_throttle_s``: The same kind of warning (bad image, bad query...) is logged at most once per this
    many seconds."""
    watchdog_s: float
    """``node.watchdog_s``: Liveness watchdog: diagnostics go ERROR when images arrive but no result was published
    for this many seconds (while there is work), and WARN when no image arrived for this long; 0 disables it."""

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> NodeSettings:
        return cls(always_run=values["node.always_run"], sync_tolerance_s=values["node.sync_tolerance_s"],
            name=values["node.name"], namespace=values["node.namespace"], autostart=values["node.autostart"],
            max_image_pixels=values["node.max_image_pixels"], max_objects=values["node.max_objects"],
            publish_markers=values["node.publish_markers"], marker_rate_hz=values["node.marker_rate_hz"],
            publish_clouds=values["node.publish_clouds"], object_contact=values["node.object_contact"],
            placement_distance_m=values["node.placement_distance_m"], camera_frame=values["node.camera_frame"],
            diagnostics_period_s=values["node.diagnostics_period_s"], warn_throttle_s=values["node.warn_throttle_s"],
            watchdog_s=values["node.watchdog_s"])


class TypedSettings:
    """The sections as typed properties (``Config`` mixes this in; ``_sections`` is built at load)."""

    _sections: dict[str, Any]
    _values: dict[str, Any]

    @property
    def dds(self) -> DdsSettings:
        return self._sections["dds"]

    @property
    def topics(self) -> TopicsSettings:
        return self._sections["topics"]

    @property
    def qos(self) -> QosSettings:
        return self._sections["qos"]

    @property
    def objects(self) -> ObjectsSettings:
        return self._sections["objects"]

    @property
    def model(self) -> ModelSettings:
        return self._sections["model"]

    @property
    def inference(self) -> InferenceSettings:
        return self._sections["inference"]

    @property
    def serve(self) -> ServeSettings:
        return self._sections["serve"]

    @property
    def engines(self) -> EnginesSettings:
        return self._sections["engines"]

    @property
    def body(self) -> BodySettings:
        return self._sections["body"]

    @property
    def contact(self) -> ContactSettings:
        return self._sections["contact"]

    @property
    def cache(self) -> CacheSettings:
        return self._sections["cache"]

    @property
    def recon(self) -> ReconSettings:
        return self._sections["recon"]

    @property
    def camera(self) -> CameraSettings:
        return self._sections["camera"]

    @property
    def node(self) -> NodeSettings:
        return self._sections["node"]

    @property
    def transport(self) -> str:
        """``transport``: Message transport: rclpy (ROS 2 install), dds (Cyclone DDS speaking the ROS 2 wire
        protocol, no ROS needed), auto (rclpy when importable, else dds)."""
        return self._values["transport"]


def build_sections(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every section's settings from validated ``values`` (dotted keys)."""
    return {"dds": DdsSettings.from_values(values), "topics": TopicsSettings.from_values(values),
        "qos": QosSettings.from_values(values), "objects": ObjectsSettings.from_values(values),
        "model": ModelSettings.from_values(values), "inference": InferenceSettings.from_values(values),
        "serve": ServeSettings.from_values(values), "engines": EnginesSettings.from_values(values),
        "body": BodySettings.from_values(values), "contact": ContactSettings.from_values(values),
        "cache": CacheSettings.from_values(values), "recon": ReconSettings.from_values(values),
        "camera": CameraSettings.from_values(values), "node": NodeSettings.from_values(values)}
