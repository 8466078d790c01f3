"""Downloading and extracting archives safely: resumable, retried HTTP downloads with a progress bar, size and sha256
checks, extraction that is atomic (to a temporary folder, then one rename), and the checks registries those checks
come from (read, validated, merged, fetched).

The invariant the callers rely on: a file at its final path was downloaded completely and passed its checks, and
an extracted folder at its final path is complete. Partial downloads live in `<name>.part` (resumed with an HTTP
Range request), partial extractions in a hidden temporary folder removed on failure.
"""

import errno
import hashlib
import http.client
import json
import os
import posixpath
import re
import secrets
import shutil
import socket
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import Literal, TextIO, overload

from tiers.dispatch.files import pid_alive

__all__ = ["DownloadError", "UnsafeArchiveError", "download_url", "file_sha256", "extract_archive", "archive_stem", "Progress",
           "entry_problem", "read_registry", "merge_checks", "fetch_registry"]

_CHUNK = 1 << 16
_ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz2", ".txz", ".tar", ".zip", ".gz")


class DownloadError(OSError):
    """A download or an extraction failed: the message names the URL or file, the cause, and what to do.
    `unreachable` says why the host could not be reached when that is the cause (offline, unknown host, refused,
    timed out), else None."""

    unreachable: str | None = None


class Progress:
    """A one-line progress bar on `stream` (stderr), redrawn at most 10 times a second; silent when `enabled` is
    False, or by default when the stream is not a terminal."""

    def __init__(self, total: int | None, desc: str = "", stream: TextIO | None = None, enabled: bool | None = None):
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


def _fetch(url: str, part: Path, timeout: float | None, progress: bool | None) -> None:
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


# errno values of a host that cannot be reached at all (as opposed to one that answered, then failed)
_NO_ROUTE = frozenset(getattr(errno, n) for n in ("ENETUNREACH", "EHOSTUNREACH", "ENETDOWN", "EHOSTDOWN")
                      if hasattr(errno, n))


