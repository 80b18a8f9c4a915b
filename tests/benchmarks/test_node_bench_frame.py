"""``bench node`` times the whole pipeline only if its frame shows a person: with the shipped person gate a frame
without one gets every contact withheld before the object steps. Real MediaPipe on the bench's own frame."""

import numpy as np
import pytest

from interactvlm_ros.benchmarks.node import HEIGHT, WIDTH, camera_frame
from interactvlm_ros.pipeline.person_gate import PersonGate


def test_the_node_bench_frame_is_camera_sized_and_shows_a_person():
    from interactvlm_ros.recon.keypoints import KeypointDetector, KeypointError, mediapipe_python

    frame = camera_frame()
    assert frame.shape == (HEIGHT, WIDTH, 3) and frame.dtype == np.uint8
    try:
        python = mediapipe_python("")
    except KeypointError as exc:
        pytest.skip(f"MediaPipe environment missing: {exc}")
    gate = PersonGate("required", KeypointDetector(python, max_people=1))
    try:
        evidence, people = gate.check(frame)
    finally:
        gate.close()
    assert evidence.available and evidence.present and evidence.people == 1, evidence.describe()
    assert people and len(people) == 1
