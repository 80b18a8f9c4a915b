"""Triton serving (issue 23): a real ``tritonserver`` (from the nvidia-pytriton wheel) on loopback hosting the
shipped default model, started and stopped here; the client's answers equal local inference, and the client
survives a server that is not up yet, a restart mid-stream and a model-hash mismatch."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from interactvlm_ros.serving.server import pytriton_problem

PROBLEM = pytriton_problem()
pytestmark = [pytest.mark.skipif(bool(PROBLEM), reason=PROBLEM or "pytriton runs"),
              pytest.mark.usefixtures("one_torch_thread")]

DEMO = Path(__file__).resolve().parents[2] / "ros2_ws/src/interactvlm_ros/interactvlm_ros/assets/demo"
OBJECTS = ["cup", "ball", "couch"]  # two names the default model knows, one it refuses (reason travels too)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def predictor():
    from interactvlm_ros.config import load_config
    from interactvlm_ros.model import ContactPredictor

    return ContactPredictor.from_config(load_config(None, ["inference.backend=torch"]))


@pytest.fixture(scope="module")
def image():
    return np.asarray(Image.open(DEMO / "20251125_0001_mug.png").convert("RGB"))


@pytest.fixture(scope="module")
def serve_config():
    from interactvlm_ros.serving.server import ServeConfig

    return ServeConfig("127.0.0.1", free_port(), free_port(), free_port(), max_batch_size=4)


def small_demo_image() -> np.ndarray:
    """The demo photo at 160x120 (small messages; the model resizes anyway)."""
    return np.asarray(Image.open(DEMO / "20251125_0001_mug.png").convert("RGB").resize((160, 120)))


def write_image_bag(path: Path, rgb: np.ndarray, frames: int) -> None:
    """An MCAP bag with ``frames`` copies of ``rgb`` on /camera/color/image_raw, 10 Hz."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from interactvlm_ros.transport.headers import make_header
    from interactvlm_ros.transport.image_codec import encode_image
    from interactvlm_ros.transport.typestore import typestore

    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection("/camera/color/image_raw", "sensor_msgs/msg/Image", typestore=typestore())
        for i in range(frames):
            t = 1_700_000_000 * 10**9 + i * 10**8
            w.write(conn, t, encode_image(rgb, "rgb8", make_header(t, "camera")).serialize())


def client_for(serve_config, **kw):
    from interactvlm_ros.serving.client import TritonContactPredictor

    kw = {"timeout_s": 30.0, "retry_s": 0.2, "retry_max_s": 1.0, **kw}
    return TritonContactPredictor(f"127.0.0.1:{serve_config.grpc_port}", **kw)


def until_answered(client, image, deadline_s: float = 60.0):
    """Frames at ~20 Hz until one is answered; returns (result, failed frames)."""
    from interactvlm_ros.serving.client import ServingError

    failed, t_end = 0, time.monotonic() + deadline_s
    while time.monotonic() < t_end:
        try:
            return client.predict(image, OBJECTS), failed
        except ServingError:
            failed += 1
            time.sleep(0.05)
    raise AssertionError(f"no answer in {deadline_s} s: {client.status()}")


def assert_same(served, local, view_masks: bool = False):
    """``served`` (a ContactResult) equals ``local``: labels, answers, reasons, probabilities (and view masks) within
    1e-4."""
    assert (served.body_model, served.num_body_vertices) == (local.body_model, local.num_body_vertices)
    assert len(served.contacts) == len(local.contacts)
    for s, c in zip(served.contacts, local.contacts, strict=True):
        assert (s.label, s.found, s.reason, s.text, s.query, s.name_match) == \
            (c.label, c.found, c.reason, c.text, c.query, c.name_match)
        if c.found:
            assert np.abs(s.human_probs - c.human_probs).max() <= 1e-4
            assert not view_masks or np.abs(s.view_masks - c.view_masks).max() <= 1e-4
        else:
            assert s.human_probs is None


