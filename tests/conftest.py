"""Fixtures every layer's tests may use (pytest finds this file above each `tests/<layer>/`): a real HTTP server on
127.0.0.1 for download tests, and an isolated `TIERS_HOME` with the mirror settings cleared."""

import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading

import pytest
from hypothesis import HealthCheck, settings

# Property tests check values, not speed: on a shared 2-core CI machine generation and each example can be slow
# for reasons outside tiers (another job on the cores), so neither a deadline nor the too_slow check applies.
settings.register_profile("tiers", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("tiers")


@pytest.fixture(autouse=True, scope="session")
def _ctrl_c_reaches_python():
    """A test run started as a background job (`cmd &` in a script, some CI runners) inherits SIGINT *ignored*, and
    Python then leaves it ignored; the Ctrl-C tests check what a user at a terminal gets, so the run gets Python's
    own handler back (children started by tests then get the default disposition, as from a terminal)."""
    import signal

    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) != signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves `server.files` ({path: bytes}); `server.status` ({path: code}) answers with an error instead, ranges
    are honoured while `server.ranges`, and a path in `server.drop_once` gets half its body, then a hang-up."""

    def do_GET(self):
        srv = self.server
        rng = self.headers.get("Range")
        srv.log.append(self.path)
        srv.requests.append((self.path, rng))
        if self.path in srv.status:
            self.send_error(srv.status[self.path])
            return
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if rng and rng.startswith("bytes=") and srv.ranges:
            start = int(rng[6:].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in srv.drop_once:  # a dropped connection
            srv.drop_once.discard(self.path)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A threaded HTTP server on 127.0.0.1 (`server.url`); fill `server.files`, read `server.log` (paths asked) and
    `server.requests` ((path, Range header) pairs)."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.status, srv.log, srv.requests, srv.drop_once, srv.ranges = {}, {}, [], [], set(), True
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def home(tmp_path, monkeypatch):
    "A fresh `TIERS_HOME` for the test, with the mirror, model server and registry variables unset."
    h = tmp_path / "home"
    monkeypatch.setenv("TIERS_HOME", str(h))
    for var in ("TIERS_DATA_URL", "TIERS_MODEL_URL", "TIERS_CHECKS"):
        monkeypatch.delenv(var, raising=False)
    return h


# Missing optional extras: a fresh interpreter in which some libraries cannot be imported (tests/<layer>/
# test_missing_extras.py). `run_without(blocked, code, *argv)` runs `code` (which records with `attempt(key, f)`)
# and returns its `out` dict; `check_extra(err, lib, feature, dist, extra)` checks one recorded error.
PRELUDE = """
import json, sys
for name in BLOCKED:
    sys.modules[name] = None
out = {}

def attempt(key, f):
    try:
        f()
        out[key] = None
    except ModuleNotFoundError as e:
        out[key] = [type(e).__name__, e.name, str(e)]
"""
EPILOGUE = """
out["loaded"] = sorted(m for m in BLOCKED if sys.modules.get(m) is not None)
print("RESULT", json.dumps(out))
"""


def _run_without(blocked: tuple[str, ...], code: str, *args: str) -> dict:
    """Run `code` in a fresh interpreter where the modules `blocked` cannot be imported; its `out` dict back."""
    src = f"BLOCKED = {blocked!r}\n" + PRELUDE + textwrap.dedent(code) + EPILOGUE
    r = subprocess.run([sys.executable, "-c", src, *args], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.split("RESULT", 1)[1])


def _check_extra(err, lib: str, feature: str, dist: str, extra: str) -> None:
    """`err` is the MissingExtraError of `feature` for `lib`, naming `dist[extra]` and the command."""
    assert err is not None, f"{feature} ran without {lib}"
    kind, name, msg = err
    assert kind == "MissingExtraError" and name == lib, err
    assert feature in msg and f"needs {lib}" in msg and f"{dist}[{extra}]" in msg, msg
    assert msg.endswith(f'pip install "{dist}[{extra}]"'), msg


@pytest.fixture(scope="session")
def run_without():
    """`_run_without`: run code in a fresh interpreter with some libraries blocked (see above)."""
    return _run_without


@pytest.fixture(scope="session")
def check_extra():
    """`_check_extra`: a recorded error is the MissingExtraError naming the extra and the pip command."""
    return _check_extra


def _run_on_pty(argv: list[str], cols: int, rows: int = 24, env: dict | None = None,
                interrupt_when: bytes | None = None, timeout: float = 120.0) -> tuple[bytes, int, bool]:
    fcntl, pty, termios = (pytest.importorskip(m) for m in ("fcntl", "pty", "termios"))
    import select
    import signal
    import struct
    import time

    env = {k: v for k, v in (env or os.environ).items() if k not in ("COLUMNS", "LINES", "TIERS_DEBUG")}
    env.setdefault("OMP_NUM_THREADS", "1")
    env["TERM"] = "xterm"
    pid, fd = pty.fork()
    if pid == 0:  # the child: the slave side is its stdin/stdout/stderr and controlling terminal, of the window's size
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.execve(sys.executable, [sys.executable, *argv], env)
    out, sent, t0, status = b"", False, time.monotonic(), None
    try:
        while time.monotonic() - t0 < timeout:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk:
                    break
                out += chunk
            if interrupt_when is not None and not sent and interrupt_when in out:
                os.write(fd, b"\x03")  # Ctrl-C as the terminal delivers it: SIGINT to the foreground group
                sent = True
        _, status = os.waitpid(pid, 0)
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    return out, status, sent


@pytest.fixture(scope="session")
def run_on_pty():
    """`run_on_pty(argv, cols, rows=24, env=None, interrupt_when=None, timeout=120)`: run `python *argv` on a new
    pseudo-terminal of that size (its controlling terminal; COLUMNS/LINES/TIERS_DEBUG unset, TERM=xterm) and return
    (output bytes, wait status, whether ^C was typed). With `interrupt_when`, types ^C once that text has appeared."""
    return _run_on_pty


def _progress_learner(out=None, metrics=(), path=None):
    """A two-class Learner on fixed random data (64 training and 32 validation rows, bs 16, seeded weights) whose
    ProgressCallback writes to `out` without throttling: the fit the progress tests draw and read back."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from tiers.data import DataLoaders
    from tiers.train import Learner, ProgressCallback

    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 4, generator=g)
    y = (x[:, 0] > 0).long()
    dls = DataLoaders(DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16),
                      DataLoader(TensorDataset(x[64:], y[64:]), batch_size=16))
    torch.manual_seed(0)
    learn = Learner(dls, nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), loss_func=F.cross_entropy,
                    metrics=metrics, path=path)
    return learn.remove_cb(ProgressCallback).add_cb(ProgressCallback(file=out, throttle=0))


@pytest.fixture(scope="session")
def progress_learner():
    """`progress_learner(out=None, metrics=(), path=None)`: the small seeded Learner of the progress tests, its bar
    and table written to `out` (see `_progress_learner`)."""
    return _progress_learner
