"""Downloading and extracting archives safely: resumable, retried HTTP downloads with a progress bar, size and sha256
checks, and extraction that is atomic (to a temporary folder, then one rename).

The invariant the callers rely on: a file at its final path was downloaded completely and passed its checks, and
an extracted folder at its final path is complete. Partial downloads live in `<name>.part` (resumed with an HTTP
Range request), partial extractions in a hidden temporary folder removed on failure.
"""

import hashlib
import http.client
import os
import secrets
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

__all__ = ["DownloadError", "download_url", "file_sha256", "extract_archive", "archive_stem", "Progress"]

_CHUNK = 1 << 16
_ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz2", ".txz", ".tar", ".zip", ".gz")


class DownloadError(OSError):
    "A download or an extraction failed: the message names the URL or file, the cause, and what to do."


class Progress:
    """A one-line progress bar on `stream` (stderr), redrawn at most 10 times a second; silent when `enabled` is
    False, or by default when the stream is not a terminal."""

    def __init__(self, total: int | None, desc: str = "", stream=None, enabled: bool | None = None):
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.enabled = isatty() if enabled is None else enabled
        self.total, self.desc, self.n = total, desc, 0
        self.start = self._last = time.monotonic()

    def update(self, n: int) -> None:
        "Count `n` more bytes."
        self.n += n
        now = time.monotonic()
        if self.enabled and (now - self._last >= 0.1 or (self.total and self.n >= self.total)):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.n / max(now - self.start, 1e-6)
        if self.total:
            frac = min(self.n / self.total, 1.0)
            bar = "#" * int(frac * 30)
            line = f"\r{self.desc}: {frac:4.0%} |{bar:<30}| {self.n / 1e6:.1f}/{self.total / 1e6:.1f} MB"
        else:
            line = f"\r{self.desc}: {self.n / 1e6:.1f} MB"
        self.stream.write(f"{line} {rate / 1e6:.1f} MB/s")
        self.stream.flush()

    def close(self) -> None:
        "End the line."
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()


def file_sha256(path: Path) -> str:
    "The sha256 hex digest of the file at `path`."
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fetch(url: str, part: Path, timeout: float, progress: bool | None) -> None:
    "Fetch `url` into `part`, resuming from its current size; raises on any transfer problem."
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "tiers-data"}
    if have:
        headers["Range"] = f"bytes={have}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to send: the part file is already complete
            return
        raise
    with resp:
        if have and resp.status != 206:  # the server ignored the Range header: start again
            have = 0
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        bar = Progress(total, Path(part.name[: -len(".part")]).name, enabled=progress)
        bar.update(have)
        with open(part, "ab" if have else "wb") as f:
            while chunk := resp.read(_CHUNK):
                f.write(chunk)
                bar.update(len(chunk))
        bar.close()
    got = part.stat().st_size
    if total is not None and got < total:
        raise http.client.IncompleteRead(b"", total - got)


def _retryable(e: Exception) -> bool:
    if isinstance(e, urllib.error.HTTPError):
        return e.code in (408, 425, 429) or e.code >= 500
    return isinstance(e, urllib.error.URLError | http.client.HTTPException | ConnectionError | TimeoutError | OSError)


