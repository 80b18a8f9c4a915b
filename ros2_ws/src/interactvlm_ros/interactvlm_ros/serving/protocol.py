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
meta          BYTES   [B, 1]          JSON: body_model, num_body_vertices, model_hash, input_size,
                                      timings_ms, batch_size and per contact label/text/reason/query/
                                      name_match; ``error`` (and nothing else) for a request the model
                                      refused (unusable object names)
============  ======  ==============  ==================================================================

The image may be the full camera frame or, once the client knows the model's input size ``S`` (``input_size``
in every answer), the square the model reads of it (:func:`model_input_image`, ``[S, S, 3]``): the same contacts
for ~1/18 of the bytes of a 640×480 frame, and every camera's requests have one shape (batched together).

Object contact (model ``interactvlm_objects``, not batched: one frame's meshes per request). The meshes travel
once: the server keeps them by content key (:func:`mesh_key`) and answers ``missing`` keys it has not got yet; the
client then sends each with the model ``interactvlm_mesh`` (``mesh_key`` BYTES [1], ``vertices`` FP32 [N,3],
``faces`` INT64 [F,3]) and asks again. Their renders and SAM embeddings are the server predictor's caches.

============  ======  ==============  ==================================================================
tensor        type    shape           meaning
============  ======  ==============  ==================================================================
image         UINT8   [H, W, 3]       RGB image (the server reuses the encoding of the frame's human
                                      request when it still holds it)
objects       BYTES   [K]             object names, one per mesh
mesh_keys     BYTES   [K]             :func:`mesh_key` of each mesh
mesh_ids      BYTES   [K]             the ``object_mesh_id`` each answer carries ("" = content hash)
object_probs  FP32    [K, Nmax]       per-vertex object contact, padded to the largest mesh
found         BOOL    [K]             whether the contact token was answered
meta          BYTES   [1]             JSON as above, per contact also object_mesh_id and num_vertices;
                                      ``missing``: mesh keys to send first
============  ======  ==============  ==================================================================
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
from PIL import Image

from interactvlm_ros.pipeline.result import ContactResult, ObjectContact

MODEL_NAME = "interactvlm"
OBJECTS_MODEL_NAME = "interactvlm_objects"
MESH_MODEL_NAME = "interactvlm_mesh"
CONTACT_FIELDS = ("label", "text", "reason", "query", "name_match")


def model_input_image(rgb: np.ndarray, size: int) -> np.ndarray:
    """The square of a uint8 ``[H,W,3]`` image the model reads, uint8 ``[size,size,3]``: the geometry of
    ``model.vision.ClipImageProcessor`` (short side to ``size`` with PIL bicubic, long side ``int(size·long/short)``,
    box-reduced first when the short side exceeds 8·size; centre crop), without its normalisation.

    The processor leaves such an image as it is (PIL returns a resize to the same size as a copy, the crop is
    the whole image), so the server reads exactly the pixels it would have cut from the full frame
    (``tests/serving/test_model_input.py`` checks it bit for bit). Pure PIL/numpy: a client needs no torch."""
    h, w = rgb.shape[:2]
    if w <= h:
        nw, nh = size, int(size * h / w)
    else:
        nh, nw = size, int(size * w / h)
    img = Image.fromarray(rgb)
    if min(h, w) > 8 * size:
        img = img.reduce(int(min(h, w) // (4 * size)))
    img = img.resize((nw, nh), Image.BICUBIC)
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.ascontiguousarray(np.asarray(img)[top:top + size, left:left + size])


class RequestRefused(ValueError):
    """The served model refused a request (what a local predictor raises as ``ValueError``); the server is fine."""


def encode_error(text: str, model_hash: str) -> tuple[np.ndarray, np.ndarray, bytes]:
    """A request the model refused (``ValueError``: e.g. an object name with nothing usable left): empty
    outputs and the message; the client raises :class:`RequestRefused` (a ``ValueError``) with it, as a local
    predictor raises ``ValueError``."""
    meta = {"error": text, "model_hash": model_hash}
    return np.zeros((0, 1), np.float32), np.zeros(0, bool), json.dumps(meta).encode()


def encode_result(result: ContactResult, model_hash: str, input_size: int = 0,
                  batch_size: int = 1) -> tuple[np.ndarray, np.ndarray, bytes]:
    """``(human_probs [K,Nb] float32, found [K] bool, meta JSON bytes)`` of one result; ``input_size``: the
    model's square input side (clients may send :func:`model_input_image`), ``batch_size``: requests computed
    together with this one (its ``timings_ms`` are its share)."""
    nb = int(result.num_body_vertices)
    probs = np.zeros((len(result.contacts), nb), np.float32)
    found = np.zeros(len(result.contacts), bool)
    for i, c in enumerate(result.contacts):
        if c.found and c.human_probs is not None:
            probs[i] = np.asarray(c.human_probs, np.float32)
            found[i] = True
    meta = {"body_model": result.body_model, "num_body_vertices": nb, "model_hash": model_hash,
            "input_size": int(input_size), "batch_size": int(batch_size),
            "timings_ms": {k: float(v) for k, v in result.timings_ms.items()},
            "contacts": [{f: getattr(c, f) for f in CONTACT_FIELDS} for c in result.contacts]}
    return probs, found, json.dumps(meta).encode()


def decode_result(probs: np.ndarray, found: np.ndarray, meta: bytes) -> tuple[ContactResult, str, int]:
    """The :class:`ContactResult` a server answered, the server's model hash and its model input size (0 when
    the server did not say).

    Raises:
        RequestRefused: the model refused the request (its message, as a local predictor raises it).
    """
    info = json.loads(bytes(meta).decode())
    if "error" in info:
        raise RequestRefused(str(info["error"]))
    contacts = []
    for i, fields in enumerate(info["contacts"]):
        ok = bool(found[i])
        contacts.append(ObjectContact(found=ok, human_probs=np.array(probs[i], np.float32) if ok else None,
                                      **{f: str(fields.get(f, "")) for f in CONTACT_FIELDS}))
    result = ContactResult(str(info["body_model"]), int(info["num_body_vertices"]), contacts,
                           {k: float(v) for k, v in info["timings_ms"].items()})
    return result, str(info.get("model_hash", "")), int(info.get("input_size", 0))


def mesh_arrays(vertices, faces) -> tuple[np.ndarray, np.ndarray]:
    """The mesh as it travels: float32 ``[N,3]`` vertices, int64 ``[F,3]`` faces, C-contiguous."""
    return (np.ascontiguousarray(np.asarray(vertices, np.float32).reshape(-1, 3)),
            np.ascontiguousarray(np.asarray(faces, np.int64).reshape(-1, 3)))


def mesh_key(vertices, faces) -> str:
    """Content key of a mesh (both sides compute it; the server checks an uploaded mesh against it)."""
    v, f = mesh_arrays(vertices, faces)
    return hashlib.blake2b(v.tobytes() + b"|" + f.tobytes(), digest_size=16).hexdigest()


def encode_objects(result: ContactResult, model_hash: str, input_size: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, bytes]:
    """``(object_probs [K,Nmax] float32, found [K] bool, meta JSON bytes)`` of a ``predict_objects`` result
    (``input_size`` as in :func:`encode_result`)."""
    sizes = [len(c.object_probs) if c.found and c.object_probs is not None else 0 for c in result.contacts]
    probs = np.zeros((len(result.contacts), max([1, *sizes])), np.float32)
    found = np.zeros(len(result.contacts), bool)
    for i, c in enumerate(result.contacts):
        found[i] = bool(c.found)
        if sizes[i]:
            probs[i, :sizes[i]] = np.asarray(c.object_probs, np.float32)
    meta = {"body_model": result.body_model, "num_body_vertices": int(result.num_body_vertices),
            "model_hash": model_hash, "input_size": int(input_size),
            "timings_ms": {k: float(v) for k, v in result.timings_ms.items()},
            "contacts": [{**{f: getattr(c, f) for f in CONTACT_FIELDS}, "object_mesh_id": c.object_mesh_id,
                          "num_vertices": n} for c, n in zip(result.contacts, sizes, strict=True)]}
    return probs, found, json.dumps(meta).encode()


def decode_objects(probs: np.ndarray, found: np.ndarray, meta: bytes
                   ) -> tuple[ContactResult, str, list[str], int]:
    """The object-contact :class:`ContactResult`, the server's model hash, the mesh keys it still needs and its
    model input size (0: not said).

    Raises:
        RequestRefused: as :func:`decode_result`.
    """
    info = json.loads(bytes(meta).decode())
    if "error" in info:
        raise RequestRefused(str(info["error"]))
    missing = [str(k) for k in info.get("missing", [])]
    size = int(info.get("input_size", 0))
    if missing:
        return ContactResult("", 0, []), str(info.get("model_hash", "")), missing, size
    contacts = []
    for i, fields in enumerate(info["contacts"]):
        n = int(fields.get("num_vertices", 0))
        ok = bool(found[i]) and n > 0
        contacts.append(ObjectContact(found=bool(found[i]),
                                      object_probs=np.array(probs[i, :n], np.float32) if ok else None,
                                      object_mesh_id=str(fields.get("object_mesh_id", "")),
                                      **{f: str(fields.get(f, "")) for f in CONTACT_FIELDS}))
    result = ContactResult(str(info["body_model"]), int(info["num_body_vertices"]), contacts,
                           {k: float(v) for k, v in info["timings_ms"].items()})
    return result, str(info.get("model_hash", "")), [], size
