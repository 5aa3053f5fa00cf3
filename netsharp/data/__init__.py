"""Data for training and prediction.

- `load_source(spec)`: training data (digits, mnist, fashion-mnist, IDX directory, CSV, NPZ)
  as a `Dataset` of RAW values (sources.py);
- `fit_normalizer(kind, x_train, pixel_max)` / `Normalizer`: the scaling fitted on the training
  rows, stored with a model and reapplied at predict time (normalize.py);
- `read_inputs(paths)`: raw rows for `netsharp predict` from images, IDX, CSV or NPZ files
  (inputs.py);
- `datasets`: the named sets themselves (scaled to [0, 1] unless raw=True).
Nothing here imports the training stack.
"""

from .datasets import Dataset
from .inputs import Inputs, read_inputs
from .normalize import Normalizer, fit_normalizer
from .sources import load_source

__all__ = ["Dataset", "Inputs", "Normalizer", "fit_normalizer", "load_source", "read_inputs"]
