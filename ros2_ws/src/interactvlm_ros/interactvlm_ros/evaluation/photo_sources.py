"""Fetching the real-photo evaluation's images from the packages that carry them (no image is stored in the repo).

Three kinds of source, named in the labels file's ``sources``:

* ``python``: a file inside an installed Python package (``{"module": "skimage", "pip": "scikit-image"}``; an
  image's ``path`` is relative to the module's folder, e.g. ``data/astronaut.png``).
* ``wheel``: a file inside a wheel on PyPI (``{"package": "ultralytics", "version": "8.4.190"}``; ``path`` is the
  member's path in the wheel, e.g. ``ultralytics/assets/bus.jpg``): ``pip download --no-deps`` fetches that one
  wheel once (never installed, so none of its dependencies come along) and only the listed files are unpacked.
* ``debian``: a file of a Debian package (``{"package": "opencv-doc"}``; ``path`` is the file's path in the
  package, e.g. ``usr/share/doc/opencv-doc/examples/data/messi5.jpg``). Taken from the installed package when it
  is there, else ``apt-get download`` fetches the ``.deb`` once and only the listed files are unpacked from it
  (nothing is installed; the ``.deb`` is deleted afterwards).

Every image is checked against its labelled sha256. Fetching is idempotent: an image already in the folder with
the right checksum is kept. Run it alone with ``python -m interactvlm_ros.evaluation.photo_sources``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from tqdm import tqdm

from interactvlm_ros.evaluation.real_photos import RealPhoto, RealPhotoSet, load_real_labels, shipped_labels_path
from interactvlm_ros.files.atomic import atomic_write_bytes


class PhotoSourceError(RuntimeError):
    """An image's source package is missing, cannot be fetched, or holds a different file."""


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def photo_file(dest: str | Path, photo: RealPhoto) -> Path:
    """Where ``photo`` lives in the fetched folder: ``<dest>/<id><suffix of its source path>``."""
    return Path(dest) / f"{photo.id}{Path(photo.path).suffix.lower()}"


def python_source_file(photo: RealPhoto, source: dict) -> Path:
    """The file of a photo whose source is a Python package (``kind: python``), inside that installed package;
    raises :class:`PhotoSourceError` naming the package to install."""
    spec = importlib.util.find_spec(source["module"])
    if spec is None or spec.origin is None:
        raise PhotoSourceError(f"image {photo.id!r}: Python package {source['module']!r} is not installed "
                               f"(pip install {source.get('pip', source['module'])})")
    path = Path(spec.origin).parent / photo.path
    if not path.is_file():
        raise PhotoSourceError(f"image {photo.id!r}: {path} is not in the installed {source['module']!r} "
                               f"(another version of {source.get('pip', source['module'])}?)")
    return path


def _download_deb(package: str, workdir: Path) -> Path:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise PhotoSourceError(f"Debian package {package!r} is not installed and this machine has no apt-get/dpkg-deb "
                               f"to fetch it")
    tqdm.write(f"real photos: downloading Debian package {package} once (only its listed images are kept)",
               file=sys.stderr)
    proc = subprocess.run(["apt-get", "download", "-q", package], cwd=workdir, capture_output=True, text=True)
    debs = sorted(workdir.glob(f"{package}_*.deb"))
    if proc.returncode != 0 or not debs:
        last = (proc.stderr.strip().splitlines() or ["no .deb written"])[-1]
        raise PhotoSourceError(f"apt-get download {package} failed: {last} (run apt-get update, or install "
                               f"{package})")
    return debs[-1]


