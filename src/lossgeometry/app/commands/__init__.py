"""The CLI's feature commands, one module each; :mod:`lossgeometry.app.cli` registers them."""
