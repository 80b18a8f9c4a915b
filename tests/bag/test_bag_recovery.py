"""Crash safety of ``interactvlm bag``: a run killed with SIGKILL leaves an unfinished run that the next run reports
(never ignores nor deletes), that ``--recover`` turns into a valid bag of every frame completed and that
``--resume`` continues so that the final bag holds every input frame once; a truncated input MCAP has its complete
frames processed. Underneath: the MCAP scanner and writer at every cut of an unfinished file, and the recovery of
an unfinished bag left by an earlier version (rosbags' writer)."""

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from mcap.reader import make_reader
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from ruamel.yaml import YAML
from test_bag import IMAGE_TOPIC, make_input_bag

from interactvlm_ros.bag.mcap_scan import McapScan
from interactvlm_ros.bag.mcap_writer import ChunkedMcapWriter
from interactvlm_ros.bag.recover import recover_bag
from interactvlm_ros.bag.unfinished import UnfinishedRun, claim_unfinished_run
from interactvlm_ros.bag.writer import AtomicBagWriter, BagWriteError
from interactvlm_ros.transport import msgs as wire
from interactvlm_ros.transport.typestore import typestore

CONTACTS = "/interactvlm/contacts"
TOPOLOGY = "/interactvlm/contacts/topology"
# Frames are cheaper without markers and clouds; the outputs that matter here (contacts, topology) remain.
FAST = ["--set", "node.publish_markers=false", "--set", "node.publish_clouds=false", "--objects", "bottle"]


def _read(path: Path) -> dict[str, list[tuple[int, object]]]:
    out: dict[str, list] = {}
    with AnyReader([path]) as reader:
        for conn, t, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t, reader.deserialize(raw, conn.msgtype)))
    return out


def _summary(path: Path):
    mcap = path if path.is_file() else next(path.glob("*.mcap"))
    with open(mcap, "rb") as f:
        return make_reader(f).get_summary()


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "interactvlm_ros", "bag", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def _lines(stderr: str) -> list[str]:
    """stderr lines of ours (progress bars and library warnings left out)."""
    return [line for line in stderr.replace("\r", "\n").splitlines() if line.startswith("interactvlm bag:")]


# --- the MCAP layer, no model ---------------------------------------------------------------------------------------
def _unfinished_bag(path: Path, frames: int) -> list[tuple[str, int, str]]:
    """An unfinished bag (writer closed without commit, as after a kill) of ``frames`` chunks of an /in and an /out
    message each; returns the messages written, in order."""
    w = AtomicBagWriter(path / "out.mcap", workdir=path / "work", chunk_bytes=None)
    topics = {name: w.add_topic(name, "std_msgs/msg/String") for name in ("/in", "/out")}
    written = []
    for i in range(frames):
        for name in ("/in", "/out"):
            text = f"{name} {i} " + "x" * (7 * i)
            w.write(topics[name], 1000 + i, wire.String(data=text).serialize())
            written.append((name, 1000 + i, text))
        w.end_chunk()
    w.close_unfinished()
    return written


def test_scan_and_reopen_survive_any_cut(tmp_path):
    written = _unfinished_bag(tmp_path, 12)
    data = (tmp_path / "work" / "out.mcap").read_bytes()
    whole = ChunkedMcapWriter.reopen(tmp_path / "work" / "out.mcap")
    ends = [c.chunk_start_offset + c.chunk_length + c.message_index_length for c in whole.chunk_indexes]
    whole.close()
    assert len(ends) == 12
    scan = McapScan(tmp_path / "work" / "out.mcap")
    list(scan.units())
    header_end = scan.data_start
    cuts = sorted({*range(0, len(data), 41), *(e + d for e in ends[:-1] for d in (-1, 0, 1)), len(data) - 1,
                   len(data)})
    for cut in cuts:
        path = tmp_path / f"cut{cut}.mcap"
        path.write_bytes(data[:cut])
        frames = sum(e <= cut for e in ends)  # chunks whose record and message indexes are whole
        if cut >= header_end:  # the scanner reads up to the damage and says where
            scan = McapScan(path)
            got = [(m.channel_id, m.log_time) for u in scan.units() for m in getattr(u, "messages", [])]
            assert len(got) >= 2 * frames and scan.damage is not None and scan.damage.offset <= cut, cut
        writer = ChunkedMcapWriter.reopen(path)
        kept = ends[frames - 1] if frames else (header_end if cut >= header_end else 0)
        assert writer.dropped_bytes == cut - kept, cut
        writer.finish()
        msgs = _read(path)
        expect = written[:2 * frames]
        got = sorted((topic, t, m.data) for topic, items in msgs.items() for t, m in items)
        assert got == sorted(expect), cut  # whole frames only: never an /in without its /out
        assert _summary(path).statistics.message_count == len(expect)
        path.unlink()

    # zeros after the last chunk (a power cut on a file system that extended the file) and a damaged last chunk
    path = tmp_path / "zeros.mcap"
    path.write_bytes(data + bytes(4096))
    scan = McapScan(path)
    assert sum(len(u.messages) for u in scan.units()) == 24 and "opcode 0x00" in scan.damage.problem
    flipped = bytearray(data)
    flipped[ends[-2] + 60] ^= 0xFF  # inside the last chunk's content: its CRC no longer matches
    path.write_bytes(bytes(flipped))
    scan = McapScan(path)
    assert sum(len(u.messages) for u in scan.units()) == 22 and scan.damage.offset == ends[-2]
    assert "CRC" in scan.damage.problem or "crc" in scan.damage.problem.lower()


