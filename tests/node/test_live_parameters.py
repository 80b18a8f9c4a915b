"""Parameter changes on a running node without ROS: the code path ``ros2 param set`` takes in the rclpy node
(``update_parameters`` decides, ``ContactNode.apply`` applies), with the real tiny model in-process.

The rclpy side of the same path (``set_parameters`` on the lifecycle node) is in tests/test_rclpy_node.py.
"""

import pytest
from node_sink import CollectingSink

from interactvlm_ros.config import PARAMETERS, load_config
from interactvlm_ros.config.schema import LIVE_PARAMETERS, PARAMETERS_BY_NAME
from interactvlm_ros.node.live_parameters import update_parameters


def defaults():
    return load_config(None, use_default_file=False)


def test_live_parameters_are_schema_parameters_and_the_rest_reload():
    assert LIVE_PARAMETERS <= set(PARAMETERS_BY_NAME)
    live = {p.name for p in PARAMETERS if p.live}
    assert {"contact.threshold", "objects", "node.marker_rate_hz", "node.watchdog_s"} <= live
    assert not live & {"model.name", "model.device", "inference.backend", "body.model", "transport",
                       "dds.domain_id", "topics.image", "engines.force_rebuild"}


def test_live_change_is_applied_to_a_new_config():
    cfg = defaults()
    update = update_parameters(cfg, {"contact.threshold": 0.8, "objects": ["bottle", "cup"],
                                     "node.marker_rate_hz": 0.0})
    assert update.ok and set(update.changed) == {"contact.threshold", "objects", "node.marker_rate_hz"}
    new = update.config
    assert new.contact.threshold == 0.8 and new.objects.names == ("bottle", "cup") and new.node.marker_rate_hz == 0
    assert cfg.contact.threshold == 0.5  # the old Config is unchanged
    assert {k for k in cfg if cfg[k] != new[k]} == {"contact.threshold", "objects", "node.marker_rate_hz"}


def test_reload_parameter_is_refused_with_a_reason_to_reconfigure():
    update = update_parameters(defaults(), {"model.device": "cpu"})
    assert not update.ok and update.config is None
    (reason,) = update.reasons
    assert "'model.device'" in reason and "cleanup" in reason and "configure" in reason
    # the same value is no change and fine; unconfigured, any valid value is taken (configure reads it)
    assert update_parameters(defaults(), {"model.device": "auto"}).ok
    assert update_parameters(defaults(), {"model.device": "cpu"}, configured=False).config.model.device == "cpu"


def test_set_is_atomic_a_refused_key_refuses_the_whole_set():
    update = update_parameters(defaults(), {"contact.threshold": 0.9, "inference.backend": "torch"})
    assert not update.ok and len(update.reasons) == 1 and "inference.backend" in update.reasons[0]


def test_invalid_values_fail_with_the_schema_message_configured_or_not():
    for configured in (True, False):
        (reason,) = update_parameters(defaults(), {"model.device": "gpu"}, configured=configured).reasons
        assert reason == ("ros2 param set: parameter 'model.device' expects one of 'auto', 'cpu', 'cuda', "
                          "got 'gpu'")
    (reason,) = update_parameters(defaults(), {"contact.threshold": 1.5}).reasons
    assert "expects float in [0, 1], got 1.5" in reason
    assert "unknown parameter 'contact.treshold'" in update_parameters(defaults(), {"contact.treshold": 1}).reasons[0]


def test_objects_are_checked_like_an_object_query():
    cfg = defaults()
    too_many = update_parameters(cfg, {"objects": [f"o{i}" for i in range(9)]})
    assert "node.max_objects" in too_many.reasons[0]
    assert update_parameters(cfg, {"objects": [f"o{i}" for i in range(9)], "node.max_objects": 9}).ok
    assert "control character" in update_parameters(cfg, {"objects": ["cup\x07"]}).reasons[0]
    assert update_parameters(cfg, {"objects": []}).ok  # no objects: the node idles


@pytest.fixture(scope="module")
def components():
    pytest.importorskip("cyclonedds", reason="the message types need cyclonedds")
    from interactvlm_ros.node.components import NodeComponents

    return NodeComponents.from_config(load_config(None, ["model.name=tiny", "model.device=cpu"]))


def test_running_node_takes_threshold_objects_and_rates_at_the_next_frame(components):
    from interactvlm_ros.benchmarks.fuzz import good_messages
    from interactvlm_ros.transport.node_inputs import wire_codecs

    settings = ["model.name=tiny", "model.device=cpu", "objects=[cup]", "node.always_run=true",
                "node.marker_rate_hz=0", "node.diagnostics_period_s=0.1", "topics.camera_info=''"]
    cfg = load_config(None, settings)
    sink = CollectingSink()
    node = components.build_node(cfg, sink)
    codecs = wire_codecs(cfg)

    def frame(stamp):
        image = good_messages(width=64, height=48, stamp_ns=stamp, frame="camera")["image"]
        node.on_serialized("image", image.serialize(), codecs["image"])
        sink.wait(lambda: any(o.header.stamp_ns == stamp for o, _ in sink.frames), timeout=60)
        return next((o, m) for o, m in sink.frames if o.header.stamp_ns == stamp)

    node.start()
    try:
        outputs, msgs = frame(10**18)
        assert [c.object_label for c in msgs["contacts"].contacts] == ["cup"] and outputs.with_markers
        assert all(abs(c.threshold - 0.5) < 1e-6 for c in msgs["contacts"].contacts)
        update = update_parameters(cfg, {"contact.threshold": 0.9, "objects": ["bottle", "cup"],
                                         "node.publish_markers": False, "node.warn_throttle_s": 1.0,
                                         "node.diagnostics_period_s": 0.5, "node.placement_distance_m": 4.0})
        assert update.ok
        node.apply(update.config)
        assert node.cfg is update.config and node.warnings.period_s == 1.0
        outputs, msgs = frame(10**18 + 1)
        assert [c.object_label for c in msgs["contacts"].contacts] == ["bottle", "cup"]
        assert all(abs(c.threshold - 0.9) < 1e-6 for c in msgs["contacts"].contacts)
        assert not outputs.with_markers and "markers" not in msgs
        assert outputs.human.points[:, 2].mean() == pytest.approx(4.0, abs=0.5)
        # an ~/objects query still replaces the list; a later objects parameter replaces that
        from interactvlm_ros.transport.msgs import String

        node.on_serialized("objects", String(data="mug").serialize(), codecs["objects"])
        assert node.queries.current() == ["mug"]
        node.apply(update_parameters(node.cfg, {"objects": ["box"]}).config)
        assert node.queries.current() == ["box"]
    finally:
        node.stop()
