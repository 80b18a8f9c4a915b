"""The node's ROS-agnostic parts: latest-frame slot, time sync, object queries, throttled warnings, placement."""

import threading

import numpy as np
import pytest

from interactvlm_ros.node.input_health import InputHealth, problem_of
from interactvlm_ros.node.latest import LatestSlot
from interactvlm_ros.node.placement import FixedPlacement
from interactvlm_ros.node.queries import MAX_QUERY_BYTES, ObjectQueries, QueryError, parse_object_query
from interactvlm_ros.node.stats import NodeStats
from interactvlm_ros.node.sync import ApproximateSync
from interactvlm_ros.node.throttle import ThrottledWarnings


class FakeClock:
    """A settable clock (time is an input of these classes, not a component)."""

    def __init__(self, t=0.0):
        self.t = t

    def __call__(self):
        return self.t


# --- latest-frame slot ------------------------------------------------------------------------------------
def test_latest_slot_keeps_newest_and_counts_drops():
    slot = LatestSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True
    assert slot.put(3) is True
    assert slot.dropped == 2
    assert slot.take(0) == 3
    assert slot.take(0) is None
    assert slot.dropped == 2


def test_latest_slot_wakes_waiting_worker():
    slot = LatestSlot()
    got = []
    t = threading.Thread(target=lambda: got.append(slot.take(5.0)))
    t.start()
    slot.put("frame")
    t.join(5.0)
    assert got == ["frame"]
    t = threading.Thread(target=lambda: got.append(slot.take(5.0)))
    t.start()
    slot.close()
    t.join(5.0)
    assert got == ["frame", None] and not t.is_alive()


# --- approximate sync -------------------------------------------------------------------------------------
def test_sync_without_optional_streams_releases_at_once():
    sync = ApproximateSync(["camera_info", "depth"], 0.05, clock=FakeClock())
    out = sync.add_image(1.0, "img")
    assert len(out) == 1 and out[0].matched == {"camera_info": None, "depth": None}


def test_sync_pairs_within_tolerance_and_waits_for_late_info():
    clock = FakeClock()
    sync = ApproximateSync(["camera_info"], 0.05, max_wait_s=0.5, clock=clock)
    assert [f.image for f in sync.add_image(0.9, "a")] == ["a"]  # stream not seen yet: no wait
    sync.add("camera_info", 0.9, "K0")
    out = sync.add_image(1.0, "b")  # info seen before, none near 1.0 yet -> waits
    assert out == []
    out = sync.add("camera_info", 1.02, "K1")
    assert [(f.image, f.matched["camera_info"]) for f in out] == [("b", "K1")]


def test_sync_releases_unmatched_when_stream_moved_on_or_wait_expired():
    clock = FakeClock()
    sync = ApproximateSync(["depth"], 0.01, max_wait_s=0.5, clock=clock)
    sync.add("depth", 0.0, "d0")
    assert sync.add_image(1.0, "a") == []
    out = sync.add("depth", 2.0, "d2")  # past 1.0 + tolerance: no match can come
    assert [(f.image, f.matched["depth"]) for f in out] == [("a", None)]
    assert sync.add_image(3.0, "b") == []
    clock.t = 0.6
    out = sync.poll()
    assert [(f.image, f.matched["depth"]) for f in out] == [("b", None)]
    assert sync.unmatched["depth"] == 2


def test_sync_stops_waiting_for_a_stream_that_stopped():
    clock = FakeClock()
    sync = ApproximateSync(["camera_info"], 0.01, max_wait_s=0.5, clock=clock)
    for i in range(5):  # camera info at 10 Hz, each matched by its image
        clock.t = i * 0.1
        sync.add("camera_info", i * 0.1, f"K{i}")
        assert [f.matched["camera_info"] for f in sync.add_image(i * 0.1, i)] == [f"K{i}"]
    assert sync.waiting_for("camera_info") == "yes"
    clock.t = 0.6  # 0.2 s after the last info: still arriving (window = max(0.5, 3 x 0.1))
    assert sync.add_image(0.6, "waits") == []
    clock.t = 1.5  # silent for 1.1 s: stopped; the pending image goes, a new one is released at once
    assert sync.waiting_for("camera_info").startswith("no: stopped")
    assert [(f.image, f.matched["camera_info"]) for f in sync.poll()] == [("waits", None)]
    assert [(f.image, f.matched["camera_info"]) for f in sync.add_image(1.5, "now")] == [("now", None)]
    sync.add("camera_info", 1.6, "K again")  # the stream comes back: images wait for it again
    assert sync.waiting_for("camera_info") == "yes"


