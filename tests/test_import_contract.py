"""The package's layers, as an import contract: which of our sub-packages each one may import (at module level or
inside a function: a function-level import hides a dependency, it does not remove it). Lower layers never import
higher ones, so the dependency graph has no cycle and a reader can study a layer without the ones above it.

From the bottom: ``files``/``config`` → ``render``, ``body``, ``objects``, ``engines`` and ``pipeline.result``
(the result type every layer shares) → ``model``, ``recon``, ``data`` → ``training``, ``pipeline`` →
``evaluation`` (it scores what the pipeline gives), ``node`` → ``transport`` → ``bag`` → ``demo``, ``benchmarks``
→ ``cli``.
"""

import ast
from collections import defaultdict
from pathlib import Path

import interactvlm_ros

PACKAGE = Path(interactvlm_ros.__file__).parent
BASE = {"files", "config"}
ALLOWED = {
    "files": set(),
    "config": {"files"},
    "pipeline.result": set(),
    "render": BASE,
    "body": BASE | {"render"},
    "objects": BASE,
    "engines": BASE | {"body", "render"},
    "model": BASE | {"body", "render", "engines", "pipeline.result"},
    "recon": BASE | {"body", "render", "objects", "pipeline.result"},
    "data": BASE | {"body", "render", "objects", "pipeline.result"},
    "training": BASE | {"body", "render", "objects", "data", "model", "engines", "pipeline.result"},
    "evaluation": BASE | {"body", "render", "objects", "data", "model", "engines", "pipeline", "pipeline.result"},
    "pipeline": BASE | {"body", "render", "objects", "model", "engines", "recon", "pipeline.result"},
    "serving": BASE | {"body", "render", "model", "engines", "pipeline.result"},
    "node": BASE | {"body", "render", "objects", "model", "engines", "recon", "pipeline", "pipeline.result",
                    "serving"},
    "transport": BASE | {"node", "pipeline", "pipeline.result"},
    "bag": BASE | {"node", "transport", "pipeline", "pipeline.result"},
}
APPS = {"demo": set(ALLOWED), "benchmarks": set(ALLOWED) | {"demo"}}  # every layer, never the CLI


def layer_of(module: str) -> str:
    """``interactvlm_ros.pipeline.result`` -> ``pipeline.result``; ``interactvlm_ros.model.sam.x`` -> ``model``."""
    parts = module.split(".")[1:]
    if parts[:2] == ["pipeline", "result"]:
        return "pipeline.result"
    return parts[0] if parts else ""


def imports_by_layer() -> dict[str, set[tuple[str, str]]]:
    """layer -> {(imported layer, "file:line")} for every ``interactvlm_ros`` import in the package."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        module = ".".join(["interactvlm_ros", *rel.with_suffix("").parts]).removesuffix(".__init__")
        layer = layer_of(module) or rel.stem
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against this module's package
                    base = module.split(".")[: -node.level if path.name != "__init__.py" else None]
                    if path.name == "__init__.py" and node.level > 1:
                        base = module.split(".")[: -(node.level - 1)]
                    targets = [".".join([*base, node.module] if node.module else base)]
                elif node.module:
                    targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                if target.startswith("interactvlm_ros."):
                    other = layer_of(target)
                    if other != layer:
                        found[layer].add((other, f"{rel}:{node.lineno}"))
    return found


def test_every_import_follows_the_layers():
    violations = []
    for layer, imports in sorted(imports_by_layer().items()):
        if layer in ("cli", "__main__"):
            continue
        allowed = APPS[layer] if layer in APPS else ALLOWED.get(layer)
        assert allowed is not None, f"package {layer!r} has no place in the import contract (add it to ALLOWED)"
        violations += [f"{where}: {layer} imports {other}" for other, where in sorted(imports)
                       if other not in allowed]
    assert not violations, "imports against the layers:\n" + "\n".join(violations)


def test_the_contract_itself_has_no_cycle():
    state: dict[str, int] = {}

    def visit(layer, stack):
        if state.get(layer) == 1:
            raise AssertionError(f"cycle in ALLOWED: {' -> '.join([*stack, layer])}")
        if state.get(layer) == 2:
            return
        state[layer] = 1
        for other in ALLOWED.get(layer, ()):
            visit(other, [*stack, layer])
        state[layer] = 2

    for layer in ALLOWED:
        visit(layer, [])
