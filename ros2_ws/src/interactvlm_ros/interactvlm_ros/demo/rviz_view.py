"""What RViz shows of the node's markers, drawn from the published messages, and checks of those messages.

``python -m interactvlm_ros.demo.rviz_view --out docs/rviz_markers.png`` runs the node as ``make demo`` does (its
own process, dds transport, a private loopback domain), publishes bundled demo frames to it (by default a box
frame, then a mug frame: the object changes, so the box's mesh must go), and keeps every MarkerArray and
ContactArray it publishes. From those messages only it

* checks what RViz relies on: every marker in the image's frame with the image's stamp; each MarkerArray opening
  with ``DELETEALL`` so a mesh that is no longer published disappears (here: the box after the query changed);
  ``TRIANGLE_LIST`` at scale 1 (points in metres) with one opaque colour per point; the body's colours equal to
  the contact colour map of the ContactArray's probabilities (through the latched body topology); the body the
  size of a person, in front of the camera, head up in the optical frame (y down, z forward);
* draws the last frame twice: the markers over the camera image (RViz's Camera display) and from an orbit
  viewpoint beside the camera with the camera frame's axes (RViz's 3D view: x red, y green, z blue), the meshes
  ray-cast with their per-vertex colours as RViz's ``TRIANGLE_LIST`` draws them (unlit).

It stands in for an rviz2 screenshot where rviz2 cannot be built (docs/ros2-and-docker.md, RViz). Exit status 1
when a check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from interactvlm_ros.demo.bundle import DemoFrame, load_bundle

PANEL = (480, 360)
AXIS_M = 0.3
PERSON_HEIGHT_M = (1.0, 2.2)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


# --- the messages ------------------------------------------------------------------------------------------------
def collect(cfg, frames: list[DemoFrame], work: Path, log=print):
    """Run the node on ``frames`` (in order) over DDS; returns the per-frame reports (contacts, markers) and the
    latched topologies (mesh id -> MeshTopology)."""
    from interactvlm_ros.demo.run import DemoOptions, run_live

    reports, extra = run_live(cfg, frames, DemoOptions(out=work, frames=len(frames), reconstruct=False), log=log)
    return reports, extra["topologies"]


def frames_for(objects: list[str]) -> list[DemoFrame]:
    """The first bundled frame of each object class in ``objects``, in that order."""
    bundle = load_bundle()
    out = []
    for name in objects:
        frame = next((f for f in bundle if f.object == name), None)
        if frame is None:
            raise SystemExit(f"no bundled demo frame shows a {name!r} (have: {sorted({f.object for f in bundle})})")
        out.append(frame)
    return out


def triangle_vertices(marker, num_vertices: int, faces: np.ndarray) -> np.ndarray:
    """The mesh's ``[N, 3]`` vertices from a ``TRIANGLE_LIST`` marker (point ``3i+k`` is vertex ``faces[i, k]``)."""
    pts = np.asarray(marker.points, np.float64).reshape(-1, 3)
    vertices = np.full((num_vertices, 3), np.nan)
    vertices[faces.reshape(-1)] = pts
    return vertices


