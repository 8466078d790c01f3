"""Deploy outside tiers: export a classifier to ONNX (normalisation and softmax inside) and run it with onnxruntime
on image files, with numpy and PIL only.

    pip install 'tiers-train[onnx]'
    python examples/integrations_onnx.py [--out DIR]
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from tiers.vision.all import (
    ImageDataLoaders,
    Normalize,
    PILImageBW,
    Resize,
    accuracy,
    get_image_files,
    imagenet_stats,
    make_mnist_tiny,
    vision_learner,
    xresnet18,
)

parser = argparse.ArgumentParser()
parser.add_argument("--out", default=tempfile.mkdtemp(prefix="tiers-onnx-"))
out = Path(parser.parse_args().out)

path = make_mnist_tiny()
dls = ImageDataLoaders.from_folder(path, bs=32, img_cls=PILImageBW, item_tfms=Resize(28, method="squish"),
                                   batch_tfms=Normalize.from_stats(imagenet_stats[0][:1], imagenet_stats[1][:1]))
learn = vision_learner(dls, xresnet18, pretrained=False, metrics=accuracy)
learn.fit_one_cycle(2, 3e-3)
onnx_file = learn.export_onnx(out / "digits.onnx")

# Inference with onnxruntime alone: the graph takes uint8 NCHW pixels (0..255) at the size the item transforms
# give; normalisation and softmax are inside. The class names are in the file's metadata.
sess = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
vocab = json.loads(sess.get_modelmeta().custom_metadata_map["tiers.vocab"])
files = get_image_files(path / "valid")[:8]
pixels = np.stack([np.asarray(Image.open(f).convert("L").resize((28, 28)))[None] for f in files])  # (8, 1, 28, 28)
probs = sess.run(None, {"x": pixels})[0]
onnx_labels = [vocab[i] for i in probs.argmax(1)]
tiers_labels = [learn.predict(f)[0] for f in files]
print("onnxruntime:", onnx_labels)
print("tiers      :", tiers_labels)
print(f"agree: {onnx_labels == tiers_labels}; file: {onnx_file} ({onnx_file.stat().st_size // 1024} KiB)")