def test_not_up_then_up_parity_restart_and_hash(predictor, image, serve_config):
    from interactvlm_ros.pipeline.contact_pipeline import ContactPipeline
    from interactvlm_ros.serving.client import ServingError
    from interactvlm_ros.serving.server import ContactServer

    local = predictor.predict(image, OBJECTS)
    assert any(c.found for c in local.contacts) and not all(c.found for c in local.contacts)
    client = client_for(serve_config)

    # 1. no server yet: a fast, explained failure, then fast refusals during the backoff (no blocking)
    t0 = time.monotonic()
    with pytest.raises(ServingError):
        client.predict(image, OBJECTS)
    assert client.state == "unavailable" and time.monotonic() - t0 < 5.0
    t0 = time.monotonic()
    with pytest.raises(ServingError):
        client.predict(image, OBJECTS)
    assert time.monotonic() - t0 < 0.05 and client.failures == 1  # refused in the backoff, no request

    with ContactServer(predictor, serve_config) as server:
        # 2. up: the same answer as local inference, through the unchanged pipeline too
        served, _ = until_answered(client, image)
        assert client.state == "ready" and client.server_hash == server.model_hash
        assert_same(served, local)
        # the answer told the input size: later frames travel as the model's square, same contacts
        assert client.input_size == predictor.clip_processor.size
        assert_same(client.predict(image, OBJECTS), local)
        assert_same(ContactPipeline(client, object_contact=False).run(image, OBJECTS).contacts, local)
        # a name the model refuses is the same ValueError as locally; the server stays usable (no backoff)
        with pytest.raises(ValueError, match="empty"):
            predictor.predict(image, ["[]"])
        with pytest.raises(ValueError, match="empty"):
            client.predict(image, ["[]"])
        assert client.state == "ready"
        assert_same(client.predict(image, OBJECTS), local)
        # 3. a client that expects another model refuses every answer, explained
        wrong = client_for(serve_config, expected_hash="0" * 32)
        with pytest.raises(ServingError, match="model_mismatch"):
            wrong.predict(image, OBJECTS)
        assert wrong.state == "model_mismatch"
        assert client_for(serve_config, expected_hash=server.model_hash).predict(image, OBJECTS)
        # 4. a timeout is a failed frame with state timeout
        late = client_for(serve_config, timeout_s=0.001)
        with pytest.raises(ServingError):
            late.predict(image, OBJECTS)
        assert late.state in ("timeout", "unavailable")

    # 5. restart mid-stream: frames fail while the server is away, the same client resumes afterwards
    with pytest.raises(ServingError):
        client.predict(image, OBJECTS)
    assert client.state == "unavailable"
    with ContactServer(predictor, serve_config):
        served, failed = until_answered(client, image)
        assert client.state == "ready"
        assert_same(served, local)


def test_a_failed_start_frees_its_ports(predictor, tmp_path, monkeypatch):
    """A server whose model cannot load (a stub environment without numpy) raises the load error and stops
    tritonserver, so the ports are free for the next start (a server left behind once failed every later test)."""
    import subprocess
    import sys

    from interactvlm_ros.serving.server import STUB_ENV_VARIABLE, ContactServer, ServeConfig

    broken = tmp_path / "stub-without-numpy"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(broken)], check=True)
    monkeypatch.setenv(STUB_ENV_VARIABLE, str(broken))
    config = ServeConfig("127.0.0.1", free_port(), free_port(), free_port())
    with pytest.raises(Exception, match="numpy"):
        ContactServer(predictor, config).start()
    for port in (config.http_port, config.grpc_port, config.metrics_port):
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_the_handshake_race_is_told_from_other_start_failures():
    """The message Triton gave in CI when a second instance lost pytriton's handshake race is retried; a model
    that cannot load is not."""
    from interactvlm_ros.serving.server import _is_startup_race

    race = ("[400] load failed for model 'interactvlm': version 1 is at UNAVAILABLE state: Internal: "
            "TritonModelException: Model initialize error: Traceback (most recent call last):\n  File "
            "\"/tmp/folder/1/model.py\", line 425, in initialize\n    inference_handler_config = "
            "get_config_from_handshake_server(handshake_socket)\nConnectionRefusedError: [Errno 111]")
    assert _is_startup_race(RuntimeError(race))
    assert not _is_startup_race(RuntimeError("[400] load failed for model 'interactvlm': No module named 'numpy'"))


def test_concurrent_clients_are_answered(predictor, image, serve_config):
    """Several clients at once against two model instances (the dynamic batcher groups equal-sized requests):
    every answer is right."""
    from concurrent.futures import ThreadPoolExecutor

    from interactvlm_ros.config import load_config
    from interactvlm_ros.model import ContactPredictor
    from interactvlm_ros.serving.server import ContactServer

    local = predictor.predict(image, OBJECTS)
    second = ContactPredictor.from_config(load_config(None, ["inference.backend=torch"]))
    with ContactServer([predictor, second], serve_config):
        clients = [client_for(serve_config) for _ in range(4)]
        until_answered(clients[0], image)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda c: c.predict(image, OBJECTS), clients))
    for r in results:
        assert_same(r, local)