def check_messages(reports, topologies: dict, threshold_colors=None) -> list[Check]:
    """The checks of the module docstring over the received messages of every frame."""
    from interactvlm_ros.transport.contacts import dense_probabilities
    from interactvlm_ros.transport.markers import BODY_NS, OBJECT_NS, object_marker_id, probability_colors
    from interactvlm_ros.transport.msgs import Marker

    colors_of = threshold_colors or probability_colors
    checks: list[Check] = []
    body = next(t for t in topologies.values() if t.kind == "body")  # interactvlm_msgs/MeshTopology
    faces = np.asarray(body.triangles, np.int64).reshape(-1, 3)
    canonical = np.asarray(body.vertices, np.float32).reshape(-1, 3)
    frame_ok, stale_ok, style_ok, color_err, bodies = [], [], [], [], []
    lifetimes = set()
    previous_ids: set[tuple[str, int]] = set()
    for rep in reports:
        markers, contacts = rep.markers, rep.contacts
        header = contacts.header
        frame_ok.append(all(m.header.frame_id == header.frame_id and m.header.stamp.sec == header.stamp.sec
                            and m.header.stamp.nanosec == header.stamp.nanosec for m in markers.markers)
                        and header.frame_id == rep.frame_id)
        first, rest = markers.markers[0], markers.markers[1:]
        ids = {(m.ns, m.id) for m in rest}
        asked = {str(c.object_label) for c in contacts.contacts}
        expected = {(BODY_NS, 0)} | {(OBJECT_NS, object_marker_id(label)) for label in asked if any(
            (m.ns, m.id) == (OBJECT_NS, object_marker_id(label)) for m in rest)}
        stale_ok.append(first.action == Marker.DELETEALL and all(m.action == Marker.ADD for m in rest)
                        and len(ids) == len(rest) and ids == expected)
        gone = previous_ids - ids
        previous_ids = ids
        rep.gone = sorted(gone)
        for m in rest:
            n = len(m.points)
            col = np.asarray(m.colors, np.float32).reshape(-1, 4)
            style_ok.append(m.type == Marker.TRIANGLE_LIST and n % 3 == 0 and len(col) == n
                            and (m.scale.x, m.scale.y, m.scale.z) == (1.0, 1.0, 1.0) and bool(np.all(col[:, 3] == 1)))
            lifetimes.add((m.lifetime.sec, m.lifetime.nanosec, bool(m.frame_locked)))
        marker = next(m for m in rest if (m.ns, m.id) == (BODY_NS, 0))
        listed = np.zeros(int(body.num_vertices), bool)
        probs = np.zeros(int(body.num_vertices), np.float32)
        for c in contacts.contacts:
            if c.found and int(c.num_body_vertices) == int(body.num_vertices):
                listed[np.asarray(c.human_vertex_indices, np.int64)] = True
                np.maximum(probs, dense_probabilities(c, "human"), out=probs)
        got = np.asarray(marker.colors, np.float32).reshape(-1, 4)
        shown = np.zeros(int(body.num_vertices), np.float32)
        shown[faces.reshape(-1)] = probability_of_colors(got[:, :3], colors_of)
        threshold = max((float(c.threshold) for c in contacts.contacts), default=1.0)
        # listed vertices (p >= threshold) are drawn with their probability; the others below the threshold
        err = np.abs(shown[listed] - probs[listed]).max(initial=0.0)
        over = (shown[~listed] - threshold).max(initial=-1.0)
        color_err.append((float(err), float(over), int(listed.sum())))
        bodies.append(triangle_vertices(marker, int(body.num_vertices), faces))
    checks.append(Check("frame", all(frame_ok), f"{sum(frame_ok)}/{len(frame_ok)} MarkerArrays: every marker has "
                                                f"the image's frame_id ({reports[-1].frame_id}) and stamp"))
    gone = [g for rep in reports for g in rep.gone]
    checks.append(Check("stale markers", all(stale_ok) and (len(reports) < 2 or bool(gone)),
                        f"every MarkerArray opens with DELETEALL, then one ADD per mesh shown; meshes gone after "
                        f"the query changed: {', '.join(f'{ns}/{i}' for ns, i in gone) or 'none'}"))
    lifetime = ", ".join(f"lifetime {s + ns / 1e9:g} s, frame_locked {str(fl).lower()}"
                         for s, ns, fl in sorted(lifetimes))
    checks.append(Check("style", all(style_ok), f"TRIANGLE_LIST, scale 1, one opaque colour per point ({lifetime})"))
    err = max(e for e, _, _ in color_err)
    over = max(o for _, o, _ in color_err)
    checks.append(Check("colours", err < 1e-3 and over < 1e-3,
                        f"body colours = contact colour map (grey, amber at 0.5, red at 1) of the ContactArray's "
                        f"probabilities at its {color_err[-1][2]} listed vertices (max error {err:.1e}), below "
                        "its threshold elsewhere"))
    v = bodies[-1]
    head = int(np.argmax(canonical[:, 1]))  # canonical body: y up
    feet = int(np.argmin(canonical[:, 1]))
    height = float(np.nanmax(v[:, 1]) - np.nanmin(v[:, 1]))
    upright = v[head, 1] < v[feet, 1]
    in_front = float(np.nanmin(v[:, 2])) > 0.0
    canon = float(canonical[:, 1].max() - canonical[:, 1].min())
    checks.append(Check("scale and pose", PERSON_HEIGHT_M[0] <= height <= PERSON_HEIGHT_M[1] and upright and in_front
                        and abs(height - canon) < 0.05 * canon,
                        f"body {height:.2f} m tall (canonical {canon:.2f} m), z {np.nanmin(v[:, 2]):.2f}"
                        f"..{np.nanmax(v[:, 2]):.2f} m in front of the camera, head {'above' if upright else 'below'}"
                        " the feet in the optical frame (y down)"))
    return checks


