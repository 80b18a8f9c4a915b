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


def assert_same(served, local):
    assert (served.body_model, served.num_body_vertices) == (local.body_model, local.num_body_vertices)
    assert len(served.contacts) == len(local.contacts)
    for s, c in zip(served.contacts, local.contacts, strict=True):
        assert (s.label, s.found, s.reason, s.text, s.query, s.name_match) == \
            (c.label, c.found, c.reason, c.text, c.query, c.name_match)
        if c.found:
            assert np.abs(s.human_probs - c.human_probs).max() <= 1e-4
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
        assert_same(ContactPipeline(client, object_contact=False).run(image, OBJECTS).contacts, local)
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


def test_object_contact_is_refused_with_a_reason(serve_config):
    from interactvlm_ros.serving.client import OBJECT_CONTACT_REASON

    r = client_for(serve_config).predict_object(None, None, None, "cup", mesh_id="cup@x")
    assert not r.contacts[0].found and r.contacts[0].reason == OBJECT_CONTACT_REASON


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
