"""Benchmarks (``interactvlm bench NAME --json``): measurements whose JSON keys are a contract other tools read,
each a module here with ``run(cfg, args) -> dict``; :mod:`.contract` checks their deterministic figures."""

BENCHES: dict[str, str] = {  # name -> "module:function"
    "geometry": "interactvlm_ros.benchmarks.geometry:run",
    "renders": "interactvlm_ros.benchmarks.renders:run",  # needs pytorch3d (not a dependency), else skipped
    "wire": "interactvlm_ros.benchmarks.wire:run",
    "model": "interactvlm_ros.benchmarks.model:run",
    "node": "interactvlm_ros.benchmarks.node:run",
    "gate": "interactvlm_ros.benchmarks.gate:run",
    "recon": "interactvlm_ros.benchmarks.recon:run",
    "engines": "interactvlm_ros.benchmarks.engines:run",
    "soak": "interactvlm_ros.benchmarks.soak:run",
    "serve": "interactvlm_ros.benchmarks.serve:run",
}
