"""`tiers.dispatch.files`: atomic writes, permissions, stale temp files of killed writers, a full disk."""

import errno
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from tiers.dispatch.files import (
    atomic_path,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    remove_stale_temps,
    temp_path,
)


def _temps(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_writes_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "a.bin"
    with atomic_write(target) as f:
        f.write(b"hello")
        f.write(b" world")
    assert target.read_bytes() == b"hello world"
    atomic_write_text(target, "h\u00e9")
    assert target.read_text(encoding="utf-8") == "h\u00e9"
    assert _temps(target.parent) == []


def test_error_keeps_old_file_and_removes_temp(tmp_path):
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(ZeroDivisionError) as info, atomic_write(target) as f:
        f.write(b"half")
        1 / 0
    assert target.read_bytes() == b"old" and _temps(tmp_path) == []
    assert any(str(target) in n for n in info.value.__notes__)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_file_gets_umask_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "f", b"x")
        with open(tmp_path / "plain", "wb") as f:
            f.write(b"x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "f").stat().st_mode)
    assert mode == 0o666 & ~umask == stat.S_IMODE((tmp_path / "plain").stat().st_mode)


def test_replacing_keeps_the_old_files_mode(tmp_path):
    target = tmp_path / "f"
    atomic_write_bytes(target, b"1")
    os.chmod(target, 0o640)
    atomic_write_bytes(target, b"2")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 and target.read_bytes() == b"2"


def test_symlink_target_is_replaced_and_folder_refused(tmp_path):
    real = tmp_path / "real.bin"
    atomic_write_bytes(real, b"1")
    (tmp_path / "link.bin").symlink_to(real)
    atomic_write_bytes(tmp_path / "link.bin", b"2")
    assert (tmp_path / "link.bin").is_symlink() and real.read_bytes() == b"2"
    with pytest.raises(IsADirectoryError, match="is a folder"):
        atomic_write_bytes(tmp_path, b"x")
    with pytest.raises(ValueError, match="mode="):
        with atomic_write(real, "ab"):
            pass


_WRITER = textwrap.dedent("""
    import sys, time
    from tiers.dispatch.files import atomic_write
    with atomic_write(sys.argv[1]) as f:
        f.write(b"x" * 100000)
        f.flush()
        print("WRITING", flush=True)
        time.sleep(60)
""")


def _start_writer(target):
    p = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "WRITING"
    return p


def test_killed_writer_temp_removed_by_next_write_live_one_kept(tmp_path):
    target = tmp_path / "m.pth"
    atomic_write_bytes(target, b"good")
    killed = _start_writer(target)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert len(_temps(tmp_path)) == 1 and target.read_bytes() == b"good"  # left behind by the kill
    atomic_write_bytes(target, b"new")
    assert _temps(tmp_path) == []
    killed = _start_writer(target)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    live = _start_writer(target)  # its own write removes the dead one's temp too
    try:
        assert len(_temps(tmp_path)) == 1 and f"-{live.pid}-" in _temps(tmp_path)[0]
        atomic_write_bytes(target, b"new")
        left = _temps(tmp_path)
        # the killed writer's temp is gone; the live writer's temp is untouched
        assert len(left) == 1 and f"-{live.pid}-" in left[0]
        assert target.read_bytes() == b"new"
    finally:
        live.kill()
        live.wait()
    atomic_write_bytes(target, b"newer")
    assert _temps(tmp_path) == []


def test_other_targets_and_foreign_names_untouched(tmp_path):
    # a dead pid's temp of another target (whose name starts like ours), and a file that only looks similar
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    other = temp_path(tmp_path / "a.b")
    other = other.with_name(other.name.replace(f"-{os.getpid()}-", f"-{pid}-"))
    other.write_bytes(b"x")
    lookalike = tmp_path / f".a.notours-{pid}-zz.tmp"
    lookalike.write_bytes(b"x")
    mine = temp_path(tmp_path / "a")
    mine = mine.with_name(mine.name.replace(f"-{os.getpid()}-", f"-{pid}-"))
    mine.write_bytes(b"x")
    assert remove_stale_temps(tmp_path / "a") == [mine]
    assert other.exists() and lookalike.exists()


def test_reused_pid_does_not_keep_an_old_temp(tmp_path):
    # The temp was last written an hour ago; a process with that pid started now cannot be its writer.
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.2)
        t = temp_path(tmp_path / "w")
        t = t.with_name(t.name.replace(f"-{os.getpid()}-", f"-{p.pid}-"))
        t.write_bytes(b"x")
        assert remove_stale_temps(tmp_path / "w") == []  # fresh: may be the live process's
        os.utime(t, (time.time() - 3600, time.time() - 3600))
        assert remove_stale_temps(tmp_path / "w") == [t]
    finally:
        p.kill()
        p.wait()


_LIMITED = textwrap.dedent("""
    import resource, signal, sys
    from tiers.dispatch.files import atomic_write_bytes
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (50000, 50000))
    try:
        atomic_write_bytes(sys.argv[1], b"y" * 200000)
    except OSError as e:
        print("ERRNO", e.errno, "FILENAME", e.filename)
        print(e)
""")


def test_file_size_limit_says_disk_full_and_keeps_old_file(tmp_path):
    target = tmp_path / "big.bin"
    atomic_write_bytes(target, b"old")
    r = subprocess.run([sys.executable, "-c", _LIMITED, str(target)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert f"ERRNO {errno.EFBIG} FILENAME {target}" in r.stdout
    assert f"could not write {target}: file too large / disk full" in r.stdout
    assert target.read_bytes() == b"old" and _temps(tmp_path) == []


def test_atomic_path_for_writers_that_need_a_name(tmp_path):
    target = tmp_path / "out.csv"
    atomic_write_bytes(target, b"old")
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.csv.") and not tmp.exists()
        tmp.write_text("a,b\n1,2\n")
    assert target.read_text() == "a,b\n1,2\n" and _temps(tmp_path) == []
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "a,b\n1,2\n" and _temps(tmp_path) == []
    with pytest.raises(FileNotFoundError, match="left no file"), atomic_path(target):
        pass


def test_a_folder_that_cannot_be_made_names_the_target(tmp_path):
    (tmp_path / "afile").write_text("x")
    target = tmp_path / "afile" / "sub" / "m.pth"  # its parent would have to be a folder inside a file
    with pytest.raises(OSError) as info:
        atomic_write_bytes(target, b"data")
    assert any(f"could not write {target}" in n for n in info.value.__notes__)
