"""``interactvlm demo``: the main job end to end on the configured defaults, offline.

1. The node runs as ``interactvlm node --transport dds`` in its own process (:mod:`.node_process`) with the
   configured model, backend and body model, on a private DDS domain pinned to loopback.
2. This process acts as the robot (:mod:`.peer`): for each bundled frame (:mod:`.bundle`) it publishes the object
   query on ``~/objects``, a ``sensor_msgs/CameraInfo`` and the ``sensor_msgs/Image``, and waits for the
   contacts, markers and both clouds carrying the image's stamp; every message sent and received goes into
   ``demo.mcap``.
3. From the received messages only (contacts + latched mesh topologies): one PNG per frame, coloured PLY meshes,
   and the reconstruction in the camera frame — the node's contact points when it reconstructs
   (``recon.enabled``), else :class:`~interactvlm_ros.recon.scene.Reconstructor` run here on the received
   contact; then ``summary.json`` and a table.
"""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from interactvlm_ros.demo.bundle import DemoFrame, load_bundle, pinhole_k, real_photo_frames
from interactvlm_ros.demo.figure import BODY_VIEWS, OBJECT_VIEW, Tile, closeup_render, compose, mesh_renders
from interactvlm_ros.files.atomic import atomic_write_bytes

CAMERA_FRAME = "demo_camera_optical_frame"
OFFICIAL_HINT = ("to use official checkpoints: set model.name=/path/to/interactvlm-3d-hcontact-damon, "
                 "model.clip_dir=/path/to/clip-vit-large-patch14, model.device=cuda (see README, Model)")


MEDIAPIPE_HINT = ("to get it: `make setup` creates .venv-mediapipe (mediapipe 0.10.21, numpy<2), or set "
                  "recon.keypoint_python to such a Python (README, Reconstruction)")


class DemoError(RuntimeError):
    """The demo cannot go on; the message says what failed and where to look."""


@dataclass
class DemoOptions:
    out: Path
    frames: int = 0                 # 0 = the real photos + all bundled frames
    reconstruct: bool = True
    domain_id: int = -1             # -1 = a private id derived from the process id
    start_timeout: float = 600.0    # node start-up: model load and, the first time, engine builds
    frame_timeout: float = 120.0


@dataclass
class FrameReport:
    frame: DemoFrame
    stamp_ns: int
    latency_ms: float
    contacts: Any                   # the received ContactArray
    human_probs: np.ndarray | None = None
    object_probs: np.ndarray | None = None
    object_mesh_id: str = ""
    recon: str = ""
    markers: Any = None             # the received MarkerArray (posed meshes when the node reconstructs)
    tf: Any = None                  # the received TFMessage (body_<id> frames), when the node reconstructs
    files: list[Path] = field(default_factory=list)
    real_score: dict | None = None  # a labelled real photo's part-level score (:func:`score_real_photo`)

    def contact(self):
        return self.contacts.contacts[0] if self.contacts.contacts else None


def demo_frames(count: int = 0) -> list[DemoFrame]:
    """The labelled real photos, then the bundled synthetic frames; the first ``count`` of them (0 = all)."""
    frames = real_photo_frames() + load_bundle()
    if count < 0:
        raise ValueError(f"--frames must be >= 0, got {count}")
    return frames[:count] if count else frames


def demo_config(cfg, domain: int):
    """The node's parameters: the configuration as given, on the dds transport and a private domain, with
    markers for every frame (``node.marker_rate_hz=0``) and diagnostics 4×/s (the demo waits on them)."""
    return cfg.replace(transport="dds", dds__domain_id=int(domain), node__marker_rate_hz=0.0,
                       node__diagnostics_period_s=0.25)


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _ply(vertices: np.ndarray, faces: np.ndarray, probs: np.ndarray) -> bytes:
    import trimesh

    from interactvlm_ros.render.contact_colors import contact_colors

    colors = (contact_colors(probs) * 255).astype(np.uint8)
    mesh = trimesh.Trimesh(vertices=np.asarray(vertices), faces=np.asarray(faces), vertex_colors=colors,
                           process=False)
    return trimesh.exchange.ply.export_ply(mesh, encoding="binary")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text) or "object"


