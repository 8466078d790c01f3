"""`parallel`: apply a function to every item of a collection in worker processes (or threads, or in this process),
results in item order; fastcore's name, signature and behaviour, so fastai code that calls it ports unchanged.

Better than fastcore where it failed quietly or late: a function that cannot be sent to worker processes (a lambda,
a function defined inside another) is refused before any work starts, with the fix; an error in a worker names the
item it failed on; the first error stops the pool (the rest is cancelled, busy workers are stopped) instead of
waiting for every other item; `timeout` stops the workers it gave up on.

`concurrent.futures` and `multiprocessing` are imported by the first call, not with this layer (they cost tens of
milliseconds and pull in `subprocess`, `socket`, `logging`...).

This module is `workers`, not `parallel`, so that `tiers.dispatch.parallel` is the function and nothing shadows it.
"""

import functools
import reprlib
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from tiers.dispatch.defaults import defaults
from tiers.dispatch.foundation import L

__all__ = ["parallel"]

# The prefix of every note `parallel` adds: an error that already carries one is not noted twice.
_NOTE = "parallel: "

# A worker process's stagger lock (`pause`), set by `_init_worker` when the pool starts the process.
_PROCESS_PAUSE_LOCK: Any = None

_repr = reprlib.Repr()
_repr.maxstring, _repr.maxother = 80, 80


def _name(f: Any) -> str:
    "A readable name for `f` (a partial shows the function it wraps)."
    f = getattr(f, "func", f) if isinstance(f, functools.partial) else f
    return getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or type(f).__name__


def _item_note(f: Any, i: int, item: Any) -> str:
    return f"{_NOTE}{_name(f)} failed on item {i}: {_repr.repr(item)}"


def _noted(e: BaseException) -> bool:
    return any(isinstance(n, str) and n.startswith(_NOTE) for n in getattr(e, "__notes__", ()))


def _init_worker(lock: Any) -> None:
    # runs once in each worker process: the lock every item takes in turn to stagger its start by `pause`
    global _PROCESS_PAUSE_LOCK
    _PROCESS_PAUSE_LOCK = lock


def _apply(call: Callable[[Any], Any], lock: Any, pause: float, return_exceptions: bool,
           job: tuple[int, Any]) -> Any:
    """Run `call(item)` for `job = (index, item)`, in a worker or in this process. An error gets a note naming the
    item here, where the index is known for certain (with `chunksize` > 1 the pool only knows the chunk)."""
    i, item = job
    if pause:
        lock = lock if lock is not None else _PROCESS_PAUSE_LOCK
        # as fastcore: starts are serialised and `pause` seconds apart (to stagger requests to one server, say)
        with lock:
            time.sleep(pause)
    try:
        return call(item)
    except Exception as e:
        e.add_note(_item_note(call, i, item))
        if return_exceptions:
            return e
        raise


def _check_int(value: Any, name: str, least: int) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"parallel: {name} must be an int, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < least:
        fix = " (0 runs every item in this process)" if name == "n_workers" else ""
        raise ValueError(f"parallel: {name} must be at least {least}, got {value}{fix}")
    return value


def _check_seconds(value: Any, name: str, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"parallel: {name} must be a number of seconds, got {value!r} ({type(value).__name__})")
    if value < 0 or (value == 0 and not allow_zero) or value != value:
        raise ValueError(f"parallel: {name} must be {'>= 0' if allow_zero else '> 0'} seconds, got {value!r}")
    return float(value)


def _text_progress(results: Iterable[Any], total: int) -> Iterator[Any]:
    "A one-line `done/total` counter on stderr, redrawn at most ten times a second (`progress=True`)."
    last, done = 0.0, 0
    for done, r in enumerate(results, 1):
        now = time.monotonic()
        if done == total or now - last >= 0.1:
            last = now
            sys.stderr.write(f"\rparallel: {done}/{total} items")
            sys.stderr.flush()
        yield r
    sys.stderr.write(f"\rparallel: {done}/{total} items\n")
    sys.stderr.flush()


def _with_progress(results: Iterator[Any], progress: Any, total: int) -> Iterable[Any]:
    if not progress:
        return results
    if progress is True:
        return _text_progress(results, total)
    return progress(results, total=total)