def assert_same_objects(served, local):
    assert len(served.contacts) == len(local.contacts)
    for s, c in zip(served.contacts, local.contacts, strict=True):
        assert (s.label, s.found, s.reason, s.text, s.query, s.name_match, s.object_mesh_id) == \
            (c.label, c.found, c.reason, c.text, c.query, c.name_match, c.object_mesh_id)
        if c.object_probs is None:
            assert s.object_probs is None
        else:
            assert s.object_probs.shape == c.object_probs.shape
            assert np.abs(s.object_probs - c.object_probs).max() <= 1e-4


def test_object_contact_is_served_like_local(predictor, image, serve_config):
    """Object contact on the library meshes through the server equals the local pipeline's (human and object
    probabilities within 1e-4); each mesh travels once, and the frame's image is encoded once on the server."""
    from interactvlm_ros.config import load_config
    from interactvlm_ros.objects import ObjectLibrary
    from interactvlm_ros.pipeline.contact_pipeline import ContactPipeline
    from interactvlm_ros.serving.server import ContactServer

    library = ObjectLibrary.from_config(load_config(None))
    local_pipeline = ContactPipeline(predictor, library)
    local = local_pipeline.run(image, OBJECTS).contacts
    with_mesh = [c for c in local.contacts if c.object_probs is not None]
    assert len(with_mesh) == 2, "the test needs two found objects with library meshes"
    mug = local_pipeline.object_mesh(with_mesh[0].object_mesh_id)
    local_one = predictor.predict_object(image, mug.vertices, mug.faces, "cup")  # mesh id: its content hash

    with ContactServer(predictor, serve_config) as server:
        client = client_for(serve_config)
        until_answered(client, image)
        pipeline = ContactPipeline(client, library)
        for _ in range(2):
            served = pipeline.run(image, OBJECTS).contacts
            assert_same(served, local)
            assert_same_objects(served, local)
            assert client.meshes_sent == 2  # sent with the first frame only
        reused = server.served.encoded_reused
        assert reused >= 2  # the object requests used their human request's encoding
        assert_same_objects(client.predict_object(image, mug.vertices, mug.faces, "cup"), local_one)
        assert client.meshes_sent == 2 and client.state == "ready"
    with pytest.raises(NotImplementedError, match="not served"):
        client.predict_points(image, np.zeros((10, 3), np.float32), "cup")


def test_node_on_triton_survives_a_late_server_and_a_restart(predictor, serve_config):
    """The node with ``inference.backend: triton`` starts before the server, counts the unanswered frames as
    pipeline errors (reason in diagnostics) and keeps running; it answers once the server is up, and again after
    the server was stopped and started, without a node restart."""
    pytest.importorskip("cyclonedds", reason="the message types need cyclonedds")
    from node_sink import CollectingSink

    from interactvlm_ros.benchmarks.fuzz import good_messages
    from interactvlm_ros.config import load_config
    from interactvlm_ros.node.components import NodeComponents
    from interactvlm_ros.serving.server import ContactServer
    from interactvlm_ros.transport.node_inputs import wire_codecs

    settings = ["inference.backend=triton", f"inference.triton_url=127.0.0.1:{serve_config.grpc_port}",
                "inference.triton_retry_s=0.1", "inference.triton_retry_max_s=0.5", "objects=[cup]",
                "node.always_run=true", "node.marker_rate_hz=0", "node.diagnostics_period_s=0.1",
                "node.warn_throttle_s=60"]
    cfg = load_config(None, settings)
    components = NodeComponents.from_config(cfg)
    assert components.backend == "triton"
    sink = CollectingSink()
    node = components.build_node(cfg, sink)
    stamps = iter(range(1_700_000_000 * 10**9, 1_800_000_000 * 10**9, 10**8))

    def send():
        msg = good_messages(width=64, height=48, stamp_ns=next(stamps), frame="camera")["image"]
        node.on_serialized("image", msg.serialize(), wire_codecs(node.cfg)["image"])

    def errors() -> int:
        return int(sink.diagnostics[-1].values["pipeline_errors"]) if sink.diagnostics else 0

    def stream_until(predicate, timeout=90.0):
        t_end = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < t_end, "the node did not get there in time"
            send()
            time.sleep(0.1)

    node.start()
    try:
        stream_until(lambda: errors() >= 2)  # no server: failed frames, counted, node alive
        assert not sink.frames
        with ContactServer(predictor, serve_config):
            stream_until(lambda: len(sink.frames) >= 2)
        published = len(sink.frames)
        before = errors()
        stream_until(lambda: errors() > before)  # server gone mid-stream
        with ContactServer(predictor, serve_config):
            stream_until(lambda: len(sink.frames) > published + 1)  # back without restarting the node
    finally:
        node.stop()


