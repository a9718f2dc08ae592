"""Slow reproductions: every bundled experiment at its default size asserts the claim it reproduces.

Skipped by `make test`; run with `make test-slow` (`pytest -m slow`). Measured wall time of
each with ``OMP_NUM_THREADS=1``, one after another on the shared (loaded) 2-core machine:
width_sweep 104 s, kernel_change 83 s, alphabeta_width 68 s, alphabeta_batch 62 s,
alphabeta_cnn 56 s, overparameterization 46 s, alphabeta_optimizers 36 s,
alphabeta_halfspace 34 s, manifold_dimension 23 s: 8 min 40 s in all.

Each range below says where it comes from: the theory (a bound, an exact identity, a derived
dimension), or, where the theory only gives a rate, the rate with the slack that finite widths
and few seeds leave (the measured default-size numbers are recorded in docs/plstar.md,
docs/manifold.md and docs/alphabeta.md; no range is centred on one run's number). The
float64 experiments are deterministic; the α-β ones train float32 models, so their ranges
leave room for a different BLAS.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lossgeometry.app.experiments import bundled_configs, run_experiment

slow = pytest.mark.slow

CLAIMS = {
    "width_sweep",
    "kernel_change",
    "overparameterization",
    "manifold_dimension",
    "alphabeta_width",
    "alphabeta_cnn",
    "alphabeta_batch",
    "alphabeta_optimizers",
    "alphabeta_halfspace",
}


def _run(name: str, out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    summary = run_experiment(name, out=out, full=False, progress=False)
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert list(out.rglob("*.png")), f"{name} wrote no figure"
    return summary, results


def test_every_bundled_experiment_has_a_claim_test():  # not slow: it runs with `make test`
    assert set(bundled_configs()) == CLAIMS


# ---------------------------------------------------------------------------------------------
# PL* and the transition to linearity (docs/plstar.md)


@slow
def test_width_sweep_hessian_decays_like_inverse_sqrt_width(tmp_path):
    summary, res = _run("width_sweep", tmp_path)
    variants = res["summary"]["variants"]
    lin = variants["linear"]["fits"]["hessian_norm"]["slope"]
    # Linear output: ‖D²F(w0)‖ = Õ(1/√m) (Liu, Zhu & Belkin), slope −½ up to logarithmic
    # factors and O(1) bias terms that flatten it at widths 16…512 (docs/plstar.md: it
    # approaches −½ as the width grows). [−0.65, −0.3]: −½ with ±0.15 for a 5-point fit
    # over a 32× width range, and at most 0.2 of flattening.
    assert -0.65 <= lin <= -0.3, summary
    lin_x0 = variants["linear"]["fits"]["hessian_norm_x0"]["slope"]
    assert -0.65 <= lin_x0 <= -0.25, summary  # one input: the same rate
    # tanh output and a fixed-width bottleneck keep Θ(1) curvature: no decay. |slope| ≤ 0.25
    # is half the linear rate, and each is at least 0.2 above the linear slope.
    for v in ("tanh_output", "bottleneck"):
        s = variants[v]["fits"]["hessian_norm"]["slope"]
        assert -0.25 <= s <= 0.25, (v, summary)
        assert s - lin >= 0.2, (v, summary)
    rows = variants["linear"]["rows"]
    # p ≫ nk = 16 at every width: K(w0) is positive definite, and λ0 converges with m in the
    # NTK parameterization: the two widest widths (256, 512) agree within a factor 2.
    assert all(r["lambda_min"] > 0 for r in rows)
    assert 0.5 <= rows[-1]["lambda_min"] / rows[-2]["lambda_min"] <= 2.0
    # The Hessian-certified radius ρ = √λ0/(3β_F) grows: β_F ~ m^(−½) alone gives m^(½)
    # (λ0 converges, and still rises at small widths); ≥ 0.25 allows the flattening above.
    rho = variants["linear"]["fits"]["certified_radius"]["slope"]
    assert rho >= 0.25, summary
    # The needed radius R stays far above ρ at these sizes (docs/plstar.md: the crossing is
    # extrapolated to ~1e10): the Hessian bound alone certifies nothing here, and says so.
    assert all(r["analytic_margin"] < 1 for r in rows)
    cw = res["summary"]["crossing_width"]
    assert cw is None or cw > max(r["width"] for r in rows)


@slow
def test_kernel_change_decays_at_least_like_the_hessian_bound(tmp_path):
    summary, res = _run("kernel_change", tmp_path)
    lin, tanh = res["summary"]["linear"], res["summary"]["tanh_output"]
    # Every linear-output run reaches the target L ≤ 0.01·L(w0): wide nets converge (PL*).
    for p in res["points"]:
        if p["variant"] == "linear":
            assert p["final_loss"] <= 0.01 * p["initial_loss"] * (1 + 1e-12), p
    # The distance travelled does not grow with m (NTK parameterization): the medians over
    # 32…512 stay within a factor 2 (docs/plstar.md: 2.7–3.8), so the slope of ‖ΔK‖ is that
    # of the kernel's sensitivity, not of the distance.
    dist = [r["distance"] for r in lin["rows"]]
    assert max(dist) / min(dist) <= 2.0, dist
    # The bound ‖ΔK‖ ≲ 2 L_F β_F ‖w_T − w0‖ gives slope ≤ −½; the first-order term averages
    # out and the change decays about like 1/m (Dyer & Gur-Ari's O(1/m) kernel velocity).
    # [−1.5, −0.5]: the bound's −½ at the top, −1 with ±0.5 for a 5-width, 3-seed fit below.
    assert -1.5 <= lin["fit"]["slope"] <= -0.5, summary
    # A tanh output keeps Θ(1) curvature: its kernel does not settle. Its relative change stays
    # ≥ 0.1 at every width (a hundredfold the linear change's scale at m = 512), and its slope
    # shows no decay even at the bound's rate.
    assert all(r["rel_change_fro"] >= 0.1 for r in tanh["rows"]), tanh["rows"]
    assert tanh["fit"]["slope"] > -0.5, summary
    assert tanh["rows"][-1]["rel_change_fro"] >= 10 * lin["rows"][-1]["rel_change_fro"]


@slow
def test_overparameterization_kernel_rank_and_linear_convergence(tmp_path):
    _, res = _run("overparameterization", tmp_path)
    rows, nk = res["rows"], res["nk"]
    under = [r for r in rows if r["p"] < nk]
    over = [r for r in rows if r["p"] >= 2 * nk]
    assert len(under) >= 3 and len(over) >= 3
    for r in rows:
        # K = DF DFᵀ is nk × nk of rank ≤ p, and generically exactly min(p, nk).
        assert r["rank_w0"] == min(r["p"], nk), r
    for p in res["points"]:
        # PL at the end of every run: ‖∇L‖²/L = c² rᵀKr / (c ½‖r‖²) ≥ 2cλ_min(K) (an identity
        # plus Rayleigh's inequality; rounding only).
        assert p["final_pl_ratio"] >= p["two_c_lambda_min_wT"] * (1 - 1e-6) - 1e-12, p
    for r in under:
        # p < nk: λ_min(K) = 0, no PL* constant; GD levels off (the PL*_ε analysis detects the
        # stall) at a loss the over-parameterized runs are far below.
        assert r["lambda_min_w0"] == 0.0 and r["stalled"] == 1.0, r
    for r in over:
        # p ≥ 2nk: K(w0) positive definite, linear convergence (no stall) to below 1% of L(w0)
        # in 4000 steps (docs/plstar.md: ≤ 0.15%).
        assert r["lambda_min_w0"] > 0 and r["stalled"] == 0.0, r
        assert r["final_over_initial"] < 1e-2, r
    assert max(r["final_over_initial"] for r in over) < min(r["final_over_initial"] for r in under)
    # λ_min(K(w0)) improves with over-parameterization (toward the NTK limit): 32·nk > 2·nk.
    assert over[-1]["lambda_min_w0"] > over[0]["lambda_min_w0"]


# ---------------------------------------------------------------------------------------------
# The manifold of minima (docs/manifold.md)


@slow
def test_manifold_dimension_is_p_minus_nk(tmp_path):
    _, res = _run("manifold_dimension", tmp_path)
    grid = res["grid"]
    assert len(grid) == 18
    regular = 0
    for r in grid:
        p, nk, n, w, k = r["p"], r["nk"], r["n"], r["width"], r["k"]
        if p < nk:
            # Overdetermined: no interpolant, and the solver says why.
            assert not r["interpolated"] and r["reason"].startswith("under-parameterized"), r
            continue
        if not r["interpolated"]:
            # Only digits points may stop early (docs: at a non-interpolating stationary point
            # or out of iterations, all with p/nk < 2.5); generic synthetic data never does.
            assert r["dataset"] == "digits" and p / nk < 2.5, r
            continue
        # Three independent measurements agree: the rank of J, the Hessian nullity (from
        # Hessian-vector products only, never looking at J), and the walk's PCA.
        assert r["dimension"] == p - r["rank"] == r["hessian_nullity"], r
        if r.get("pca_dimension") is not None:
            assert r["pca_dimension"] == r["dimension"], r
        if r["rank"] == nk:
            # Cooper: Y a regular value ⇒ a manifold of dimension p − nk, and the rank is
            # unambiguous (the singular-value gap is 1e9–1e13 at interpolants; 1e6 is margin).
            assert r["dimension"] == p - nk and r["rank_gap"] >= 1e6, r
            regular += 1
        else:
            # Not regular, for one of the two reasons derived in docs/manifold.md: a hidden
            # width below k, or one-hot targets with rank J = nk − (n − w − 1) exactly.
            assert r["dataset"] == "digits", r
            assert w < k or nk - r["rank"] == n - w - 1, r
    synthetic = [r for r in grid if r["dataset"] == "synthetic-regression" and r["p"] >= r["nk"]]
    # Generic data: every over-parameterized point interpolates and is regular.
    assert synthetic and all(r["interpolated"] and r["rank"] == r["nk"] for r in synthetic)
    assert regular >= len(synthetic) + 1
    assert any(r.get("pca_dimension") is not None for r in grid)
    # Degenerate critical points (Cooper 2020): J = 0 there, and the measured Hessian nullity
    # equals the closed form p − 2 rank(Q) rank(GP) at every one.
    deg = res["degenerate"]
    assert len(deg) == 21
    for r in deg:
        assert r["grad_norm"] <= 1e-12 and r["measured_nullity"] == r["predicted_nullity"], r


# ---------------------------------------------------------------------------------------------
# The α-β-condition (docs/alphabeta.md)


def _alphabeta_checks(out: Path, rows: list[dict[str, Any]]) -> None:
    """What every α-β sweep must show, whatever it varies."""
    from lossgeometry.conditions.alphabeta import ConditionTrace

    for r in rows:
        # The replay is bit-exact on CPU: the recorded run is the run whose end point is x^K.
        assert r["max_replay_error"] == 0.0, r
        if r["alpha"] is None:
            continue
        assert r["alpha"] >= r["beta"] + 0.1 - 1e-9, r
        # The region as derived: T(α + δ, β + δ) = T(α, β) + δ (f_B(x^K) − f*_B) and
        # f_B(x^K) ≥ f*_B = 0, so min T never decreases along the diagonal; at the smallest
        # pair min T = 0 (the linear program's boundary), up to rounding.
        trace = ConditionTrace.load(out / "points" / f"{r['setting']}.trace.json")
        c, a, b = trace.coefficients()
        scale = float(np.max(np.abs(c)) + np.max(np.abs(a)) + np.max(np.abs(b)))
        deltas = np.array([0.0, 0.25, 1.0, 4.0])
        M = np.diag(trace.min_T(r["alpha"] + deltas, r["beta"] + deltas))
        assert M[0] >= -1e-6 * scale, (r, M)
        assert np.all(np.diff(M) >= -1e-9 * scale), (r, M)


def _rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(summary["rows"], key=lambda r: r["x"] if isinstance(r["x"], (int, float)) else 0)


@slow
def test_alphabeta_width_condition_holds_with_small_pairs(tmp_path):
    summary, _ = _run("alphabeta_width", tmp_path)
    rows = _rows(summary)
    _alphabeta_checks(tmp_path, rows)
    # SGD on MLPs satisfies the α-β-condition at every width, with a small pair (the paper's
    # observation; docs: ≤ 0.13 here, far below the grid's automatic range of 1–10).
    assert all(r["alpha"] is not None and r["alpha"] <= 0.5 for r in rows), rows
    # Wider is more benign: α_max(β = 0) grows from the narrowest to the widest (docs: 0.19
    # to 0.61). The paper's rise of the smallest pair up to width ~512 is not reproduced at
    # this size (docs/alphabeta.md says so).
    assert rows[-1]["alpha_max_at_beta0"] > rows[0]["alpha_max_at_beta0"] + 0.1, rows


@slow
def test_alphabeta_cnn_pairs_fall_with_channels(tmp_path):
    summary, _ = _run("alphabeta_cnn", tmp_path)
    rows = _rows(summary)
    _alphabeta_checks(tmp_path, rows)
    alphas = [r["alpha"] for r in rows]
    assert all(a is not None for a in alphas), rows
    # The paper's shape against width falls at the wide end: the widest CNN sits at least 0.3
    # below the peak pair, near the floor (α ≤ 0.2 with margin 0.1; docs: the floor (0.1, 0)).
    # The rise before the peak (docs: 0.52 → 0.65 from 4 to 8 channels) is too small to assert
    # across BLAS builds.
    assert max(alphas) - alphas[-1] >= 0.3 and alphas[-1] <= 0.2, alphas


@slow
def test_alphabeta_batch_pairs_shrink_as_the_batch_grows(tmp_path):
    summary, _ = _run("alphabeta_batch", tmp_path)
    rows = _rows(summary)
    _alphabeta_checks(tmp_path, rows)
    assert all(r["alpha"] is not None for r in rows), rows
    # The paper's claim: the smallest feasible pair shrinks as the batch grows (less gradient
    # noise). Smallest batch (8) above the largest (256), which sits at the floor.
    assert rows[0]["alpha"] > rows[-1]["alpha"] + 0.1 and rows[-1]["alpha"] <= 0.2, rows
    assert rows[-1]["alpha_max_at_beta0"] > rows[0]["alpha_max_at_beta0"], rows


@slow
def test_alphabeta_optimizers_all_satisfy_the_condition(tmp_path):
    summary, _ = _run("alphabeta_optimizers", tmp_path)
    rows = summary["rows"]
    _alphabeta_checks(tmp_path, rows)
    assert {r["setting"] for r in rows} == {"sgd", "momentum", "adam", "sps_max", "ngn"}
    # SGD, momentum, Adam and the Polyak-type steps the theory analyses (SPS_max, NGN) all run
    # in the α-β-condition with a small pair (docs: ≤ 0.12).
    assert all(r["alpha"] is not None and r["alpha"] <= 0.5 for r in rows), rows


@slow
def test_alphabeta_halfspace_aiming_fails_while_alphabeta_holds(tmp_path):
    summary, res = _run("alphabeta_halfspace", tmp_path)
    rows = summary["rows"]
    _alphabeta_checks(tmp_path, rows)
    assert (tmp_path / "halfspace.png").is_file()
    # Islamov et al., Fig. 2: on half-space learning with SGD, Aiming
    # ⟨∇f(x_k), x_k − x^K⟩ > 0 fails along the run while the α-β-condition holds on the same
    # run. At least one initialization shows both (docs: two of three).
    both = [r for r in rows if r["alpha"] is not None and r["aiming_negative_fraction"] > 0]
    assert both, rows
    for r in both:
        assert r["first_negative_step"] is not None and r["aiming_min_coefficient"] < 0, r
    assert all(not math.isnan(r["alpha_max_at_beta0"]) for r in rows)
    assert res["rows"] == rows
