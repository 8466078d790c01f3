"""The multi-process engine behind `tiers.text.parallel`: run a function over slices of a sequence in this process
and in forked worker processes, and yield the slices' results in input order.

Why it is shaped this way (each point was measured on a 2-core machine, tokenizing 1,000 review-length texts):

- This process works too, beside `n_workers - 1` workers, so n workers cost n - 1 forks and no idle parent.
- Workers are forked (where the platform allows it), so they inherit the items and the function: nothing is pickled
  on the way in, and a tokenizer that takes a second to build is ready in the worker at once.
- Everyone takes slices `[start, stop)` off one shared counter: big slices first, shrinking to a few items at the
  end, so that all processes finish together even when the machine slows one of them down.
- A worker pickles each slice's result in its main thread and hands the bytes to a sender thread, which writes them
  to an enlarged pipe: the parent only reads between its own slices, and a worker that blocked on a full pipe for
  that long idled for up to a slice's time (30-120 ms per call measured before the sender thread).
- A forked worker freezes the inherited heap (`gc.freeze`), so its garbage collector never walks, and so never
  copies on write, the parent's objects.
- A worker's exception is re-raised here with the worker's traceback attached; a worker that dies raises a
  `RuntimeError` rather than leaving the caller waiting.
"""

# The annotations name ForkContext, which Windows lacks: kept as strings, never evaluated.
from __future__ import annotations

import gc
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import pickle
import queue
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.process import BaseProcess
from typing import Any, cast

__all__ = ["map_slices", "mp_context", "check_workers"]

# A cap on the slice bounds the size of one message and how long results wait to be yielded in order.
_MIN_SLICE, _MAX_SLICE = 8, 2000
# Linux lets an unprivileged process grow a pipe to /proc/sys/fs/pipe-max-size (1 MiB by default).
_PIPE_BYTES = 1 << 20
_F_SETPIPE_SZ = 1031


def mp_context() -> mp.context.ForkContext | mp.context.SpawnContext:
    """`fork` where it is available and safe (Linux and other Unixes except macOS), else `spawn`.

    fork starts workers in milliseconds and lets them inherit an already-built tokenizer; under spawn the items and
    the function are pickled to each worker (a `SpacyTokenizer` rebuilds itself there)."""
    if "fork" in mp.get_all_start_methods() and sys.platform != "darwin":
        return mp.get_context("fork")
    return mp.get_context("spawn")


def check_workers(n_workers: int | None, where: str, default: int) -> int:
    """`n_workers`, or `default` when it is None; raise a `ValueError` naming `where` unless it is an int >= 0."""
    n = default if n_workers is None else n_workers
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"{where}: n_workers={n_workers!r} must be a non-negative int (0 or 1 runs in this process).")
    return n


def map_slices(items: Sequence, work: Callable[[Sequence], Any], n_workers: int,
               where: str = "map_slices") -> Iterator[tuple[int, Any]]:
    """Yield `(start, work(items[start:stop]))` for consecutive slices that cover `items`, in order, computed by this
    process and `n_workers - 1` worker processes.

    With `n_workers` 0 or 1, or fewer than two items per process, `work` runs once here on all of `items`. A result
    must pickle. Closing the generator early stops the workers. Errors about the workers name `where` (the caller).

    >>> list(map_slices([1, 2, 3], lambda s: [x * 10 for x in s], n_workers=1))
    [(0, [10, 20, 30])]
    """
    if n_workers <= 1 or len(items) < 2 * n_workers:
        if len(items):
            yield 0, work(items)
        return
    yield from _farm(items, work, n_workers, where)


