"""``interactvlm bag IN --out OUT.mcap``: run the contact node over every image of a rosbag2 bag (MCAP or
sqlite3) and write an MCAP bag with the inputs and every output topic (readable by ``ros2 bag``, Foxglove and
rosbags).

Ctrl-C finishes the current frame and writes the bag of the frames done so far (nothing if none); a second
Ctrl-C abandons the run. The output never exists half-written: it is built next to the destination and moved
into place once complete.
"""

from __future__ import annotations

import signal
import sys
import threading


def add_parser(sub, common) -> None:
    p = sub.add_parser("bag", parents=[common], help="process the images of a rosbag2 bag into an MCAP bag")
    p.add_argument("input", metavar="IN", help="rosbag2 bag: a folder (MCAP or sqlite3 storage) or a .mcap file")
    p.add_argument("--out", required=True, metavar="OUT",
                   help="output bag: OUT.mcap = one MCAP file; any other name = a rosbag2 folder")
    p.add_argument("--topic", action="append", default=[], dest="topics", metavar="TOPIC",
                   help="image topic to process (repeatable; default: every sensor_msgs/msg/Image topic whose name "
                        "has no 'depth')")
    p.add_argument("--objects", default="", metavar="A,B",
                   help="comma-separated object names to query (default: the 'objects' parameter)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args) -> int:
    from tqdm import tqdm

    from interactvlm_ros.bag.process import process_bag
    from interactvlm_ros.bag.reader import BagReadError
    from interactvlm_ros.bag.writer import BagWriteError

    stop = threading.Event()
    bar = None

    def on_sigint(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt  # second Ctrl-C: abandon (the partial output is deleted)
        stop.set()
        print("\ninteractvlm bag: interrupted, finishing the current frame and writing the bag "
              "(Ctrl-C again to abandon)", file=sys.stderr)

    def on_start(total: int) -> None:
        nonlocal bar
        bar = tqdm(total=total, unit="img", desc="interactvlm bag", disable=args.no_progress, file=sys.stderr)

    def on_frame(done: int, failed: int) -> None:
        bar.update(1)
        if failed:
            bar.set_postfix(failed=failed)

    objects = [o.strip() for o in args.objects.split(",") if o.strip()]
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        report = process_bag(args.cfg, args.input, args.out, args.topics, objects, args.overwrite,
                             stop=stop, on_frame=on_frame, on_start=on_start)
    except (BagReadError, BagWriteError) as exc:
        print(f"interactvlm bag: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGINT, previous)
        if bar is not None:
            bar.close()
    if report.out is None:
        print("interactvlm bag: interrupted before the first frame; nothing written", file=sys.stderr)
        return 130
    print(f"interactvlm bag: {report.processed}/{report.images} images processed"
          f"{f', {report.failed} failed' if report.failed else ''}, {report.messages} messages -> {report.out} "
          f"({report.seconds:.1f} s){' (interrupted)' if report.interrupted else ''}")
    return 130 if report.interrupted else (1 if report.failed and not report.processed else 0)
