"""Writes ``config/settings.py``: typed, attribute-access settings generated from the schema.

Each parameter section (``node``, ``topics``, ``recon``...) becomes a frozen dataclass whose fields are that
section's parameters with their Python types and docs; :class:`~interactvlm_ros.config.loader.Config` exposes
one property per section, so ``cfg.node.watchdog_s`` is checked by an editor or a type checker where
``cfg["node.watchdog_s"]`` is only a string. A top-level parameter that is also a section's name (``objects``,
the query names, next to ``objects.library``) is that section's ``names`` field.

    python -m interactvlm_ros.config.generate_settings   # rewrite settings.py after changing the schema

``tests/config/test_config.py`` checks that the committed file is what this generator writes.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from interactvlm_ros.config.schema import PARAMETERS, Param

TYPES = {"bool": "bool", "int": "int", "float": "float", "str": "str", "str_list": "tuple[str, ...]",
         "float_list": "tuple[float, ...]"}
SECTION_VALUE = "names"
"""The field name of a top-level parameter that is also a section (``objects`` -> ``cfg.objects.names``)."""
TARGET = Path(__file__).with_name("settings.py")


def sections() -> dict[str, list[tuple[str, Param]]]:
    """section -> [(field name, parameter)], in schema order; ``""`` holds the plain top-level parameters."""
    prefixes = {p.name.split(".", 1)[0] for p in PARAMETERS if "." in p.name}
    out: dict[str, list[tuple[str, Param]]] = {"": []}
    for p in PARAMETERS:
        if "." in p.name:
            section, field = p.name.split(".", 1)
            out.setdefault(section, []).append((field.replace(".", "_"), p))
        elif p.name in prefixes:
            out.setdefault(p.name, []).insert(0, (SECTION_VALUE, p))
        else:
            out[""].append((p.name, p))
    return out


def class_name(section: str) -> str:
    return "".join(part.capitalize() for part in section.split("_")) + "Settings"


def render() -> str:
    """The source of ``settings.py``."""
    lines = [
        '"""Typed settings: one frozen dataclass per parameter section. GENERATED from ``config/schema.py`` by',
        "``python -m interactvlm_ros.config.generate_settings``; do not edit by hand.",
        "",
        "``Config`` (``config/loader.py``) builds them once at load, after validation, and exposes them as",
        "``cfg.<section>`` (and ``cfg.<name>`` for plain top-level parameters); list parameters are tuples.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from collections.abc import Mapping",
        "from dataclasses import dataclass",
        "from typing import Any",
    ]
    groups = sections()
    for section, fields in groups.items():
        if not section:
            continue
        lines += ["", "", "@dataclass(frozen=True)", f"class {class_name(section)}:",
                  f'    """The ``{section}.*`` parameters."""', ""]
        for field, p in fields:
            lines.append(f"    {field}: {TYPES[p.kind]}")
            lines += _docstring(p, "    ")
        name = class_name(section)
        lines += ["", "    @classmethod", f"    def from_values(cls, values: Mapping[str, Any]) -> {name}:",
                  "        return cls(" + ", ".join(f"{field}={_value(p)}" for field, p in fields) + ")"]
    lines += ["", "", "class TypedSettings:",
              '    """The sections as typed properties (``Config`` mixes this in; ``_sections`` is built at load)."""',
              "", "    _sections: dict[str, Any]", "    _values: dict[str, Any]", ""]
    for section in groups:
        if section:
            lines += ["    @property", f"    def {section}(self) -> {class_name(section)}:",
                      f'        return self._sections["{section}"]', ""]
    for field, p in groups[""]:
        lines += ["    @property", f"    def {field}(self) -> {TYPES[p.kind]}:", *_docstring(p, "        "),
                  f"        return {_value(p, 'self._values')}", ""]
    lines += ["", "def build_sections(values: Mapping[str, Any]) -> dict[str, Any]:",
              '    """Every section\'s settings from validated ``values`` (dotted keys)."""',
              "    return {" + ", ".join(f'"{s}": {class_name(s)}.from_values(values)' for s in groups if s) + "}",
              ""]
    return "\n".join(_wrap(line) for line in lines)


def _docstring(p: Param, indent: str) -> list[str]:
    """The parameter's doc as docstring lines (``name``: doc), wrapped to the line length."""
    text = f"``{p.name}``: {p.doc}".replace("\\", "\\\\").replace('"', "'")
    body = textwrap.wrap(text, 114 - len(indent))
    if len(body) == 1:
        return [f'{indent}"""{body[0]}"""']
    return [f'{indent}"""{body[0]}', *(f"{indent}{line}" for line in body[1:-1]), f'{indent}{body[-1]}"""']


def _value(p: Param, mapping: str = "values") -> str:
    access = f'{mapping}["{p.name}"]'
    return f"tuple({access})" if p.kind.endswith("_list") else access


def _wrap(line: str, width: int = 120) -> str:
    """Break a long ``return cls(...)`` / dict line after commas (the generated file passes the linter)."""
    if len(line) <= width:
        return line
    indent = len(line) - len(line.lstrip()) + 4
    out, current = [], ""
    for part in line.split(", "):
        piece = part if not current else current + ", " + part
        if len(piece) > width - 1 and current:
            out.append(current + ",")
            current = " " * indent + part
        else:
            current = piece
    out.append(current)
    return "\n".join(out)


if __name__ == "__main__":
    TARGET.write_text(render())
    print(f"wrote {TARGET}", file=sys.stderr)
