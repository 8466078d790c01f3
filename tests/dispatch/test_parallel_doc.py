"""`parallel` (fastcore's: worker processes, threads or this process; results in item order) and `doc` (fastai's:
signature and docstring), the names fastai notebooks use without importing them (AUDIT B9)."""

import doctest
import functools
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import tiers.dispatch
from tiers.dispatch import L, defaults, doc, parallel, showdoc, workers

# Worker functions live at module level: worker processes receive them by name.


def _square(x):
    return x * x


def _pid(_):
    return os.getpid()


def _affine(a, x, b=0):
    return a * x + b


def _late_first(x):
    # later items finish first: the results must still come back in item order
    time.sleep(0.05 * (5 - x))
    return x


def _fail_on_3(x):
    if x == 3:
        raise ValueError(f"bad value {x}")
    return x


def _fail_on_0_else_sleep(x):
    if x == 0:
        raise RuntimeError("first item broken")
    time.sleep(5)
    return x


def _now(_):
    return time.monotonic()


def _unpicklable_result(_):
    return threading.Lock()


# ----------------------------------------------------------------------------------------------- parallel


def test_processes_apply_f_to_every_item_in_order_in_other_processes():
    assert parallel(_square, range(20), n_workers=2) == [x * x for x in range(20)]
    pids = parallel(_pid, range(8), n_workers=2)
    assert isinstance(pids, L) and len(pids) == 8
    assert os.getpid() not in pids and 1 <= len(set(pids)) <= 2


@pytest.mark.parametrize("threadpool", [False, True])
def test_order_is_the_items_order_when_later_items_finish_first(threadpool):
    assert parallel(_late_first, range(5), n_workers=5, threadpool=threadpool) == [0, 1, 2, 3, 4]


def test_args_come_before_the_item_and_kwargs_are_passed_as_fastcore_does():
    assert parallel(_affine, [1, 2, 3], 10, b=5, n_workers=2) == [15, 25, 35]
    assert parallel(_affine, [1, 2, 3], 10, b=5, n_workers=2, threadpool=True) == [15, 25, 35]
    assert parallel(_affine, [1, 2, 3], 10, b=5, n_workers=0) == [15, 25, 35]


def test_chunks_and_generators():
    assert parallel(_square, (x for x in range(11)), n_workers=2, chunksize=4) == [x * x for x in range(11)]
    assert parallel(_square, [], n_workers=2) == []


def test_threads_take_lambdas_and_closures_and_run_in_pool_threads():
    seen = []
    names = parallel(lambda x: seen.append(x) or threading.current_thread().name, range(6), n_workers=2,
                     threadpool=True)
    assert sorted(seen) == list(range(6))
    assert all(n.startswith("tiers-parallel") for n in names) and len(set(names)) <= 2


def test_n_workers_0_runs_a_lambda_here_one_item_after_the_other():
    seen = []
    out = parallel(lambda x: seen.append(x) or (os.getpid(), threading.get_ident()), range(4), n_workers=0)
    assert seen == [0, 1, 2, 3]
    assert set(out) == {(os.getpid(), threading.get_ident())}


def test_n_workers_none_means_defaults_cpus(monkeypatch):
    monkeypatch.setattr(defaults, "cpus", 0)  # read at call time: 0 runs here, which a lambda proves
    assert parallel(lambda x: x + 1, [1, 2]) == [2, 3]


def test_a_lambda_or_a_local_function_with_processes_is_refused_with_the_fix():
    def local(x):
        return x

    for f, what in ((lambda x: x, "a lambda"), (local, "local")):
        with pytest.raises(TypeError, match="cannot be sent to worker processes") as err:
            parallel(f, [1, 2], n_workers=2)
        msg = str(err.value)
        assert what in msg and "threadpool=True" in msg and "n_workers=0" in msg and "module level" in msg
    with pytest.raises(TypeError, match="an argument passed on to '_affine'.*threadpool=True"):
        parallel(_affine, [1], 2, b=threading.Lock(), n_workers=2)


