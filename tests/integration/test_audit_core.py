"""Audit: fastai parity of the foundations a porter leans on without thinking (L, the functional helpers,
Transform/Pipeline dispatch, decode, split_idx, setups, ItemTransform, Categorize & co).

Each row is an expression and the repr fastai 2.8.12 / fastcore 2.2.39 / fasttransform 0.0.5 gave for it, recorded
by running the same expression in the bench environment (the only one with fastai). The one deliberate difference,
L's `(#n)` prefix for 10+ items (the form the paper prints), is left out here and pinned by the paper listing tests.
"""

import numpy as np  # noqa: F401 (the expressions below are eval'd)
import pytest
import torch  # noqa: F401

from tiers.data.all import (  # noqa: F401
    Categorize,
    EncodedMultiCategorize,
    IntToFloatTensor,
    MultiCategorize,
    Normalize,
    OneHotEncode,
    RegressionSetup,
    TensorCategory,
    TensorImage,
    TensorMask,
    TensorMultiCategory,
    ToTensor,
)
from tiers.dispatch.all import (  # noqa: F401
    L,
    detuplify,
    even_mults,
    first,
    ifnone,
    listify,
    merge,
    noop,
    tuplify,
    uniqueify,
)
from tiers.pipeline.all import ItemTransform, Pipeline, Transform  # noqa: F401


class A(Transform):
    def encodes(self, x: int): return x + 1
    def encodes(self, x: float): return x * 2  # noqa: F811 (dispatch on the annotation)
    def decodes(self, x: int): return x - 1


class B(Transform):
    order = -1
    def encodes(self, x): return x


class NegTfm(Transform):
    def encodes(self, x: TensorImage): return -x


class TrainOnly(Transform):
    split_idx = 0
    def encodes(self, x: int): return x * 100


class Norm(Transform):
    def setups(self, items): self.m = sum(items) / len(items)
    def encodes(self, x): return x - self.m
    def decodes(self, x): return x + self.m


class IT(ItemTransform):
    def encodes(self, xy):
        x, y = xy
        return (y, x)


class Tup(Transform):
    def encodes(self, x: int): return x * 10


FASTCORE = [
    ('L(1,2,3)', '[1, 2, 3]'),
    ('L([1,2,3]).map(lambda o:o*2)', '[2, 4, 6]'),
    ('L(1,2,3).filter(lambda o:o>1)', '[2, 3]'),
    ('L(1,2,3)[[0,2]]', '[1, 3]'),
    ('L(1,2,3)[[True,False,True]]', '[1, 3]'),
    ("L('abc')", "['abc']"),
    ('L([1,2])+[3]', '[1, 2, 3]'),
    ('[0]+L(1)', '[0, 1]'),
    ('L(1,2,3)*2', '[1, 2, 3, 1, 2, 3]'),
    ('L(1,2,3).sum()', '6'),
    ('L(3,1,2).sorted()', '[1, 2, 3]'),
    ('L(3,1,2).sorted(reverse=True)', '[3, 2, 1]'),
    ("L([(1,'a'),(2,'b')]).itemgot(1)", "['a', 'b']"),
    ('L(1,1,2,3,3).unique()', '[1, 2, 3]'),
    ('L(1,2,3).val2idx()', '{1: 0, 2: 1, 3: 2}'),
    ('L([1,[2,[3]]]).concat()', '[1, 2, [3]]'),
    ('L([[1,2],[3]]).concat()', '[1, 2, 3]'),
    ('L(1,2,3).argwhere(lambda o:o>1)', '[1, 2]'),
    ('L(1,2,3).argfirst(lambda o:o>1)', '1'),
    ('L(1,2,3).zipwith(L(4,5,6))', '[(1, 4), (2, 5), (3, 6)]'),
    ('L.range(5)', '[0, 1, 2, 3, 4]'),
    ('L.range(2,10,3)', '[2, 5, 8]'),
    ("L.split('a,b,c', ',')", "['a', 'b', 'c']"),
    ('L(1,2,3).enumerate()', '[(0, 1), (1, 2), (2, 3)]'),
    ('L(1,2,3).reduce(lambda a,b:a*b)', '6'),
    ('L(1,2,3,4).partition(lambda o:o%2)', '([1, 3], [2, 4])'),
    ("L(dict(a=1),dict(a=2)).attrgot('a')", '[1, 2]'),
    ('L(1,2,3)==[1,2,3]', 'True'),
    ('L(np.array([1,2]))', '[array([1, 2])]'),
    ('L(None)', '[]'),
    ('L()', '[]'),
    ('L(1)', '[1]'),
    ('len(L(range(300)))', '300'),
    ("L(1,2,3).map('{}!'.format)", "['1!', '2!', '3!']"),
    ('L(1,2,3).map(str)', "['1', '2', '3']"),
    ('L(1,2,3).shuffle() is not None', 'True'),
    ('L([1,2,3]).copy()', '[1, 2, 3]'),
    ('L(1,2,3).groupby(lambda o:o%2)', '{1: [1, 3], 0: [2]}'),
    ("L(['a','b']).map_dict(str.upper)", "{'a': 'A', 'b': 'B'}"),
    ('L([3,1,2]).sorted(key=lambda o:-o)', '[3, 2, 1]'),
    ('L(1,2,3)[1:]', '[2, 3]'),
    ('~L(True,False)', '[False, True]'),
    ('L(1,2,3).product()', '6'),
    ('ifnone(None, 3)', '3'),
    ('listify(None)', '[]'),
    ('listify((1,2))', '[1, 2]'),
    ("listify('ab')", "['ab']"),
    ('listify(np.array([1,2]))', '[array([1, 2])]'),
    ('tuplify(1)', '(1,)'),
    ('tuplify([1,2])', '(1, 2)'),
    ('detuplify([1])', '1'),
    ('first([], None) if False else first([])', 'None'),
    ('even_mults(1e-4,1e-2,3)', '[0.0001, 0.001, 0.01]'),
    ('noop(3)', '3'),
    ('uniqueify([1,1,2])', '[1, 2]'),
    ('merge(dict(a=1),dict(b=2))', "{'a': 1, 'b': 2}"),
    ('Transform(lambda o:o+1)(1)', '2'),
    ('Pipeline([lambda o:o+1, lambda o:o*2])(3)', '8'),
    ('Pipeline([])(3)', '3'),
    ('Transform(lambda o:o+1).decode(2)', '2'),
]

