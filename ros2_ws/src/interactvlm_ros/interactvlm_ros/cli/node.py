"""``interactvlm node``: run the contact node on the rclpy transport (a ROS 2 install) or on bare DDS.

``--transport auto`` (default: the ``transport`` parameter) picks rclpy when it is importable, else dds. Both
read the same parameter file; the dds transport needs no ROS install and is seen by ROS 2 as ordinary topics.
"""

from __future__ import annotations

import importlib.util
import logging
import signal
import sys
import threading


def add_parser(sub, common) -> None:
    p = sub.add_parser("node", parents=[common], help="run the ROS 2 contact node (rclpy or bare DDS transport)")
    p.add_argument("--transport", choices=("auto", "rclpy", "dds"), default=None,
                   help="message transport (default: the 'transport' parameter; auto = rclpy when importable)")
    p.add_argument("--duration", type=float, default=0.0, metavar="S",
                   help="stop after S seconds (0 = run until Ctrl-C / SIGTERM)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(run=run)


def rclpy_available() -> bool:
    return importlib.util.find_spec("rclpy") is not None


def choose_transport(requested: str) -> str:
    """``auto`` -> rclpy when importable, else dds; an explicit rclpy without rclpy is an error."""
    if requested == "auto":
        return "rclpy" if rclpy_available() else "dds"
    if requested == "rclpy" and not rclpy_available():
        raise SystemExit("interactvlm node: --transport rclpy needs a sourced ROS 2 install (rclpy is not "
                         "importable); use --transport dds to run without ROS")
    return requested


def run(args) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="[%(levelname)s] [%(name)s]: %(message)s")
    cfg = args.cfg
    transport = choose_transport(args.transport or cfg.transport)
    if transport == "rclpy":
        from interactvlm_ros.transport.rclpy_node import main as rclpy_main

        ros_args = ["--ros-args"]
        if cfg.source:
            ros_args += ["--params-file", cfg.source]
        for item in args.overrides:
            key, value = item.split("=", 1)
            ros_args += ["-p", f"{key.strip()}:={value}"]
        return rclpy_main(["interactvlm_node", *ros_args], duration=args.duration)
    return run_dds(cfg, args.duration)


def run_dds(cfg, duration: float = 0.0) -> int:
    """Load the model, open the DDS transport, serve until a signal or ``duration`` seconds."""
    from interactvlm_ros.node.components import NodeComponents
    from interactvlm_ros.transport.dds import DdsTransport

    log = logging.getLogger("interactvlm.node")
    parts = NodeComponents.from_config(cfg)
    transport = DdsTransport(cfg).open()
    node = parts.build_node(cfg, transport)
    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("signal %d: shutting down", signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        transport.attach(node)  # readers first: whoever sees the latched topology can publish at once
        node.start()
        log.info("interactvlm node (dds transport, domain %d): %s -> %s", transport.participant.domain,
                 transport.names["image"], transport.names["contacts"])
        sys.stdout.flush()
        stop.wait(duration if duration > 0 else None)
    finally:
        transport.detach()
        node.stop()
        transport.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


def ros_node_main() -> int:
    """Console script ``interactvlm_node`` (what ``ros2 run interactvlm_ros interactvlm_node`` starts)."""
    if not rclpy_available():
        print("interactvlm_node: rclpy is not importable; source a ROS 2 install (source /opt/ros/jazzy/setup.bash"
              " && source install/setup.bash) or run `interactvlm node --transport dds`", file=sys.stderr)
        return 2
    from interactvlm_ros.transport.rclpy_node import main

    return main()