def download_url(url: str, dest: Path, size: int | None = None, sha256: str | None = None, timeout: float = 30,
                 retries: int = 3, progress: bool | None = None, backoff: float = 1.0) -> Path:
    """Download `url` to `dest` safely: into `dest.part` first (resumed with an HTTP Range request after a dropped
    connection, up to `retries` more tries with growing pauses), then checked against `size` and `sha256` when
    given, then renamed to `dest`. A file failing its checks is deleted and fetched again; if it still fails, a
    `DownloadError` says what differed. Returns `dest`."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last: Exception | None = None
    for attempt in range(retries + 1):
        if attempt > 1:  # the first retry resumes at once (a dropped connection); later ones wait longer each time
            time.sleep(backoff * (attempt - 1))
        try:
            _fetch(url, part, timeout, progress)
        except Exception as e:
            if not _retryable(e):
                raise DownloadError(f"Downloading {url} failed: {e}. Check the URL, or point TIERS_DATA_URL (or "
                                    "base_url in the tiers config) at a mirror that has the file.") from e
            last = e
            continue
        problem = _check(part, size, sha256)
        if problem is None:
            os.replace(part, dest)
            return dest
        last = DownloadError(f"{url}: {problem}")
        part.unlink(missing_ok=True)  # a complete but wrong file cannot be resumed: start from scratch
    kept = f" The partial file is kept as {part}; the next call resumes it." if part.exists() else ""
    raise DownloadError(f"Downloading {url} failed after {retries + 1} attempts: {last}.{kept} If the file on the "
                        "server changed on purpose, update its entry in the checks registry.") from last


def _check(path: Path, size: int | None, sha256: str | None) -> str | None:
    got = path.stat().st_size
    if size is not None and got != size:
        return f"the file has {got} bytes but the checks registry expects {size}"
    if sha256 is not None:
        digest = file_sha256(path)
        if digest != sha256.lower():
            return f"the sha256 of the file is {digest} but the checks registry expects {sha256}"
    return None


def archive_stem(name: str) -> str:
    "The file name `name` without its archive extension (`mnist_tiny.tgz` -> `mnist_tiny`)."
    low = name.lower()
    for suf in _ARCHIVE_SUFFIXES:
        if low.endswith(suf):
            return name[: -len(suf)]
    return Path(name).stem


def _safe_zip_extract(z: zipfile.ZipFile, dest: Path) -> None:
    root = dest.resolve()
    for m in z.infolist():
        target = (dest / m.filename).resolve()
        if root != target and root not in target.parents:
            raise DownloadError(f"The archive member {m.filename!r} would be written outside {dest}; refusing it.")
    z.extractall(dest)


def _remove_stale_tmp(parent: Path, stem: str) -> None:
    "Delete temporary folders left by extractions whose process is gone (killed mid-way)."
    for p in parent.glob(f".{stem}.tmp-*"):
        try:
            pid = int(p.name.rsplit(".tmp-", 1)[1].split("-")[0])
        except ValueError:
            continue
        try:
            os.kill(pid, 0)
            alive = pid != os.getpid()
        except ProcessLookupError:
            alive = False
        except PermissionError:
            alive = True
        if not alive:
            shutil.rmtree(p, ignore_errors=True)


def extract_archive(archive: Path, dest: Path, force: bool = False) -> Path:
    """Extract `archive` (tar, tar.gz/bz2/xz or zip) so its content ends up at `dest`, atomically: everything goes
    into a hidden temporary folder next to `dest`, which is renamed to `dest` only once complete (an archive holding
    a single top folder has that folder renamed). A corrupt or truncated archive raises `DownloadError` and leaves
    nothing at `dest`. An existing `dest` is kept unless `force`, then replaced."""
    archive, dest = Path(archive), Path(dest)
    if dest.exists() and not force:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(dest.parent, dest.name)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                _safe_zip_extract(z, tmp)
        else:
            with tarfile.open(archive) as t:
                t.extractall(tmp, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError, ValueError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, DownloadError):
            raise
        raise DownloadError(f"The archive {archive} is corrupt or truncated ({type(e).__name__}: {e}); nothing was "
                            "extracted. Delete it (or pass force_download=True) to download it again.") from e
    entries = list(tmp.iterdir())
    src = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
    old = None
    if dest.exists():  # only with force: move the old copy aside so the swap is one rename
        old = dest.parent / f".{dest.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
        os.replace(dest, old)
    try:
        os.replace(src, dest)
    except OSError:
        if dest.exists() and old is None:  # another process finished the same extraction first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
            return dest
        raise
    finally:
        if src is not tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return dest
