"""Generative adversarial networks (paper section 4.2.1), written as ordinary callbacks on the ordinary Learner.

A `GANModule` holds a generator and a critic and runs one of them (`gen_mode`); `GANLoss` computes the loss of
whichever is training; `GANTrainer` (a callback) freezes the other model, swaps inputs and targets for the critic
and switches everything together; `FixedGANSwitcher` / `AdaptiveGANSwitcher` decide when to switch. `GANLearner`
wires them, and `GANLearner.wgan` builds a Wasserstein GAN.

The data: inputs are noise (`generate_noise`, an `InvisibleTensor` that shows as nothing) and targets are real
images, e.g. `DataBlock(blocks=(TransformBlock, ImageBlock), get_x=generate_noise, get_items=get_image_files)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from tiers.dispatch import L, typedispatch
from tiers.tensors import TensorBase, TensorImage
from tiers.train import (
    AvgSmoothLoss,
    Callback,
    ConvLayer,
    Flatten,
    Learner,
    LossMetrics,
    MergeLayer,
    Module,
    NormType,
    SelfAttention,
    SequentialEx,
    init_default,
)
from tiers.vision.show import get_grid

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "GANModule", "basic_critic", "AddChannels", "basic_generator", "DenseResBlock", "gan_critic", "GANLoss",
    "AdaptiveLoss", "accuracy_thresh_expand", "set_freeze_model", "GANTrainer", "FixedGANSwitcher",
    "AdaptiveGANSwitcher", "GANDiscriminativeLR", "InvisibleTensor", "generate_noise", "gan_loss_from_func",
    "GANLearner", "show_batch", "show_results",
]


class GANModule(Module):
    """A generator and a critic behind one `forward`: the generator's when `gen_mode`, else the critic's."""

    def __init__(self, generator: nn.Module | None = None, critic: nn.Module | None = None,
                 gen_mode: bool = False) -> None:
        if generator is not None:
            self.generator = generator
        if critic is not None:
            self.critic = critic
        self.gen_mode = gen_mode

    def forward(self, *args: Any) -> Tensor:
        return self.generator(*args) if self.gen_mode else self.critic(*args)

    def switch(self, gen_mode: bool | None = None) -> None:
        """Run the generator (`True`), the critic (`False`), or the other one than now (`None`)."""
        self.gen_mode = (not self.gen_mode) if gen_mode is None else gen_mode


def basic_critic(in_size: int, n_channels: int, n_features: int = 64, n_extra_layers: int = 0,
                 norm_type: NormType | None = NormType.Batch, **kwargs: Any) -> nn.Sequential:
    """A DCGAN critic for `in_size` x `in_size` images: stride-2 convs doubling the features down to 4x4, then one
    score per image."""
    layers: list[nn.Module] = [ConvLayer(n_channels, n_features, 4, 2, 1, norm_type=None, **kwargs)]
    size, nf = in_size // 2, n_features
    layers += [ConvLayer(nf, nf, 3, 1, norm_type=norm_type, **kwargs) for _ in range(n_extra_layers)]
    while size > 4:
        layers.append(ConvLayer(nf, nf * 2, 4, 2, 1, norm_type=norm_type, **kwargs))
        nf, size = nf * 2, size // 2
    init = kwargs.get("init", nn.init.kaiming_normal_)
    layers += [init_default(nn.Conv2d(nf, 1, 4, padding=0), init), Flatten()]
    return nn.Sequential(*layers)


class AddChannels(Module):
    """Append `n_dim` axes of size 1: a noise vector (bs, n) becomes a (bs, n, 1, 1) map for transposed convs."""

    def __init__(self, n_dim: int) -> None:
        self.n_dim = n_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.view(*x.shape, *([1] * self.n_dim))


def basic_generator(out_size: int, n_channels: int, in_sz: int = 100, n_features: int = 64, n_extra_layers: int = 0,
                    **kwargs: Any) -> nn.Sequential:
    """A DCGAN generator: noise of `in_sz` values to an `out_size` image of `n_channels` in [-1, 1] (tanh)."""
    size, nf = 4, n_features // 2
    while size < out_size:
        size, nf = size * 2, nf * 2
    layers: list[nn.Module] = [AddChannels(2), ConvLayer(in_sz, nf, 4, 1, transpose=True, **kwargs)]
    size = 4
    while size < out_size // 2:
        layers.append(ConvLayer(nf, nf // 2, 4, 2, 1, transpose=True, **kwargs))
        nf, size = nf // 2, size * 2
    layers += [ConvLayer(nf, nf, 3, 1, 1, transpose=True, **kwargs) for _ in range(n_extra_layers)]
    layers += [nn.ConvTranspose2d(nf, n_channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


_conv_args: dict[str, Any] = dict(act_cls=partial(nn.LeakyReLU, negative_slope=0.2), norm_type=NormType.Spectral)


def _conv(ni: int, nf: int, ks: int = 3, stride: int = 1, self_attention: bool = False, **kwargs: Any) -> nn.Module:
    conv = ConvLayer(ni, nf, ks=ks, stride=stride, **_conv_args, **kwargs)
    return SequentialEx(conv, SelfAttention(nf)) if self_attention else conv


def DenseResBlock(nf: int, norm_type: NormType | None = NormType.Batch, **kwargs: Any) -> SequentialEx:
    """Two convs whose output is concatenated with their input (so the block doubles the channels)."""
    return SequentialEx(ConvLayer(nf, nf, norm_type=norm_type, **kwargs), ConvLayer(nf, nf, norm_type=norm_type, **kwargs),
                        MergeLayer(dense=True))


def gan_critic(n_channels: int = 3, nf: int = 128, n_blocks: int = 3, p: float = 0.15) -> nn.Sequential:
    """The critic of fastai's GAN examples: spectral-normalised convs, a dense residual block, self-attention."""
    layers: list[nn.Module] = [_conv(n_channels, nf, ks=4, stride=2), nn.Dropout2d(p / 2), DenseResBlock(nf, **_conv_args)]
    nf *= 2
    for i in range(n_blocks):
        layers += [nn.Dropout2d(p), _conv(nf, nf * 2, ks=4, stride=2, self_attention=i == 0)]
        nf *= 2
    layers += [ConvLayer(nf, 1, ks=4, bias=False, padding=0, norm_type=NormType.Spectral, act_cls=None), Flatten()]
    return nn.Sequential(*layers)


