"""Build an offline team mirror of fastai's classic sample datasets, so `untar_data(URLs.X)` works with no internet.

    python tools/build_sample_mirror.py OUT_DIR [--only mnist_tiny,adult_sample]

The datasets are generated from data that installed packages ship (scikit-learn's digits, synthetic shapes,
templated reviews, a known low-rank ratings model) and packed under their classic names, in the folders the URLs
use below `URLs.S3` (`sample/mnist_tiny.tgz`, `coco/coco_tiny.tgz`, ...). Each archive holds one top folder named
like the archive, laid out like fastai's (`adult_sample/adult.csv`, `mnist_tiny/{train,valid}/{3,7}`, ...).

Next to them, `checks.json` is the checks registry that `untar_data` reads: `{url: {"size": int, "sha256": str}}`
keyed by the original `URLs` address. To use the mirror, serve OUT_DIR over HTTP (or use a `file://` URL) and set

    TIERS_DATA_URL=http://host:port/              # or base_url in $TIERS_HOME/config.ini

`untar_data` finds `<TIERS_DATA_URL>/checks.json` by itself and verifies every download against it.

The output is deterministic: the same installed packages give byte-identical archives (sorted members, zero
timestamps and owners, a gzip header with no name or time), hence the same checksums on every machine.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["SAMPLES", "build_mirror", "pack_folder", "mirror_relpath"]

# The marker file the vision generators leave behind is bookkeeping, not part of a dataset.
_SKIP = {".complete"}


def _mnist_tiny(dest: Path) -> None:
    from tiers.vision import make_mnist_tiny

    make_mnist_tiny(dest)


def _camvid_tiny(dest: Path) -> None:
    from tiers.vision import make_camvid_tiny

    make_camvid_tiny(dest)


def _coco_tiny(dest: Path) -> None:
    from tiers.vision import make_coco_tiny

    make_coco_tiny(dest)


def _imdb_sample(dest: Path) -> None:
    from tiers.text.samples import make_imdb_sample

    make_imdb_sample(dest)


def _adult_sample(dest: Path) -> None:
    from tiers.tabular.samples import make_adult_sample

    make_adult_sample(dest)


def _movie_lens_sample(dest: Path) -> None:
    from tiers.collab.samples import make_ratings_sample

    make_ratings_sample(dest)


# name -> (attribute of `URLs`, generator writing the dataset's content into a folder)
SAMPLES: dict[str, tuple[str, Callable[[Path], None]]] = {
    "mnist_tiny": ("MNIST_TINY", _mnist_tiny),
    "camvid_tiny": ("CAMVID_TINY", _camvid_tiny),
    "coco_tiny": ("COCO_TINY", _coco_tiny),
    "imdb_sample": ("IMDB_SAMPLE", _imdb_sample),
    "adult_sample": ("ADULT_SAMPLE", _adult_sample),
    "movie_lens_sample": ("ML_SAMPLE", _movie_lens_sample),
}


def mirror_relpath(url: str) -> str:
    """Where `url` lives inside a mirror: its part after `URLs.S3` (`.../fast-ai-sample/x.tgz` -> `sample/x.tgz`),
    which is what `untar_data` asks a configured `base_url` for."""
    from tiers.data import URLs

    if not url.startswith(URLs.S3):
        raise ValueError(f"mirror_relpath: {url!r} is not under {URLs.S3!r}; only those URLs are served by a mirror.")
    return url[len(URLs.S3):]


def _tarinfo(path: Path, arcname: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    if path.is_dir():
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.size, info.mode = path.stat().st_size, 0o644
    return info


def pack_folder(src: Path, archive: Path, top: str) -> Path:
    """Pack the folder `src` into the gzipped tar `archive`, everything under the top folder `top`, reproducibly:
    members sorted by path, timestamps, owners and permissions normalised, and a gzip header with no file name or
    time, so equal content gives equal bytes."""
    src, archive = Path(src), Path(archive)
    if not src.is_dir():
        raise NotADirectoryError(f"pack_folder: {src} is not a folder; give the folder to pack.")
    paths = sorted((p for p in src.rglob("*") if p.name not in _SKIP), key=lambda p: p.relative_to(src).as_posix())
    archive.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        tf.addfile(_tarinfo(src, top))
        for p in paths:
            info = _tarinfo(p, f"{top}/{p.relative_to(src).as_posix()}")
            if p.is_dir():
                tf.addfile(info)
            else:
                with open(p, "rb") as f:
                    tf.addfile(info, f)
    tmp = archive.with_name(archive.name + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(buf.getvalue())
    os.replace(tmp, archive)
    return archive


def build_mirror(out_dir: str | os.PathLike, names: list[str] | None = None, verbose: bool = False) -> dict:
    """Generate the sample datasets `names` (default all of `SAMPLES`), pack each as `OUT_DIR/<mirror path>` and
    write `OUT_DIR/checks.json`; return the registry `{url: {'size': int, 'sha256': str}}`. An existing
    `checks.json` keeps its entries for datasets not rebuilt this time."""
    from tiers.data import URLs
    from tiers.data.download import file_sha256

    out = Path(out_dir)
    names = list(SAMPLES) if names is None else names
    unknown = [n for n in names if n not in SAMPLES]
    if unknown:
        raise ValueError(f"build_mirror: unknown sample dataset(s) {unknown}; choose from {list(SAMPLES)}.")
    out.mkdir(parents=True, exist_ok=True)
    reg_file = out / "checks.json"
    registry = json.loads(reg_file.read_text()) if reg_file.is_file() else {}
    with tempfile.TemporaryDirectory(prefix="tiers-mirror-") as tmp:
        for name in names:
            attr, make = SAMPLES[name]
            url = getattr(URLs, attr)
            src = Path(tmp) / name
            make(src)
            arch = pack_folder(src, out / mirror_relpath(url), name)
            shutil.rmtree(src)
            registry[url] = {"size": arch.stat().st_size, "sha256": file_sha256(arch)}
            if verbose:
                print(f"{arch.relative_to(out)}: {registry[url]['size']:,} bytes  sha256 {registry[url]['sha256']}")
    tmp_reg = reg_file.with_name(reg_file.name + ".tmp")
    tmp_reg.write_text(json.dumps(registry, indent=1, sort_keys=True) + "\n")
    os.replace(tmp_reg, reg_file)
    return registry


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", help="folder to write the archives and checks.json into")
    ap.add_argument("--only", default="", help=f"comma-separated subset of {','.join(SAMPLES)}")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or None
    try:
        build_mirror(args.out_dir, names, verbose=True)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out_dir).resolve()
    print(f"\nwrote {out / 'checks.json'}. Serve it with:  python -m http.server -d {out} 8000\n"
          "then set TIERS_DATA_URL=http://127.0.0.1:8000/ (its checks.json is found and used from there)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
