"""lossgeometry: measure and certify the loss-landscape geometry of over-parameterized models.

Everything starts from a :class:`Problem` (model + data + loss as functions of a flat
parameter vector); every measurement is a function of a Problem and a point ``w``.

>>> import lossgeometry as lg
>>> X, Y = lg.data.load("synthetic-regression", n=16, d=4, k=1)
>>> model = lg.models.mlp(4, 64, 1, 1, parameterization="ntk", seed=0)
>>> problem = lg.Problem(model, X, Y, loss="mse")          # L(w) = ½ Σᵢ ‖f(w; xᵢ) − yᵢ‖²
>>> problem.p, problem.n, problem.k
(385, 16, 1)
>>> spec = lg.kernel_spectrum(problem)                     # λ(K), K = DF DFᵀ (16 × 16)
>>> bool(spec.lambda_min > 0)                              # p ≫ nk: K is positive definite
True
>>> run = lg.train(problem, "gd", steps=50, lr=0.05, record_every=10)
>>> bool(run.loss[-1] < run.loss[0])
True
"""

from lossgeometry import (  # alpha-beta: analytic examples, SPS/NGN/AdaGrad-norm
    data,
    distributed,
    examples,
    models,
    operators,
    optim,
)
from lossgeometry._version import __version__
from lossgeometry.app.sweep import SweepResult, SweepRun, sweep  # sweeps
from lossgeometry.conditions.aiming import AimingProfile, RelaxedPL  # alpha-beta
from lossgeometry.conditions.alphabeta import ReplayMismatchError, record_conditions  # alpha-beta
from lossgeometry.conditions.alphabeta_study import (  # alpha-beta study
    AlphaBetaOptions,
    AlphaBetaStudy,
    alphabeta_study,
)
from lossgeometry.conditions.alphabeta_trace import ConditionTrace  # alpha-beta
from lossgeometry.conditions.pl_ratio import (  # PL* certificates
    PLRatioProfile,
    PLStarEpsilon,
    pl_ratio_profile,
    plstar_epsilon,
)
from lossgeometry.conditions.plstar import certify_plstar  # PL* certificates
from lossgeometry.conditions.plstar_certificate import PLStarCertificate  # PL* certificates
from lossgeometry.conditions.plstar_check import (  # PL* certificates
    CertificateCheck,
    compare_with_certificate,
)
from lossgeometry.conditions.plstar_gd import CertifiedGD, run_certified_gd  # PL* optimizers
from lossgeometry.conditions.plstar_sgd import (  # PL* optimizers
    SGDStep,
    certified_sgd,
    sgd_step_size,
)
from lossgeometry.conditions.plstar_study import (  # PL* study
    PLStarOptions,
    PLStarStudy,
    plstar_study,
)
from lossgeometry.curvature import (  # curvature
    HessianBound,
    HessianDensity,
    HessianSpectrum,
    HessianTrace,
    ModelHessianNorm,
    hessian_bound,
    hessian_density,
    hessian_operator,
    hessian_spectrum,
    hessian_trace,
    model_hessian_norm,
    model_hessian_operator,
)
from lossgeometry.curvature.profile import (  # curvature study
    CurvatureOptions,
    CurvatureProfile,
    curvature_profile,
)
from lossgeometry.kernel import (  # tangent kernel
    KernelMethod,
    KernelRows,
    KernelSpectrum,
    NTKOperator,
    kernel_rows,
    kernel_spectrum,
    ntk_operator,
    tangent_kernel,
)
from lossgeometry.kernel.change import (  # tangent-kernel study
    KernelChange,
    KernelChangeOptions,
    kernel_change,
)
from lossgeometry.linalg.rank import Rank, numerical_rank  # manifold of minima
from lossgeometry.manifold import (  # manifold of minima
    HessianNullity,
    Interpolant,
    LocalConvexity,
    LossGrowth,
    ManifoldAnalysis,
    ManifoldReport,
    ManifoldWalk,
    NegativeCurvature,
    SegmentLoss,
    TangentSpace,
    analyze_manifold,
    find_interpolant,
    hessian_nullity,
    least_squares_minimum,
    local_convexity,
    loss_growth,
    negative_curvature_near,
    segment_loss,
    solution_manifold,
    tangent_space,
    walk_manifold,
)
from lossgeometry.manifold.options import ManifoldOptions  # manifold study
from lossgeometry.monitor import Monitor
from lossgeometry.operators import (  # matrix-free operators
    GramOperator,
    HessianOperator,
    JacobianOperator,
    ModelHessianOperator,
    TorchLinearOperator,
)
from lossgeometry.problem import Problem
from lossgeometry.results import Result, load_result
from lossgeometry.surfaces import (  # loss surfaces and paths
    LossPath,
    LossSurface,
    SurfaceOptions,
    filter_normalized_direction,
    loss_path,
    loss_surface,
)
from lossgeometry.train import TrainingDivergedError, Trajectory, train

