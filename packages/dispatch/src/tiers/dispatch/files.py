"""Write a file atomically: `atomic_write(path)` gives a file object; the target appears complete or not at all.

The data goes to a hidden temporary file next to the target, named `.<name>.<host>-<pid>-<token>.tmp`; it is
flushed, fsynced and renamed over the target only once complete, so an interrupted write (an exception, a kill,
a full disk) keeps the previous file. Each write first deletes the temporary files of the SAME target that a
dead process left behind (a killed save leaves its temp file forever otherwise); a live process's temporary file,
another host's and another target's are never touched. The file gets the permissions a plain `open(path, "w")`
would give it: the user's umask for a new file, the old file's mode when replacing one.

>>> with atomic_write("model.pth") as f:            # doctest: +SKIP
...     torch.save(state, f)
>>> atomic_write_text("registry.json", json.dumps(data))   # doctest: +SKIP

Standard library only, so every layer (data's downloads, train's save/export) shares this one writer.
"""

import contextlib
import errno
import hashlib
import os
import re
import secrets
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

__all__ = [
    "atomic_write", "atomic_path", "atomic_write_bytes", "atomic_write_text", "remove_stale_temps", "temp_path", "pid_alive",
]

# errno values meaning "no room": the file-size limit, a full disk, a full quota.
_NO_ROOM = {errno.EFBIG, errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
# A file name must stay under the usual 255-byte limit once the temp decorations are added.
_MAX_STEM = 150


def _host_tag() -> str:
    # Temp files on a shared filesystem: a pid is only meaningful on the host that wrote it.
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _stem(name: str) -> str:
    return name if len(name) <= _MAX_STEM else name[:_MAX_STEM]


def temp_path(path: str | os.PathLike) -> Path:
    """A fresh hidden temporary path next to `path` for this process (`.<name>.<host>-<pid>-<token>.tmp`)."""
    path = Path(path)
    return path.with_name(f".{_stem(path.name)}.{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}.tmp")


def _start_time(pid: int) -> float | None:
    # When process `pid` started (seconds since the epoch), from /proc on Linux; None where unknown.
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith(b"btime"))
        return btime + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def pid_alive(pid: int, since: float | None = None) -> bool:
    """Whether process `pid` runs on this host (a zombie counts as dead). With `since` (a file's mtime), a
    process that started after that moment is a different process that reused the pid: counted as dead."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                return False
    except (OSError, IndexError):
        pass
    if since is not None:
        started = _start_time(pid)
        # 2 s of slack: the boot time and clock ticks are coarse.
        if started is not None and started > since + 2:
            return False
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of `path` left by dead processes of this host; returns those deleted."""
    path = Path(path)
    pat = re.compile(rf"\.{re.escape(_stem(path.name))}\.([0-9a-f]{{8}})-(\d+)-[0-9a-f]{{8}}\.tmp")
    host, removed = _host_tag(), list[Path]()
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        m = pat.fullmatch(name)
        if m is None or m.group(1) != host:
            continue
        tmp = path.parent / name
        pid = int(m.group(2))
        try:
            mtime = tmp.lstat().st_mtime
        except OSError:
            continue  # gone meanwhile
        if pid == os.getpid() or pid_alive(pid, since=mtime):
            continue  # a live write (maybe another thread of this process): never touch it
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed.append(tmp)
    return removed


class _Recorder:
    # Passes writes to the real file and remembers the first OSError: torch.save swallows its file's write errors
    # and raises its own "enforce fail" RuntimeError later, which would hide a full disk.
    def __init__(self, f: IO) -> None:
        self._f: IO = f
        self.error: OSError | None = None

    def write(self, b: Any) -> int:
        try:
            return self._f.write(b)
        except OSError as e:
            self.error = self.error or e
            raise

    def flush(self) -> None:
        try:
            self._f.flush()
        except OSError as e:
            self.error = self.error or e
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; some filesystems refuse to open or fsync a folder: the data is safe anyway.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _no_room(path: Path, e: OSError) -> OSError:
    err = OSError(e.errno, f"could not write {path}: file too large / disk full ({e.strerror}); the previous "
                           "file, if any, is kept. Free some space or raise the file-size limit (ulimit -f)")
    err.filename = str(path)
    return err


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None,
                 newline: str | None = None, fsync: bool = True) -> Iterator[IO]:
    """Open a temporary file next to `path` for writing (`mode` "wb" or "w"); on a clean exit it is flushed,
    fsynced (unless `fsync=False`) and renamed over `path`, on an error deleted and the old `path` kept.

    The parent folder is created. A symlink at `path` is followed (its target is replaced). A write that fails
    for lack of room raises `OSError` (errno EFBIG, ENOSPC or EDQUOT) saying "could not write <path>: file too
    large / disk full", even when a library such as torch turned the error into one of its own; any other error
    gets a note naming `path`.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode={mode!r}; use 'wb' (bytes) or 'w' (text)")
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"could not write {path}: it is a folder; pass a file name in it", str(path))
    tmp = temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        # 0o666 then the umask, as open() does (mkstemp would give 0600)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as e:
        if e.errno in _NO_ROOM:
            raise _no_room(path, e) from e
        e.add_note(f"could not write {path}: its folder cannot be created or written to; the previous file, if any, "
                   "is kept")
        raise
    try:
        with contextlib.suppress(OSError):
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))  # replacing a file keeps its mode, as open("w") does
        f = os.fdopen(fd, mode, encoding=encoding, newline=newline) if "b" not in mode else os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    rec = _Recorder(f)
    try:
        yield cast(IO, rec)  # duck-typed: forwards every other attribute to the real file
        rec.flush()
        if fsync:
            os.fsync(f.fileno())
        f.close()
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            f.close()  # may try to flush what is left, and fail the same way: already being handled
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        cause = rec.error if rec.error is not None else e if isinstance(e, OSError) else None
        if cause is not None and cause.errno in _NO_ROOM:
            raise _no_room(path, cause) from e
        if isinstance(e, Exception):
            e.add_note(f"while writing {path} (through the temporary file {tmp.name}); the previous file, if any, is kept")
        raise
    if fsync:
        _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, fsync: bool = True) -> Iterator[Path]:
    """A temporary path next to `path`, for writers that need a file name (`torch.onnx.export`, `df.to_csv`): on a
    clean exit the file written there is fsynced and renamed over `path`; on an error it is deleted and the old
    `path` kept. Same naming, stale-temp cleanup, permissions and "disk full" error as `atomic_write`."""
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"could not write {path}: it is a folder; pass a file name in it", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = temp_path(path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(errno.ENOENT, f"could not write {path}: the writer left no file at {tmp}", str(tmp))
        with contextlib.suppress(OSError):
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))  # replacing a file keeps its mode
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno in _NO_ROOM:
            raise _no_room(path, e) from e
        if isinstance(e, Exception):
            e.add_note(f"while writing {path} (through the temporary file {tmp.name}); the previous file, if any, is kept")
        raise
    if fsync:
        _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = True) -> Path:
    """Write `data` to `path` atomically (see `atomic_write`); returns `path`."""
    with atomic_write(path, "wb", fsync=fsync) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8", fsync: bool = True) -> Path:
    """Write `text` to `path` atomically (see `atomic_write`); returns `path`."""
    with atomic_write(path, "w", encoding=encoding, fsync=fsync) as f:
        f.write(text)
    return Path(path)
