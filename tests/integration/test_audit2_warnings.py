"""Audit 2: a fastai user's whole workflow across the four applications (vision, text, tabular, collab: loaders,
learner, fit with the progress bar, interpretation, predict) under `python -W error`: no library warning at all (a
DeprecationWarning from a dependency, a UserWarning of our own on clean data) reaches the user's terminal or notebook."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

SCRIPT = r'''
import torch; torch.set_num_threads(1); torch.manual_seed(0)
from tiers.vision.all import *
from tiers.text.all import *
from tiers.tabular.all import *
from tiers.tabular.samples import make_adult_sample
from tiers.collab.all import *
import tempfile, pandas as pd
d = Path(tempfile.mkdtemp())
path = make_mnist_tiny(d/'mnist')
dls = ImageDataLoaders.from_folder(path, img_cls=PILImageBW, bs=32, batch_tfms=aug_transforms(do_flip=False))
learn = vision_learner(dls, resnet18, pretrained=False, metrics=accuracy)
learn.fit_one_cycle(1)
interp = ClassificationInterpretation.from_learner(learn); interp.most_confused()
learn.predict(get_image_files(path)[0])
tdls = TextDataLoaders.from_df(make_imdb_df(60), text_col='text', label_col='label', valid_col='is_valid', bs=8)
tl = text_classifier_learner(tdls, AWD_LSTM, config=dict(awd_lstm_clas_config, emb_sz=16, n_hid=16, n_layers=1), pretrained=False)
tl.fit_one_cycle(1); tl.predict("a fine movie")
adult = pd.read_csv(make_adult_sample(d/'adult', n=200))
tabdls = TabularDataLoaders.from_df(adult, procs=[Categorify, FillMissing, Normalize], cat_names=['workclass'], cont_names=['age', 'fnlwgt'], y_names='salary', valid_idx=list(range(160, 200)), bs=32)
tabl = tabular_learner(tabdls, layers=[8], metrics=accuracy); tabl.fit_one_cycle(1); tabl.predict(adult.iloc[0])
make_ratings_sample(d/'ml', n_users=20, n_items=30, n_ratings=300)
cl = collab_learner(CollabDataLoaders.from_csv(d/'ml'/'ratings.csv', bs=64, seed=0), n_factors=4, y_range=(0, 5.5)); cl.fit_one_cycle(1)
print("CLEAN")
'''


def test_the_four_applications_run_clean_under_python_W_error(tmp_path):
    f = tmp_path / "workflow.py"
    f.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "TIERS_DEBUG")}
    env.update(OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-W", "error", str(f)], capture_output=True, text=True, env=env,
                          timeout=280, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.rstrip().endswith("CLEAN"), proc.stdout[-2000:]
    assert "Warning" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
