"""``interactvlm bag --recover OUT``: turn what a dead run left in OUT's unfinished-run folder into the bag OUT.

The unfinished bag is cut after its last complete chunk (for a run of this version: its last complete frame),
finalised in place (MCAP summary and footer; ``metadata.yaml`` for a bag folder) and moved to OUT; the folder is
then deleted. Nothing is copied, so recovering a large bag takes one read of it.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from interactvlm_ros.bag.process import OUTPUTS, output_topics
from interactvlm_ros.bag.reader import IMAGE_TYPES
from interactvlm_ros.bag.resume import ResumeState
from interactvlm_ros.bag.unfinished import UnfinishedRun
from interactvlm_ros.bag.writer import AtomicBagWriter, BagTopic, BagWriteError


@dataclass
class RecoverReport:
    """``frames``: images of the run's image topics in the recovered bag (None for a folder of an earlier version,
    whose image topics are unknown: ``images`` counts the messages of every Image topic then)."""

    out: Path
    source: Path
    frames: int | None
    images: int
    messages: int
    dropped_bytes: int


def recover_bag(out: str | os.PathLike, overwrite: bool = False) -> RecoverReport:
    """Recover OUT from its unfinished run (see module doc). :class:`BagWriteError` when there is none, when a live
    process is writing it, when it holds no complete frame, or when OUT exists and not ``overwrite``."""
    out = Path(out).absolute()
    run = UnfinishedRun.find(out)
    if run is None:
        raise BagWriteError(f"no unfinished run to recover for {out} (no {UnfinishedRun.folder_for(out)})")
    run.acquire()
    try:
        mcap = run.mcap_path
        if mcap is None:
            raise BagWriteError(f"{run.path} holds no bag (its run stopped before writing one); delete it, or "
                                f"start again with --restart")
        images: Counter = Counter()
        state = None
        if run.manifest is not None:
            params = run.manifest.get("parameters", {})
            names = output_topics(params)
            state = ResumeState({(names[k], t) for k, (t, _q) in OUTPUTS.items()},
                                set(run.manifest.get("image_topics", [])), names["topology"])

        def count(topic: BagTopic, log_time: int, data: bytes) -> None:
            images[topic.topic] += topic.msgtype in IMAGE_TYPES
            if state is not None:
                state.add(topic, log_time, data)

        writer = AtomicBagWriter.reopen(out, mcap, run.path, overwrite, on_message=count)
        if not writer.messages:
            writer.close_unfinished()
            raise BagWriteError(f"{run.path} holds no complete frame: nothing to recover (delete it, or start "
                                f"again with --restart)")
        path = writer.commit()
        return RecoverReport(path, run.path, state.frames if state is not None else None, sum(images.values()),
                             writer.messages, writer.dropped_bytes)
    finally:
        run.release()