def f1(pred: np.ndarray, gt: np.ndarray) -> float:
    """F1 of two vertex-id sets (1.0 when both are empty)."""
    p, g = set(np.asarray(pred).tolist()), set(np.asarray(gt).tolist())
    return 1.0 if not p and not g else 2.0 * len(p & g) / (len(p) + len(g))


# --- the live part: node + robot over DDS -----------------------------------------------------------------------
def score_real_photo(rep: FrameReport, part_ids: dict[str, np.ndarray]) -> dict:
    """The part-level score of a labelled real photo from the received contact (the ``eval --real`` metrics):
    ``part_hit``, ``on_target``, ``top_parts`` (where the predicted mass lies) and the labelled ``parts``."""
    from interactvlm_ros.evaluation.real_photos import on_target, part_hit, top_parts

    parts = rep.frame.labelled_parts
    n = 1 + max(int(np.max(v)) for v in part_ids.values() if len(v))
    c = rep.contact()
    probs = rep.human_probs if c is not None and c.found and rep.human_probs is not None else np.zeros(n, np.float32)
    return {"parts": list(parts), "part_hit": part_hit(probs, parts, part_ids),
            "on_target": round(on_target(probs, parts, part_ids), 3), "top_parts": top_parts(probs, part_ids)}


def describe_score(score: dict) -> str:
    """``labelled: left hand | part hit: no | on target 0.00 | predicted: torso 0.37, ...``."""
    predicted = ", ".join(f"{n} {s:.2f}" for n, s in score["top_parts"]) or "nothing"
    return (f"labelled: {', '.join(score['parts']) or 'no contact'} | part hit: {'yes' if score['part_hit'] else 'no'}"
            f" | on target {score['on_target']:.2f} | predicted: {predicted}")


def run_live(cfg, frames: list[DemoFrame], options: DemoOptions, log=print) -> tuple[list[FrameReport], dict]:
    """Run the node process and publish ``frames`` to it; returns per-frame reports and the final diagnostics."""
    from interactvlm_ros.bag.writer import AtomicBagWriter
    from interactvlm_ros.demo.node_process import NodeProcess
    from interactvlm_ros.demo.peer import DemoTimeout, RobotPeer
    from interactvlm_ros.transport.contacts import dense_probabilities

    out = options.out
    domain = options.domain_id if options.domain_id >= 0 else 200 + os.getpid() % 30
    ncfg = demo_config(cfg, domain)
    params = atomic_write_bytes(out / "node_params.yaml", ncfg.to_yaml().encode())
    node = NodeProcess(params, out / "node.log", domain)
    bag = AtomicBagWriter(out / "demo.mcap", overwrite=True)
    peer = None
    reports: list[FrameReport] = []
    try:
        node.start()
        peer = RobotPeer(ncfg, domain, bag, CAMERA_FRAME)
        log(f"node: python {' '.join(node.command[1:])} (pid {node.proc.pid}, DDS domain {domain}, loopback only; "
            f"log {node.log_file})")
        t0 = time.monotonic()
        with tqdm(desc="waiting for the node (model load, engines)", bar_format="{desc}: {elapsed}") as bar:
            while True:
                if not node.alive():
                    raise DemoError(f"the node exited with code {node.proc.returncode} before it was ready; "
                                    f"its log ({node.log_file}) ends with:\n{node.log_tail()}")
                try:  # the latched body topology is published once the model is loaded and the node started
                    peer.wait_for(lambda: any(t.kind == "body" for t in peer.topologies.values()), 1.0, "topology")
                    break
                except DemoTimeout:
                    bar.update(0)
                    if time.monotonic() - t0 > options.start_timeout:
                        raise DemoError(f"the node published no body topology on {peer.topics['topology']} within "
                                        f"{options.start_timeout:.0f} s; its log ends with:\n{node.log_tail()}"
                                        ) from None
        log(f"node ready after {time.monotonic() - t0:.1f} s")
        peer.wait_matched(30.0)
        current: str | None = None
        for frame in tqdm(frames, desc="frames over DDS", unit="frame"):
            if frame.object != current:
                peer.set_objects([frame.object], timeout=30.0)
                current = frame.object
            h, w = frame.image.shape[:2]
            K = frame.K if frame.K is not None else pinhole_k(w, h, float(cfg.camera.default_fov_deg))
            sent = peer.publish_frame(frame.image, K)
            try:
                got = peer.wait_frame(sent, options.frame_timeout)
            except DemoTimeout as exc:
                if not node.alive():
                    raise DemoError(f"the node died while processing frame {frame.id}; its log ends with:\n"
                                    f"{node.log_tail()}") from None
                raise DemoError(f"frame {frame.id}: {exc}") from None
            msg = got.outputs["contacts"]
            rep = FrameReport(frame, got.stamp_ns, got.latency_ms("contacts"), msg,
                              markers=got.outputs.get("markers"), tf=got.outputs.get("tf"))
            c = rep.contact()
            if c is not None and c.found:
                rep.human_probs = dense_probabilities(c, "human")
                if c.object_mesh_id and int(c.num_object_vertices):
                    rep.object_probs = dense_probabilities(c, "object")
                    rep.object_mesh_id = c.object_mesh_id
            reports.append(rep)
        n = len(frames)
        try:  # the node's own statistics after the last frame
            peer.wait_for(lambda: int(peer.latest_diagnostics().get("frames_processed", 0)) >= n, 5.0, "diagnostics")
        except DemoTimeout:
            pass
        diagnostics = peer.latest_diagnostics()
        topologies = dict(peer.topologies)
    except BaseException:
        node.stop()
        if peer is not None:
            peer.close()
        bag.abort()
        raise
    node.stop()
    peer.close()
    bag.commit()
    return reports, {"diagnostics": diagnostics, "topologies": topologies, "domain": domain}


