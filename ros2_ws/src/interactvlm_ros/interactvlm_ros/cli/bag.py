"""``interactvlm bag IN --out OUT.mcap``: run the contact node over every image of a rosbag2 bag (MCAP or
sqlite3) and write an MCAP bag with the inputs and every output topic (readable by ``ros2 bag``, Foxglove and
rosbags).

Ctrl-C finishes the current frame and writes the bag of the frames done so far (nothing if none); a second
Ctrl-C abandons the run. The output never exists half-written: it is built in the hidden folder
``.OUT.partial`` next to it and moved into place once complete. Each frame is handed to the OS as soon as it is
done and the bag is fsynced every ``--flush-every`` frames / ``--flush-seconds`` seconds, so after a kill or a
power cut ``--resume`` continues the run where it stopped and ``interactvlm bag --recover OUT`` turns what was
done into OUT. A damaged or truncated input MCAP is read up to the damage, with a warning.
"""

from __future__ import annotations

import signal
import sys
import threading


def add_parser(sub, common) -> None:
    p = sub.add_parser("bag", parents=[common], help="process the images of a rosbag2 bag into an MCAP bag")
    p.add_argument("input", metavar="IN", nargs="?",
                   help="rosbag2 bag: a folder (MCAP or sqlite3 storage) or a .mcap file")
    p.add_argument("--out", metavar="OUT",
                   help="output bag: OUT.mcap = one MCAP file; any other name = a rosbag2 folder")
    p.add_argument("--topic", action="append", default=[], dest="topics", metavar="TOPIC",
                   help="image topic to process, sensor_msgs/msg/Image or CompressedImage (repeatable; default: "
                        "every image topic whose name has no 'depth', a <topic>/compressed only when <topic> is not "
                        "in the bag)")
    p.add_argument("--objects", default="", metavar="A,B",
                   help="comma-separated object names to query (default: the 'objects' parameter)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    unfinished = p.add_mutually_exclusive_group()
    unfinished.add_argument("--resume", action="store_true",
                            help="continue the unfinished run of OUT (left by a killed or crashed run) instead of "
                                 "starting over: the frames it holds are kept and skipped; starts from the first "
                                 "frame when there is none")
    unfinished.add_argument("--restart", action="store_true",
                            help="discard the unfinished run of OUT, if any, and start from the first frame")
    unfinished.add_argument("--recover", metavar="OUT", dest="recover",
                            help="do not process: turn the unfinished run of OUT into the bag OUT, with every frame "
                                 "it completed (IN and --out are not used)")
    p.add_argument("--flush-every", type=int, default=10, metavar="N",
                   help="fsync the output bag every N frames (default 10; 0 = only by time): a power cut loses at "
                        "most the frames since (a killed process loses only the frame in flight)")
    p.add_argument("--flush-seconds", type=float, default=30.0, metavar="S",
                   help="fsync the output bag at the first frame end after S seconds (default 30; 0 = only by "
                        "frames)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def _say(line: str) -> None:
    print(f"interactvlm bag: {line}", file=sys.stderr, flush=True)


def run(args) -> int:
    from interactvlm_ros.bag.reader import BagReadError
    from interactvlm_ros.bag.writer import BagWriteError

    try:
        if args.recover:
            return _recover(args)
        if not args.input or not args.out:
            _say("IN and --out OUT are required (or --recover OUT)")
            return 2
        if args.flush_every < 0 or args.flush_seconds < 0:
            _say("--flush-every and --flush-seconds must be >= 0")
            return 2
        return _process(args)
    except (BagReadError, BagWriteError) as exc:
        _say(str(exc))
        return 2
    except OSError as exc:
        _say(f"{exc.filename or 'I/O error'}: {exc.strerror or exc}")
        return 2


def _recover(args) -> int:
    from interactvlm_ros.bag.recover import recover_bag

    report = recover_bag(args.recover, overwrite=args.overwrite)
    what = (f"{report.frames} frames" if report.frames is not None
            else f"{report.images} images (a run of an earlier version: its last frame may lack outputs)")
    dropped = (f"; {report.dropped_bytes} bytes of an unfinished frame after them dropped" if report.dropped_bytes
               else "")
    print(f"interactvlm bag: recovered {what}, {report.messages} messages from {report.source} -> {report.out}"
          f"{dropped}")
    return 0


def _process(args) -> int:
    from tqdm import tqdm

    from interactvlm_ros.bag.process import FlushPolicy, process_bag

    stop = threading.Event()
    bar = None

    def on_sigint(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt  # second Ctrl-C: abandon (what this run wrote is deleted)
        stop.set()
        print("\ninteractvlm bag: interrupted, finishing the current frame and writing the bag (Ctrl-C again to "
              "abandon)", file=sys.stderr, flush=True)

    def on_start(total: int, done: int) -> None:
        nonlocal bar
        bar = tqdm(total=total, initial=done, unit="img", desc="interactvlm bag", disable=args.no_progress,
                   file=sys.stderr)

    def on_frame(done: int, failed: int) -> None:
        bar.update(1)
        if failed:
            bar.set_postfix(failed=failed)

    def on_note(line: str) -> None:
        if bar is not None:
            bar.write(f"interactvlm bag: {line}", file=sys.stderr)
        else:
            _say(line)

    objects = [o.strip() for o in args.objects.split(",") if o.strip()]
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        report = process_bag(args.cfg, args.input, args.out, args.topics, objects, args.overwrite,
                             stop=stop, on_frame=on_frame, on_start=on_start, resume=args.resume,
                             restart=args.restart, flush=FlushPolicy(args.flush_every, args.flush_seconds),
                             on_note=on_note)
    finally:
        signal.signal(signal.SIGINT, previous)
        if bar is not None:
            bar.close()
    if report.out is None:
        _say("interrupted before the first frame; nothing written")
        return 130
    resumed = f" (+{report.resumed} from the resumed run)" if report.resumed else ""
    damaged = " (input damaged: read up to the damage)" if report.input_problems else ""
    print(f"interactvlm bag: {report.processed}/{report.images} images processed{resumed}"
          f"{f', {report.failed} failed' if report.failed else ''}, {report.messages} messages -> {report.out} "
          f"({report.seconds:.1f} s){' (interrupted)' if report.interrupted else ''}{damaged}")
    done = report.processed + report.resumed
    return 130 if report.interrupted else (1 if report.failed and not done else 0)
