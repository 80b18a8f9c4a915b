"""Parameter changes on a configured node (``ros2 param set``): validate them, refuse what needs a reload.

A transport with a parameter service (the rclpy node) asks :func:`update_parameters` whether a set of changes
may be applied to the node's current :class:`~interactvlm_ros.config.loader.Config`; when it may, the new Config
goes to :meth:`ContactNode.apply <interactvlm_ros.node.core.ContactNode.apply>`. Which parameters change live
is the schema's (:data:`~interactvlm_ros.config.schema.LIVE_PARAMETERS`); values are checked with the same
messages as a parameter file (:func:`~interactvlm_ros.config.loader.validate_value`), and the object list as
an ``~/objects`` query is.

>>> from interactvlm_ros.config.loader import load_config
>>> update = update_parameters(load_config(None, use_default_file=False), {"contact.threshold": 0.7})
>>> update.ok, update.config.contact.threshold, update.changed
(True, 0.7, ('contact.threshold',))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from interactvlm_ros.config.loader import Config, ConfigError, validate_value
from interactvlm_ros.config.schema import PARAMETERS_BY_NAME
from interactvlm_ros.node.queries import QueryError, parse_object_query

RELOAD_HINT = ("it is read at configure: deactivate and clean up the node (ros2 lifecycle set <node> deactivate, "
               "then cleanup), set it, then configure and activate again")


@dataclass(frozen=True)
class ParameterUpdate:
    """The outcome of :func:`update_parameters`: the new parameters, or why the changes are refused."""

    config: Config | None
    """The parameters with the changes applied (None when refused)."""
    reasons: tuple[str, ...] = ()
    """One line per refused change (the whole set is refused: parameters are set atomically)."""
    changed: tuple[str, ...] = ()
    """The keys whose value differs from the current one."""

    @property
    def ok(self) -> bool:
        return not self.reasons


def update_parameters(cfg: Config, changes: Mapping[str, Any], configured: bool = True,
                      where: str = "ros2 param set") -> ParameterUpdate:
    """``cfg`` with ``changes`` (dotted key -> value) applied, or the reasons they are refused.

    Every value is validated like the parameter file's. When ``configured`` (the node holds a model), a change to
    a parameter that is not live is refused with a reason saying to reconfigure; setting it to its current value
    is fine. Unconfigured, any valid value is taken (configure reads it). A new object list is checked like an
    ``~/objects`` query, against the (new) ``node.max_objects``.
    """
    reasons: list[str] = []
    values = dict(cfg)
    changed: list[str] = []
    for name, value in changes.items():
        param = PARAMETERS_BY_NAME.get(name)
        if param is None:
            reasons.append(f"{where}: unknown parameter {name!r}")
            continue
        try:
            value = validate_value(param, value, where)
        except ConfigError as exc:
            reasons.append(str(exc))
            continue
        if value == cfg[name]:
            continue
        if configured and not param.live:
            reasons.append(f"{where}: parameter {name!r} cannot change while the node is configured; {RELOAD_HINT}")
            continue
        values[name] = value
        changed.append(name)
    if not reasons and ("objects" in changed or "node.max_objects" in changed) and values["objects"]:
        try:
            parse_object_query(",".join(values["objects"]), values["node.max_objects"])
        except QueryError as exc:
            reasons.append(f"{where}: parameter 'objects': {exc}")
    if reasons:
        return ParameterUpdate(None, tuple(reasons))
    return ParameterUpdate(Config(values, cfg.source), changed=tuple(changed))
