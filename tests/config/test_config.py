"""The parameter file: defaults, validation that names the bad key, overrides, and the shipped file."""

from pathlib import Path

import pytest
import yaml

from interactvlm_ros.config import PARAMETERS, ConfigError, load_config
from interactvlm_ros.config.paths import repo_root

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "interactvlm.yaml"


def write(tmp_path, params: dict, node="/**") -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({node: {"ros__parameters": params}}))
    return path


def test_defaults_cover_every_parameter():
    cfg = load_config(None, use_default_file=False)
    assert set(cfg) == {p.name for p in PARAMETERS}
    assert cfg["transport"] == "auto"
    assert cfg["body.model"] == "anny"


def test_shipped_file_documents_every_parameter_and_loads():
    text = SHIPPED.read_text()
    for p in PARAMETERS:
        assert f"    {p.name}:" in text, f"{p.name} missing from config/interactvlm.yaml"
    cfg = load_config(SHIPPED)
    assert cfg.source == str(SHIPPED)
    for p in PARAMETERS:
        assert cfg[p.name] == p.default, f"shipped value of {p.name} differs from the code default"


def test_repo_root_found_from_source_tree():
    assert repo_root() == SHIPPED.parents[1]


def test_nested_and_dotted_keys_and_node_name(tmp_path):
    cfg = load_config(write(tmp_path, {"qos": {"image_depth": 3}, "contact.threshold": 0.25},
                            node="interactvlm_node"))
    assert cfg["qos.image_depth"] == 3
    assert cfg["contact.threshold"] == 0.25


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown parameter 'qos\.image_dept'"):
        load_config(write(tmp_path, {"qos": {"image_dept": 3}}))


def test_unknown_key_suggests_the_right_one(tmp_path):
    with pytest.raises(ConfigError, match=r"did you mean 'contact\.threshold'"):
        load_config(write(tmp_path, {"threshold": 0.3}))


@pytest.mark.parametrize("key,value,expect", [
    ("qos.image_depth", "five", r"'qos\.image_depth' expects int in \[1, 1000\], got 'five'"),
    ("qos.image_depth", True, r"'qos\.image_depth' expects int"),
    ("qos.image_depth", 0, r"'qos\.image_depth' expects int in \[1, 1000\], got 0"),
    ("contact.threshold", 1.5, r"'contact\.threshold' expects float in \[0, 1\]"),
    ("transport", "zenoh", r"'transport' expects one of 'auto', 'rclpy', 'dds', got 'zenoh'"),
    ("objects", "chair", r"'objects' expects list of strings, got 'chair'"),
    ("node.always_run", "yes please", r"'node\.always_run' expects bool"),
])
def test_wrong_type_or_range_is_named(tmp_path, key, value, expect):
    with pytest.raises(ConfigError, match=expect):
        load_config(write(tmp_path, {key: value}))


def test_error_names_the_file(tmp_path):
    path = write(tmp_path, {"qos.image_depth": "x"})
    with pytest.raises(ConfigError, match=str(path)):
        load_config(path)


def test_overrides_are_typed_and_validated():
    cfg = load_config(None, ["contact.threshold=0.3", "objects=[chair, bottle]", "node.always_run=true"],
                      use_default_file=False)
    assert cfg["contact.threshold"] == 0.3
    assert cfg["objects"] == ["chair", "bottle"]
    assert cfg["node.always_run"] is True
    with pytest.raises(ConfigError, match=r"--set qos\.image_depth: parameter 'qos\.image_depth' expects int"):
        load_config(None, ["qos.image_depth=deep"], use_default_file=False)
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(None, ["contact.threshold"], use_default_file=False)


def test_malformed_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("/**:\n  parameters:\n    transport: dds\n")
    with pytest.raises(ConfigError, match="ros__parameters"):
        load_config(bad)
    bad.write_text("/**: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_round_trip_through_yaml(tmp_path):
    cfg = load_config(None, ["objects=[mug]"], use_default_file=False)
    path = tmp_path / "dump.yaml"
    path.write_text(cfg.to_yaml())
    assert dict(load_config(path)) == dict(cfg)


def test_typed_settings_are_generated_from_the_schema_and_current():
    from interactvlm_ros.config import generate_settings

    assert generate_settings.TARGET.read_text() == generate_settings.render(), (
        "config/settings.py is stale: run python -m interactvlm_ros.config.generate_settings")


def test_typed_settings_read_every_parameter_with_its_value():
    from interactvlm_ros.config.generate_settings import sections

    cfg = load_config(None, ["objects=[cup, mug]", "node.watchdog_s=3.5", "topics.depth=depth"],
                      use_default_file=False)
    assert cfg.objects.names == ("cup", "mug") and cfg.node.watchdog_s == 3.5 and cfg.topics.depth == "depth"
    seen = set()
    for section, fields in sections().items():
        for field, param in fields:
            value = getattr(cfg, field) if not section else getattr(getattr(cfg, section), field)
            expected = cfg[param.name]
            assert value == (tuple(expected) if isinstance(expected, list) else expected), param.name
            seen.add(param.name)
    assert seen == {p.name for p in PARAMETERS}
    assert cfg.replace(node__watchdog_s=1.0).node.watchdog_s == 1.0  # a copy gets its own sections
    with pytest.raises(AttributeError):
        cfg.node.watchdog = 2.0  # frozen (and a typo is an AttributeError, not a silent new key)
