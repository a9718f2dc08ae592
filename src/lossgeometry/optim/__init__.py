"""Optimizers the theory analyses (SPS, DecSPS, NGN, AdaGrad-norm) and the one registry.

The optimizers that take their step from a PL* certificate (``CertifiedGD``, the certified
SGD loop) build on the certificate and live with it in :mod:`lossgeometry.conditions`
(``plstar_gd``, ``plstar_sgd``); ``"certified_gd"`` is still a registry name.

One import line per module; each module lists its public names in ``__all__``. The package's
own optimizers are registered here by name in the one registry
(:mod:`lossgeometry.optim.registry`), so ``lg.train(problem, "ngn", ...)`` and a config's
``[train] optimizer = "ngn"`` work; ``optimizer_names()`` lists every name. In a
``DistributedDataParallel`` loop their closure returns :func:`mean_over_ranks` of the loss
(:mod:`lossgeometry.optim.ranks`).
"""

from lossgeometry.optim import adagrad_norm, ngn, sps
from lossgeometry.optim.adagrad_norm import *  # noqa: F403
from lossgeometry.optim.ngn import *  # noqa: F403
from lossgeometry.optim.ranks import *  # noqa: F403
from lossgeometry.optim.registry import *  # noqa: F403
from lossgeometry.optim.registry import register_optimizer
from lossgeometry.optim.sps import *  # noqa: F403

register_optimizer("sps", sps.SPSMax)
register_optimizer("decsps", sps.DecSPS)
register_optimizer("ngn", ngn.NGN)
register_optimizer("adagrad_norm", adagrad_norm.AdaGradNormMax)
# the PL* theorem's GD lives above (it needs the certificate): registered by import path
register_optimizer(
    "certified_gd", "lossgeometry.conditions.plstar_gd:build_certified_gd", takes_lr=False
)
