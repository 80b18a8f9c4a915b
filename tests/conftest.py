"""Shared pytest setup: offline model hubs, the Anny cache outside the clone, and a guard that a run in which
no test passed fails (CI must never go green on an empty or all-skipped run)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANNY_CACHE_DIR", os.path.expanduser("~/.cache/interactvlm/anny"))


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or exitstatus != 0:
        return
    if not reporter.stats.get("passed"):
        session.exitstatus = 5