class GANLoss(GANModule):
    """The loss of a GAN: `gen_loss_func(fake_pred, output, target)` for the generator,
    `crit_loss_func(real_pred, fake_pred)` for the critic; the last values stay in `gen_loss` and `crit_loss`."""

    def __init__(self, gen_loss_func: Callable, crit_loss_func: Callable, gan_model: GANModule) -> None:
        super().__init__()
        self.gen_loss_func, self.crit_loss_func, self.gan_model = gen_loss_func, crit_loss_func, gan_model
        self.gen_loss, self.crit_loss = torch.zeros(()), torch.zeros(())

    # fastai's design: a GANLoss is a GANModule whose `generator`/`critic` are the two losses, not submodules
    def generator(self, output: Tensor, target: Tensor) -> Tensor:  # type: ignore[override]
        """Loss of the generator's `output`: what the critic thinks of it (plus any loss against `target`)."""
        fake_pred = self.gan_model.critic(output)
        self.gen_loss = self.gen_loss_func(fake_pred, output, target)
        return self.gen_loss

    def critic(self, real_pred: Tensor, input: Tensor) -> Tensor:  # type: ignore[override]
        """Loss of the critic: its scores `real_pred` on real images against its scores on fakes made from `input`."""
        with torch.no_grad():
            fake = self.gan_model.generator(input)
        fake_pred = self.gan_model.critic(fake)
        self.crit_loss = self.crit_loss_func(real_pred, fake_pred)
        return self.crit_loss