def test_sync_stops_waiting_for_stamps_that_never_match():
    clock = FakeClock()
    sync = ApproximateSync(["depth"], 0.01, max_wait_s=0.2, stall_after=3, clock=clock)
    released, at_once = [], []
    for i in range(6):  # depth stamped by another clock (always 100 s behind), arriving every 0.1-0.2 s
        clock.t = i * 0.3
        sync.add("depth", clock.t - 100.0, "d")
        now = sync.add_image(i * 0.3, i)
        at_once += [f.image for f in now]
        clock.t += 0.1
        sync.add("depth", clock.t - 100.0, "d")
        clock.t += 0.15  # the image's 0.2 s wait expired
        released += now + sync.poll()
    assert [f.image for f in released] == list(range(6)) and all(f.matched["depth"] is None for f in released)
    assert sync.waiting_for("depth").startswith("no: stamps do not match")
    assert at_once == [3, 4, 5]  # after 3 expired waits, images no longer wait at all
    clock.t = 2.0
    sync.add("depth", 2.0, "match")  # one matching message and the stream counts again
    assert [f.matched["depth"] for f in sync.add_image(2.0, "m")] == ["match"]
    assert sync.waiting_for("depth") == "yes"


def test_sync_memory_is_bounded():
    sync = ApproximateSync(["depth"], 0.01, max_wait_s=1e9, history=8, max_pending=4, clock=FakeClock())
    sync.add("depth", 0.0, "d")
    released = 0
    for i in range(1000):
        sync.add("depth", -1.0 - i, "old")
        released += len(sync.add_image(100.0 + i * 1e-4, i))
    assert len(sync._pending) <= 4 and all(len(q) <= 8 for q in sync._recent.values())
    assert released >= 1000 - 4


# --- object queries ---------------------------------------------------------------------------------------
def test_parse_object_query_trims_and_dedups():
    assert parse_object_query(" cup ,bottle,, cup,  coffee   mug ", 8) == ["cup", "bottle", "coffee mug"]


@pytest.mark.parametrize("text,match", [
    ("", "empty"),
    (" , ,", "empty"),
    ("x" * (MAX_QUERY_BYTES + 1), "bytes; the limit is 10240"),
    ("cup\x00", r"control character U\+0000"),
    ("cup\nbottle", r"control character U\+000A"),
    ("a\x1b[31m", r"control character U\+001B"),
    ("a,b,c", "limit .node.max_objects. is 2"),
    ("y" * 65, "characters; the limit is 64"),
])
def test_parse_object_query_rejects(text, match):
    with pytest.raises(QueryError, match=match):
        parse_object_query(text, 2)


def test_object_queries_keep_previous_on_bad_update():
    q = ObjectQueries(["bottle"], 8)
    assert q.update("cup, chair") == ["cup", "chair"]
    with pytest.raises(QueryError):
        q.update("\x07")
    assert q.current() == ["cup", "chair"] and q.rejected == 1


@pytest.mark.parametrize("text,kind", [
    ("", "empty"), ("x" * (MAX_QUERY_BYTES + 1), "too_large"), ("cup\x00", "control_character"),
    ("cup\ufffd", "invalid_utf8"), ("a,b,c", "too_many"), ("y" * 65, "name_too_long"), ("cup, [], <>", "unusable_name"),
])
def test_query_errors_name_their_kind(text, kind):
    with pytest.raises(QueryError) as info:
        parse_object_query(text, 2)
    assert info.value.kind == kind and problem_of(info.value) == kind


def test_cleaned_names_are_counted_shown_and_logged_once_each():
    lines = []
    q = ObjectQueries(["[SEG] cup", "bottle"], 8, log=lines.append)
    assert q.current() == ["[SEG] cup", "bottle"]  # kept as asked (Contact.object_label)
    assert q.cleaned() == {"[SEG] cup": "SEG cup"} and q.names_cleaned == 1
    q.update("[SEG] cup, <image>, <im_start>")
    q.update("<image>")
    assert q.cleaned() == {"<image>": "image"}
    assert q.names_cleaned == 5  # 1 + 3 + 1: per list that carries them
    assert len(lines) == 3  # [SEG] cup, <image>, <im_start>: each once
    assert "'[SEG] cup' is asked as 'SEG cup'" in lines[0] and "'<im_start>' is asked as 'im_start'" in lines[2]
    q.update("cup, tennis_racket")  # underscores are the model's spelling choice, not markup
    assert q.cleaned() == {} and len(lines) == 3


def test_rejected_names_are_counted_apart_from_rejected_queries():
    q = ObjectQueries(["cup"], 2)
    for text in ("[], bottle", "y" * 65, "a, b, c", "\x07"):
        with pytest.raises(QueryError):
            q.update(text)
    assert q.current() == ["cup"]
    assert q.rejected == 4 and q.names_rejected == 2  # '[]' and the 65-character name; not too_many, not \x07


# --- input health ------------------------------------------------------------------------------------------
def test_input_health_keeps_the_last_message_of_each_problem():
    class FieldError(ValueError):
        field = "height/width"

    health = InputHealth(["image"])
    health.dropped("image", "invalid", "bad length", problem="data")
    health.dropped("image", "invalid", "unknown encoding", problem="encoding")
    health.dropped("image", "invalid", "still bad length", problem="data")
    health.dropped("image", "undecodable", "not CDR")
    snap = health.snapshot()
    assert snap["image_dropped_invalid"] == "3" and snap["image_dropped_undecodable"] == "1"
    assert snap["image_last_invalid_data"] == "still bad length"
    assert snap["image_last_invalid_encoding"] == "unknown encoding"
    assert snap["image_last_undecodable"] == "not CDR" and snap["image_last_drop"] == "not CDR"
    assert problem_of(FieldError()) == "height_width" and problem_of(RuntimeError("x")) == ""


# --- throttled warnings -----------------------------------------------------------------------------------
def test_throttled_warnings_log_once_per_period_with_count():
    clock, lines = FakeClock(), []
    w = ThrottledWarnings(lines.append, period_s=5.0, clock=clock)
    assert w.warn("image", "bad image")
    for _ in range(9):
        assert not w.warn("image", "bad image")
    assert w.warn("objects", "bad query")  # other keys are independent
    clock.t = 5.0
    assert w.warn("image", "bad image")
    assert lines == ["bad image", "bad query", "bad image (9 similar suppressed in the last 5 s)"]


# --- stats -------------------------------------------------------------------------------------------------
def test_stats_overhead_and_rate():
    clock = FakeClock()
    s = NodeStats(clock=clock)
    for i in range(11):
        clock.t = i * 0.1
        s.record_frame(latency_ms=12.0, pipeline_ms=10.0)
    snap = s.snapshot()
    assert snap["processed"] == 11
    assert snap["overhead_ms_p50"] == pytest.approx(2.0)
    assert snap["rate_hz"] == pytest.approx(10.0)


def test_stats_keep_the_last_error_of_each_kind():
    clock = FakeClock()
    s = NodeStats(clock=clock)
    s.record_error("frame 1 failed", kind="pipeline")
    clock.t = 1.0
    s.record_error("thread died", kind="thread")
    clock.t = 2.0
    for i in range(5):
        s.record_bad(f"bad image {i}")
    snap = s.snapshot()
    assert snap["last_error"] == "bad image 4"
    assert (snap["last_input_error"], snap["last_pipeline_error"], snap["last_thread_error"]) == (
        "bad image 4", "frame 1 failed", "thread died")
    assert snap["errors"] == 1 and snap["bad_messages"] == 5  # a thread death is not a failed frame
    clock.t = 5.5  # the pipeline error is 5.5 s old
    assert s.recent_errors(5.0) == [("input", "bad image 4"), ("thread", "thread died")]


# --- placement ---------------------------------------------------------------------------------------------
def test_fixed_placement_is_optical_frame_in_front_of_camera():
    # a "person" 1.8 m tall along +y (model up), feet at y=0
    v = np.array([[0.0, 0.0, 0.0], [0.0, 1.8, 0.0], [0.2, 0.9, 0.1]], dtype=np.float32)
    out = FixedPlacement(distance_m=3.0).place(v)
    assert out.dtype == np.float32
    # head (model +y) is up in the image = optical -y
    assert out[1, 1] < out[0, 1]
    np.testing.assert_allclose((out.min(0) + out.max(0)) / 2, [0.0, 0.0, 3.0], atol=1e-6)
    body, obj = FixedPlacement(distance_m=3.0, gap_m=0.1).place_pair(v, v * 0.1)
    assert obj[:, 0].min() == pytest.approx(body[:, 0].max() + 0.1, abs=1e-6)
