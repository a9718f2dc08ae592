"""``python -m lossgeometry …``: the command line, as the ``lossgeometry`` script.

So torchrun starts it the way it starts any module::

    torchrun --nproc-per-node 2 -m lossgeometry analyze --config run.toml --out report

(docs/distributed.md, "Launching with torchrun").
"""

from lossgeometry.app.cli import main

if __name__ == "__main__":
    main()