__all__ = [
    # core
    "Problem",
    "Result",
    "__version__",
    # matrix-free operators (lg.operators; lg.NTKOperator below)
    "GramOperator",
    "HessianOperator",
    "JacobianOperator",
    "ModelHessianOperator",
    "TorchLinearOperator",
    # curvature
    "HessianBound",
    "HessianDensity",
    "HessianSpectrum",
    "HessianTrace",
    "ModelHessianNorm",
    "hessian_bound",
    "hessian_density",
    "hessian_operator",
    "hessian_spectrum",
    "hessian_trace",
    "model_hessian_norm",
    "model_hessian_operator",
    # tangent kernel
    "KernelMethod",
    "KernelRows",
    "KernelSpectrum",
    "NTKOperator",
    "kernel_rows",
    "kernel_spectrum",
    "ntk_operator",
    "tangent_kernel",
    # alpha-beta-condition, Aiming, relaxed PL
    "AimingProfile",
    "ConditionTrace",
    "RelaxedPL",
    "ReplayMismatchError",
    "examples",
    "optim",
    "record_conditions",
    # PL* certificates and the optimizers they certify
    "CertificateCheck",
    "CertifiedGD",
    "SGDStep",
    "certified_sgd",
    "run_certified_gd",
    "sgd_step_size",
    "PLRatioProfile",
    "PLStarCertificate",
    "PLStarEpsilon",
    "certify_plstar",
    "compare_with_certificate",
    "pl_ratio_profile",
    "plstar_epsilon",
    # manifold of global minima
    "HessianNullity",
    "Interpolant",
    "LocalConvexity",
    "LossGrowth",
    "ManifoldAnalysis",
    "ManifoldReport",
    "ManifoldWalk",
    "NegativeCurvature",
    "Rank",
    "SegmentLoss",
    "TangentSpace",
    "analyze_manifold",
    "find_interpolant",
    "hessian_nullity",
    "least_squares_minimum",
    "local_convexity",
    "loss_growth",
    "negative_curvature_near",
    "numerical_rank",
    "segment_loss",
    "solution_manifold",
    "tangent_space",
    "walk_manifold",
    # data and models
    "data",
    "distributed",
    "load_result",
    "models",
    "operators",
    # training
    "Monitor",
    "TrainingDivergedError",
    "Trajectory",
    "train",
    # study functions: one per feature, one options dataclass each (the only defaults)
    "AlphaBetaOptions",
    "AlphaBetaStudy",
    "CurvatureOptions",
    "CurvatureProfile",
    "KernelChange",
    "KernelChangeOptions",
    "ManifoldOptions",
    "PLStarOptions",
    "PLStarStudy",
    "alphabeta_study",
    "curvature_profile",
    "kernel_change",
    "plstar_study",
    # sweeps over configurations
    "SweepResult",
    "SweepRun",
    "sweep",
    # loss surfaces and paths
    "LossPath",
    "LossSurface",
    "SurfaceOptions",
    "filter_normalized_direction",
    "loss_path",
    "loss_surface",
]