def probability_of_colors(rgb: np.ndarray, colors_of=None) -> np.ndarray:
    """The probability each colour stands for in the markers' colour map (piecewise linear through its colours at
    0, 0.5 and 1): ``[N, 3]`` -> ``[N]``, by projection onto the nearer segment."""
    from interactvlm_ros.transport.markers import probability_colors

    stops = np.array([0.0, 0.5, 1.0], np.float32)
    ref = (colors_of or probability_colors)(stops)[:, :3]
    best = np.full(len(rgb), np.inf)
    out = np.zeros(len(rgb), np.float32)
    for k in range(2):
        a, d = ref[k], ref[k + 1] - ref[k]
        t = np.clip((rgb - a) @ d / float(d @ d), 0.0, 1.0)
        resid = np.linalg.norm(rgb - (a + t[:, None] * d), axis=1)
        better = resid < best
        best[better], out[better] = resid[better], (stops[k] + t * (stops[k + 1] - stops[k]))[better]
    return out


# --- drawing -------------------------------------------------------------------------------------------------------
def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``[3, 3]`` columns x, y, z of an optical-convention view camera at ``eye`` looking at ``target`` with the
    scene's y (down in the optical frame) kept down."""
    z = target - eye
    z = z / np.linalg.norm(z)
    down = np.array([0.0, 1.0, 0.0])
    y = down - down.dot(z) * z
    y = y / np.linalg.norm(y)
    return np.stack([np.cross(y, z), y, z], axis=1)


def _meshes(markers):
    from interactvlm_ros.transport.msgs import Marker

    for m in markers.markers:
        if m.type == Marker.TRIANGLE_LIST and m.action == Marker.ADD and len(m.points) >= 3:
            pts = np.asarray(m.points, np.float64).reshape(-1, 3)
            col = np.asarray(m.colors, np.float32).reshape(-1, 4)[:, :3]
            yield pts, col


