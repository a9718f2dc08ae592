"""Optimizers that come with (or are analysed by) the theory.

One import line per module; each module lists its public names in ``__all__``. The package's
own optimizers are registered here by name in the one registry
(:mod:`lossgeometry.optim.registry`), so ``lg.train(problem, "ngn", ...)`` and a config's
``[train] optimizer = "ngn"`` work; ``optimizer_names()`` lists every name.
"""

from lossgeometry.optim import adagrad_norm, certified_gd, ngn, sps
from lossgeometry.optim.adagrad_norm import *  # noqa: F403
from lossgeometry.optim.certified_gd import *  # noqa: F403
from lossgeometry.optim.ngn import *  # noqa: F403
from lossgeometry.optim.registry import *  # noqa: F403
from lossgeometry.optim.registry import register_optimizer
from lossgeometry.optim.sgd_step import *  # noqa: F403
from lossgeometry.optim.sps import *  # noqa: F403

register_optimizer("sps", sps.SPSMax)
register_optimizer("decsps", sps.DecSPS)
register_optimizer("ngn", ngn.NGN)
register_optimizer("adagrad_norm", adagrad_norm.AdaGradNormMax)
register_optimizer("certified_gd", certified_gd.build_certified_gd, takes_lr=False)
