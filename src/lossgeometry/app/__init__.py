"""The application storey: everything a person drives, above the library.

* :mod:`~lossgeometry.app.cli` and :mod:`~lossgeometry.app.commands`: ``lossgeometry …``;
* :mod:`~lossgeometry.app.config`: typed TOML configurations;
* :mod:`~lossgeometry.app.sections`: the report's sections (one study each, rendered);
* :mod:`~lossgeometry.app.report`: the ``analyze`` report page (assembles the sections);
* :mod:`~lossgeometry.app.experiments`: reproductions of the papers' experiments;
* :mod:`~lossgeometry.app.sweep`: grids of configurations (local processes or Ray).

The library below (``lossgeometry.problem``, ``operators``, ``linalg``, the measurement
packages, ``optim``, ``train``, ``data``, ``models``, ``results``) never imports from here;
``tests/test_layers.py`` enforces it. Application code renders or collects the ``Result`` of
a library study function; it does not compute measurements of its own.
"""