def _unreachable(e: BaseException | None) -> str | None:
    """Why the host could not be reached, when that is what the transfer error `e` comes down to (unknown host,
    connection refused, no route, timed out); None for a host that answered (an HTTP status, a dropped transfer)
    or a file failing its checks."""
    if e is None or isinstance(e, urllib.error.HTTPError | DownloadError):
        return None
    why = e.reason if isinstance(e, urllib.error.URLError) else e
    if isinstance(why, socket.gaierror):
        return f"unknown host: {why.strerror or why}"
    if isinstance(why, TimeoutError | socket.timeout):
        return "the connection timed out"
    if isinstance(why, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(why, OSError) and why.errno in _NO_ROUTE:
        return why.strerror or str(why)
    return None


def download_url(url: str, dest: str | os.PathLike[str] | None = None, size: int | None = None,
                 sha256: str | None = None, timeout: float | None = 30, retries: int = 3,
                 progress: bool | None = None, backoff: float = 1.0, show_progress: bool | None = None) -> Path:
    """Download `url` to `dest` safely: into `dest.part` first (resumed with an HTTP Range request after a dropped
    connection, up to `retries` more tries with growing pauses), then checked against `size` and `sha256` when
    given, then renamed to `dest`. A file failing its checks is deleted and fetched again; if it still fails, a
    `DownloadError` says what differed. Returns the file's path.

    As in fastai, `dest` may be left out (the URL's file name in the current folder) or be an existing folder (the
    file goes inside it), and `show_progress` is the name of `progress`: True or False shows the progress bar or
    not, None (the default) shows it on a terminal only. `timeout=None` waits without limit.

    >>> download_url("https://example.org/img/bear.jpg", "images/grizzly.jpg", show_progress=False)  # doctest: +SKIP
    PosixPath('images/grizzly.jpg')
    """
    if show_progress is not None:
        if progress is not None and progress != show_progress:
            raise ValueError(f"download_url: progress={progress} and show_progress={show_progress} disagree; "
                             "they are one setting (show_progress is fastai's name): pass one of them.")
        progress = show_progress
    dest = _url_dest(url, dest)
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
                raise DownloadError(f"Downloading {url} failed: {e}. Check the URL, or point the server setting at "
                                    "one that has the file (TIERS_DATA_URL or base_url for datasets, "
                                    "TIERS_MODEL_URL or model_url for pretrained models).") from e
            last = e
            continue
        problem = _check(part, size, sha256)
        if problem is None:
            os.replace(part, dest)
            return dest
        last = DownloadError(f"{url}: {problem}")
        part.unlink(missing_ok=True)  # a complete but wrong file cannot be resumed: start from scratch
    kept = f" The partial file is kept as {part}; the next call resumes it." if part.exists() else ""
    why = _unreachable(last)
    if why is not None:  # offline, or a wrong server address: the fix is the network or a setting
        host = urllib.parse.urlparse(url).netloc or url
        err = DownloadError(f"Downloading {url} failed after {retries + 1} attempts: the host {host} cannot be "
                            f"reached ({why}; offline?).{kept} Check the network connection and the address.")
        err.unreachable = why
        raise err from last
    if isinstance(last, DownloadError):  # a complete file that failed its checks
        hint = "If the file on the server changed on purpose, update its entry in the checks registry."
    else:  # the host answered, then kept failing (a server error, a dropped transfer)
        hint = ("The server answered but kept failing: try again later, or fetch the file from a server that has it "
                "(TIERS_DATA_URL or base_url for datasets, TIERS_MODEL_URL or model_url for pretrained models).")
    raise DownloadError(f"Downloading {url} failed after {retries + 1} attempts: {last}.{kept} {hint}") from last


def _url_dest(url: str, dest: str | os.PathLike[str] | None) -> Path:
    "Where `download_url` writes `url`: `dest`, or the URL's file name inside `dest` (a folder) or the current folder."
    if dest is not None and not Path(dest).is_dir():
        return Path(dest)
    name = posixpath.basename(urllib.parse.urlparse(url).path)
    if not name or name in (".", ".."):
        where = "the current folder" if dest is None else f"the folder {dest}"
        raise ValueError(f"download_url: the URL {url!r} does not end with a file name, so there is no name to save "
                         f"it under in {where}; pass dest= the file to write.")
    return Path(dest if dest is not None else ".") / name


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


class UnsafeArchiveError(DownloadError):
    """An archive member would be written outside the destination (a `..` path, an absolute path, or a link
    pointing out of it) or is a device file: the archive is refused whole, before anything is extracted."""


def _outside(name: str) -> bool:
    """Whether the member path `name` leaves the folder it is extracted into (`..` parts, absolute, a drive),
    judged on the name alone: the real destination's own name must not make `../dest` look harmless."""
    name = name.replace("\\", "/")
    if not name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return True
    full = posixpath.normpath(posixpath.join("/root", name))
    return full != "/root" and not full.startswith("/root/")


def _unsafe(archive: Path, dest: Path, name: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"The archive {archive} was refused: member {name!r} {why} {dest}. Nothing was "
                              "extracted. Downloading it again would not help: the archive itself is unsafe; get it "
                              "from a source you trust.")


def _check_tar_members(t: tarfile.TarFile, archive: Path, dest: Path) -> None:
    for m in t.getmembers():
        if _outside(m.name):
            raise _unsafe(archive, dest, m.name, "would be written outside")
        if m.issym() or m.islnk():
            base = posixpath.dirname(m.name) if m.issym() else ""  # a hard link's target is relative to the top
            link = m.linkname.replace("\\", "/")
            if link.startswith("/") or (len(link) > 1 and link[1] == ":") or _outside(posixpath.join(base, link)):
                raise _unsafe(archive, dest, m.name, f"is a link to {m.linkname!r}, outside")
        elif m.isdev() or m.isfifo():
            raise _unsafe(archive, dest, m.name, "is a device or pipe file, not data; it would be created in")


def _safe_zip_extract(z: zipfile.ZipFile, archive: Path, tmp: Path, dest: Path) -> None:
    for m in z.infolist():
        if _outside(m.filename):
            raise _unsafe(archive, dest, m.filename, "would be written outside")
    z.extractall(tmp)


def _remove_stale_tmp(parent: Path, stem: str) -> None:
    "Delete temporary folders left by extractions whose process is gone (killed mid-way)."
    for p in parent.glob(f".{stem}.tmp-*"):
        try:
            pid = int(p.name.rsplit(".tmp-", 1)[1].split("-")[0])
        except ValueError:
            continue
        try:  # a zombie, or a new process that reused the pid after the folder was last written, is not its owner
            alive = pid != os.getpid() and pid_alive(pid, since=p.stat().st_mtime)
        except OSError:
            continue
        if not alive:
            shutil.rmtree(p, ignore_errors=True)


def extract_archive(archive: Path, dest: Path, force: bool = False) -> Path:
    """Extract `archive` (tar, tar.gz/bz2/xz or zip) so its content ends up at `dest`, atomically: everything goes
    into a hidden temporary folder next to `dest`, which is renamed to `dest` only once complete (an archive holding
    a single top folder has that folder renamed). A corrupt or truncated archive raises `DownloadError` and leaves
    nothing at `dest`; one with a member that would land outside `dest` (`..`, an absolute path, a link out of it)
    or a device file raises `UnsafeArchiveError` before anything is extracted. An existing `dest` is kept unless
    `force`, then replaced."""
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
                _safe_zip_extract(z, archive, tmp, dest)
        else:
            with tarfile.open(archive) as t:
                _check_tar_members(t, archive, dest)  # every member first: an unsafe one means nothing is written
                t.extractall(tmp, filter="data")
    except tarfile.FilterError as e:  # what the check above missed, the "data" filter still refuses
        shutil.rmtree(tmp, ignore_errors=True)
        raise _unsafe(archive, dest, getattr(getattr(e, "tarinfo", None), "name", "?"),
                      f"was refused by the tar safety filter ({e}); it would be written outside") from e
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


# ---------------------------------------------------------------------------------------------------- registries
# A checks registry is a JSON object {url: {"size": bytes, "sha256": "64 hex digits"}}: what the file at `url` must be.
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def entry_problem(entry: object) -> str | None:
    """What is wrong with the checks entry `entry` (None: nothing). An entry is a dict with `size` (bytes) and/or
    `sha256` (64 hex digits); other keys are ignored."""
    if not isinstance(entry, dict):
        return f"it is a {type(entry).__name__}, not an object"
    if "size" not in entry and "sha256" not in entry:
        return "it has neither 'size' nor 'sha256'"
    size, sha = entry.get("size"), entry.get("sha256")
    if "size" in entry and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        return f"'size' is {size!r}, not a number of bytes"
    if "sha256" in entry and not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
        return f"'sha256' is {sha!r}, not 64 hex digits"
    return None


def read_registry(path: Path, label: str, fix: str) -> dict:
    """The checks registry in the file `path`, every entry validated. The errors (FileNotFoundError, ValueError for
    bad JSON or a bad entry, OSError) name the registry by `label` and say `fix`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"The checks registry {label} does not exist: {fix}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"The checks registry {label} is not valid JSON ({e}): {fix}.") from e
    except OSError as e:
        raise OSError(f"The checks registry {label} cannot be read ({e}): make it readable, or {fix}.") from e
    if not isinstance(data, dict):
        raise ValueError(f"The checks registry {label} holds a {type(data).__name__}, not an object "
                         f'{{url: {{"size": bytes, "sha256": hex}}}}: {fix}.')
    for url, entry in data.items():
        problem = entry_problem(entry)
        if problem is not None:
            raise ValueError(f"The checks registry {label} has a bad entry for {url!r}: {problem}. Correct or "
                             'remove that entry (an entry is {"size": bytes, "sha256": "64 hex digits"}).')
    return data


def merge_checks(url: str, found: list[tuple[str, dict]]) -> dict | None:
    """Everything the registries `found` (`(label, registry)` pairs) say about `url`, as one entry (None: nothing).
    Registries that give different sizes or sha256s for it raise a DownloadError naming both, so no download
    goes ahead checked against only one of them."""
    entry: dict = {}
    said: dict = {}
    for label, reg in found:
        for key, value in (reg.get(url) or {}).items():
            if key not in ("size", "sha256"):
                continue
            value = value.lower() if key == "sha256" else value
            if key in entry and entry[key] != value:
                raise DownloadError(
                    f"The checks registries disagree about {url}: {said[key]} gives {key} {entry[key]}, {label} "
                    f"gives {value}. Nothing is downloaded until they agree: correct or remove the wrong entry (an "
                    "entry the own registry recorded from another server is the usual culprit).")
            entry[key], said[key] = value, label
    return entry or None


def _gone(e: BaseException) -> bool:
    cause = e.__cause__
    return isinstance(cause, urllib.error.HTTPError) and cause.code in (404, 410)


@overload
def fetch_registry(url: str, folder: Path, label: str, optional: Literal[False] = False, timeout: float = 30,
                   retries: int = 3) -> Path: ...


@overload
def fetch_registry(url: str, folder: Path, label: str, optional: bool = False, timeout: float = 30,
                   retries: int = 3) -> Path | None: ...


def fetch_registry(url: str, folder: Path, label: str, optional: bool = False, timeout: float = 30,
                   retries: int = 3) -> Path | None:
    """Fetch the checks registry at `url` afresh into `folder` with `download_url` (the copy replaces the last one
    in one rename) and return the copy's path; a `file://` URL is read in place. With `optional`, a 404 or 410
    means the server has none: returns None (and forgets an old copy). Any other failure raises a DownloadError
    naming `label`: a registry that should be read is never skipped."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        path = Path(urllib.request.url2pathname(parsed.path))
        return None if optional and not path.exists() else path
    dest = Path(folder) / f"{hashlib.sha256(url.encode()).hexdigest()[:20]}.json"
    # A name of its own per fetch: concurrent processes never share a partial file.
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}-{secrets.token_hex(4)}")
    try:
        download_url(url, tmp, timeout=timeout, retries=retries, progress=False)
        os.replace(tmp, dest)
    except DownloadError as e:
        if optional and _gone(e):
            dest.unlink(missing_ok=True)
            return None
        raise DownloadError(f"The checks registry {label} could not be fetched ({e.__cause__ or e}). Nothing is downloaded "
                            "unverified: fix the server, or the setting that names it.") from e
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".part").unlink(missing_ok=True)
    return dest