def orbit_view(markers, size=PANEL, fov_deg: float = 50.0) -> np.ndarray:
    """RViz's 3D view of ``markers``: an orbit camera up, left and behind the sensor looking at the meshes, the
    meshes unlit with their point colours, the camera frame's axes at the origin."""
    from PIL import Image, ImageDraw

    from interactvlm_ros.recon.camera import Intrinsics
    from interactvlm_ros.recon.icp import MeshRaycaster

    meshes = list(_meshes(markers))
    allpts = np.concatenate([p for p, _ in meshes])
    target = (allpts.min(0) + allpts.max(0)) / 2
    target[2] = target[2] * 0.6  # between the camera and the meshes: both in view
    eye = target + np.array([-2.4, -1.6, -2.4])
    R = look_at(eye, target)
    intr = Intrinsics.from_fov(size[0], size[1], fov_deg)
    caster, colours = MeshRaycaster(), []
    for pts, col in meshes:
        n = len(pts) // 3 * 3
        caster.add((pts[:n] - eye) @ R, np.arange(n).reshape(-1, 3))
        colours.append(col[:n:3] if len(col) else np.ones((n // 3, 3), np.float32))
    hit = caster.cast(intr)
    img = np.full((size[1], size[0], 3), 48.0, np.float32)  # RViz's default background
    for g, col in enumerate(colours):
        sel = hit["geometry"] == g
        img[sel] = col[hit["face"][sel]] * 255.0
    canvas = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)

    def project(p):
        q = (np.asarray(p, np.float64) - eye) @ R
        return (intr.fx * q[0] / q[2] + intr.cx, intr.fy * q[1] / q[2] + intr.cy)

    for x in np.arange(-2.0, 2.01, 0.5):  # a 0.5 m grid in the camera's x-z plane at the feet
        y = float(np.nanmax(allpts[:, 1]))
        draw.line([project((x, y, 0.0)), project((x, y, 5.0))], fill=(90, 90, 90))
    for z in np.arange(0.0, 5.01, 0.5):
        draw.line([project((-2.0, y, z)), project((2.0, y, z))], fill=(90, 90, 90))
    o = project((0.0, 0.0, 0.0))
    for axis, colour in ((0, (230, 40, 40)), (1, (40, 200, 40)), (2, (60, 90, 255))):
        end = np.zeros(3)
        end[axis] = AXIS_M
        draw.line([o, project(end)], fill=colour, width=3)
    draw.text((o[0] + 6, o[1] - 14), "camera", fill=(230, 230, 230))
    return np.asarray(canvas)


def camera_view(frame: DemoFrame, markers, size=PANEL) -> np.ndarray:
    """The markers ray-cast through the frame's intrinsics over its image (RViz's Camera display)."""
    from PIL import Image

    from interactvlm_ros.demo.run import marker_overlay

    overlay = marker_overlay(frame.image, markers, frame.K, alpha=0.75)
    return np.asarray(Image.fromarray(overlay).resize(size))


def compose_figure(frame: DemoFrame, markers, checks: list[Check], title: str) -> Any:
    """Both views side by side with a title and one line per check (a PIL image)."""
    from PIL import Image, ImageDraw

    views = [camera_view(frame, markers), orbit_view(markers)]
    w, h = PANEL
    top, line = 22, 14
    out = Image.new("RGB", (2 * w, top + h + 6 + line * len(checks)), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    draw.text((6, 5), title, fill=(0, 0, 0))
    for i, view in enumerate(views):
        out.paste(Image.fromarray(view), (i * w, top))
    for i, c in enumerate(checks):
        draw.text((6, top + h + 4 + i * line), f"{'ok ' if c.ok else 'FAIL'} {c.name}: {c.detail}",
                  fill=(0, 110, 0) if c.ok else (190, 0, 0))
    return out


def save_png(image, path: Path, max_bytes: int = 300_000) -> int:
    """Write ``image`` as PNG (palette-quantised when the full-colour file would exceed ``max_bytes``)."""
    import io

    from interactvlm_ros.files.atomic import atomic_write_bytes

    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    if buf.tell() > max_bytes:
        buf = io.BytesIO()
        image.quantize(colors=256).save(buf, format="PNG", optimize=True)
    atomic_write_bytes(path, buf.getvalue())
    return buf.tell()


def main(argv: list[str] | None = None) -> int:
    from interactvlm_ros.config import load_config

    p = argparse.ArgumentParser(prog="python -m interactvlm_ros.demo.rviz_view", description=__doc__.split("\n")[0])
    p.add_argument("--out", default="docs/rviz_markers.png", help="the picture (PNG)")
    p.add_argument("--objects", default="box,mug", help="bundled demo frames by object, in the order sent")
    p.add_argument("--config", default=None, help="parameter file (default: config/interactvlm.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a parameter")
    p.add_argument("--work", default=None, help="folder for the node's log and bag (default: a temporary one)")
    p.add_argument("--json", action="store_true", help="print the checks as one JSON object")
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.set)
    frames = frames_for([o.strip() for o in args.objects.split(",") if o.strip()])
    with tempfile.TemporaryDirectory(prefix="interactvlm-rviz-view-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        reports, topologies = collect(cfg, frames, work, log=lambda s: print(s, file=sys.stderr))
    from interactvlm_ros.demo.run import CAMERA_FRAME

    for rep in reports:
        rep.frame_id = CAMERA_FRAME
    checks = check_messages(reports, topologies)
    last = reports[-1]
    labels = ", ".join(f"{c.object_label} ({'found' if c.found else 'not found'})" for c in last.contacts.contacts)
    placed = "reconstructed" if any(c.body_id for c in last.contacts.contacts) else "fixed placement"
    title = (f"markers of demo frame {last.frame.id} ({labels}, {placed}) from the node's messages: left over the "
             f"camera image, right from an orbit view (frame {CAMERA_FRAME}; axes x red, y green, z blue)")
    size = save_png(compose_figure(last.frame, last.markers, checks, title), Path(args.out))
    result = {"out": args.out, "bytes": size, "frames": [r.frame.id for r in reports],
              "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks}}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for c in checks:
            print(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
        print(f"wrote {args.out} ({size / 1000:.0f} kB)")
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