def _check_picklable(f: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any], method: str) -> None:
    """Refuse, before any process starts, what worker processes cannot receive, naming the fix (the pool would fail
    later, per item, with pickle's own message, or hang a spawned worker)."""
    import pickle

    fixes = ("use parallel(..., threadpool=True) (threads share this process), or n_workers=0 (every item runs "
             "here), or define the function at module level in a .py file")
    try:
        pickle.dumps(f)
    except Exception as e:
        what = "a lambda" if getattr(f, "__name__", "") == "<lambda>" else f"{_name(f)!r}"
        raise TypeError(f"parallel: {what} cannot be sent to worker processes ({type(e).__name__}: {e}); lambdas, "
                        f"functions defined inside another function and objects holding locks or open files cannot "
                        f"be pickled. Fix: {fixes}") from e
    try:
        pickle.dumps((args, kwargs))
    except Exception as e:
        raise TypeError(f"parallel: an argument passed on to {_name(f)!r} (in *args/**kwargs) cannot be sent to worker "
                        f"processes ({type(e).__name__}: {e}). Fix: {fixes}") from e
    main = sys.modules.get("__main__")
    if method != "fork" and getattr(f, "__module__", None) == "__main__" and not getattr(main, "__file__", None):
        # a spawned worker imports __main__ from its file: a notebook or REPL has none, so the function is missing
        raise TypeError(f"parallel: {_name(f)!r} is defined in an interactive session (a notebook or REPL), which "
                        f"{method!r} worker processes cannot import. Fix: {fixes}"
                        + (", or method='fork'" if sys.platform != "win32" else ""))


def _stop(ex: Any, processes: bool, wait: bool) -> None:
    "Shut the pool down after a failure: nothing pending starts; busy worker processes are stopped, not awaited."
    if processes:
        # the stdlib offers no public way to stop a busy worker; `_processes` has been its pid -> Process map
        # since Python 3.2 (and a missing one only means the workers run on until their item ends)
        procs = list((getattr(ex, "_processes", None) or {}).values())
        ex.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(5)
    else:
        ex.shutdown(wait=wait, cancel_futures=True)


def parallel(f: Callable[..., Any], items: Iterable[Any], *args: Any, n_workers: int | None = None,
             total: int | None = None, progress: bool | Callable[..., Iterable[Any]] | None = None,
             pause: float = 0, method: str | None = None, threadpool: bool = False, timeout: float | None = None,
             chunksize: int = 1, return_exceptions: bool = False, **kwargs: Any) -> L:
    """Call `f(*args, item, **kwargs)` for each of `items` in `n_workers` worker processes and return the results as
    an `L`, in the order of `items` (fastcore's `parallel`; note that `args` come before the item, as there).

    - `n_workers`: `None` means `defaults.cpus`; `0` runs every item here, in this process, one after the other
      (the way to debug, and what a lambda or closure needs); `1` or more starts that many worker processes (never
      more than there are chunks of work).
    - `threadpool=True`: threads instead of processes (for I/O-bound work such as downloads; any callable works).
    - `method`: how worker processes start (`'fork'`, `'spawn'`, `'forkserver'`; `None`: the platform's default).
    - `pause`: seconds between the starts of two items (staggers requests to one server).
    - `timeout`: seconds the whole call may take; past it `TimeoutError` is raised and the worker processes are
      stopped (threads cannot be stopped: a thread still running finishes in the background).
    - `chunksize`: items sent to a worker process at a time (fewer round trips for many cheap items).
    - `progress`: `True` shows a `done/total` counter on stderr; a callable such as fastprogress' `progress_bar` or
      `tqdm` is called as `progress(results, total=total)`; `total` overrides the count it is given.
    - `return_exceptions=True`: an item whose call raises gets the exception as its result instead of stopping all.

    An error raised by `f` is re-raised here with a note naming the item (and for worker processes the worker's
    traceback as its cause); the items not started yet are cancelled and busy worker processes stopped. A function
    that worker processes cannot receive (a lambda, a function defined inside another) is refused with a
    `TypeError` before anything runs, naming the fixes: `threadpool=True`, `n_workers=0` or a module-level function.

    >>> parallel(abs, [-1, 2, -3], n_workers=0)
    [1, 2, 3]
    >>> parallel(pow, [1, 2, 3], 2, threadpool=True, n_workers=2)   # pow(2, item)
    [2, 4, 8]
    """
    if not callable(f):
        raise TypeError(f"parallel: f must be callable, got {f!r} ({type(f).__name__})")
    if isinstance(items, (str, bytes)):
        raise TypeError(f"parallel: items must be a collection of items, got the string {_repr.repr(items)}; "
                        f"pass [the_string] for a single item or list(the_string) for its characters")
    items = list(items)
    n = _check_int(defaults.cpus if n_workers is None else n_workers, "n_workers", 0)
    chunksize = _check_int(chunksize, "chunksize", 1)
    pause = _check_seconds(pause, "pause", allow_zero=True)
    if timeout is not None:
        timeout = _check_seconds(timeout, "timeout", allow_zero=False)
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise TypeError(f"parallel: progress must be True/False/None or a callable like progress_bar(it, total=n), "
                        f"got {progress!r}")
    if total is not None:
        total = _check_int(total, "total", 0)
    if threadpool and method is not None:
        raise ValueError(f"parallel: method={method!r} says how worker processes start; threadpool=True starts "
                         f"none. Drop one of the two")
    call: Callable[[Any], Any] = functools.partial(f, *args, **kwargs) if args or kwargs else f
    count = len(items) if total is None else total
    jobs = list(enumerate(items))
    if n == 0 or not items:
        import threading

        lock = threading.Lock()
        results = (_apply(call, lock, pause, return_exceptions, job) for job in jobs)
        return L(list(_with_progress(results, progress, count)))
    if threadpool:
        return _run_pool(call, jobs, n, None, pause, timeout, 1, return_exceptions, progress, count)
    import multiprocessing

    try:
        ctx = multiprocessing.get_context(method)
    except ValueError as e:
        raise ValueError(f"parallel: unknown start method {method!r}; this platform has "
                         f"{multiprocessing.get_all_start_methods()} (or None for its default)") from e
    _check_picklable(f, args, kwargs, ctx.get_start_method())
    return _run_pool(call, jobs, n, ctx, pause, timeout, chunksize, return_exceptions, progress, count)