# --- the offline part: figures, meshes, reconstruction ----------------------------------------------------------
class DemoReconstruction:
    """The reconstruction of each frame for the picture: the node's contact points when it published some, else
    :class:`Reconstructor` run here. MediaPipe missing = skipped with the fix, once."""

    def __init__(self, cfg, enabled: bool, log=print):
        self.cfg = cfg
        self.enabled = enabled
        self.log = log
        self.skip_reason = "" if enabled else "--no-recon"
        self._recon = None

    def close(self) -> None:
        if self._recon is not None:
            self._recon.close()

    def run(self, rep: FrameReport, out: Path):
        """(overlay image or None, note)."""
        c = rep.contact()
        if c is not None and c.body_id and rep.markers is not None:
            image = rep.frame.image
            h, w = image.shape[:2]
            K = rep.frame.K if rep.frame.K is not None else pinhole_k(w, h, float(self.cfg.camera.default_fov_deg))
            n_tf = len(rep.tf.transforms) if rep.tf is not None else 0
            return marker_overlay(image, rep.markers, K), (
                f"by the node: body_{c.body_id}, {len(c.human_contact_points)} body / {len(c.object_contact_points)} "
                f"object contact points, {n_tf} body frame(s) on /tf")
        if self.skip_reason:
            return None, f"skipped: {self.skip_reason}"
        from interactvlm_ros.pipeline.result import ContactResult, ObjectContact
        from interactvlm_ros.recon.camera import Intrinsics
        from interactvlm_ros.recon.keypoints import KeypointError
        from interactvlm_ros.recon.overlay import render_overlay, write_outputs

        image = rep.frame.image
        h, w = image.shape[:2]
        K = rep.frame.K if rep.frame.K is not None else pinhole_k(w, h, float(self.cfg.camera.default_fov_deg))
        contacts = None
        if c is not None:
            contacts = ContactResult(c.body_model, int(c.num_body_vertices), [ObjectContact(
                label=c.object_label, found=bool(c.found), human_probs=rep.human_probs,
                object_probs=rep.object_probs, object_mesh_id=rep.object_mesh_id, reason=c.reason)])
        try:
            if self._recon is None:
                from interactvlm_ros.recon.scene import Reconstructor

                self._recon = Reconstructor(self.cfg)
            rec = self._recon.reconstruct(image, contacts=contacts, intrinsics=Intrinsics.from_k(K, w, h),
                                          track=False)
        except KeypointError as exc:
            self.skip_reason = f"MediaPipe unavailable ({str(exc).splitlines()[0]})"
            self.log(f"reconstruction skipped for every frame: {exc}\n  {MEDIAPIPE_HINT}")
            return None, f"skipped: {self.skip_reason}. {MEDIAPIPE_HINT}"
        except (ValueError, RuntimeError) as exc:
            self.log(f"reconstruction of {rep.frame.id} failed: {type(exc).__name__}: {exc}")
            return None, f"failed: {exc}"
        if not rec.bodies:
            return None, "no person found by MediaPipe" + (f" ({'; '.join(rec.notes)})" if rec.notes else "")
        rep.files += write_outputs(out / "meshes", f"{rep.frame.id}_scene", image, rec)
        n_pts = sum(len(p.human_points) for p in rec.contacts)
        t = rec.bodies[0].transform_camera_body[:3, 3]
        note = (f"{len(rec.bodies)} person(s) at z={t[2]:.1f} m, {len(rec.objects)} object(s), {n_pts} contact points "
                f"({sum(rec.timings_ms.values()) / 1000:.1f} s, this process)")
        return render_overlay(image, rec), note


