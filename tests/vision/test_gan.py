"""GAN: modules, losses, switching, and a WGAN trained briefly on generated data."""

import pytest
import torch
from torch import nn

from tiers.data import DataBlock, IndexSplitter, Normalize, TransformBlock, get_image_files
from tiers.optim import RMSProp
from tiers.tensors import set_seed
from tiers.vision import (
    AdaptiveGANSwitcher,
    AdaptiveLoss,
    FixedGANSwitcher,
    GANLearner,
    GANModule,
    ImageBlock,
    InvisibleTensor,
    PILImageBW,
    Resize,
    accuracy_thresh_expand,
    basic_critic,
    basic_generator,
    gan_critic,
    gan_loss_from_func,
    generate_noise,
)


def test_generator_and_critic_shapes():
    g = basic_generator(16, n_channels=1, in_sz=20, n_features=16)
    img = g(torch.randn(3, 20))
    assert img.shape == (3, 1, 16, 16) and img.abs().max() <= 1
    c = basic_critic(16, n_channels=1, n_features=16)
    assert c(img).shape == (3, 1)
    assert gan_critic(n_channels=3, nf=8, n_blocks=1)(torch.randn(2, 3, 32, 32)).shape[0] == 2


def test_gan_module_switches():
    gan = GANModule(nn.Linear(2, 3), nn.Linear(3, 1))
    assert gan(torch.randn(4, 3)).shape == (4, 1)
    gan.switch()
    assert gan.gen_mode and gan(torch.randn(4, 2)).shape == (4, 3)
    gan.switch(False)
    assert not gan.gen_mode


def test_noise_and_helpers():
    n = generate_noise("any file", size=7)
    assert type(n) is InvisibleTensor and n.shape == (7,) and n.show(ctx="ctx") == "ctx"
    loss = AdaptiveLoss(nn.BCEWithLogitsLoss())
    out, targ = torch.randn(4, 5), torch.tensor([1.0, 0, 1, 0])
    assert loss(out, targ).ndim == 0
    assert 0 <= accuracy_thresh_expand(out, targ).item() <= 1
    lg, lc = gan_loss_from_func(nn.MSELoss(), nn.BCEWithLogitsLoss(), weights_gen=(1.0, 0.0))
    fake = torch.zeros(4)
    assert lg(fake, torch.zeros(4, 2), torch.ones(4, 2)).item() == pytest.approx(nn.BCEWithLogitsLoss()(fake, torch.ones(4)).item())
    assert lc(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(0.6931, abs=1e-3)


def test_wgan_trains_on_generated_digits(mnist_path):
    set_seed(0)
    dblock = DataBlock(blocks=(TransformBlock, ImageBlock(cls=PILImageBW)), get_x=lambda o: generate_noise(o, size=16),
                       get_items=get_image_files, splitter=IndexSplitter(range(8)), item_tfms=Resize(16),
                       batch_tfms=Normalize.from_stats(torch.tensor([0.5]), torch.tensor([0.5]), cuda=False))
    dls = dblock.dataloaders(mnist_path / "train", bs=16, device="cpu")
    gen = basic_generator(16, n_channels=1, in_sz=16, n_features=16)
    crit = basic_critic(16, n_channels=1, n_features=16)
    learn = GANLearner.wgan(dls, gen, crit, opt_func=RMSProp, lr=5e-4)
    w0 = [p.detach().clone() for p in gen.parameters()]
    learn.fit(1)
    trainer = learn.gan_trainer
    assert trainer.crit_losses and trainer.gen_losses
    # five critic batches per generator batch
    assert len(trainer.crit_losses) >= 4 * len(trainer.gen_losses)
    assert any(not torch.equal(a, b) for a, b in zip(w0, gen.parameters())), "the generator learned"
    # weights are clipped to [-0.01, 0.01] before each batch (kaiming init starts them around 0.3); the last
    # critic step may have moved them by about one learning rate since
    assert max(p.abs().max().item() for p in crit.parameters() if p.ndim > 1) <= 0.01 + 1e-2
    assert [m.name for m in learn.metrics][-2:] == ["gen_loss", "crit_loss"]
    fakes = learn.gan_trainer.last_gen
    assert fakes.shape[1:] == (1, 16, 16)
    learn.show_results(max_n=4)
    dls.show_batch(max_n=4)


def test_adaptive_switcher_alternates_without_thresholds(mnist_path):
    # No thresholds: switch after every batch, so critic and generator batches alternate.
    set_seed(1)
    dblock = DataBlock(blocks=(TransformBlock, ImageBlock(cls=PILImageBW)), get_x=lambda o: generate_noise(o, size=8),
                       get_items=get_image_files, splitter=IndexSplitter(range(4)), item_tfms=Resize(8))
    dls = dblock.dataloaders(mnist_path / "train" / "3", bs=8, device="cpu")
    gen, crit = basic_generator(8, n_channels=1, in_sz=8, n_features=8), basic_critic(8, n_channels=1, n_features=8)
    losses = gan_loss_from_func(nn.MSELoss(), AdaptiveLoss(nn.BCEWithLogitsLoss()))
    learn = GANLearner(dls, gen, crit, *losses, switcher=AdaptiveGANSwitcher(), lr=1e-3)
    learn.fit(1)
    t = learn.gan_trainer
    assert abs(len(t.crit_losses) - len(t.gen_losses)) <= 1 and len(t.crit_losses) >= 2
    assert FixedGANSwitcher(n_crit=5).n_crit == 5