def test_recover_a_bag_left_by_an_earlier_version(tmp_path):
    """The previous writer (rosbags, 1 MiB chunks, no CRC) left ``.OUT.partial-<random>/<stem>/<stem>.mcap``."""
    out = tmp_path / "old.mcap"
    store = typestore()
    w = Writer(tmp_path / ".old.mcap.partial-abc123" / "old", version=9, storage_plugin=StoragePlugin.MCAP)
    w.open()
    conn = w.add_connection("/text", "std_msgs/msg/String", typestore=store)
    for i in range(40):  # ~2.6 MB: two chunks closed, the rest in the open chunk that dies with the process
        w.write(conn, 1000 + i, wire.String(data=f"{i:03d}" + "y" * 65_000).serialize())
    w.storage.bio.flush()
    with open(w.storage.path, "ab") as f:
        f.write(b"\x06" + (500_000).to_bytes(8, "little") + b"torn")  # the start of a chunk that was being written
    found = UnfinishedRun.find(out)
    assert found is not None and found.manifest is None and "earlier version" in found.describe()
    report = recover_bag(out)
    assert report.frames is None and report.images == 0 and report.dropped_bytes == 13
    texts = [m.data[:3] for _t, m in _read(out)["/text"]]
    assert texts == [f"{i:03d}" for i in range(len(texts))] and 20 <= len(texts) < 40
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(BagWriteError, match="no unfinished run"):
        recover_bag(out)


def test_an_unfinished_run_is_reported_never_ignored(tmp_path):
    out = tmp_path / "out.mcap"
    manifest = {"input": "/data/in", "image_topics": [IMAGE_TOPIC], "objects": ["bottle"], "parameters": {"a": 1}}
    notes: list[str] = []
    live = UnfinishedRun.start(out, manifest)
    (live.path / "out.mcap").write_bytes(b"partial")
    with pytest.raises(BagWriteError, match="being written by another interactvlm bag"):
        claim_unfinished_run(out, manifest, resume=True, restart=False, note=notes.append)
    live.release()  # the writing process died
    with pytest.raises(BagWriteError, match=r"has an unfinished run.*--resume.*--recover.*--restart"):
        claim_unfinished_run(out, manifest, resume=False, restart=False, note=notes.append)
    with pytest.raises(BagWriteError, match="cannot resume .*--objects"):
        claim_unfinished_run(out, {**manifest, "objects": ["mug"]}, resume=True, restart=False, note=notes.append)
    with pytest.raises(BagWriteError, match=r"other parameters: a=1 \(now 2\)"):
        claim_unfinished_run(out, {**manifest, "parameters": {"a": 2}}, resume=True, restart=False,
                             note=notes.append)
    assert (live.path / "out.mcap").read_bytes() == b"partial" and not notes  # refusals change nothing
    run, existing = claim_unfinished_run(out, manifest, resume=True, restart=False, note=notes.append)
    assert existing and run.path == live.path
    run.release()
    run, existing = claim_unfinished_run(out, manifest, resume=False, restart=True, note=notes.append)
    assert not existing and not (run.path / "out.mcap").exists()
    assert len(notes) == 1 and notes[0].startswith("discarded the unfinished run") and "0.0 MB" in notes[0]
    run.discard()
    run, existing = claim_unfinished_run(out, manifest, resume=True, restart=False, note=notes.append)
    assert not existing and notes[-1].startswith("no unfinished run")
    run.discard()


