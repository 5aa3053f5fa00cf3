"""Data sets for training: IDX files, MNIST (downloaded), Fashion-MNIST, CSV and NPZ."""
