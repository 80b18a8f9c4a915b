"""``bench gate`` (quick): every photo's keys, and the gate's reason on each is what its photo shows. Real
MediaPipe and the shipped default model; the calibration frames come from eval --real's image cache (their keys
are null, with the reason, where opencv-doc cannot be fetched)."""

import argparse

import pytest

from interactvlm_ros.benchmarks.gate import PHOTOS, run
from interactvlm_ros.config import load_config


def test_gate_bench_reports_each_photo_with_and_without_the_gate():
    from interactvlm_ros.recon.keypoints import KeypointError, mediapipe_python

    try:
        mediapipe_python("")
    except KeypointError as exc:
        pytest.skip(f"MediaPipe environment missing: {exc}")
    out = run(load_config(None, ["model.device=cpu"]), argparse.Namespace(quick=True))
    assert out["frames"] == 3
    for key in PHOTOS:
        assert {f"{key}_ms_p50", f"{key}_model_ms_p50", f"{key}_gate_ratio", f"{key}_person"} <= set(out)
    assert out["astronaut_person"].startswith("person: pose: 1 person")
    assert out["coffee_person"].startswith("no person: pose: no person; hands: none")
    if out["board_skipped"] is None:
        assert "board: left hand at its edge" in out["board_seen_person"]
        assert "board: no hand found at its edge" in out["board_hidden_person"]
    for key in PHOTOS:
        if out[f"{key}_ms_p50"] is not None:
            assert out[f"{key}_gate_ratio"] == pytest.approx(out[f"{key}_ms_p50"] / out[f"{key}_model_ms_p50"],
                                                             rel=1e-2)
