"""The multi-process engine: slices in order, large results, errors and early stops."""

import multiprocessing as mp
import os
import time

import pytest

from tiers.text.process_engine import check_workers, map_slices


def _square_slice(xs):
    return [x * x for x in xs]


def _pid_slice(xs):
    # Slow enough that the worker surely gets slices of its own.
    time.sleep(0.002 * len(xs))
    return [(x, os.getpid()) for x in xs]


@pytest.mark.parametrize("n_workers", [0, 1, 2, 3])
@pytest.mark.parametrize("n", [0, 1, 5, 97, 1000])
def test_slices_cover_the_items_in_order(n, n_workers):
    out = list(map_slices(list(range(n)), _square_slice, n_workers))
    starts = [s for s, _ in out]
    assert starts == sorted(starts)
    assert [x for _, r in out for x in r] == [i * i for i in range(n)]
    # Each slice's start is where the previous one stopped.
    assert starts == [sum(len(r) for _, r in out[:k]) for k in range(len(out))]


def test_this_process_and_a_worker_share_the_work():
    out = [x for _, r in map_slices(list(range(200)), _pid_slice, 2) for x in r]
    assert [x for x, _ in out] == list(range(200))
    pids = {p for _, p in out}
    assert os.getpid() in pids and len(pids) == 2


def _big_slice(xs):
    # About 1 MB per slice of 8: several times the pipe's capacity, so the worker must not wait on the parent.
    return [("x" * 131_072, i) for i in xs]


def test_results_larger_than_the_pipe_arrive_whole():
    out = [x for _, r in map_slices(list(range(64)), _big_slice, 2) for x in r]
    assert [i for _, i in out] == list(range(64))
    assert all(len(s) == 131_072 for s, _ in out)


def test_check_workers():
    assert check_workers(None, "f", default=3) == 3
    assert check_workers(0, "f", default=3) == 0
    for bad in (-1, 1.5, "2", True):
        with pytest.raises(ValueError, match=f"f: n_workers={bad!r}"):
            check_workers(bad, "f", default=2)


def _fail_outside(main_pid):
    def work(xs):
        if os.getpid() != main_pid:
            raise KeyError(f"slice at {xs[0]}")
        time.sleep(0.002 * len(xs))
        return list(xs)
    return work


def test_worker_error_names_the_worker_traceback():
    with pytest.raises(KeyError, match="slice at") as e:
        list(map_slices(list(range(300)), _fail_outside(os.getpid()), 2, where="my_caller"))
    assert "In the worker process" in str(e.value.__cause__) and "work" in str(e.value.__cause__)
    assert not [p for p in mp.active_children() if p.is_alive()]


def _die_outside(main_pid):
    def work(xs):
        if os.getpid() != main_pid:
            os._exit(7)
        time.sleep(0.002 * len(xs))
        return list(xs)
    return work


def test_dead_worker_raises_naming_the_caller():
    with pytest.raises(RuntimeError, match="my_caller: a worker process died \\(exit code 7\\)"):
        list(map_slices(list(range(300)), _die_outside(os.getpid()), 2, where="my_caller"))


def test_closing_early_stops_the_workers():
    gen = map_slices(list(range(600)), _pid_slice, 3)
    start, first = next(gen)
    assert start == 0 and first[0][0] == 0
    gen.close()
    assert not [p for p in mp.active_children() if p.is_alive()]


def _fail_here(main_pid):
    def work(xs):
        if os.getpid() == main_pid and xs[0] > 0:
            raise ZeroDivisionError("in the caller's process")
        time.sleep(0.002 * len(xs))
        return list(xs)
    return work


def test_error_in_this_process_propagates_and_stops_the_workers():
    with pytest.raises(ZeroDivisionError, match="caller's process"):
        list(map_slices(list(range(300)), _fail_here(os.getpid()), 2))
    assert not [p for p in mp.active_children() if p.is_alive()]


def test_back_to_back_calls_stay_apart():
    # Quick work: this process often finishes before the worker has even started. That late worker still takes
    # slices off its call's counter, which must not have become the next call's counter meanwhile.
    for n in (5, 97, 400) * 15:
        out = list(map_slices(list(range(n)), _square_slice, 2))
        assert [x for _, r in out for x in r] == [i * i for i in range(n)]