class AdaptiveLoss(Module):
    """Apply `crit` with the target broadcast to the output's shape (one label per image, many scores)."""

    def __init__(self, crit: Callable) -> None:
        self.crit = crit

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        return self.crit(output, target[:, None].expand_as(output).float())


def accuracy_thresh_expand(y_pred: Tensor, y_true: Tensor, thresh: float = 0.5, sigmoid: bool = True) -> Tensor:
    """Accuracy of `y_pred > thresh` (after a sigmoid) against labels broadcast like `AdaptiveLoss` does."""
    if sigmoid:
        y_pred = y_pred.sigmoid()
    return ((y_pred > thresh) == y_true[:, None].expand_as(y_pred).bool()).float().mean()


def set_freeze_model(m: nn.Module, rg: bool) -> None:
    """Set `requires_grad` of every parameter of `m` to `rg`."""
    for p in m.parameters():
        p.requires_grad_(rg)


class GANTrainer(Callback):
    """Train a `GANModule` by alternating generator and critic: only the model in training gets gradients, the
    critic sees (real image, noise) with input and target swapped, and `switch` flips model and loss together.

    `clip` clamps the critic's weights (WGAN), `switch_eval` puts the model not training in eval mode, `beta`
    smooths the recorded losses, `gen_first` starts with the generator.
    """

    order = 0  # after TrainEvalCallback (-10), which sets train/eval modes that `switch_eval` then adjusts

    def __init__(self, switch_eval: bool = False, clip: float | None = None, beta: float = 0.98,
                 gen_first: bool = False, show_img: bool = True) -> None:
        self.switch_eval, self.clip, self.gen_first, self.show_img = switch_eval, clip, gen_first, show_img
        self.gen_loss, self.crit_loss = AvgSmoothLoss(beta=beta), AvgSmoothLoss(beta=beta)
        self.gen_mode = gen_first

    def _set_trainable(self) -> None:
        train_model = self.generator if self.gen_mode else self.critic
        loss_model = self.critic if self.gen_mode else self.generator
        set_freeze_model(train_model, True)
        set_freeze_model(loss_model, False)
        if self.switch_eval:
            train_model.train()
            loss_model.eval()

    def before_fit(self) -> None:
        gan = self.learn.model
        if not isinstance(gan, GANModule):
            raise TypeError(f"GANTrainer needs a GANModule as the model, got {type(gan).__name__}; use GANLearner")
        self.generator, self.critic = gan.generator, gan.critic
        self.crit_losses: list = []
        self.gen_losses: list = []
        self.gen_loss.reset()
        self.crit_loss.reset()
        self.switch(self.gen_first)

    def before_train(self) -> None:
        # TrainEvalCallback (order -10) just put the whole GANModule in train mode: re-apply `switch_eval`.
        self._set_trainable()

    def before_validate(self) -> None:
        self.switch(gen_mode=True)

    def before_epoch(self) -> None:
        self.switch(self.gen_mode)

    def before_batch(self) -> None:
        if self.learn.training and self.clip is not None:
            with torch.no_grad():
                for p in self.critic.parameters():
                    p.clamp_(-self.clip, self.clip)
        if not self.gen_mode:
            self.learn.xb, self.learn.yb = self.learn.yb, self.learn.xb

    def after_batch(self) -> None:
        if not self.learn.training:
            return
        if self.gen_mode:
            self.gen_loss.accumulate(self.learn)
            self.gen_losses.append(self.gen_loss.value)
            self.last_gen = self.learn.pred.detach().cpu()
        else:
            self.crit_loss.accumulate(self.learn)
            self.crit_losses.append(self.crit_loss.value)

    def switch(self, gen_mode: bool | None = None) -> None:
        """Train the generator (`True`), the critic (`False`), or the other one (`None`)."""
        self.gen_mode = (not self.gen_mode) if gen_mode is None else gen_mode
        self._set_trainable()
        self.learn.model.switch(self.gen_mode)
        self.learn.loss_func.switch(self.gen_mode)


