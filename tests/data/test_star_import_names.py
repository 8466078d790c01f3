"""The everyday names fastai's star import carries (fastai.imports) come with `from tiers.data.all import *`, so a
notebook ported by changing the import line does not stop on a NameError."""

import subprocess
import sys
import textwrap


def test_fastai_everyday_names_come_with_the_star_import():
    code = textwrap.dedent("""
        from tiers.data.all import *
        c = Counter("abca"); d = defaultdict(list); d["k"].append(1)
        P = namedtuple("P", "x y"); od = OrderedDict(a=1)
        assert c["a"] == 2 and d["k"] == [1] and P(1, 2).y == 2 and list(od) == ["a"]
        @contextmanager
        def cm():
            yield 3
        with cm() as v:
            assert v == 3
        t0 = time.time(); assert datetime.date(2020, 1, 2).year == 2020
        assert pickle.loads(pickle.dumps([1])) == [1] and operator.add(1, 2) == 3
        assert callable(shutil.copy) and inspect.isfunction(cm.__wrapped__) and typing.Any is Any
        with warnings.catch_warnings():
            pass
        x: Optional[Union[int, str]] = None
        assert isinstance([1], Iterable) and isinstance(len, Callable)
        assert array([1, 2]).sum() == 3 and isinstance(array([1]), ndarray)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
