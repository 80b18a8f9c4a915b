"""Load, merge and validate the ROS-style parameter file (``/**: ros__parameters:``) and ``--set`` overrides."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from interactvlm_ros.config.schema import PARAMETERS, PARAMETERS_BY_NAME, Param
from interactvlm_ros.config.settings import TypedSettings, build_sections


class ConfigError(ValueError):
    """A parameter file or override is invalid; the message names the key and what was expected."""


class Config(TypedSettings, Mapping[str, Any]):
    """Validated parameters: every key of the schema, with file values and overrides applied. Read them typed,
    by section (:mod:`.settings`, generated from the schema), or by dotted key (for code that picks keys at run
    time, and the ROS parameter interface).

    >>> cfg = load_config(None, ["contact.threshold=0.3"])
    >>> cfg.contact.threshold, cfg["contact.threshold"]
    (0.3, 0.3)
    """

    def __init__(self, values: Mapping[str, Any], source: str | None = None):
        self._values = dict(values)
        self._sections = build_sections(self._values)
        self.source = source

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def replace(self, **updates: Any) -> Config:
        """A copy with dotted keys given as keyword arguments (``__`` stands for ``.``), validated."""
        values = dict(self._values)
        for key, value in updates.items():
            name = key.replace("__", ".")
            values[name] = validate_value(_param(name, "replace()"), value, "replace()")
        return Config(values, self.source)

    def to_yaml(self) -> str:
        """The full parameter set as a ROS 2 parameter file."""
        return yaml.safe_dump({"/**": {"ros__parameters": dict(self._values)}}, sort_keys=False)


def default_config_path() -> Path | None:
    """``$INTERACTVLM_CONFIG``, the source tree's ``config/interactvlm.yaml``, or the ament share copy."""
    env = os.environ.get("INTERACTVLM_CONFIG")
    if env:
        return Path(env)
    from interactvlm_ros.config.paths import repo_root, share_dir

    for base in (repo_root(), share_dir()):
        if base is not None and (base / "config" / "interactvlm.yaml").is_file():
            return base / "config" / "interactvlm.yaml"
    return None


def load_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = (),
                use_default_file: bool = True) -> Config:
    """Defaults from the schema, then the parameter file, then ``key=value`` overrides.

    Raises :class:`ConfigError` naming the file and key for unknown keys, wrong types and out-of-range values.
    """
    values = {p.name: p.default for p in PARAMETERS}
    source = None
    if path is None and use_default_file:
        path = default_config_path()
    if path is not None:
        source = str(path)
        for name, value in read_parameter_file(path).items():
            values[name] = validate_value(_param(name, source), value, source)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        name, text = item.split("=", 1)
        name = name.strip()
        where = f"--set {name}"
        values[name] = validate_value(_param(name, where), _parse_override(text), where)
    return Config(values, source)


def read_parameter_file(path: str | os.PathLike) -> dict[str, Any]:
    """Flattened ``{dotted_key: raw_value}`` from a ROS 2 parameter file (any node key; nested or dotted)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"parameter file not found: {path}")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping of node names to 'ros__parameters'")
    flat: dict[str, Any] = {}
    for node, section in doc.items():
        if not isinstance(section, dict) or set(section) != {"ros__parameters"}:
            raise ConfigError(f"{path}: node entry {node!r} must contain exactly 'ros__parameters:'")
        params = section["ros__parameters"] or {}
        if not isinstance(params, dict):
            raise ConfigError(f"{path}: {node!r}.ros__parameters must be a mapping")
        _flatten(params, "", flat, path)
    return flat


def _flatten(tree: dict, prefix: str, out: dict[str, Any], path: Path) -> None:
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, name + ".", out, path)
        else:
            out[name] = value


def _param(name: str, where: str) -> Param:
    try:
        return PARAMETERS_BY_NAME[name]
    except KeyError:
        close = [p.name for p in PARAMETERS if p.name.split(".")[-1] == name.split(".")[-1]]
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{where}: unknown parameter {name!r}{hint}") from None


def _parse_override(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def validate_value(param: Param, value: Any, where: str) -> Any:
    """``value`` converted to the parameter's type, or :class:`ConfigError` naming key, expectation and value."""

    def bad() -> ConfigError:
        return ConfigError(f"{where}: parameter {param.name!r} expects {param.describe()}, got {value!r}")

    kind = param.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad()
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad()
        value = float(value)
    elif kind == "str":
        if not isinstance(value, str):
            raise bad()
    elif kind == "str_list":
        if value is None:
            value = []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad()
    elif kind == "float_list":
        if value is None:
            value = []
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, (int, float))
                                              for v in value):
            raise bad()
        value = [float(v) for v in value]
    else:  # pragma: no cover - schema error
        raise AssertionError(f"unknown parameter kind {kind!r}")
    if param.choices is not None and value not in param.choices:
        raise bad()
    if param.min is not None and value < param.min:
        raise bad()
    if param.max is not None and value > param.max:
        raise bad()
    return value
