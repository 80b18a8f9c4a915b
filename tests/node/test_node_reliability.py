"""No input can silence the node: every fuzz kind fed as received bytes, supervised threads that die and come back,
the liveness watchdog, size-mismatched camera info, and object labels kept as asked.

The node runs in-process with the real tiny model and the real message types and decoders; faults are injected
where a real deployment meets them (the bytes a peer publishes, a publisher that raises, a model call that hangs).
"""

import threading
import time

import pytest
from node_sink import CollectingSink

from interactvlm_ros.config import load_config
from interactvlm_ros.node.supervision import Supervisor
from interactvlm_ros.transport.node_inputs import wire_codecs

pytest.importorskip("cyclonedds", reason="the message types need cyclonedds")

FRAME = "camera"
SETTINGS = ["model.name=tiny", "model.device=cpu", "objects=[cup]", "node.always_run=true", "node.marker_rate_hz=0",
            "node.diagnostics_period_s=0.1", "node.warn_throttle_s=60", "topics.camera_info=camera_info"]


@pytest.fixture(scope="module")
def components():
    from interactvlm_ros.node.components import NodeComponents

    return NodeComponents.from_config(load_config(None, ["model.name=tiny", "model.device=cpu"]))


def make_node(components, sink, *settings, predictor=None):

    cfg = load_config(None, [*SETTINGS, *settings])
    return components.build_node(cfg, sink, predictor=predictor)


def send_frame(node, stamp, size=(48, 64), info_size=None):
    """A good camera info (for ``info_size``, default the image's), depth (when enabled) and image with ``stamp``,
    as received bytes."""
    from interactvlm_ros.benchmarks.fuzz import good_messages

    h, w = size
    msgs = good_messages(width=w, height=h, stamp_ns=stamp, frame=FRAME)
    info = msgs["camera_info"]
    if info_size is not None:
        info = good_messages(width=info_size[1], height=info_size[0], stamp_ns=stamp, frame=FRAME)["camera_info"]
    streams = [("camera_info", info)] + ([("depth", msgs["depth"])] if "depth" in node.sync.streams else [])
    for topic, msg in (*streams, ("image", msgs["image"])):
        node.on_serialized(topic, msg.serialize(), wire_codecs(node.cfg)[topic])


def stamp_of(outputs) -> int:
    return outputs.header.stamp_ns


def test_every_fuzz_kind_as_received_bytes_is_counted_and_the_node_keeps_answering(components):
    from interactvlm_ros.benchmarks.fuzz import KINDS, fuzz_payloads
    from interactvlm_ros.transport.msgs import String

    sink = CollectingSink()
    node = make_node(components, sink, "topics.depth=depth")
    codecs = wire_codecs(node.cfg)
    node.start()
    try:
        per_topic = 60
        for topic in codecs:
            kinds = set()
            for kind, payload in fuzz_payloads(topic, per_topic, seed=1):
                node.on_serialized(topic, payload, codecs[topic])  # never raises
                kinds.add(kind)
            assert kinds == set(KINDS)
        bad_utf8 = next(p for kind, p in fuzz_payloads("objects", 10, seed=2) if kind == "bad_utf8")
        node.on_serialized("objects", bad_utf8, codecs["objects"])
        assert "UnicodeDecodeError" in node.inputs.topics["objects"].last_drop
        node.on_serialized("objects", String(data="cup").serialize(), codecs["objects"])
        stamp = 1_700_000_000 * 10**9
        send_frame(node, stamp)
        sink.wait(lambda: any(stamp_of(o) == stamp for o, _ in sink.frames), timeout=60)
    finally:
        node.stop()
    values = sink.diagnostics[-1].values
    assert values["thread_deaths"] == "0" and values["worker"] == "stopped"
    for topic in codecs:
        received = per_topic + (2 if topic == "objects" else 1)  # and the bad UTF-8 and good messages below
        assert int(values[f"{topic}_received"]) == received, topic
        assert int(values[f"{topic}_dropped_undecodable"]) > 0, topic  # random / truncated / bad UTF-8 bytes
    assert values["objects"] == "cup"


def test_images_are_accounted_for_stage_by_stage(components):
    sink = CollectingSink()
    node = make_node(components, sink)
    node.start()
    try:
        stamps = [1_700_000_000 * 10**9 + i * 10**8 for i in range(3)]
        for stamp in stamps:
            send_frame(node, stamp)
            sink.wait(lambda s=stamp: any(stamp_of(o) == s for o, _ in sink.frames), timeout=60)
    finally:
        node.stop()
    values = sink.diagnostics[-1].values
    assert values["images_received"] == "3" and values["images_published"] == "3"
    assert values["images_in_flight"] == "0" and values["images_dropped_input"] == "0"


