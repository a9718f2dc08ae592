"""Output directories of ``analyze``, ``run`` and ``sweep``: cache keys, one run at a time.

* :mod:`~lossgeometry.app.outdir.keys`: what a cached result depends on (its config, the
  source of a model factory, local data files, the lossgeometry and torch versions), hashed.
* :mod:`~lossgeometry.app.outdir.guard`: an output directory created, checked and locked for
  one run (:func:`claim`), and errors that name the directory or the corrupt file.
* :mod:`~lossgeometry.app.outdir.points`: an experiment's grid points saved with their keys.
"""

from lossgeometry.app.outdir.guard import (
    CorruptCacheError,
    OutputDirBusy,
    OutputDirError,
    claim,
    corrupt,
    prepare_output_dir,
    read_cached_json,
)
from lossgeometry.app.outdir.keys import (
    data_fingerprint,
    digest,
    factory_fingerprint,
    inputs,
    versions,
)
from lossgeometry.app.outdir.points import load_point, save_point

__all__ = [
    "CorruptCacheError",
    "OutputDirBusy",
    "OutputDirError",
    "claim",
    "corrupt",
    "data_fingerprint",
    "digest",
    "factory_fingerprint",
    "inputs",
    "load_point",
    "prepare_output_dir",
    "read_cached_json",
    "save_point",
    "versions",
]
