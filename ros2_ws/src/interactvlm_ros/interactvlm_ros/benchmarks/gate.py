"""``interactvlm bench gate --json``: what the person gate (``contact.person_gate``) costs per frame, on real photos.

Each photo goes through the one :class:`~interactvlm_ros.pipeline.contact_pipeline.ContactPipeline` with the gate
``required`` and, as the baseline in the same process, with the gate ``disabled`` (the model alone), interleaved
frame by frame. Photos (the labelled real photos of ``eval --real``, queried with their labelled object):

- ``astronaut`` (scikit-image): a person the pose detector finds; the hand detectors never run;
- ``coffee`` (scikit-image): nobody; pose and palm detectors both run and find nothing;
- ``board_seen`` / ``board_hidden`` (OpenCV's calibration frames ``board_right03`` / ``board_left05`` from
  opencv-doc, fetched into the cache like ``eval --real``'s; null with ``board_skipped`` saying why when they
  cannot be fetched): nobody for the pose detector, a ``board`` query, so the gate also looks for a chessboard
  and for hands along its outline (:mod:`interactvlm_ros.recon.board_hands`); the holding hand is seen in the
  first and hidden behind the board in the second.

Keys (a contract): ``<photo>_ms_p50`` (the pipeline with the gate), ``<photo>_model_ms_p50`` (gate disabled),
``<photo>_gate_ratio`` (their ratio), ``<photo>_person`` (the gate's reason on the last frame), ``frames`` (per
photo and setting), ``model``.
"""

from __future__ import annotations

import time

import numpy as np
from tqdm import tqdm

PHOTOS = {"astronaut": "astronaut", "coffee": "coffee", "board_seen": "board_right03",
          "board_hidden": "board_left05"}


def _photos() -> tuple[dict[str, tuple[np.ndarray, str]], str]:
    """``{key: (rgb, object)}`` for :data:`PHOTOS` that could be loaded, and why any were left out ("" if none)."""
    from PIL import Image

    from interactvlm_ros.evaluation.photo_sources import labelled_photo_files
    from interactvlm_ros.evaluation.real_photos import load_real_labels, shipped_labels_path

    labels = load_real_labels(shipped_labels_path())
    objects = {p.id: p.object for p in labels.images}
    files, skipped = labelled_photo_files(PHOTOS.values(), labels)
    out = {}
    for key, photo_id in PHOTOS.items():
        if photo_id in files:
            with Image.open(files[photo_id]) as im:
                out[key] = (np.ascontiguousarray(np.asarray(im.convert("RGB"))), objects[photo_id])
    return out, skipped


def run(cfg, args) -> dict:
    from interactvlm_ros.model import ContactPredictor
    from interactvlm_ros.pipeline.contact_pipeline import ContactPipeline
    from interactvlm_ros.pipeline.person_gate import PersonGate

    n = 3 if getattr(args, "quick", False) else 10
    predictor = ContactPredictor.from_config(cfg)
    gated = ContactPipeline(predictor, object_contact=bool(cfg.node.object_contact),
                            person_gate=PersonGate.from_config(cfg.replace(contact__person_gate="required")))
    alone = ContactPipeline(predictor, object_contact=bool(cfg.node.object_contact))
    photos, skipped = _photos()
    out: dict = {"frames": n, "model": str(cfg.model.name), "board_skipped": skipped or None}
    try:
        for rgb, obj in photos.values():  # one warm-up each (worker start, engines, caches)
            gated.run(rgb, [obj])
            alone.run(rgb, [obj])
        for key in PHOTOS:
            if key not in photos:
                out.update({f"{key}_ms_p50": None, f"{key}_model_ms_p50": None, f"{key}_gate_ratio": None,
                            f"{key}_person": None})
                continue
            rgb, obj = photos[key]
            with_gate, without = [], []
            for _ in tqdm(range(n), desc=f"bench gate {key}", unit="frame", leave=False):
                t0 = time.perf_counter()
                res = gated.run(rgb, [obj])
                with_gate.append((time.perf_counter() - t0) * 1000.0)
                t0 = time.perf_counter()
                alone.run(rgb, [obj])
                without.append((time.perf_counter() - t0) * 1000.0)
            a, b = float(np.median(with_gate)), float(np.median(without))
            out.update({f"{key}_ms_p50": round(a, 2), f"{key}_model_ms_p50": round(b, 2),
                        f"{key}_gate_ratio": round(a / b, 3), f"{key}_person": res.person.describe()})
    finally:
        gated.close()
    return out