def test_camera_info_of_another_size_is_dropped_and_the_image_still_answered(components):
    sink = CollectingSink()
    node = make_node(components, sink)
    node.start()
    try:
        stamp = 1_700_000_000 * 10**9
        send_frame(node, stamp, size=(48, 64), info_size=(480, 640))
        sink.wait(lambda: any(stamp_of(o) == stamp for o, _ in sink.frames), timeout=60)
    finally:
        node.stop()
    values = sink.diagnostics[-1].values
    assert values["camera_info_dropped_size_mismatch"] == "1"
    assert "camera info for 640x480 not used with a 64x48 image" in values["camera_info_last_drop"]


class FailingOnceSink(CollectingSink):
    """A publisher side whose subscriber count raises once in the worker thread (a transport bug hit inside the
    worker's loop)."""

    def __init__(self, thread_name):
        super().__init__()
        self.thread_name = thread_name
        self.failed = threading.Event()

    def subscriber_count(self) -> int:
        if threading.current_thread().name == self.thread_name and not self.failed.is_set():
            self.failed.set()
            raise RuntimeError("subscriber graph unavailable")
        return 1


def test_a_worker_that_dies_is_reported_as_error_at_once_and_restarted(components):
    from interactvlm_ros.node.core import WORKER

    sink = FailingOnceSink(WORKER)
    node = make_node(components, sink, "node.always_run=false")
    node.start()
    try:
        send_frame(node, 1_700_000_000 * 10**9)  # the worker's activity check raises: the worker loop dies
        sink.wait(lambda: any(r.level == 2 and f"thread {WORKER} died" in r.message for r in sink.diagnostics), 30)
        death = next(r for r in sink.diagnostics if r.level == 2)
        assert "RuntimeError: subscriber graph unavailable" in death.message
        assert death.values["thread_deaths"] == "1"
        stamp = 1_700_000_001 * 10**9
        deadline = time.monotonic() + 30
        while not node.supervisor.alive(WORKER) and time.monotonic() < deadline:
            time.sleep(0.01)
        send_frame(node, stamp)  # the restarted worker answers
        sink.wait(lambda: any(stamp_of(o) == stamp for o, _ in sink.frames), timeout=60)
    finally:
        node.stop()
    assert node.supervisor.deaths == {WORKER: 1}


class HangingPredictor:
    """The real predictor behind a gate: ``predict`` blocks until ``release`` is set (a hung device call)."""

    def __init__(self, predictor):
        self.predictor = predictor
        self.entered = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name):
        return getattr(self.predictor, name)

    def predict(self, image_rgb, objects):
        self.entered.set()
        self.release.wait(60)
        return self.predictor.predict(image_rgb, objects)


def test_watchdog_warns_without_images_and_errors_when_the_worker_hangs(components):
    predictor = HangingPredictor(components.predictor)
    sink = CollectingSink()
    node = make_node(components, sink, "node.watchdog_s=0.3", predictor=predictor)
    node.start()
    try:
        sink.wait(lambda: any(r.level == 1 and "no image received" in r.message for r in sink.diagnostics), 30)
        for i in range(40):  # images keep arriving while the first frame's model call hangs
            send_frame(node, 1_700_000_000 * 10**9 + i * 10**8)
            if any(r.level == 2 and "stalled" in r.message for r in sink.diagnostics):
                break
            time.sleep(0.05)
        stalled = next(r for r in sink.diagnostics if r.level == 2)
        assert predictor.entered.is_set() and "processing a frame for" in stalled.message
        predictor.release.set()
        sink.wait(lambda: len(sink.frames) >= 1, timeout=60)
        for i in range(40, 1240):  # recovered: OK again while images keep arriving
            if sink.diagnostics[-1].level == 0:
                break
            send_frame(node, 1_700_000_000 * 10**9 + i * 10**8)
            time.sleep(0.05)
        assert sink.diagnostics[-1].level == 0, sink.diagnostics[-1].message
    finally:
        predictor.release.set()
        node.stop()


def test_object_label_is_the_name_as_asked(components):
    from interactvlm_ros.transport.msgs import String

    sink = CollectingSink()
    node = make_node(components, sink)
    node.start()
    try:
        node.on_serialized("objects", String(data="Coffee Cup ,  bottle").serialize(), wire_codecs(node.cfg)["objects"])
        stamp = 1_700_000_000 * 10**9
        send_frame(node, stamp)
        sink.wait(lambda: any(stamp_of(o) == stamp for o, _ in sink.frames), timeout=60)
    finally:
        node.stop()
    _, msgs = next((o, m) for o, m in sink.frames if stamp_of(o) == stamp)
    labels = [c.object_label for c in msgs["contacts"].contacts]
    assert labels == ["Coffee Cup", "bottle"]
    assert all(c.object_prompt_name for c in msgs["contacts"].contacts)


