"""The node under demonstration: ``interactvlm node --transport dds`` in its own process, as a robot runs it.

Its parameters are the demo's configuration written to a ROS 2 parameter file next to the outputs; Cyclone is
pinned to loopback (:func:`~interactvlm_ros.transport.dds_config.loopback_env`) on a private domain id, so the
demo never talks to other machines or other ROS graphs. Its log goes to a file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from interactvlm_ros.transport.dds_config import loopback_env


class NodeProcess:
    """Start with :meth:`start`, check :meth:`alive`, read :meth:`log_tail`, stop with :meth:`stop`."""

    def __init__(self, params_file: Path, log_file: Path, domain: int) -> None:
        self.params_file = Path(params_file)
        self.log_file = Path(log_file)
        self.domain = int(domain)
        self.proc: subprocess.Popen | None = None

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "interactvlm_ros", "node", "--transport", "dds", "--config",
                str(self.params_file), "--log-level", "info"]

    def start(self) -> NodeProcess:
        env = loopback_env(domain_id=self.domain)
        env.setdefault("PYTHONUNBUFFERED", "1")
        with open(self.log_file, "wb") as log:
            self.proc = subprocess.Popen(self.command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return text[-chars:]

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGINT (the node finishes its frame and closes its DDS entities), then SIGKILL after ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT if os.name == "posix" else signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode
