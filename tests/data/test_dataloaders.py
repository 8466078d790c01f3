import pickle

import pytest
import torch

from tiers.data import DataLoader, DataLoaders


def make(**kw):
    return DataLoaders(DataLoader(list(range(8)), bs=4, shuffle=True, seed=0),
                       DataLoader(list(range(4)), bs=2), **kw)


def test_train_valid_indexing_and_loaders():
    dls = make(path="/tmp")
    assert dls.train is dls[0] and dls.valid is dls[1] and dls.loaders == [dls[0], dls[1]]
    assert dls.train_ds == list(range(8)) and dls.valid_ds == list(range(4))
    assert str(dls.path) == "/tmp" and len(dls) == 2
    new_valid = DataLoader([9], bs=1)
    dls.valid = new_valid
    assert dls[1] is new_valid


def test_one_batch_and_n_inp_default():
    dls = make()
    assert dls.one_batch().shape == (4,) and set(dls.one_batch().tolist()) <= set(range(8))
    assert dls.n_inp == 1


def test_device_set_moves_tiers_loaders():
    dls = make(device="cpu")
    assert dls.device == torch.device("cpu") and dls.train.device == torch.device("cpu")
    assert dls.to("meta") is dls and dls.valid.device == torch.device("meta")
    assert dls.cpu().device == torch.device("cpu")


def test_plain_torch_loaders_are_wrapped():
    ds = torch.utils.data.TensorDataset(torch.randn(6, 2), torch.arange(6))
    dls = DataLoaders(torch.utils.data.DataLoader(ds, batch_size=3), torch.utils.data.DataLoader(ds, batch_size=2))
    x, y = dls.one_batch()
    assert x.shape == (3, 2) and y.tolist() == [0, 1, 2]
    dls.device = "cpu"  # only recorded: torch loaders have no device
    assert dls.device == torch.device("cpu") and dls.n_inp == 1 and dls.train_ds is ds
    assert dls.tensors is ds.tensors  # forwarded to the training loader's dataset
    empty = dls.new_empty()
    assert len(empty.train.dataset) == 0
    with pytest.raises(TypeError, match="TfmdDL"):
        dls.show_batch()
    with pytest.raises(TypeError, match="TfmdDL"):
        dls.add_tfms([lambda b: b], "after_batch")


def test_attribute_forwarding_and_clear_error():
    class DS(list):
        vocab = ["cat", "dog"]
        n_inp = 2

    dls = DataLoaders(DataLoader(DS([1, 2]), bs=1), DataLoader(DS([3]), bs=1))
    assert dls.vocab == ["cat", "dog"] and dls.n_inp == 2
    with pytest.raises(AttributeError, match="missing_thing"):
        dls.missing_thing


def test_missing_valid_and_bad_loader():
    dls = DataLoaders(DataLoader([1], bs=1))
    with pytest.raises(IndexError, match="no `valid`"):
        dls.valid
    with pytest.raises(TypeError, match="loader 0"):
        DataLoaders(3)


def test_add_tfms_bad_event():
    with pytest.raises(ValueError, match="after_everything"):
        make().add_tfms([], "after_everything")


def test_test_dl_uses_valid_settings():
    dls = make()
    tdl = dls.test_dl([5, 6, 7])
    assert tdl.bs == 2 and not tdl.shuffle and [b.tolist() for b in tdl] == [[5, 6], [7]]


def test_pickle_roundtrip():
    dls = make()
    list(dls.train)
    d2 = pickle.loads(pickle.dumps(dls))
    assert [b.tolist() for b in d2.valid] == [[0, 1], [2, 3]]