def unpack_deb_members(deb: Path, members: dict[str, Path]) -> None:
    """Copy ``members`` (path in the package → destination) out of ``deb`` (``dpkg-deb --fsys-tarfile``)."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    wanted = {f"./{m}": d for m, d in members.items()}
    found = set()
    with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        for info in tar:
            if info.name in wanted and info.isfile():
                atomic_write_bytes(wanted[info.name], tar.extractfile(info).read())
                found.add(info.name)
    err = proc.stderr.read().decode(errors="replace").strip()
    if proc.wait() != 0:
        raise PhotoSourceError(f"dpkg-deb could not read {deb.name}: {err.splitlines()[-1] if err else 'failed'}")
    missing = sorted(m[2:] for m in set(wanted) - found)
    if missing:
        raise PhotoSourceError(f"{deb.name} has no {missing[0]}" + (f" (and {len(missing) - 1} more)"
                                                                   if len(missing) > 1 else ""))


def _download_wheel(package: str, version: str, workdir: Path) -> Path:
    """``pip download`` the one wheel ``package==version`` (no dependencies, never a source build) into ``workdir``."""
    tqdm.write(f"real photos: downloading the wheel {package}=={version} once (only its listed images are kept)",
               file=sys.stderr)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                           "--no-cache-dir", "-q", "-d", str(workdir), f"{package}=={version}"],
                          capture_output=True, text=True)
    wheels = sorted(workdir.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no wheel written"])[-1]
        raise PhotoSourceError(f"pip download {package}=={version} failed: {last}")
    return wheels[-1]


def unpack_wheel_members(wheel: Path, members: dict[str, Path]) -> None:
    """Copy ``members`` (path in the wheel → destination) out of ``wheel`` (a zip file)."""
    try:
        with zipfile.ZipFile(wheel) as z:
            names = set(z.namelist())
            missing = sorted(set(members) - names)
            if missing:
                raise PhotoSourceError(f"{wheel.name} has no {missing[0]}" + (
                    f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
            for member, dest in members.items():
                atomic_write_bytes(dest, z.read(member))
    except zipfile.BadZipFile as exc:
        raise PhotoSourceError(f"{wheel.name} is not a wheel ({exc})") from None


def fetch_real_photos(photos: RealPhotoSet, dest: str | Path, progress: bool = True) -> dict[str, Path]:
    """Put every image of ``photos`` into ``dest`` (created) and return ``{image id: file}``.

    Images already there with the labelled sha256 are kept; raises PhotoSourceError naming the image and the
    package when a source is missing, cannot be fetched or holds a different file.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    out = {p.id: photo_file(dest, p) for p in photos.images}
    todo = [p for p in photos.images if not (out[p.id].is_file() and sha256_of(out[p.id]) == p.sha256)]
    debian: dict[str, dict[str, Path]] = {}
    wheels: dict[tuple[str, str], dict[str, Path]] = {}
    with tqdm(total=len(todo), desc="real photos", unit="image", disable=not progress or not todo) as bar:
        for photo in todo:
            source = photos.sources[photo.source]
            if source["kind"] == "python":
                atomic_write_bytes(out[photo.id], python_source_file(photo, source).read_bytes())
            elif source["kind"] == "wheel":
                wheels.setdefault((source["package"], source["version"]), {})[photo.path] = out[photo.id]
                continue
            elif (Path("/") / photo.path).is_file():  # the Debian package is installed
                atomic_write_bytes(out[photo.id], (Path("/") / photo.path).read_bytes())
            else:
                debian.setdefault(source["package"], {})[photo.path] = out[photo.id]
                continue
            bar.update()
        for package, members in debian.items():
            bar.set_postfix_str(f"apt-get download {package}")
            with tempfile.TemporaryDirectory(dir=dest, prefix=".deb-") as tmp:
                unpack_deb_members(_download_deb(package, Path(tmp)), members)
            bar.update(len(members))
        for (package, version), members in wheels.items():
            bar.set_postfix_str(f"pip download {package}")
            with tempfile.TemporaryDirectory(dir=dest, prefix=".wheel-") as tmp:
                unpack_wheel_members(_download_wheel(package, version, Path(tmp)), members)
            bar.update(len(members))
    for photo in todo:
        got = sha256_of(out[photo.id])
        if got != photo.sha256:
            out[photo.id].unlink()
            raise PhotoSourceError(f"image {photo.id!r}: the file from {photo.source!r} ({photo.path}) is not the "
                                   f"labelled one (sha256 {got[:12]}…, labelled {photo.sha256[:12]}…)")
    return out


def labelled_photo_files(ids, labels: RealPhotoSet | None = None,
                         dest: str | Path | None = None) -> tuple[dict[str, Path], str]:
    """Files of the shipped labels' photos ``ids`` (an iterable of image ids): those from Python packages in place,
    the others fetched into ``dest`` (default: ``<cache>/real_photos``, where ``eval --real`` keeps them). Returns
    ``({id: file}, why some are missing)``: when the packaged ones cannot be fetched they are left out and the
    reason is the second value ("" when all are there), so a demo or bench goes on with the rest."""
    from interactvlm_ros.config.paths import cache_dir

    labels = labels or load_real_labels(shipped_labels_path())
    wanted = set(ids)
    python, packaged = [], []
    for photo in labels.images:
        if photo.id in wanted:
            (python if labels.sources[photo.source]["kind"] == "python" else packaged).append(photo)
    files = {p.id: python_source_file(p, labels.sources[p.source]) for p in python}
    if not packaged:
        return files, ""
    try:
        files.update(fetch_real_photos(RealPhotoSet(labels.sources, packaged),
                                       dest or cache_dir() / "real_photos", progress=False))
    except PhotoSourceError as exc:
        return files, str(exc)
    return files, ""


def main(argv: list[str] | None = None) -> int:
    """``python -m interactvlm_ros.evaluation.photo_sources [--labels FILE] --dest DIR``."""
    p = argparse.ArgumentParser(prog="python -m interactvlm_ros.evaluation.photo_sources",
                                description="fetch the real-photo evaluation's images from their packages")
    p.add_argument("--labels", default=str(shipped_labels_path()), help="labels file (default: the shipped one)")
    p.add_argument("--dest", required=True, metavar="DIR", help="folder for the images (created)")
    args = p.parse_args(argv)
    try:
        files = fetch_real_photos(load_real_labels(args.labels), args.dest)
    except (ValueError, PhotoSourceError) as exc:
        print(f"photo_sources: {exc}", file=sys.stderr)
        return 2
    print(f"{len(files)} images in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
