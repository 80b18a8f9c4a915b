"""The serving recipe of docs/serving.md run as processes: one ``interactvlm serve`` and two camera nodes
(``interactvlm node --transport dds`` in the namespaces ``front`` and ``wrist``, ``inference.backend=triton``) on
loopback DDS. Each camera gets its own image; both nodes answer on their own namespaced topics with the contacts
(human and object) that local inference gives for that image."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from interactvlm_ros.serving.server import pytriton_problem

PROBLEM = pytriton_problem()
pytestmark = [pytest.mark.skipif(bool(PROBLEM), reason=PROBLEM or "pytriton runs"),
              pytest.mark.usefixtures("one_torch_thread")]
pytest.importorskip("cyclonedds", reason="the DDS transport needs cyclonedds")

from test_serving import DEMO, free_port  # noqa: E402  (tests/serving is on sys.path under pytest)

DOMAIN = 100 + (os.getpid() + 37) % 100
CAMERAS = ("front", "wrist")
OBJECTS = ["cup", "ball"]
COMMON = ["contact.person_gate=disabled", "model.device=cpu"]


def camera_images() -> dict[str, np.ndarray]:
    from PIL import Image

    rgb = np.asarray(Image.open(DEMO / "20251125_0001_mug.png").convert("RGB").resize((160, 120)))
    return {"front": rgb, "wrist": np.ascontiguousarray(rgb[:, ::-1])}  # the wrist camera sees it mirrored


def start(cmd: list[str], log_path, env=None) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_one_server_two_camera_nodes_answer_like_local(tmp_path):
    from interactvlm_ros.config import load_config
    from interactvlm_ros.model import ContactPredictor
    from interactvlm_ros.objects import ObjectLibrary
    from interactvlm_ros.pipeline.contact_pipeline import ContactPipeline
    from interactvlm_ros.transport.contacts import sparse_contact
    from interactvlm_ros.transport.dds import RELIABLE_QOS, DdsParticipant, image_qos
    from interactvlm_ros.transport.dds_config import loopback_domain, loopback_env
    from interactvlm_ros.transport.headers import make_header, stamp_ns
    from interactvlm_ros.transport.image_codec import encode_image
    from interactvlm_ros.transport.msgs import ContactArray, DiagnosticArray, Image

    grpc, http, metrics = free_port(), free_port(), free_port()
    python = [sys.executable, "-m", "interactvlm_ros"]
    server = start([*python, "serve", "--set", "inference.backend=torch", "--set", "serve.threads=1",
                    "--set", f"serve.grpc_port={grpc}", "--set", f"serve.http_port={http}",
                    "--set", f"serve.metrics_port={metrics}"], tmp_path / "serve.log")
    env = loopback_env(domain_id=DOMAIN)
    nodes = {}
    for cam in CAMERAS:
        cmd = [*python, "node", "--transport", "dds"]
        for s in [*COMMON, "inference.backend=triton", f"inference.triton_url=127.0.0.1:{grpc}",
                  "inference.triton_retry_max_s=2", f"node.namespace={cam}", f"dds.domain_id={DOMAIN}",
                  f"objects=[{', '.join(OBJECTS)}]", "node.marker_rate_hz=0", "node.diagnostics_period_s=0.5"]:
            cmd += ["--set", s]
        nodes[cam] = start(cmd, tmp_path / f"node_{cam}.log", env)
    try:
        cfg = load_config(None, ["inference.backend=torch", *COMMON])
        pipeline = ContactPipeline(ContactPredictor.from_config(cfg), ObjectLibrary.from_config(cfg))
        images = camera_images()
        local = {cam: pipeline.run(rgb, OBJECTS).contacts for cam, rgb in images.items()}
        threshold = float(cfg.contact.threshold)

        domain = loopback_domain(DOMAIN)  # kept: the participant's loopback configuration
        p = DdsParticipant(DOMAIN)
        writers = {cam: p.writer(Image, f"/{cam}/image", image_qos("best_effort", 5)) for cam in CAMERAS}
        readers = {cam: p.reader(ContactArray, f"/{cam}/interactvlm/contacts", RELIABLE_QOS) for cam in CAMERAS}
        diagnostics = p.reader(DiagnosticArray, "/diagnostics", RELIABLE_QOS)
        answers: dict[str, ContactArray] = {}
        stamps = {cam: 1_700_000_000 * 10**9 + i for i, cam in enumerate(CAMERAS)}
        sent: dict[str, set[int]] = {cam: set() for cam in CAMERAS}
        end = time.monotonic() + 240
        while len(answers) < len(CAMERAS):
            for name, proc in [("serve", server), *nodes.items()]:
                log = tmp_path / ("serve.log" if name == "serve" else f"node_{name}.log")
                assert proc.poll() is None, f"{name} exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < end, "no answer from both nodes: " + "".join(
                (tmp_path / f).read_text()[-1500:] for f in ("serve.log", "node_front.log", "node_wrist.log"))
            for cam in CAMERAS:
                if cam in answers:
                    continue
                stamps[cam] += 10**8
                sent[cam].add(stamps[cam])
                writers[cam].write(encode_image(images[cam], "rgb8", make_header(stamps[cam], "camera")))
                for msg in readers[cam].take(N=16):
                    if stamp_ns(msg.header) in sent[cam] and any(c.found for c in msg.contacts):
                        answers[cam] = msg
            time.sleep(0.5)
        diag = {}
        t_end = time.monotonic() + 30
        while len(diag) < len(CAMERAS) and time.monotonic() < t_end:
            for m in diagnostics.take(N=64):
                values = {kv.key: kv.value for kv in m.status[0].values}
                if values.get("answered_by") == "triton":
                    diag[m.status[0].hardware_id] = values
            time.sleep(0.1)
        del domain
    finally:
        for proc in [*nodes.values(), server]:
            stop(proc)

    assert {h.rsplit("/", 2)[-2] for h in diag} == set(CAMERAS)  # /front/interactvlm, /wrist/interactvlm
    for cam in CAMERAS:
        msg, expected = answers[cam], local[cam]
        assert [c.object_label for c in msg.contacts] == [c.asked for c in expected.contacts]
        for got, want in zip(msg.contacts, expected.contacts, strict=True):
            assert (got.found, got.reason, got.object_mesh_id) == (want.found, want.reason, want.object_mesh_id)
            for which, probs in (("human", want.human_probs), ("object", want.object_probs)):
                idx, p_want = sparse_contact(probs, threshold, 0, which)
                np.testing.assert_array_equal(np.asarray(getattr(got, f"{which}_vertex_indices")), idx)
                np.testing.assert_allclose(np.asarray(getattr(got, f"{which}_probabilities")), p_want,
                                           atol=1e-4, rtol=0)
        assert any(c.object_mesh_id for c in msg.contacts), "object contact travelled through the server"
    # the mirrored image gives other contacts: each node answered its own camera
    assert not np.array_equal(answers["front"].contacts[0].human_vertex_indices,
                              answers["wrist"].contacts[0].human_vertex_indices)
