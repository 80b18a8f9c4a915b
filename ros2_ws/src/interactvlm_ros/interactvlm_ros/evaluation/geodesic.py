"""Geodesic contact errors (DECO ``det_error_metric``) on any body mesh.

DECO looks up a dense SMPL geodesic matrix ``D``: columns = GT contact vertices (all if none), rows = predicted
vertices (``p >= 0.5``; all if none); ``fp = mean over rows of min over columns`` (the reported "Geo") and
``fn = mean over columns of min over rows``. A dense matrix of a 13,718-vertex Anny body would take 750 MB, so
here a distance to a vertex *set* comes from one multi-source Dijkstra over the mesh's edge graph (edge lengths
in metres; ``scipy.sparse.csgraph``) — the same two numbers, without the matrix. Edge-graph distances slightly
over-estimate true surface geodesics (paths follow edges). A precomputed matrix (e.g. RICH's
``smpl_neutral_geodesic_dist.npy``) can be used instead with :meth:`MeshGeodesic.from_matrix`; its unit must be
stated (:data:`MATRIX_UNITS`; DECO's SMPL matrix is in metres, sha2nkt/deco#1), and every error is reported in cm.
"""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

_CACHE: dict[str, MeshGeodesic] = {}
# unit of a dense geodesic matrix -> factor to cm
MATRIX_UNITS: dict[str, float] = {"m": 100.0, "cm": 1.0}
# the longest geodesic on an adult body (finger tip to toe, around the body), in cm: well inside this range
BODY_GEODESIC_MAX_CM = (50.0, 500.0)


class MeshGeodesic:
    """Distances from vertex sets on one mesh topology; ``scale`` converts the mesh unit to cm (100 for metres)."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, scale: float = 100.0):
        vertices = np.asarray(vertices, dtype=np.float64)
        faces = np.asarray(faces, dtype=np.int64)
        if vertices.ndim != 2 or vertices.shape[1] != 3:
            raise ValueError(f"vertices must be [N,3], got {vertices.shape}")
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"faces must be [F,3], got {faces.shape}")
        if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
            raise ValueError("faces index vertices outside [0, N)")
        self.num_vertices = len(vertices)
        self.scale = float(scale)
        self._vertices = vertices
        self._matrix: np.ndarray | None = None
        edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
        edges = np.unique(np.sort(edges, axis=1), axis=0)
        lengths = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1) * self.scale
        lengths = np.maximum(lengths, 1e-9)  # a zero weight would read as "no edge" in a sparse matrix
        n = self.num_vertices
        self._graph = sp.coo_matrix((lengths, (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()

    @classmethod
    def from_matrix(cls, matrix: np.ndarray, scale: float = 1.0) -> MeshGeodesic:
        """Use a dense ``[N,N]`` geodesic distance matrix (``scale`` converts its unit to cm)."""
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"geodesic matrix must be square [N,N], got {matrix.shape}")
        obj = cls.__new__(cls)
        obj.num_vertices = matrix.shape[0]
        obj.scale = float(scale)
        obj._vertices = None
        obj._graph = None
        obj._matrix = matrix * scale
        return obj

    @classmethod
    def from_matrix_units(cls, matrix: np.ndarray, units: str) -> MeshGeodesic:
        """A dense body matrix in ``units`` (``"m"`` or ``"cm"``); raises if its largest distance is no body's
        size in that unit (a matrix in cm read as metres would make every error 100x too large, and the
        reverse 100x too small)."""
        if units not in MATRIX_UNITS:
            raise ValueError(f"geodesic matrix units must be one of {sorted(MATRIX_UNITS)}, got {units!r}")
        matrix = np.asarray(matrix, dtype=np.float64)
        finite = matrix[np.isfinite(matrix)]
        largest = float(finite.max()) if finite.size else 0.0
        lo, hi = BODY_GEODESIC_MAX_CM
        if not lo <= largest * MATRIX_UNITS[units] <= hi:
            other = [u for u in MATRIX_UNITS if u != units and lo <= largest * MATRIX_UNITS[u] <= hi]
            hint = f"; is it in {other[0]} (--geodesic-units {other[0]})?" if other else ""
            raise ValueError(f"geodesic matrix: largest distance {largest:g} {units} is not a body's size "
                             f"({lo / MATRIX_UNITS[units]:g}-{hi / MATRIX_UNITS[units]:g} {units}){hint}")
        return cls.from_matrix(matrix, MATRIX_UNITS[units])

    @classmethod
    def cached(cls, vertices: np.ndarray, faces: np.ndarray, scale: float = 100.0) -> MeshGeodesic:
        """One instance per (vertices, faces, scale): the edge graph is built once per topology."""
        h = hashlib.sha1()
        h.update(np.ascontiguousarray(vertices, dtype=np.float32).tobytes())
        h.update(np.ascontiguousarray(faces, dtype=np.int64).tobytes())
        h.update(str(scale).encode())
        key = h.hexdigest()
        if key not in _CACHE:
            _CACHE[key] = cls(vertices, faces, scale)
        return _CACHE[key]

    def distance_to_set(self, ids: np.ndarray) -> np.ndarray:
        """Distance (cm) from every vertex to the nearest vertex of ``ids``, ``[N]``."""
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        if len(ids) == 0:
            raise ValueError("distance to an empty vertex set is undefined")
        if self._matrix is not None:
            return self._matrix[:, ids].min(axis=1)
        dist = dijkstra(self._graph, directed=False, indices=ids, min_only=True)
        unreachable = ~np.isfinite(dist)
        if unreachable.any():  # a separate mesh component: fall back to the straight-line distance
            tree = cKDTree(self._vertices[ids])
            d, _ = tree.query(self._vertices[unreachable])
            dist[unreachable] = d * self.scale
        return dist

    def errors(self, pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """DECO geodesic errors for binary ``pred`` and ``gt`` ``[S,N]`` (or ``[N]``): ``(fp_cm [S], fn_cm [S])``."""
        pred = np.atleast_2d(np.asarray(pred, dtype=bool))
        gt = np.atleast_2d(np.asarray(gt, dtype=bool))
        if pred.shape != gt.shape or pred.shape[1] != self.num_vertices:
            raise ValueError(f"pred {pred.shape} and gt {gt.shape} must both be [S,{self.num_vertices}]")
        fp = np.zeros(len(pred))
        fn = np.zeros(len(pred))
        for i in range(len(pred)):
            rows = np.flatnonzero(pred[i]) if pred[i].any() else np.arange(self.num_vertices)
            cols = np.flatnonzero(gt[i]) if gt[i].any() else np.arange(self.num_vertices)
            # fp: each row's nearest column; all columns = every vertex → distance 0.
            fp[i] = 0.0 if len(cols) == self.num_vertices else self.distance_to_set(cols)[rows].mean()
            fn[i] = 0.0 if len(rows) == self.num_vertices else self.distance_to_set(rows)[cols].mean()
        return fp, fn


def geodesic_errors(pred, gt, vertices: np.ndarray, faces: np.ndarray, threshold: float = 0.5,
                    scale: float = 100.0) -> tuple[float, float]:
    """Mean DECO geodesic errors (cm) of probabilities ``pred`` vs labels ``gt`` ``[S,N]`` on a mesh in metres."""
    geo = MeshGeodesic.cached(vertices, faces, scale)
    fp, fn = geo.errors(np.asarray(pred) >= threshold, np.asarray(gt) > 0)
    return float(fp.mean()), float(fn.mean())
