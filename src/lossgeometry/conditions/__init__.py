"""Conditions that certify optimization: PL* (tangent-kernel conditioning) and α-β.

With the PL* certificate come the optimizers it certifies: ``CertifiedGD`` (``plstar_gd``)
and the certified SGD step and loop (``plstar_sgd``).

One import line per module; each module lists its public names in ``__all__``.
"""

from lossgeometry.conditions.aiming import *  # noqa: F403
from lossgeometry.conditions.alphabeta import *  # noqa: F403
from lossgeometry.conditions.pl_ratio import *  # noqa: F403
from lossgeometry.conditions.plstar import *  # noqa: F403
from lossgeometry.conditions.plstar_check import *  # noqa: F403
from lossgeometry.conditions.plstar_gd import *  # noqa: F403
from lossgeometry.conditions.plstar_sgd import *  # noqa: F403
