"""TensorBoard: log a training run (losses, metrics, lr and momentum, the model graph, predictions as images).

    pip install 'tiers-train[tensorboard]'
    python examples/integrations_tensorboard.py [--out DIR]    then: tensorboard --logdir DIR/runs
"""

import argparse
import tempfile
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tiers.train import TensorBoardCallback
from tiers.vision.all import (
    ImageDataLoaders,
    PILImageBW,
    accuracy,
    make_mnist_tiny,
    vision_learner,
    xresnet18,
)

parser = argparse.ArgumentParser()
parser.add_argument("--out", default=tempfile.mkdtemp(prefix="tiers-tb-"))
out = Path(parser.parse_args().out)

dls = ImageDataLoaders.from_folder(make_mnist_tiny(), bs=32, img_cls=PILImageBW)
learn = vision_learner(dls, xresnet18, pretrained=False, metrics=accuracy)
learn.fit_one_cycle(2, 3e-3, cbs=TensorBoardCallback(out / "runs", trace_model=True, log_preds=True, n_preds=4))

# What TensorBoard will show, read back with its own reader.
acc = EventAccumulator(str(out / "runs"), size_guidance={"scalars": 0})
acc.Reload()
for tag in ("epoch/valid_loss", "epoch/accuracy"):
    print(tag, [round(e.value, 4) for e in acc.Scalars(tag)])
print("batches logged:", len(acc.Scalars("train/smooth_loss")), "| graph:", bool(acc.Tags()["graph"]),
      "| prediction images:", len(acc.Images("valid/predictions")))
print(f"tensorboard --logdir {out / 'runs'}")