def test_fallback_local_answers_while_the_server_is_away(predictor, serve_config):
    """``inference.fallback: local``: a node whose server is not up yet answers from the local model (loaded on
    that first frame), switches to the server once it is up, back to the local model when the server is
    stopped and to the server again when it is restarted; no frame fails, every published frame (human and
    object contact) equals local inference, and diagnostics say which backend answered."""
    pytest.importorskip("cyclonedds", reason="the message types need cyclonedds")
    from node_sink import CollectingSink

    from interactvlm_ros.config import load_config
    from interactvlm_ros.node.components import NodeComponents
    from interactvlm_ros.pipeline.contact_pipeline import ContactPipeline
    from interactvlm_ros.serving.fallback import FallbackPredictor
    from interactvlm_ros.serving.server import ContactServer
    from interactvlm_ros.transport.headers import make_header
    from interactvlm_ros.transport.image_codec import encode_image
    from interactvlm_ros.transport.node_inputs import wire_codecs

    settings = ["inference.backend=triton", f"inference.triton_url=127.0.0.1:{serve_config.grpc_port}",
                "inference.fallback=local", "inference.fallback_backend=torch", "inference.triton_retry_s=0.2",
                "inference.triton_retry_max_s=0.5", "objects=[cup]", "contact.person_gate=disabled",
                "node.always_run=true", "node.marker_rate_hz=0", "node.diagnostics_period_s=0.1",
                "node.warn_throttle_s=60"]
    cfg = load_config(None, settings)
    components = NodeComponents.from_config(cfg)
    fallback = components.predictor
    assert isinstance(fallback, FallbackPredictor) and fallback.local is None  # loaded on first need, not here
    sink = CollectingSink()
    node = components.build_node(cfg, sink)
    stamps = iter(range(1_700_000_000 * 10**9, 1_800_000_000 * 10**9, 10**8))
    rgb = small_demo_image()
    local = ContactPipeline(predictor, components.library).run(rgb, ["cup"]).contacts

    def send():
        m = encode_image(rgb, "rgb8", make_header(next(stamps), "camera"))
        node.on_serialized("image", m.serialize(), wire_codecs(node.cfg)["image"])

    def diag(key: str) -> str:
        return sink.diagnostics[-1].values.get(key, "") if sink.diagnostics else ""

    def stream_until(predicate, timeout=120.0):
        t_end = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < t_end, f"the node did not get there in time: {fallback.diagnostics()}"
            send()
            time.sleep(0.1)

    def count(backend: str) -> int:
        return int(diag(f"frames_{backend}") or 0)

    def published_by(backend: str, n: int = 2):
        """Stream until ``n`` more frames were answered by ``backend`` (diagnostics) and published."""
        start, answered = len(sink.frames), count(backend)
        stream_until(lambda: diag("answered_by").startswith(backend) and count(backend) >= answered + n
                     and len(sink.frames) >= start + n)

    node.start()
    try:
        published_by("local")  # no server yet: the local model answers
        assert fallback.local is not None and "unavailable" in diag("answered_by")
        assert diag("triton_state") == "unavailable" and diag("fallback_model").startswith("loaded (torch")
        with ContactServer(predictor, serve_config):
            published_by("triton")
            assert diag("triton_state") == "ready"
        published_by("local")  # server stopped mid-stream
        with ContactServer(predictor, serve_config):
            published_by("triton")  # restarted: back to the server, no node restart
        assert diag("pipeline_errors") == "0"
        assert int(diag("frames_local")) >= 4 and int(diag("frames_triton")) >= 4
    finally:
        node.stop()
    for outputs, _msgs in sink.frames:
        assert_same(outputs.result, local)
        assert_same_objects(outputs.result, local)
    assert any(c.object_probs is not None for c in local.contacts), "the frame should have object contact"