def marker_overlay(image: np.ndarray, markers, K: np.ndarray, alpha: float = 0.7) -> np.ndarray:
    """The received MarkerArray's triangle meshes (camera frame, coloured by contact) ray-cast with ``K`` and
    blended over ``image`` (what RViz shows over the camera image)."""
    from interactvlm_ros.recon.camera import Intrinsics
    from interactvlm_ros.recon.icp import MeshRaycaster
    from interactvlm_ros.transport.msgs import Marker

    h, w = image.shape[:2]
    caster = MeshRaycaster()
    colours = []
    for m in markers.markers:
        pts = np.asarray(m.points, np.float64).reshape(-1, 3)
        if m.type != Marker.TRIANGLE_LIST or len(pts) < 3:
            continue
        n = len(pts) // 3 * 3
        caster.add(pts[:n], np.arange(n).reshape(-1, 3))
        col = np.asarray(m.colors, np.float32).reshape(-1, 4)[:n:3, :3] if len(m.colors) else np.ones((n // 3, 3))
        colours.append(col * 255.0)
    out = np.asarray(image, np.float32).copy()
    if not colours:
        return out.astype(np.uint8)
    hit = caster.cast(Intrinsics.from_k(K, w, h))
    for g, col in enumerate(colours):
        sel = hit["geometry"] == g
        if sel.any():
            shade = 0.45 + 0.55 * np.abs(hit["normal"][sel][:, 2:3])
            out[sel] = (1 - alpha) * out[sel] + alpha * col[hit["face"][sel]] * shade
    return np.clip(out, 0, 255).astype(np.uint8)


def write_frame_outputs(rep: FrameReport, topologies: dict, threshold: float, recon: DemoReconstruction,
                        out: Path) -> None:
    """The PNG and PLY files of one frame (from the received messages)."""
    from interactvlm_ros.transport.topology import mesh_from_message

    f = rep.frame
    c = rep.contact()
    body_topo = topologies.get(c.body_mesh_id) if c is not None else None
    obj_topo = topologies.get(rep.object_mesh_id) if rep.object_mesh_id else None
    top: list[Tile] = [Tile(f"input ({f.source}, {f.image.shape[1]}x{f.image.shape[0]})", f.image)]
    gt_row: list[Tile] = []
    if body_topo is not None and rep.human_probs is not None:
        bv, bf = mesh_from_message(body_topo)
        front, back = mesh_renders(bv, bf, rep.human_probs, BODY_VIEWS)
        n = int((rep.human_probs >= threshold).sum())
        top += [Tile(f"body front: {n} vertices >= {threshold:g}", front), Tile("body back", back),
                Tile("body contact close-up", closeup_render(bv, bf, rep.human_probs, threshold),
                     note="" if n else "no vertex above the threshold")]
        rep.files.append(atomic_write_bytes(out / "meshes" / f"{f.id}_body_contact.ply", _ply(bv, bf, rep.human_probs)))
        if f.gt_human_vertices is not None:
            gt = np.zeros(len(bv), np.float32)
            gt[f.gt_human_vertices] = 1.0
            gt_row = [Tile(f"ground truth: {f.description}"[:36], None, note=f.description)]
            gt_front, gt_back = mesh_renders(bv, bf, gt, BODY_VIEWS)
            gt_row += [Tile(f"ground truth front ({len(f.gt_human_vertices)} vertices)", gt_front),
                       Tile("ground truth back", gt_back),
                       Tile("ground truth close-up", closeup_render(bv, bf, gt, 0.5))]
    else:
        reason = "no contact found" if c is None or not c.found else "body topology not received"
        top += [Tile("body front", None, note=f"{reason}: {c.reason if c is not None else ''}"), Tile("body back"),
                Tile("body contact close-up")]
    if obj_topo is not None and rep.object_probs is not None:
        ov, of = mesh_from_message(obj_topo)
        n = int((rep.object_probs >= threshold).sum())
        top.append(Tile(f"{obj_topo.name}: {n} vertices >= {threshold:g}", mesh_renders(ov, of, rep.object_probs,
                                                                                   OBJECT_VIEW)[0]))
        rep.files.append(atomic_write_bytes(out / "meshes" / f"{f.id}_object_{_slug(obj_topo.name)}_contact.ply",
                                       _ply(ov, of, rep.object_probs)))
        if gt_row and f.gt_object_vertices is not None:
            gt = np.zeros(len(ov), np.float32)
            gt[f.gt_object_vertices] = 1.0
            gt_row.append(Tile(f"ground truth {obj_topo.name}", mesh_renders(ov, of, gt, OBJECT_VIEW)[0]))
    else:
        top.append(Tile("object contact", None, note=f"no object mesh for {f.object!r} in the contacts"))
    overlay, note = recon.run(rep, out)
    rep.recon = note
    top.append(Tile("reconstruction (camera frame)", overlay, note=note))
    title = (f"{f.id}: '{f.object}'  |  stamp {rep.stamp_ns}  |  contacts {rep.latency_ms:.0f} ms after publish  |  "
             "red = contact probability")
    if rep.real_score is not None:
        title += f"\nreal photo, {describe_score(rep.real_score)}"
    rows = [top] + ([gt_row] if gt_row else [])
    rep.files.insert(0, atomic_write_bytes(out / "frames" / f"{f.id}.png", _png(compose(title, rows))))


# --- the command ------------------------------------------------------------------------------------------------
def run_demo(cfg, options: DemoOptions, log=print) -> dict:
    """Run everything; returns the summary (also written to ``summary.json``)."""
    import torch

    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = demo_frames(options.frames)
    log(f"== interactvlm demo: {len(frames)} frames -> {out} ==")
    t0 = time.monotonic()
    reports, live = run_live(cfg, frames, options, log)
    t_live = time.monotonic() - t0
    threshold = float(cfg.contact.threshold)
    if any(r.frame.labelled_parts is not None for r in reports):
        from interactvlm_ros.body import load_body_model

        part_ids = load_body_model(cfg).part_vertex_ids()
        for rep in reports:
            if rep.frame.labelled_parts is not None:
                rep.real_score = score_real_photo(rep, part_ids)
    recon = DemoReconstruction(cfg, options.reconstruct, log)
    try:
        for rep in tqdm(reports, desc="figures, meshes, reconstruction", unit="frame"):
            write_frame_outputs(rep, live["topologies"], threshold, recon, out)
    finally:
        recon.close()
    diag = live["diagnostics"]
    device = cfg.model.device if cfg.model.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    for rep in reports:
        c = rep.contact()
        hv = np.asarray(c.human_vertex_indices) if c is not None else np.zeros(0)
        row = {"frame": rep.frame.id, "source": rep.frame.source, "object": rep.frame.object,
               "stamp_ns": rep.stamp_ns, "found": bool(c is not None and c.found),
               "reason": c.reason if c is not None else "no contact in the message",
               "human_vertices": int(len(hv)), "object_vertices": int(len(c.object_vertex_indices)) if c else 0,
               "object_mesh_id": rep.object_mesh_id, "latency_ms": round(rep.latency_ms, 1),
               "reconstruction": rep.recon, "files": [str(p) for p in rep.files]}
        if rep.frame.gt_human_vertices is not None:
            row["gt_human_vertices"] = int(len(rep.frame.gt_human_vertices))
            row["human_f1"] = round(f1(hv, rep.frame.gt_human_vertices), 3)
        if rep.real_score is not None:
            row["real_photo"] = rep.real_score
        rows.append(row)
    summary = {
        "frames": rows, "threshold": threshold, "bag": str(out / "demo.mcap"),
        "seconds": {"live": round(t_live, 1), "total": round(time.monotonic() - t0, 1)},
        "ran_on": {"transport": f"dds (Cyclone DDS, ROS 2 wire protocol, loopback, domain {live['domain']})",
                   "backend": diag.get("backend", cfg.inference.backend),
                   "body_model": diag.get("body_model", cfg.body.model), "model": str(cfg.model.name),
                   "device": device, "reconstruction": "node" if any(r.recon.startswith("by the node") for r in reports)
                   else ("off" if not options.reconstruct else "skipped" if recon.skip_reason else "demo process")},
        "node_diagnostics": diag,
    }
    atomic_write_bytes(out / "summary.json", (json.dumps(summary, indent=1) + "\n").encode())
    print_summary(summary, cfg, out, log)
    return summary


def _model_note(name: str) -> str:
    if name == "tiny":
        return "the tiny preset: random weights, so the contacts are NOT meaningful (architecture check only)"
    if name == "default":
        return "our default model (interactvlm_ros/assets/default_model), trained on synthetic Anny scenes"
    if name.startswith("official-"):
        return "an official architecture preset"
    return "a model directory"


def print_summary(summary: dict, cfg, out: Path, log=print) -> None:
    thr = summary["threshold"]
    head = f"{'frame':<26} {'object':<8} {'found':<5} {'human >= ' + format(thr, 'g'):>12} {'object':>7} " \
           f"{'GT F1':>6} {'parts':>5} {'on target':>9} {'latency ms':>10}"
    log("")
    log(head)
    log("-" * len(head))
    for r in summary["frames"]:
        f1s = f"{r['human_f1']:.2f}" if "human_f1" in r else "-"
        real = r.get("real_photo")
        hit = ("hit" if real["part_hit"] else "miss") if real else "-"
        on = f"{real['on_target']:.2f}" if real else "-"
        log(f"{r['frame']:<26} {r['object']:<8} {'yes' if r['found'] else 'no':<5} {r['human_vertices']:>12} "
            f"{r['object_vertices']:>7} {f1s:>6} {hit:>5} {on:>9} {r['latency_ms']:>10.0f}")
        if not r["found"]:
            log(f"{'':<26} not found: {r['reason']}"[:160])
    d = summary["node_diagnostics"]
    log(f"node: {d.get('frames_processed', '?')} frames processed, latency p50 {d.get('latency_ms_p50', '?')} ms "
        f"(model {d.get('pipeline_ms_p50', '?')} ms, node overhead {d.get('node_overhead_ms_p50', '?')} ms), "
        f"bad messages {d.get('bad_messages', '?')}, errors {d.get('pipeline_errors', '?')}")
    log("human = body vertices with contact probability >= threshold, object = object-mesh vertices; GT F1 = overlap "
        "with the generator's ground-truth body contact (synthetic scenes); parts / on target = a real photo's "
        "part-level score against its labels (hit: every labelled part has >= 10 % of its vertices in contact, or "
        "nothing on a no-contact photo; on target: share of the predicted contact on the labelled parts; "
        "`interactvlm eval --real` scores the whole labelled set); latency = image publish -> ContactArray received")
    ran = summary["ran_on"]
    log("")
    log("== what ran ==")
    log(f"transport       {ran['transport']}")
    log(f"backend         {ran['backend']} (inference.backend)")
    log(f"body model      {ran['body_model']} (body.model)")
    log(f"model           {ran['model']} (model.name): {_model_note(ran['model'])}")
    log(f"device          {ran['device']} (model.device={cfg.model.device})")
    recon_line = {"node": "published by the node (recon.enabled=true)",
                  "demo process": f"run in the demo process on the received contacts (recon.enabled="
                                  f"{str(bool(cfg.recon.enabled)).lower()}: the node's meshes are canonical, at a "
                                  "fixed pose)",
                  "off": "off (--no-recon)",
                  "skipped": f"skipped: MediaPipe unavailable; {MEDIAPIPE_HINT}"}[ran["reconstruction"]]
    log(f"reconstruction  {recon_line}")
    log(OFFICIAL_HINT)
    log("")
    log("== outputs ==")
    log(f"bag             {out / 'demo.mcap'}  (every topic; `ros2 bag info`, Foxglove, rosbags)")
    log(f"figures         {out / 'frames'}/<frame>.png")
    log(f"meshes          {out / 'meshes'}/ (PLY, contact in red; *_scene_* = reconstruction, camera frame)")
    log(f"summary         {out / 'summary.json'}")
    log(f"node            {out / 'node.log'}, {out / 'node_params.yaml'}")
    log(f"took            {summary['seconds']['total']:.0f} s ({summary['seconds']['live']:.0f} s live over DDS)")