class FixedGANSwitcher(Callback):
    """Switch after `n_crit` critic batches and `n_gen` generator batches (each an int, or a function of how many
    batches the other model just had)."""

    order = GANTrainer.order + 1

    def __init__(self, n_crit: int | Callable = 1, n_gen: int | Callable = 1) -> None:
        self.n_crit, self.n_gen = n_crit, n_gen

    def before_train(self) -> None:
        self.n_c, self.n_g = 0, 0

    def after_batch(self) -> None:
        if not self.learn.training:
            return
        trainer = self.learn.gan_trainer
        if trainer.gen_mode:
            self.n_g += 1
            n_iter, n_in, n_out = self.n_gen, self.n_c, self.n_g
        else:
            self.n_c += 1
            n_iter, n_in, n_out = self.n_crit, self.n_g, self.n_c
        target = n_iter if isinstance(n_iter, int) else n_iter(n_in)
        if target == n_out:
            trainer.switch()
            self.n_c, self.n_g = 0, 0


class AdaptiveGANSwitcher(Callback):
    """Switch when the loss of the model in training drops below its threshold (`gen_thresh`, `critic_thresh`;
    None switches after every batch)."""

    order = GANTrainer.order + 1

    def __init__(self, gen_thresh: float | None = None, critic_thresh: float | None = None) -> None:
        self.gen_thresh, self.critic_thresh = gen_thresh, critic_thresh

    def after_batch(self) -> None:
        if not self.learn.training:
            return
        trainer = self.learn.gan_trainer
        thresh = self.gen_thresh if trainer.gen_mode else self.critic_thresh
        if thresh is None or float(self.learn.loss) < thresh:
            trainer.switch()


class GANDiscriminativeLR(Callback):
    """Train the critic with a learning rate `mult_lr` times the generator's."""

    order = GANTrainer.order + 1

    def __init__(self, mult_lr: float = 5.0) -> None:
        self.mult_lr = mult_lr

    def before_batch(self) -> None:
        if self.learn.training and not self.learn.gan_trainer.gen_mode:
            self._scale(self.mult_lr)

    def after_batch(self) -> None:
        if self.learn.training and not self.learn.gan_trainer.gen_mode:
            self._scale(1 / self.mult_lr)

    def _scale(self, k: float) -> None:
        opt = self.learn.opt
        lrs = [h["lr"] * k for h in opt.hypers]
        opt.set_hyper("lr", lrs if len(lrs) > 1 else lrs[0])


class InvisibleTensor(TensorBase):
    """A tensor that shows as nothing (GAN noise inputs in `show_batch`)."""

    def show(self, ctx: Axes | None = None, **kwargs: Any) -> Axes | None:
        """Draw nothing: return `ctx` as it is."""
        return ctx


def generate_noise(fn: Any, size: int = 100) -> InvisibleTensor:
    """A noise vector of `size` normal values, whatever the item `fn` (a getter for GAN inputs)."""
    return InvisibleTensor(torch.randn(size))


def gan_loss_from_func(
    loss_gen: Callable, loss_crit: Callable, weights_gen: tuple[float, float] | None = None
) -> tuple[Callable[[Tensor, Tensor, Tensor], Tensor], Callable[[Tensor, Tensor], Tensor]]:
    """GAN losses from a generator loss (output vs target) and a critic loss (scores vs 1 real / 0 fake).

    The generator's loss weighs fooling the critic and `loss_gen` by `weights_gen` (default 1, 1).
    """
    wg = weights_gen if weights_gen is not None else (1.0, 1.0)

    def _loss_g(fake_pred: Tensor, output: Tensor, target: Tensor) -> Tensor:
        ones = fake_pred.new_ones(fake_pred.shape[0])
        return wg[0] * loss_crit(fake_pred, ones) + wg[1] * loss_gen(output, target)

    def _loss_c(real_pred: Tensor, fake_pred: Tensor) -> Tensor:
        ones, zeros = real_pred.new_ones(real_pred.shape[0]), fake_pred.new_zeros(fake_pred.shape[0])
        return (loss_crit(real_pred, ones) + loss_crit(fake_pred, zeros)) / 2

    return _loss_g, _loss_c