def test_bag_through_the_server_equals_local(predictor, image, serve_config, tmp_path):
    """``interactvlm bag`` with ``inference.backend=triton`` (the node's predictor factory) writes the same
    contacts as with the local model."""
    pytest.importorskip("rosbags", reason="bags need rosbags")
    from rosbags.highlevel import AnyReader

    from interactvlm_ros.bag.process import output_topics, process_bag
    from interactvlm_ros.config import load_config
    from interactvlm_ros.serving.server import ContactServer

    write_image_bag(tmp_path / "in", small_demo_image(), frames=2)
    common = ["contact.person_gate=disabled", "node.object_contact=true"]
    objects = ["cup", "ball"]
    local_cfg = load_config(None, ["inference.backend=torch", *common])
    report = process_bag(local_cfg, tmp_path / "in", tmp_path / "local.mcap", objects=objects)
    assert (report.processed, report.failed) == (2, 0)
    served_cfg = load_config(None, ["inference.backend=triton", f"inference.triton_url=127.0.0.1:"
                                    f"{serve_config.grpc_port}", *common])
    with ContactServer(predictor, serve_config):
        until_answered(client_for(serve_config), image)
        report = process_bag(served_cfg, tmp_path / "in", tmp_path / "served.mcap", objects=objects)
    assert (report.processed, report.failed) == (2, 0)

    topic = output_topics(local_cfg)["contacts"]

    def contacts(path):
        with AnyReader([path]) as reader:
            conns = [c for c in reader.connections if c.topic == topic]
            return [reader.deserialize(raw, c.msgtype).contacts for c, _t, raw in reader.messages(conns)]

    local, served = contacts(tmp_path / "local.mcap"), contacts(tmp_path / "served.mcap")
    assert len(local) == len(served) == 2
    assert any(c.found for frame in local for c in frame)
    for lf, sf in zip(local, served, strict=True):
        for lc, sc in zip(lf, sf, strict=True):
            assert (lc.object_label, lc.found, lc.reason, lc.object_mesh_id) == \
                (sc.object_label, sc.found, sc.reason, sc.object_mesh_id)
            for idx, prob in (("human_vertex_indices", "human_probabilities"),
                              ("object_vertex_indices", "object_probabilities")):
                np.testing.assert_array_equal(getattr(lc, idx), getattr(sc, idx))
                np.testing.assert_allclose(getattr(lc, prob), getattr(sc, prob), atol=1e-4, rtol=0)


def test_infer_through_the_server_writes_the_local_contacts(predictor, image, serve_config, tmp_path):
    from interactvlm_ros.cli.main import main
    from interactvlm_ros.serving.server import ContactServer

    photo = DEMO / "20251125_0001_mug.png"
    assert main(["infer", str(photo), "--object", "cup", "--out", str(tmp_path / "local"),
                 "--set", "inference.backend=torch", "--set", "contact.person_gate=disabled"]) == 0
    with ContactServer(predictor, serve_config):
        until_answered(client_for(serve_config), image)
        assert main(["infer", str(photo), "--object", "cup", "--out", str(tmp_path / "served"),
                     "--set", "inference.backend=triton", "--set", "contact.person_gate=disabled",
                     "--set", f"inference.triton_url=127.0.0.1:{serve_config.grpc_port}"]) == 0
    local, served = (np.load(tmp_path / d / "contacts.npz") for d in ("local", "served"))
    assert np.abs(local["human_probs"] - served["human_probs"]).max() <= 1e-4


def test_eval_real_through_the_server_scores_like_local(predictor, image, serve_config, tmp_path):
    """``eval --real`` with ``inference.backend: triton``: the served contacts score as the local ones (the
    astronaut, person gate off, a 3-sample class prior)."""
    from interactvlm_ros.config import load_config
    from interactvlm_ros.evaluation.real_photos import evaluate_real, shipped_labels_path
    from interactvlm_ros.serving.server import ContactServer

    settings = ["model.device=cpu", "contact.person_gate=disabled", f"cache.dir={tmp_path / 'cache'}"]
    kw = dict(labels=shipped_labels_path(), images_dir=tmp_path / "img", prior_samples=3, progress=False, limit=1)
    local = evaluate_real(load_config(None, settings), predictor=predictor, **kw)
    with ContactServer(predictor, serve_config):
        client = client_for(serve_config, body_loader=lambda: predictor.body_model)
        until_answered(client, image)
        served = evaluate_real(load_config(None, [*settings, "inference.backend=triton"]), predictor=client, **kw)
    assert list(served["real_per_image"]) == ["astronaut"]
    for key in ("real_part_hit_rate", "real_on_target", "prior_baseline_real_part_hit_rate"):
        assert served[key] == local[key], key
    row, ref = served["real_per_image"]["astronaut"], local["real_per_image"]["astronaut"]
    assert (row["found"], row["predicted_vertices"]) == (ref["found"], ref["predicted_vertices"])