def test_a_function_from_an_interactive_session_is_refused_for_spawned_workers():
    code = textwrap.dedent("""
        from tiers.dispatch import parallel
        def f(x):
            return x
        try:
            parallel(f, [1], n_workers=1, method="spawn")
        except TypeError as e:
            print(e)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "interactive session" in r.stdout and "threadpool=True" in r.stdout and "'spawn'" in r.stdout


@pytest.mark.parametrize("how", [dict(n_workers=2), dict(n_workers=2, chunksize=4), dict(n_workers=2, threadpool=True),
                                 dict(n_workers=0)])
def test_an_error_in_f_is_reraised_naming_the_item(how):
    with pytest.raises(ValueError, match="bad value 3") as err:
        parallel(_fail_on_3, range(8), **how)
    notes = err.value.__notes__
    assert any("_fail_on_3 failed on item 3: 3" in n for n in notes), notes
    assert len([n for n in notes if n.startswith("parallel: ")]) == 1, notes
    if how.get("n_workers") and not how.get("threadpool"):
        assert "bad value 3" in str(err.value.__cause__)  # the worker's traceback


def test_return_exceptions_gives_the_error_as_that_items_result():
    out = parallel(_fail_on_3, range(5), n_workers=2, return_exceptions=True)
    assert out[:3] == [0, 1, 2] and out[4] == 4
    assert isinstance(out[3], ValueError) and "failed on item 3" in out[3].__notes__[0]


def test_the_first_error_stops_the_pool_instead_of_waiting_for_the_other_items():
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="first item broken"):
        parallel(_fail_on_0_else_sleep, range(6), n_workers=2)
    assert time.monotonic() - t0 < 4  # each other item sleeps 5 s: the busy worker was stopped, the rest cancelled


def test_timeout_raises_and_stops_the_workers():
    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as err:
        parallel(_fail_on_0_else_sleep, [1, 2], n_workers=2, timeout=0.5)
    assert time.monotonic() - t0 < 4
    assert any("timeout=0.5s" in n and "stopped" in n for n in err.value.__notes__)


def test_a_result_that_cannot_come_back_names_the_item():
    with pytest.raises(Exception, match="lock") as err:
        parallel(_unpicklable_result, [0], n_workers=1)
    assert any("result of item 0" in n for n in err.value.__notes__), err.value.__notes__


@pytest.mark.parametrize("threadpool", [False, True])
def test_pause_staggers_the_starts_of_items(threadpool):
    # four workers, so without `pause` all four would start at once; with it, one start every 0.2 s (the span is
    # checked, not each gap: a worker may be scheduled late after its own pause, which shrinks one gap)
    starts = sorted(parallel(_now, range(4), n_workers=4, pause=0.2, threadpool=threadpool))
    assert starts[-1] - starts[0] >= 0.45, starts


_MARK = "as imported"


def _mark(_):
    return _MARK


def test_method_picks_how_worker_processes_start(monkeypatch):
    # a forked worker inherits this process's state; a spawned one starts afresh and imports this module again
    monkeypatch.setattr(sys.modules[__name__], "_MARK", "set in the parent")
    assert parallel(_mark, [0], n_workers=1, method="fork") == ["set in the parent"]
    assert parallel(_mark, [0], n_workers=1, method="spawn") == ["as imported"]


def test_progress_true_counts_on_stderr_and_a_callable_wraps_the_results(capsys):
    assert parallel(_square, range(5), n_workers=0, progress=True) == [0, 1, 4, 9, 16]
    assert "parallel: 5/5 items" in capsys.readouterr().err
    calls = []

    def bar(it, total):
        calls.append(total)
        yield from it

    assert parallel(_square, range(5), n_workers=2, progress=bar) == [0, 1, 4, 9, 16]
    assert parallel(_square, range(5), n_workers=2, progress=bar, total=50) == [0, 1, 4, 9, 16]
    assert calls == [5, 50]


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(n_workers=-1), ValueError, "n_workers must be at least 0, got -1"),
    (dict(n_workers=1.5), TypeError, "n_workers must be an int, got 1.5"),
    (dict(n_workers=True), TypeError, "n_workers must be an int"),
    (dict(chunksize=0), ValueError, "chunksize must be at least 1"),
    (dict(pause=-1), ValueError, "pause must be >= 0"),
    (dict(timeout=0), ValueError, "timeout must be > 0"),
    (dict(method="nope"), ValueError, "unknown start method 'nope'; this platform has .*fork"),
    (dict(method="fork", threadpool=True), ValueError, "threadpool=True starts none"),
    (dict(progress="yes"), TypeError, "progress must be"),
])
def test_bad_arguments_are_refused_naming_the_value(kwargs, err, match):
    with pytest.raises(err, match=match):
        parallel(_square, [1, 2], **kwargs)


def test_bad_f_and_items_are_refused():
    with pytest.raises(TypeError, match="f must be callable, got 3"):
        parallel(3, [1])
    with pytest.raises(TypeError, match=r"items must be a collection.*\[the_string\]"):
        parallel(_square, "abc", n_workers=0)


# ----------------------------------------------------------------------------------------------- doc


def test_doc_prints_the_signature_then_the_docstring_of_a_tiers_function(capsys):
    doc(L.map)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("L.map(self, f: Callable[..., Any] | str | Mapping[Any, Any], *args: Any")
    assert lines[1] == L.map.__doc__.strip().splitlines()[0]
    assert lines[-1].startswith("Defined in tiers.dispatch.foundation (") and "foundation.py, line " in lines[-1]
    doc(parallel)
    out = capsys.readouterr().out
    assert out.startswith("parallel(f: Callable[..., Any], items: Iterable[Any], *args: Any, n_workers: int | None = "
                          "None, total: int | None = None")
    assert "Call `f(*args, item, **kwargs)` for each of `items`" in out


def test_doc_of_a_class_a_bound_method_an_instance_a_module_and_a_builtin(capsys):
    doc(L)
    assert capsys.readouterr().out.startswith("L(items=None, *rest, use_list=False, match=None)\nA list with NumPy")
    doc(L([1]).map)
    assert capsys.readouterr().out.startswith("L.map(f: Callable")  # bound: no `self`
    doc(defaults)
    out = capsys.readouterr().out
    assert "(an instance of tiers.dispatch.defaults.Defaults)\nLibrary-wide settings" in out
    doc(tiers.dispatch)
    assert capsys.readouterr().out.startswith("tiers.dispatch\ntiers.dispatch: type dispatch")
    doc(dict)  # Python cannot tell its signature
    assert capsys.readouterr().out.startswith("dict(...)\n")


def test_doc_of_a_property_a_partial_and_an_undocumented_function(capsys):
    class Box:
        @property
        def size(self) -> int:
            "How big the box is."
            return 1

    def bare(a, *, b=2):
        pass

    doc(Box.size)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("<locals>.Box.size") and lines[1] == "How big the box is."  # a property: no signature
    doc(functools.partial(_affine, 2))
    out = capsys.readouterr().out
    assert out.startswith("partial(_affine)(x, b=0)\n(no docstring)")
    doc(bare)
    assert capsys.readouterr().out.startswith("test_doc_of_a_property_a_partial_and_an_undocumented_function.<locals>"
                                              ".bare(a, *, b=2)\n(no docstring)")


def test_docstring_examples_run():
    for mod in (workers, showdoc):
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert res.attempted and res.failed == 0, mod.__name__


def test_exported_everywhere_and_imported_lazily():
    assert {"parallel", "doc"} <= set(tiers.dispatch.__all__)
    ns: dict = {}
    exec("from tiers.dispatch.all import *", ns)
    assert ns["parallel"] is parallel and ns["doc"] is doc
    code = (
        "import sys\n"
        "import tiers.dispatch.all\n"
        "heavy = {'concurrent.futures', 'multiprocessing', 'inspect', 'IPython', 'pickle'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_doc_in_a_notebook_is_a_markdown_block(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("from tiers.dispatch.all import *\ndoc(L)"))
    env = {k: v for k, v in os.environ.items() if k != "TIERS_DEBUG"}
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute(env=env)
    outs = nb.cells[0].outputs
    assert [o.output_type for o in outs] == ["display_data"], outs
    md = outs[0].data["text/markdown"]
    assert md.startswith("### `L`\n\n```python\nL(items=None, *rest, use_list=False, match=None)\n```\n")
    assert "```python\n>>> t = L(range(10))" in md  # doctest examples in code fences, not Markdown quotes
    assert "*Defined in* `tiers.dispatch.foundation" in md
    assert outs[0].data["text/plain"].startswith("L(items=None, *rest")
