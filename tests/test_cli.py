"""The ``interactvlm`` command: help, doctor's report and exit codes, configuration errors."""

import json
import subprocess
import sys

from interactvlm_ros.cli.main import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "interactvlm_ros", *args], capture_output=True, text=True,
                          timeout=300)


def test_help_lists_commands():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("doctor", "demo"):
        assert command in proc.stdout


def test_doctor_ready_for_defaults_here():
    proc = run_cli("doctor", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stdout
    assert report["ready"] is True
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["dds (Cyclone DDS)"]["ok"]
    assert by_name["ONNX Runtime"]["ok"]
    assert by_name["anny"]["ok"]
    # What this CI machine lacks is reported with how to get it, without failing the default setup.
    for absent in ("rclpy", "TensorRT"):
        if not by_name[absent]["ok"]:
            assert by_name[absent]["fix"], f"{absent} absent without a how-to"
            assert not by_name[absent]["required"]


def test_doctor_fails_with_one_line_per_missing_piece(tmp_path, capsys):
    code = main(["doctor", "--set", "body.model=smplx", "--set", f"body.model_dir={tmp_path}",
                 "--set", "inference.backend=tensorrt"])
    out = capsys.readouterr().out
    tensorrt_missing = "TensorRT:" in out
    assert code == 1
    assert f"{tmp_path}/smplx/SMPLX_NEUTRAL.npz" in out
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert tensorrt_missing


def test_bad_override_is_a_clean_error(capsys):
    assert main(["doctor", "--set", "qos.image_depth=-3"]) == 2
    err = capsys.readouterr().err
    assert "qos.image_depth" in err and "int in [1, 1000]" in err