def test_supervisor_restarts_a_loop_that_raises_with_backoff():
    deaths, runs = [], []
    stop = threading.Event()

    def loop(stop_event):
        runs.append(time.monotonic())
        if len(runs) <= 2:
            raise ValueError(f"boom {len(runs)}")
        stop_event.wait()

    sup = Supervisor(on_death=deaths.append, backoff_s=0.05, max_backoff_s=0.2)
    sup.start("loop", loop, stop)
    deadline = time.monotonic() + 10
    while len(runs) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(runs) == 3 and sup.alive("loop")
    assert [d.reason for d in deaths] == ["ValueError: boom 1", "ValueError: boom 2"]
    assert sup.deaths == {"loop": 2} and sup.recent_death(60).reason == "ValueError: boom 2"
    assert runs[2] - runs[1] >= runs[1] - runs[0] > 0  # the second restart waits longer (doubling backoff)
    stop.set()
    sup.join("loop", 5)
    assert not sup.alive("loop")


def test_each_kind_of_bad_image_is_logged_and_kept_in_diagnostics(components):
    """A bad-length image and then an unknown encoding, within one throttle period: both are logged and both
    stay in diagnostics (one throttle and one ``last_error`` for all bad input hid the second)."""
    from interactvlm_ros.benchmarks.fuzz import good_messages

    sink, lines = CollectingSink(), []
    cfg = load_config(None, SETTINGS)
    node = components.build_node(cfg, sink, warn=lines.append)
    codec = wire_codecs(node.cfg)["image"]
    short = good_messages()["image"]
    short.data = short.data[:100]
    odd = good_messages()["image"]
    odd.encoding = "yuv422_weird"
    for msg in (short, short, odd, odd):
        node.on_serialized("image", msg.serialize(), codec)
    node.on_serialized("objects", b"\x00\x01", wire_codecs(node.cfg)["objects"])
    assert len(lines) == 3, lines  # one per kind of problem; the repeats are suppressed (60 s throttle)
    assert "Image.data" in lines[0] and "Image.encoding" in lines[1] and "undecodable objects" in lines[2]
    values = node.diagnostics().values
    assert values["image_dropped_invalid"] == "4"
    assert "fewer than step * height" in values["image_last_invalid_data"]
    assert "unsupported encoding 'yuv422_weird'" in values["image_last_invalid_encoding"]
    assert "undecodable objects" in values["last_input_error"] == values["last_error"]
    assert values["last_pipeline_error"] == "" and values["last_thread_error"] == ""


def test_cleaned_object_names_are_counted_shown_and_logged_once(components, caplog):
    from interactvlm_ros.transport.msgs import String

    sink = CollectingSink()
    node = make_node(components, sink)
    codec = wire_codecs(node.cfg)["objects"]
    node.start()
    try:
        with caplog.at_level("WARNING", logger="interactvlm.node"):
            for _ in range(3):
                node.on_serialized("objects", String(data="[SEG] cup, <image>").serialize(), codec)
            node.on_serialized("objects", String(data="cup, []").serialize(), codec)  # nothing left of '[]'
        stamp = 1_700_000_000 * 10**9
        send_frame(node, stamp)
        sink.wait(lambda: any(stamp_of(o) == stamp for o, _ in sink.frames), timeout=60)
    finally:
        node.stop()
    cleaned = [r.getMessage() for r in caplog.records if "is asked as" in r.getMessage()]
    assert len(cleaned) == 2 and "'[SEG] cup' is asked as 'SEG cup'" in cleaned[0]
    values = sink.diagnostics[-1].values
    assert values["objects"] == "[SEG] cup, <image>"
    assert values["objects_cleaned"] == "[SEG] cup -> SEG cup; <image> -> image"
    assert values["object_names_cleaned"] == "6" and values["object_names_rejected"] == "1"
    assert values["rejected_object_queries"] == "1"
    assert "nothing left" in values["objects_last_invalid_unusable_name"]
    contacts = next(m for o, m in sink.frames if stamp_of(o) == stamp)["contacts"].contacts
    assert [(c.object_label, c.object_prompt_name) for c in contacts] == [("[SEG] cup", "SEG cup"),
                                                                          ("<image>", "image")]
