"""The rosbags typestore the project uses: ROS 2 Jazzy's standard messages plus interactvlm_msgs, registered from
the package's own ``.msg`` files (the same files rosidl builds). Used for bags and as the independent CDR
implementation our wire types are checked against."""

from __future__ import annotations

import functools
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore

PACKAGE = "interactvlm_msgs"


def msg_dir() -> Path:
    """Folder of interactvlm_msgs' ``.msg`` files: the ament install when present, else the bundled copy."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        pass
    else:
        try:
            share = Path(get_package_share_directory(PACKAGE)) / "msg"
            if share.is_dir():
                return share
        except PackageNotFoundError:
            pass
    bundled = Path(__file__).resolve().parent / "msg_definitions"
    if not bundled.is_dir():
        raise FileNotFoundError(f"interactvlm_msgs .msg files not found (looked in {bundled})")
    return bundled


@functools.lru_cache(maxsize=1)
def msg_texts() -> dict[str, str]:
    """``{"interactvlm_msgs/msg/Contact": <.msg text>, ...}`` for every message of the package."""
    return {f"{PACKAGE}/msg/{p.stem}": p.read_text(encoding="utf-8") for p in sorted(msg_dir().glob("*.msg"))}


@functools.lru_cache(maxsize=1)
def typestore():
    """rosbags ``Typestore`` = ROS2_JAZZY + interactvlm_msgs."""
    store = get_typestore(Stores.ROS2_JAZZY)
    types = {}
    for name, text in msg_texts().items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store