def _tk_mean(fake_pred: Tensor, output: Tensor, target: Tensor) -> Tensor:
    return fake_pred.mean()


def _tk_diff(real_pred: Tensor, fake_pred: Tensor) -> Tensor:
    return real_pred.mean() - fake_pred.mean()


class GANLearner(Learner):
    """A `Learner` for a GAN: `generator` and `critic` in a `GANModule`, their losses in a `GANLoss`, and the
    `GANTrainer` plus a switcher (default `FixedGANSwitcher()`) as callbacks; reports `gen_loss` and `crit_loss`."""

    def __init__(self, dls: Any, generator: nn.Module, critic: nn.Module, gen_loss_func: Callable,
                 crit_loss_func: Callable, switcher: Callback | None = None, gen_first: bool = False,
                 switch_eval: bool = True, show_img: bool = True, clip: float | None = None,
                 cbs: Callback | type | Iterable | None = None, metrics: Any = None, **kwargs: Any) -> None:
        gan = GANModule(generator, critic)
        loss_func = GANLoss(gen_loss_func, crit_loss_func, gan)
        trainer = GANTrainer(clip=clip, switch_eval=switch_eval, gen_first=gen_first, show_img=show_img)
        cbs = list(L(cbs)) + [trainer, switcher if switcher is not None else FixedGANSwitcher()]
        metrics = list(L(metrics)) + LossMetrics("gen_loss,crit_loss")
        super().__init__(dls, gan, loss_func=loss_func, cbs=cbs, metrics=metrics, **kwargs)

    @classmethod
    def from_learners(cls, gen_learn: Learner, crit_learn: Learner, switcher: Callback | None = None,
                      weights_gen: tuple[float, float] | None = None, **kwargs: Any) -> GANLearner:
        """A GANLearner from a generator learner and a critic learner, combining their losses."""
        loss_g, loss_c = gan_loss_from_func(gen_learn.loss_func, crit_learn.loss_func, weights_gen=weights_gen)
        return cls(gen_learn.dls, gen_learn.model, crit_learn.model, loss_g, loss_c, switcher=switcher, **kwargs)

    @classmethod
    def wgan(cls, dls: Any, generator: nn.Module, critic: nn.Module, switcher: Callback | None = None,
             clip: float = 0.01, switch_eval: bool = False, **kwargs: Any) -> GANLearner:
        """A Wasserstein GAN: critic loss `mean(real) - mean(fake)`, weights clipped to `clip`, 5 critic batches
        per generator batch by default (use an optimizer without momentum, e.g. RMSProp, as the paper does)."""
        if switcher is None:
            switcher = FixedGANSwitcher(n_crit=5, n_gen=1)
        return cls(dls, generator, critic, _tk_mean, _tk_diff, switcher=switcher, clip=clip, switch_eval=switch_eval,
                   **kwargs)


@typedispatch
def show_batch(x: InvisibleTensor, y: TensorImage, samples, ctxs=None, max_n: int = 10, nrows: int | None = None,
               ncols: int | None = None, figsize=None, **kwargs):
    """GAN data: only the real images (the noise inputs show as nothing)."""
    samples = list(samples)
    n = min(len(samples), max_n)
    if ctxs is None:
        ctxs = get_grid(n, nrows=nrows, ncols=ncols, figsize=figsize)
    return [s[1].show(ctx=c, **kwargs) for s, c in zip(samples[:n], ctxs)]


@typedispatch
def show_results(x: InvisibleTensor, y: TensorImage, samples, outs, ctxs=None, max_n: int = 10,  # noqa: F811
                 nrows: int | None = None, ncols: int | None = None, figsize=None, **kwargs):
    """GAN results: the generated images."""
    outs = list(outs)
    n = min(len(outs), max_n)
    if ctxs is None:
        ctxs = get_grid(n, nrows=nrows, ncols=ncols, figsize=figsize)
    return [o[0].show(ctx=c, **kwargs) for o, c in zip(outs[:n], ctxs)]
