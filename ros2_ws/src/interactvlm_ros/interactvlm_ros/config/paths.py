"""Where things live: the source tree, the ament share directory, caches and the engine cache."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def repo_root() -> Path | None:
    """The repository root when running from a source checkout (it holds ``ros2_ws/`` and ``config/``)."""
    for parent in _PACKAGE_DIR.parents:
        if (parent / "ros2_ws").is_dir() and (parent / "config").is_dir():
            return parent
    return None


def share_dir() -> Path | None:
    """``share/interactvlm_ros`` of a colcon/ament install, when ament_index_python knows the package."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory("interactvlm_ros"))
    except PackageNotFoundError:
        return None


def package_dir() -> Path:
    """The installed ``interactvlm_ros`` Python package directory (bundled assets live below it)."""
    return _PACKAGE_DIR


def cache_dir(configured: str = "") -> Path:
    """The cache root: the ``cache.dir`` parameter, ``$INTERACTVLM_CACHE_DIR``, or ``~/.cache/interactvlm``."""
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get("INTERACTVLM_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "interactvlm"


def engines_dir(configured: str = "") -> Path:
    """The engine cache: ``engines.cache_dir``, ``$INTERACTVLM_ENGINES_DIR``, ``<repo>/engines``, or
    ``<cache>/engines``."""
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get("INTERACTVLM_ENGINES_DIR")
    if env:
        return Path(env).expanduser()
    root = repo_root()
    if root is not None:
        return root / "engines"
    return cache_dir() / "engines"
