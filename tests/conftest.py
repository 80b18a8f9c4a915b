"""Shared pytest setup: offline model hubs, the Anny cache outside the clone, a guard that a run in which
no test passed fails (CI must never go green on an empty or all-skipped run), and the fixtures several test
modules share: ``one_torch_thread`` (use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``),
``anny_body``, ``tiny_model`` (module-scoped: each module gets its own instance) and ``write_synthetic_dataset``
(a function that writes a small generator dataset)."""

import atexit
import os
import shutil
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANNY_CACHE_DIR", os.path.expanduser("~/.cache/interactvlm/anny"))
# Engines built by tests (random weights: a new model hash per test model) go to a throw-away folder, not to the
# repository's engines/ cache; subprocesses inherit it.
if "INTERACTVLM_ENGINES_DIR" not in os.environ:
    os.environ["INTERACTVLM_ENGINES_DIR"] = tempfile.mkdtemp(prefix="interactvlm-test-engines-")
    atexit.register(shutil.rmtree, os.environ["INTERACTVLM_ENGINES_DIR"], True)


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or exitstatus != 0:
        return
    if not reporter.stats.get("passed"):
        session.exitstatus = 5


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on a small shared CPU: one intra-op thread avoids OpenMP spin-waiting (restored afterwards)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def anny_body():
    """The real Anny body model (cached under ``ANNY_CACHE_DIR``)."""
    from interactvlm_ros.body import load_body_model

    return load_body_model("anny")


@pytest.fixture(scope="module")
def tiny_model():
    """The tiny preset loaded on the CPU in fp32 (``LoadedModel``: model + tokenizer)."""
    from interactvlm_ros.model.checkpoint import load_model

    return load_model("tiny", device="cpu", precision="fp32")


@pytest.fixture(scope="session")
def write_synthetic_dataset():
    """``write(root, num, seed)``: a ``num``-sample synthetic dataset (64 px images and masks) in ``root/ds``,
    renders cached in ``root/renders``; returns ``root``."""
    import torch

    from interactvlm_ros.body import load_body_model
    from interactvlm_ros.data import SynthConfig, SyntheticGenerator
    from interactvlm_ros.objects import ObjectLibrary

    def write(root, num: int, seed: int):
        torch.set_num_threads(1)
        gen = SyntheticGenerator(load_body_model("anny"), ObjectLibrary.shipped(),
                                 SynthConfig(num=num, seed=seed, image_size=64, mask_size=64),
                                 cache_dir=root / "renders")
        gen.write(root / "ds", progress=False)
        return root

    return write
