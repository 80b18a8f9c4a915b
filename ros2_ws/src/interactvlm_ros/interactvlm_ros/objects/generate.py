"""Procedural generator of the shipped object meshes (our own work, CC0 1.0).

Every mesh is built from primitives with trimesh, in metres at a typical real-world size, y up, with the
origin at the centre of its axis-aligned bounding box (the method centres object meshes), and subdivided so
that no edge is longer than ~1/16 of the largest extent (per-vertex contact needs evenly spread vertices).
Parts are concatenated, not boolean-unioned: the meshes are for contact and pose fitting, not for printing.

Regenerate the files in ``interactvlm_ros/assets/objects/``::

    python -m interactvlm_ros.objects.generate
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import trimesh
from trimesh import creation, remesh

from interactvlm_ros.files.atomic import atomic_write_bytes

# z-up (trimesh's revolve/cylinder axis) -> y-up (body-model convention).
_Z_TO_Y = trimesh.transformations.rotation_matrix(-math.pi / 2.0, [1.0, 0.0, 0.0])


def _box(extents, center=(0.0, 0.0, 0.0)) -> trimesh.Trimesh:
    return creation.box(extents=extents, transform=trimesh.transformations.translation_matrix(center))


def _revolved(profile: list[tuple[float, float]], step: float) -> trimesh.Trimesh:
    """Surface of revolution about y of a (radius, height) polyline, with ~``step`` m between vertices.

    The profile is resampled every ``step`` and the number of sections follows the largest radius, so the
    triangles are near-even and :func:`finish` need not subdivide them.
    """
    pts = np.asarray(profile, dtype=np.float64)
    dense = [pts[0]]
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        n = max(1, int(math.ceil(np.linalg.norm(b - a) / step)))
        dense += [a + (b - a) * k / n for k in range(1, n + 1)]
    sections = int(np.clip(math.ceil(2.0 * math.pi * pts[:, 0].max() / step), 16, 64))
    mesh = creation.revolve(np.asarray(dense), sections=sections)
    mesh.apply_transform(_Z_TO_Y)
    return mesh


def make_box(extents=(0.40, 0.30, 0.30)) -> trimesh.Trimesh:
    """Cardboard box 40 x 30 x 30 cm."""
    return _box(extents)


def make_bottle(radius: float = 0.035, height: float = 0.25, neck: float = 0.015) -> trimesh.Trimesh:
    """Water bottle: radius 3.5 cm, 25 cm tall, with shoulder, neck (radius 1.5 cm) and cap."""
    r, h, n = radius, height, neck
    profile = [(0.0, 0.0), (r, 0.0), (r, 0.68 * h), (r - 0.005, 0.76 * h), (n + 0.001, 0.86 * h), (n - 0.001, 0.92 * h),
               (n, 0.928 * h), (n, h), (0.0, h)]
    return _revolved(profile, step=h / 24)


def make_mug(radius: float = 0.042, height: float = 0.095, handle_radius: float = 0.028) -> trimesh.Trimesh:
    """Coffee mug: outer radius 4.2 cm, 9.5 cm tall, 5 mm wall, with a ring handle (radius 2.8 cm)."""
    r_out, h, t = radius, height, 0.006
    r_in = r_out - 0.005
    profile = [(0.0, 0.0), (r_out, 0.0), (r_out, h), (r_in, h), (r_in, t), (0.0, t)]
    body = _revolved(profile, step=0.134 / 16)
    handle = creation.torus(major_radius=handle_radius, minor_radius=0.006, major_sections=24, minor_sections=8)
    # Torus lies in the xy plane (axis z): that already is a vertical ring seen from the side.
    handle.apply_translation((r_out + handle_radius - 0.012, h / 2.0, 0.0))
    return trimesh.util.concatenate([body, handle])


def make_cup() -> trimesh.Trimesh:
    """Paper cup: tapered, 9 cm tall, 4 cm bottom radius, 4.5 cm rim radius, open top."""
    profile = [(0.0, 0.0), (0.030, 0.0), (0.045, 0.09), (0.042, 0.09), (0.027, 0.004), (0.0, 0.004)]
    return _revolved(profile, step=0.09 / 16)


def make_ball(radius: float = 0.11) -> trimesh.Trimesh:
    """Football (size 5): radius 11 cm."""
    return creation.icosphere(subdivisions=3, radius=radius)


def make_board(extents=(0.60, 0.02, 0.40)) -> trimesh.Trimesh:
    """Flat board (cutting board / panel): 60 x 2 x 40 cm, lying flat (thin along y)."""
    return _box(extents)


def make_chair(seat_h: float = 0.45, seat: float = 0.45, leg: float = 0.035, top: float = 0.90) -> trimesh.Trimesh:
    """Dining chair: seat 45 x 45 cm at 45 cm height, 4 legs (3.5 cm), backrest up to 90 cm."""
    th = 0.03
    parts = [_box((seat, th, seat), (0.0, seat_h - th / 2.0, 0.0))]
    off = seat / 2.0 - leg / 2.0
    for sx in (-1, 1):
        for sz in (-1, 1):
            parts.append(_box((leg, seat_h - th, leg), (sx * off, (seat_h - th) / 2.0, sz * off)))
    back_h = top - seat_h
    parts.append(_box((seat, back_h, 0.025), (0.0, seat_h + back_h / 2.0, -seat / 2.0 + 0.0125)))
    return trimesh.util.concatenate(parts)


def make_table(w: float = 1.20, d: float = 0.75, h: float = 0.75, leg: float = 0.05) -> trimesh.Trimesh:
    """Table: top 120 x 75 cm, 3 cm thick, 75 cm high, four 5 cm legs."""
    th = 0.03
    parts = [_box((w, th, d), (0.0, h - th / 2.0, 0.0))]
    for sx in (-1, 1):
        for sz in (-1, 1):
            parts.append(_box((leg, h - th, leg), (sx * (w / 2 - leg), (h - th) / 2.0, sz * (d / 2 - leg))))
    return trimesh.util.concatenate(parts)


def make_bench() -> trimesh.Trimesh:
    """Park bench without back: seat 150 x 40 cm at 45 cm, two slab legs."""
    w, d, h, th = 1.50, 0.40, 0.45, 0.04
    parts = [_box((w, th, d), (0.0, h - th / 2.0, 0.0))]
    for sx in (-1, 1):
        parts.append(_box((0.05, h - th, d * 0.9), (sx * (w / 2 - 0.15), (h - th) / 2.0, 0.0)))
    return trimesh.util.concatenate(parts)


def make_laptop() -> trimesh.Trimesh:
    """Open laptop: 34 x 1.8 x 23 cm base, lid opened to 110 degrees."""
    w, d, th = 0.34, 0.23, 0.018
    base = _box((w, th, d), (0.0, th / 2.0, 0.0))
    lid = _box((w, d, 0.008), (0.0, d / 2.0, 0.0))
    # Hinge at the back edge of the base; lid tilted back by 20 degrees from vertical.
    tilt = trimesh.transformations.rotation_matrix(-math.radians(20.0), [1.0, 0.0, 0.0])
    lid.apply_transform(tilt)
    lid.apply_translation((0.0, th, -d / 2.0))
    return trimesh.util.concatenate([base, lid])


def make_skateboard() -> trimesh.Trimesh:
    """Skateboard: 80 x 20 cm deck, 1.5 cm thick, on four wheels (5.4 cm)."""
    deck = _box((0.80, 0.015, 0.20), (0.0, 0.075, 0.0))
    parts = [deck]
    for sx in (-1, 1):
        for sz in (-1, 1):
            wheel = creation.cylinder(radius=0.027, height=0.03, sections=16)
            wheel.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2.0, [1.0, 0.0, 0.0]))
            wheel.apply_translation((sx * 0.28, 0.027, sz * 0.08))
            parts.append(wheel)
    return trimesh.util.concatenate(parts)


# label -> (builder, file name). The order is the order of the shipped default library.
SHIPPED: dict[str, tuple[Callable[[], trimesh.Trimesh], str]] = {
    "box": (make_box, "box.ply"),
    "bottle": (make_bottle, "bottle.ply"),
    "mug": (make_mug, "mug.ply"),
    "cup": (make_cup, "cup.ply"),
    "chair": (make_chair, "chair.ply"),
    "ball": (make_ball, "ball.ply"),
    "board": (make_board, "board.ply"),
    "table": (make_table, "table.ply"),
    "bench": (make_bench, "bench.ply"),
    "laptop": (make_laptop, "laptop.ply"),
    "skateboard": (make_skateboard, "skateboard.ply"),
}


def _variant_builders(rng: np.random.Generator) -> dict[str, Callable[[], trimesh.Trimesh]]:
    def u(lo: float, hi: float) -> float:
        return float(rng.uniform(lo, hi))

    return {
        "box": lambda: make_box((u(0.30, 0.50), u(0.22, 0.38), u(0.22, 0.38))),
        "bottle": lambda: make_bottle(u(0.030, 0.040), u(0.20, 0.30), u(0.012, 0.018)),
        "mug": lambda: make_mug(u(0.036, 0.048), u(0.080, 0.110), u(0.022, 0.034)),
        "chair": lambda: make_chair(u(0.42, 0.48), u(0.40, 0.50), u(0.025, 0.045), u(0.82, 1.00)),
        "ball": lambda: make_ball(u(0.09, 0.13)),
        "board": lambda: make_board((u(0.50, 0.75), u(0.015, 0.030), u(0.30, 0.50))),
        "table": lambda: make_table(u(1.00, 1.50), u(0.60, 0.90), u(0.70, 0.80), u(0.04, 0.07)),
    }


VARIANT_CLASSES = ("box", "bottle", "mug", "chair", "ball", "board", "table")


def make_variant(label: str, seed: int) -> trimesh.Trimesh:
    """A new procedural instance of a shipped class, finished like the shipped meshes: the same parts with other
    proportions drawn from ``seed`` (box and board extents, bottle radius/height/neck, mug radius/height/handle,
    chair seat/legs/backrest, ball radius, table size/height/legs; ranges around the shipped sizes)."""
    if label not in VARIANT_CLASSES:
        raise KeyError(f"no procedural variants of {label!r}; known: {', '.join(VARIANT_CLASSES)}")
    rng = np.random.default_rng([seed, VARIANT_CLASSES.index(label)])
    return finish(_variant_builders(rng)[label]())


def finish(mesh: trimesh.Trimesh, edges_per_extent: int = 16) -> trimesh.Trimesh:
    """Subdivide to even vertex spacing, centre the bounding box at the origin, float32-safe."""
    max_edge = float(mesh.extents.max()) / edges_per_extent * 1.5  # revolved parts are already ~1/24
    vertices, faces = remesh.subdivide_to_size(mesh.vertices, mesh.faces, max_edge=max_edge, max_iter=12)
    out = trimesh.Trimesh(vertices=vertices, faces=faces, process=True)
    out.apply_translation(-out.bounds.mean(axis=0))
    return out


def build(label: str) -> trimesh.Trimesh:
    """The finished mesh of one shipped label."""
    if label not in SHIPPED:
        raise KeyError(f"no generator for object {label!r}; known: {sorted(SHIPPED)}")
    return finish(SHIPPED[label][0]())


def write_mesh(mesh: trimesh.Trimesh, path: Path) -> None:
    """Binary PLY written atomically (temp file in the same folder, then rename)."""
    atomic_write_bytes(path, trimesh.exchange.ply.export_ply(mesh, encoding="binary", include_attributes=False))


def main(argv: list[str] | None = None) -> int:
    from interactvlm_ros.objects.library import shipped_dir

    parser = argparse.ArgumentParser(description="Regenerate the shipped CC0 object meshes.")
    parser.add_argument("--out", type=Path, default=shipped_dir(), help="output folder (default: the package's)")
    args = parser.parse_args(argv)
    for label, (_, name) in SHIPPED.items():
        mesh = build(label)
        write_mesh(mesh, args.out / name)
        ext = " x ".join(f"{e * 100:.1f}" for e in mesh.extents)
        print(f"{label:>10}: {len(mesh.vertices):5d} vertices, {len(mesh.faces):5d} faces, {ext} cm -> {name}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