# --- the command, on the default model ------------------------------------------------------------------------------
def _run_until(args: list[str], frames: int, total: int) -> tuple[subprocess.Popen, int]:
    """Start ``interactvlm bag`` and return once its progress bar shows ``frames`` images done."""
    proc = subprocess.Popen([sys.executable, "-m", "interactvlm_ros", "bag", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    seen = [b""]

    def watch():
        while chunk := proc.stderr.read1(4096):
            seen[0] += chunk

    threading.Thread(target=watch, daemon=True).start()
    deadline = time.monotonic() + 240
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        # tqdm redraws at most every 0.1 s, so a given count may never be printed: any count >= frames will do
        counts = [int(n) for n in re.findall(rb"(\d+)/%d" % total, seen[0])]
        done = max(counts, default=0)
        if done >= frames:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"finished before it could be killed: {seen[0][-2000:]!r}"
    return proc, done


@pytest.mark.slow
def test_sigkill_then_recover_or_resume(tmp_path):
    src, out = tmp_path / "in", tmp_path / "outbag"  # a bag folder: recovery writes its metadata.yaml too
    total = 300  # far more than it can process before the kill, at any speed
    make_input_bag(src, total, StoragePlugin.MCAP)
    args = [str(src), "--out", str(out), "--flush-every", "5", *FAST]
    proc, seen = _run_until(args, 10, total)
    proc.kill()
    proc.wait(60)
    partial = UnfinishedRun.folder_for(out)
    assert partial.is_dir() and not out.exists()

    # the next run says what it found and what to do, in one line, and touches nothing
    again = _cli(*args)
    assert again.returncode == 2 and "Traceback" not in again.stderr, again.stderr[-3000:]
    (line,) = _lines(again.stderr)
    assert f"{out} has an unfinished run, {partial}" in line and "--resume" in line and "--recover" in line
    shutil.copytree(partial, tmp_path / "kept")

    # --recover: a valid bag of every frame completed before the kill, each with its outputs
    rec = _cli("--recover", str(out))
    assert rec.returncode == 0, rec.stderr[-3000:]
    frames = int(re.search(r"recovered (\d+) frames", rec.stdout).group(1))
    assert seen <= frames < total, (seen, rec.stdout)
    msgs = _read(out)
    images = [t for t, _m in msgs[IMAGE_TOPIC]]
    assert len(images) == frames and sorted(t for t, _m in msgs[CONTACTS]) == images
    info = YAML(typ="safe").load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["message_count"] == sum(len(v) for v in msgs.values()) == _summary(out).statistics.message_count
    assert not partial.exists()

    # --resume from the same unfinished run: the final bag has every input frame exactly once
    shutil.rmtree(out)
    shutil.copytree(tmp_path / "kept", partial)
    res = _cli(*args, "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    assert any(f"resuming the unfinished run {partial}: {frames} frames" in line for line in _lines(res.stderr))
    assert f"{total - frames}/{total} images processed (+{frames} from the resumed run)" in res.stdout
    msgs = _read(out)
    stamps = sorted(t for t, _m in msgs[IMAGE_TOPIC])
    assert len(stamps) == total == len(set(stamps))
    assert sorted(t for t, _m in msgs[CONTACTS]) == stamps
    for topic in ("/camera/color/camera_info", "/camera/depth/image_raw"):
        assert len(msgs[topic]) == total  # every input message copied once
    meshes = Counter(m.mesh_id for _t, m in msgs[TOPOLOGY])
    assert meshes and max(meshes.values()) == 1  # latched meshes not written again by the resumed run
    assert not partial.exists()


@pytest.mark.slow
def test_truncated_input_mcap_has_its_complete_frames_processed(tmp_path):
    make_input_bag(tmp_path / "in", 30, StoragePlugin.MCAP, size=(120, 160))  # ~11 frames per 1 MiB chunk
    original = tmp_path / "in" / "in.mcap"
    chunks = sorted(_summary(original).chunk_indexes, key=lambda c: c.chunk_start_offset)
    assert len(chunks) >= 3
    last = chunks[-1]
    cut = last.chunk_start_offset + last.chunk_length // 2  # a recorder killed while writing its last chunk
    src = tmp_path / "cut.mcap"
    src.write_bytes(original.read_bytes()[:cut])
    end = max(c.message_end_time for c in chunks[:-1])
    with AnyReader([tmp_path / "in"]) as reader:
        expected = [t for c, t, _raw in reader.messages() if c.topic == IMAGE_TOPIC and t <= end]

    res = _cli(str(src), "--out", str(tmp_path / "out.mcap"), "--no-progress", *FAST)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-3000:]
    warning = next(line for line in _lines(res.stderr) if "warning" in line)
    assert f"{src} is damaged at byte {last.chunk_start_offset}" in warning and "truncated" in warning
    assert f"({len(expected)} images)" in warning
    assert f"{len(expected)}/{len(expected)} images processed" in res.stdout and "input damaged" in res.stdout
    msgs = _read(tmp_path / "out.mcap")
    assert [t for t, _m in msgs[IMAGE_TOPIC]] == expected and 0 < len(expected) < 30
    assert sorted(t for t, _m in msgs[CONTACTS]) == expected