def _claim(next_start: Any, n: int, n_workers: int) -> tuple[int, int]:
    """Take the next slice `[start, stop)` of `n` items off the shared counter (`start == n` when all are taken).

    Guided scheduling: big slices first (few messages), shrinking to a few items at the end."""
    with next_start.get_lock():
        start = next_start.value
        stop = min(n, start + min(_MAX_SLICE, max(_MIN_SLICE, (n - start) // (4 * n_workers))))
        next_start.value = stop
    return start, stop


def _grow_pipe(conn: Any) -> None:
    # Fewer, larger writes, and a worker that rarely waits for the parent; where the call is unsupported the sender
    # thread still keeps the worker from waiting.
    try:
        import fcntl

        fcntl.fcntl(conn.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)
    except (ImportError, OSError, ValueError, AttributeError):
        pass


def _send_loop(conn: Any, outbox: queue.SimpleQueue) -> None:
    # Writing releases the GIL, so the worker's main thread keeps working while a full pipe waits for the parent.
    while (data := outbox.get()) is not None:
        try:
            conn.send_bytes(data)
        except OSError:  # the parent closed its end (it stopped early): nothing left to deliver
            return


def _worker(items: Sequence, work: Callable[[Sequence], Any], next_start: Any, n_workers: int, conn: Any) -> None:
    gc.freeze()
    outbox: queue.SimpleQueue = queue.SimpleQueue()
    sender = threading.Thread(target=_send_loop, args=(conn, outbox), daemon=True)
    sender.start()
    try:
        while True:
            start, stop = _claim(next_start, len(items), n_workers)
            if start >= stop:
                break
            outbox.put(pickle.dumps((start, stop, work(items[start:stop])), pickle.HIGHEST_PROTOCOL))
        outbox.put(pickle.dumps(None))
    except BaseException as e:
        tb = traceback.format_exc()
        try:
            pickle.loads(pickle.dumps(e))  # some exceptions pickle but cannot be rebuilt on the other side
        except Exception:
            e = RuntimeError(f"{type(e).__name__}: {e}")
        outbox.put(pickle.dumps(("error", e, tb)))
    finally:
        outbox.put(None)
        sender.join()
        conn.close()


class _Workers:
    """The running workers and their pipes; `receive` files their results under the slice start."""

    def __init__(self, items: Sequence, work: Callable[[Sequence], Any], n_workers: int, where: str):
        self.where = where
        ctx = mp_context()
        self.next_start = ctx.Value("q", 0)
        self.procs: list[BaseProcess] = []
        self.live: dict[mp_connection.Connection, BaseProcess] = {}
        for _ in range(n_workers - 1):
            r, w = ctx.Pipe(duplex=False)
            _grow_pipe(w)
            p = ctx.Process(target=_worker, args=(items, work, self.next_start, n_workers, w), daemon=True)
            self.procs.append(p)
            try:
                p.start()
            finally:
                w.close()
            self.live[r] = p

    def receive(self, done: dict, block: bool) -> None:
        # wait returns the ready ones among the objects given: our pipes' read ends
        ready = cast(list[mp_connection.Connection], mp_connection.wait(list(self.live), timeout=None if block else 0))
        for c in ready:
            try:
                msg = pickle.loads(c.recv_bytes())
            except EOFError:
                p = self.live.pop(c)
                c.close()
                p.join()
                raise RuntimeError(f"{self.where}: a worker process died (exit code {p.exitcode}) before finishing; rerun with "
                                   "n_workers=1 to see the error in this process.") from None
            if msg is None:
                del self.live[c]
                c.close()
            elif msg[0] == "error":
                raise msg[1] from _RemoteTraceback(msg[2])
            else:
                start, stop, res = msg
                done[start] = (stop, res)

    def close(self, finished: bool) -> None:
        for c in self.live:
            c.close()
        for p in self.procs:
            if finished:
                # The worker has sent everything and is exiting; tearing down a forked copy of a big process takes
                # tens of ms, so reap it in the background rather than make the caller wait for it. The thread holds
                # the shared counter until then: a worker that starts late still reads it, and freed, its memory
                # would become the next call's counter.
                threading.Thread(target=_reap, args=(p, self.next_start), name="tiers-text-reap", daemon=True).start()
            elif p.pid is not None:
                p.terminate()
                p.join()


def _reap(p: Any, keep_alive: Any) -> None:
    p.join()
    del keep_alive


def _farm(items: Sequence, work: Callable[[Sequence], Any], n_workers: int, where: str) -> Iterator[tuple[int, Any]]:
    n = len(items)
    workers = _Workers(items, work, n_workers, where)
    done: dict[int, Any] = {}
    nxt, mine, finished = 0, True, False
    try:
        while nxt < n:
            if mine:
                start, stop = _claim(workers.next_start, n, n_workers)
                if start < stop:
                    done[start] = (stop, work(items[start:stop]))
                else:
                    mine = False
                if workers.live:
                    workers.receive(done, block=False)
            elif nxt not in done:
                if not workers.live:
                    raise RuntimeError(f"{where}: the worker processes stopped without returning all results.")
                workers.receive(done, block=True)
            while nxt in done:
                stop, res = done.pop(nxt)
                yield nxt, res
                nxt = stop
        finished = True  # every result is in: the workers have nothing left but to exit
    finally:
        workers.close(finished)


class _RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process, attached as the cause of the re-raised one."""

    def __init__(self, tb: str):
        super().__init__(tb)

    def __str__(self) -> str:
        return f"\n\nIn the worker process:\n{self.args[0]}"