FASTTRANSFORM = [
    ('A()(1)', '2'),
    ('A()(1.5)', '3.0'),
    ("A()('s')", "'s'"),
    ('A().decode(5)', '4'),
    ('A()((1,2.0))', '(2, 4.0)'),
    ('A()([1,2])', '[1, 2]'),
    ('Pipeline([A(),A()])(1)', '3'),
    ('Pipeline([A(),A()]).decode(3)', '1'),
    ('NegTfm()(TensorImage(torch.ones(2)))', 'TensorImage([-1., -1.])'),
    ('type(NegTfm()(TensorImage(torch.ones(2)))).__name__', "'TensorImage'"),
    ('NegTfm()(torch.ones(2))', 'tensor([1., 1.])'),
    ('TrainOnly()(2)', '2'),
    ('TrainOnly()(2, split_idx=1)', '2'),
    ('TrainOnly()(2, split_idx=0)', '200'),
    ('Pipeline([TrainOnly()], split_idx=1)(2)', '2'),
    ('(lambda n:(n.setup([1,2,3]), n(5), n.decode(3)))(Norm())', '(None, 3.0, 5.0)'),
    ('IT()((1,2))', '(2, 1)'),
    ('Tup()((1,2))', '(10, 20)'),
    ('Tup()([1,2])', '[1, 2]'),
    ("Tup()({'a':1})", "{'a': 1}"),
    ('[type(t).__name__ for t in Pipeline([A(), B()]).fs]', "['B', 'A']"),
    ('Pipeline([A()]).fs', '[A(enc:2,dec:1)]'),
    ('Transform(lambda o:o+1).name', "'<lambda>'"),
    ('A().name', "'A'"),
    ('repr(A())', "'A(enc:2,dec:1)'"),
    ('repr(Pipeline([A(),Norm()]))', "'Pipeline: A -> Norm'"),
    ('Pipeline([lambda o: o+1]).decode(5)', '5'),
    ('type(Transform(lambda x: x*2)(TensorImage(torch.ones(2)))).__name__', "'TensorImage'"),
    ("Categorize(vocab=['a','b'])('b')", 'TensorCategory(1)'),
    ("Categorize(vocab=['a','b']).decode(TensorCategory(1))", "'b'"),
    ("(lambda c:(c.setup(['x','y','x']), list(c.vocab)))(Categorize())", "(None, ['x', 'y'])"),
    ("(lambda c:(c.setup([['x','y'],['x']]), list(c.vocab)))(MultiCategorize())", "(None, ['x', 'y'])"),
    ("MultiCategorize(vocab=['a','b','c'])(['a','c'])", 'TensorMultiCategory([0, 2])'),
    ('OneHotEncode(3)(TensorMultiCategory([0,2]))', 'TensorMultiCategory([1., 0., 1.])'),
    ("EncodedMultiCategorize(vocab=['a','b','c'])(torch.tensor([1.,0,1]))", 'TensorMultiCategory([1., 0., 1.])'),
    ("EncodedMultiCategorize(vocab=['a','b','c']).decode(torch.tensor([1.,0,1]))", "['a', 'c']"),
    ('(lambda r:(r.setup([1.0,2.0]), r(3.0)))(RegressionSetup())', '(None, tensor(3.))'),
    ('IntToFloatTensor()(TensorImage(torch.tensor([255],dtype=torch.uint8)))', 'TensorImage([1.])'),
    ('IntToFloatTensor()(TensorMask(torch.tensor([1],dtype=torch.uint8)))', 'TensorMask([1])'),
    ('ToTensor()(np.array([1,2]))', 'array([1, 2])'),
    ('Normalize.from_stats([0.5],[0.5])(TensorImage(torch.ones(1,1,2,2)))', 'TensorImage([[[[1., 1.], [1., 1.]]]])'),
    ('Normalize.from_stats([0.5],[0.5]).decode(TensorImage(torch.zeros(1,1,2,2)))', 'TensorImage([[[[0.5000, 0.5000], [0.5000, 0.5000]]]])'),
    ('Normalize.from_stats([0.5],[0.5])(torch.ones(1,1,2,2))', 'tensor([[[[1., 1.], [1., 1.]]]])'),
]


def _r(expr):
    return " ".join(repr(eval(expr)).split())


@pytest.mark.parametrize(("expr", "expected"), FASTCORE, ids=[e for e, _ in FASTCORE])
def test_l_and_helpers_as_fastcore(expr, expected):
    assert _r(expr) == expected


@pytest.mark.parametrize(("expr", "expected"), FASTTRANSFORM, ids=[e for e, _ in FASTTRANSFORM])
def test_transforms_as_fasttransform(expr, expected):
    assert _r(expr) == expected


def test_l_repr_counts_long_lists_as_the_paper_prints():
    assert repr(L(range(20))) == "(#20) [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...]"
    assert repr(L(1, 2, 3)) == "[1, 2, 3]"
