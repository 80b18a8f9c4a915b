"""Stable person ids across frames: match detections to tracks before fitting (2D), verify after (3D).

Before the fit, each detection is matched to a track by the distance between keypoint centroids normalised by
the box size (Hungarian assignment); a matched track's last fit warm-starts the body fit. After the fit, a
match is kept only if the pelvis moved less than ``max_distance_m``; otherwise the person gets a new id.
Tracks unseen for ``max_missed`` frames are dropped. Ids are never reused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from interactvlm_ros.recon.body_fit import BodyFit
from interactvlm_ros.recon.keypoints import PersonKeypoints


@dataclass
class Track:
    id: int
    centre_2d: np.ndarray
    size_2d: float
    fit: BodyFit
    pelvis: np.ndarray
    missed: int = 0


class PersonTracker:
    """``assign(people) -> [track or None]`` before fitting; ``update(people, fits, matches) -> ids`` after."""

    def __init__(self, max_distance_m: float = 0.5, max_missed: int = 10, max_2d_distance: float = 0.5):
        self.max_distance_m = float(max_distance_m)
        self.max_missed = int(max_missed)
        self.max_2d_distance = float(max_2d_distance)
        self.tracks: list[Track] = []
        self._next_id = 0

    def reset(self) -> None:
        self.tracks.clear()

    @staticmethod
    def _centre_size(person: PersonKeypoints) -> tuple[np.ndarray, float]:
        box = person.bbox()
        return (box[:2] + box[2:]) / 2.0, float(max(np.hypot(*(box[2:] - box[:2])), 1.0))

    def assign(self, people: list[PersonKeypoints]) -> list[Track | None]:
        """The track each detection continues (None = new person)."""
        if not self.tracks or not people:
            return [None] * len(people)
        cost = np.zeros((len(people), len(self.tracks)))
        for i, p in enumerate(people):
            c, s = self._centre_size(p)
            for j, t in enumerate(self.tracks):
                cost[i, j] = np.linalg.norm(c - t.centre_2d) / max(s, t.size_2d)
        rows, cols = linear_sum_assignment(cost)
        out: list[Track | None] = [None] * len(people)
        for i, j in zip(rows, cols, strict=True):
            if cost[i, j] <= self.max_2d_distance:
                out[i] = self.tracks[j]
        return out

    def update(self, people: list[PersonKeypoints], fits: list[BodyFit], pelvises: list[np.ndarray],
               matches: list[Track | None]) -> list[int]:
        """Record this frame's fits; returns each person's id."""
        ids: list[int] = []
        seen: set[int] = set()
        for person, fit, pelvis, track in zip(people, fits, pelvises, matches, strict=True):
            c, s = self._centre_size(person)
            if track is not None and np.linalg.norm(pelvis - track.pelvis) <= self.max_distance_m \
                    and track.id not in seen:
                track.centre_2d, track.size_2d, track.fit, track.pelvis, track.missed = c, s, fit, pelvis, 0
            else:
                track = Track(self._next_id, c, s, fit, pelvis)
                self._next_id += 1
                self.tracks.append(track)
            seen.add(track.id)
            ids.append(track.id)
        for t in self.tracks:
            if t.id not in seen:
                t.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return ids
