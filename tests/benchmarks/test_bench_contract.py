"""The bench regression check: contract figures against their targets and recorded values (``bench check``); its
fast form runs here, so a change that moves a contract figure fails ``make test`` in the same commit."""

import json
import subprocess
import sys

import pytest

from interactvlm_ros.benchmarks.contract import (
    CONTRACT_FILE,
    ContractError,
    Figure,
    check,
    compare,
    load_contract,
)
from interactvlm_ros.config import load_config


def _fig(key="x", target="<= 5", recorded=4.0, tolerance=0.1, bench="recon"):
    return Figure(bench, key, target, recorded, tolerance, "test")


def test_statuses_of_a_figure():
    rows = compare([_fig(), _fig("y", ">= 0.5", 0.6, 0.01), _fig("z", "< w", 1.0, 0.5), _fig("n", "<= 3", 1.0),
                    _fig("b", "== true", True, 0.0)],
                   {"recon": {"x": 5.4, "y": 0.7, "z": 2.0, "w": 1.5, "n": None, "b": True}})
    status = {r["figure"]: r["status"] for r in rows}
    assert status == {"recon.x": "missed", "recon.y": "moved", "recon.z": "missed", "recon.n": "unavailable",
                      "recon.b": "ok"}
    assert "5.4 does not meet the target <= 5" in rows[0]["reason"]
    assert "--update" in rows[1]["reason"]
    ok = compare([_fig()], {"recon": {"x": 4.05}})
    assert ok[0]["status"] == "ok"
    # a bench that was not run (the fast form) has no rows
    assert compare([_fig(bench="model")], {"recon": {"x": 4.0}}) == []


def test_malformed_targets_and_keys_are_one_line_errors():
    with pytest.raises(ContractError, match="recon.x: target '=< 5' is not"):
        compare([_fig(target="=< 5")], {"recon": {"x": 1.0}})
    with pytest.raises(ContractError, match="recon.x: target '< nothing' names no key of bench recon"):
        compare([_fig(target="< nothing")], {"recon": {"x": 1.0}})
    with pytest.raises(ContractError, match="bench recon reports no key 'x'"):
        compare([_fig()], {"recon": {}})


def test_the_contract_file_keeps_only_machine_independent_figures_with_sources():
    runs, figures = load_contract()
    assert {f.bench for f in figures} <= set(runs)
    for f in figures:
        assert not f.key.endswith(("_ms", "_s", "_per_s")) and "speedup" not in f.key and "fps" not in f.key, f.name
        assert f.source.startswith("issue "), f.name
    names = {f.name for f in figures}
    assert {"recon.object_trans_err_cm", "recon.joint_err_cm_exact_kp", "geometry.roundtrip_iou",
            "geometry.faceid_agreement", "recon.astronaut_silhouette_iou", "engines.max_abs_diff_onnxruntime",
            "model.outputs_identical"} <= names


def test_update_records_values_and_keeps_targets(tmp_path):
    data = json.loads(CONTRACT_FILE.read_text())
    data["figures"] = [f for f in data["figures"] if f["bench"] == "wire"]
    data["figures"][0]["recorded"] = False
    path = tmp_path / "contract.json"
    path.write_text(json.dumps(data))
    cfg = load_config(None)
    before = check(cfg, fast=True, path=path)
    assert not before["ok"] and before["failed"] == ["wire.bytes_identical"]
    assert before["figures"][0]["status"] == "moved"
    after = check(cfg, fast=True, update=True, path=path)
    assert after["ok"] and after["benches"] == ["wire"]
    written = json.loads(path.read_text())["figures"][0]
    assert written["recorded"] is True and written["target"] == "== true"
    assert check(cfg, fast=True, path=path)["ok"]


@pytest.mark.slow
def test_fast_contract_figures_hold():
    """geometry (quick), recon (its 5 scenes) and wire: every figure meets its target and its recorded value."""
    result = check(load_config(None), fast=True)
    assert result["benches"] == ["geometry", "recon", "wire"]
    assert len(result["figures"]) >= 10
    bad = [f"{r['figure']}: {r['status']}: {r['reason']}" for r in result["figures"] if r["status"] != "ok"
           and r["status"] != "unavailable"]
    assert result["ok"] and not bad, "\n".join(bad)


def test_bench_check_cli_reports_a_bad_contract_file_in_one_line(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text("{")
    code = ("import sys; from interactvlm_ros.benchmarks import contract; "
            f"contract.CONTRACT_FILE = contract.Path({str(bad)!r}); "
            "from interactvlm_ros.cli.main import main; sys.exit(main(['bench', 'check', '--fast']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("interactvlm bench check: ") and "unreadable contract file" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
