"""The served model's tensors and the ContactResult codec shared by :mod:`.server` and :mod:`.client`.

One request = one image and its object names (Triton batch dimension first; the server's dynamic batcher
stacks requests of equal image size and name count):

============  ======  ==============  ==================================================================
tensor        type    shape           meaning
============  ======  ==============  ==================================================================
image         UINT8   [B, H, W, 3]    RGB image
objects       BYTES   [B, K]          object names (UTF-8)
human_probs   FP32    [B, K, Nb]      per-vertex human contact probability (zeros where not found)
found         BOOL    [B, K]          whether the contact token was answered
meta          BYTES   [B, 1]          JSON: body_model, num_body_vertices, model_hash, timings_ms and per
                                      contact label/text/reason/query/name_match
============  ======  ==============  ==================================================================
"""

from __future__ import annotations

import json

import numpy as np

from interactvlm_ros.pipeline.result import ContactResult, ObjectContact

MODEL_NAME = "interactvlm"
CONTACT_FIELDS = ("label", "text", "reason", "query", "name_match")


def encode_result(result: ContactResult, model_hash: str) -> tuple[np.ndarray, np.ndarray, bytes]:
    """``(human_probs [K,Nb] float32, found [K] bool, meta JSON bytes)`` of one result."""
    nb = int(result.num_body_vertices)
    probs = np.zeros((len(result.contacts), nb), np.float32)
    found = np.zeros(len(result.contacts), bool)
    for i, c in enumerate(result.contacts):
        if c.found and c.human_probs is not None:
            probs[i] = np.asarray(c.human_probs, np.float32)
            found[i] = True
    meta = {"body_model": result.body_model, "num_body_vertices": nb, "model_hash": model_hash,
            "timings_ms": {k: float(v) for k, v in result.timings_ms.items()},
            "contacts": [{f: getattr(c, f) for f in CONTACT_FIELDS} for c in result.contacts]}
    return probs, found, json.dumps(meta).encode()


def decode_result(probs: np.ndarray, found: np.ndarray, meta: bytes) -> tuple[ContactResult, str]:
    """The :class:`ContactResult` a server answered and the server's model hash."""
    info = json.loads(bytes(meta).decode())
    contacts = []
    for i, fields in enumerate(info["contacts"]):
        ok = bool(found[i])
        contacts.append(ObjectContact(found=ok, human_probs=np.array(probs[i], np.float32) if ok else None,
                                      **{f: str(fields.get(f, "")) for f in CONTACT_FIELDS}))
    result = ContactResult(str(info["body_model"]), int(info["num_body_vertices"]), contacts,
                           {k: float(v) for k, v in info["timings_ms"].items()})
    return result, str(info.get("model_hash", ""))