def _run_pool(call: Callable[[Any], Any], jobs: list[tuple[int, Any]], n: int, ctx: Any, pause: float,
              timeout: float | None, chunksize: int, return_exceptions: bool, progress: Any, count: int) -> L:
    """Map `_apply` over `jobs` in a thread pool (`ctx` None) or a process pool of start context `ctx`, collecting
    results in order; on any failure the pool is stopped and the error says which item it was at."""
    import concurrent.futures as cf

    processes = ctx is not None
    workers = min(n, -(-len(jobs) // chunksize))
    ex: Any
    if processes:
        lock = ctx.Lock() if pause else None
        ex = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(lock,))
        g = functools.partial(_apply, call, None, pause, return_exceptions)
    else:
        import threading

        ex = cf.ThreadPoolExecutor(workers, thread_name_prefix="tiers-parallel")
        g = functools.partial(_apply, call, threading.Lock(), pause, return_exceptions)
    out: list[Any] = []
    try:
        results = ex.map(g, jobs, timeout=timeout, chunksize=chunksize)
        for r in _with_progress(results, progress, count):
            out.append(r)
    except BaseException as e:
        timed_out = isinstance(e, TimeoutError) and not _noted(e)
        # threads finish their current item before an error is raised (they cannot be stopped), but a timeout or
        # Ctrl-C is not kept waiting for them
        _stop(ex, processes, wait=isinstance(e, Exception) and not timed_out)
        if not _noted(e):
            i = len(out)
            where = (f"item {i}" if chunksize == 1 else
                     f"the chunk of items {i}..{min(i + chunksize, len(jobs)) - 1} (chunksize={chunksize})")
            if timed_out:
                e.add_note(f"{_NOTE}{len(out)} of {len(jobs)} items finished within timeout={timeout}s (a limit on "
                           f"the whole call, as in fastcore); {where} was not ready. "
                           + ("The worker processes were stopped." if processes else
                              "Threads cannot be stopped: the busy ones finish in the background."))
            elif processes and isinstance(e, cf.BrokenExecutor):
                e.add_note(f"{_NOTE}a worker process died (killed by the OS, out of memory, or it called "
                           f"os._exit) while running {where} or a later one. Try fewer n_workers, or n_workers=0 "
                           f"to run in this process and see the error")
            elif isinstance(e, Exception):
                e.add_note(f"{_NOTE}while collecting the result of {where} of {_name(call)} (an item or its result "
                           f"that cannot be passed between processes fails here)")
        raise
    ex.shutdown(wait=True)
    return L(out)
