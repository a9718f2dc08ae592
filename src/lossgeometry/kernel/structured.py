r"""The structured tangent kernel: per-layer factors from one forward and ``ks`` backward passes.

For a chunk of ``b`` samples, forward hooks on every layer that has a rule record the layer
inputs ``A`` and add a zero *probe* tensor to the layer outputs ``z``. One backward w.r.t.
the probes (``torch.autograd.grad``), batched over the ``ks`` output cotangents
``e_a`` (the same ``a`` in every row of the chunk), gives at once, for every layer and every
call, ``B_{i,a} = ∂f_a(x_i)/∂z_i`` — samples do not interact, so the cotangent ``e_a`` in
all rows separates them. The rules (:mod:`~lossgeometry.kernel.rules`) turn ``(A, B)`` into
kernel factors; parameters without a rule get exact per-sample Jacobians.

:func:`build_plan` decides once per problem which layers use which rule, checks every call
has a leading batch dimension (by running one- and two-sample batches), and *verifies* each
rule on two samples: for a random cotangent ``u`` it compares ``uᵀ K_layer u`` with
``‖J_layerᵀ u‖²`` from plain autograd. A layer whose parameters are also used outside its
own forward (tied weights used functionally, say) fails the check and its parameters move
to the fallback, so the structured kernel is exact whenever it is returned.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import weakref
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from lossgeometry.kernel.plan_cache import (
    BUILDS,
    BY_STRUCTURE,
    MAX_STRUCTURES,
    rebind,
    structure_key,
)
from lossgeometry.kernel.rules import rule_for
from lossgeometry.kernel.rules.base import Factors, Rule, bilinear_costs
from lossgeometry.kernel.rules.fallback import jacobian_factors
from lossgeometry.problem import Inputs, Problem, input_count


@dataclasses.dataclass
class LayerEntry:
    """One layer handled by a rule."""

    name: str
    module: nn.Module
    rule: Rule
    active: frozenset[str]
    """Local names of the parameters that count (the others are fixed)."""
    param_names: list[str]
    """Their names in the Problem's flat vector."""
    out_shapes: list[tuple[int, ...]]
    """Per-sample output shape of each call in one forward pass."""
    route: str
    per_sample_elements: int
    """Elements of factors per sample (for memory estimates), at ``ks = k``."""
    shape: tuple[int, int, int, int] = (1, 1, 1, 1)
    """``(G, S, d_A, d_B)`` of the layer's calls (for :mod:`~lossgeometry.kernel.cost`)."""


@dataclasses.dataclass
class Plan:
    """How the structured kernel of one problem is computed."""

    entries: list[LayerEntry]
    fallback: list[str]
    """Counted parameters without a (verified) rule: exact per-sample Jacobians."""
    reasons: dict[str, str]
    """Why a layer with parameters went to the fallback, by layer name."""
    activation_elements: int
    """Elements of all probed layer outputs per sample (the backward's working set)."""
    fallback_size: int
    """Number of scalar parameters handled by the fallback."""

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary: rule per layer, fallback parameters and why."""
        return {
            "layers": {e.name: f"{e.rule.name}/{e.route}" for e in self.entries},
            "fallback": list(self.fallback),
            "fallback_reasons": dict(self.reasons),
        }


_PLANS: weakref.WeakKeyDictionary[Problem, Plan] = weakref.WeakKeyDictionary()


def _first_input(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args:
        return args[0]
    return kwargs.get("input", next(iter(kwargs.values()), None))


@contextlib.contextmanager
def _capture(modules: Sequence[nn.Module]) -> Iterator[dict[int, list[tuple[Any, Any]]]]:
    """Record ``(input, output)`` of every call of ``modules`` (keyed by position)."""
    rec: dict[int, list[tuple[Any, Any]]] = defaultdict(list)
    handles = []
    for idx, m in enumerate(modules):

        def hook(mod: nn.Module, args: tuple, kwargs: dict, out: Any, idx: int = idx) -> None:
            rec[idx].append((_first_input(args, kwargs), out))

        handles.append(m.register_forward_hook(hook, with_kwargs=True))
    try:
        yield rec
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def _probe(
    entries: Sequence[LayerEntry], probes: dict[str, torch.Tensor], inputs: dict[str, Any]
) -> Iterator[None]:
    """Add ``probes["e:c"]`` to the output of call ``c`` of entry ``e``; record its input."""
    counts = [0] * len(entries)
    handles = []
    for idx, e in enumerate(entries):

        def hook(mod: nn.Module, args: tuple, kwargs: dict, out: Any, idx: int = idx) -> Any:
            c = counts[idx]
            counts[idx] += 1
            key = f"{idx}:{c}"
            if key not in probes:
                raise ValueError(
                    f"layer {entries[idx].name!r} was called more often in this forward pass "
                    f"than when the kernel plan was made ({len(entries[idx].out_shapes)} "
                    "calls): data-dependent control flow; use method='jacobian'"
                )
            inputs[key] = _first_input(args, kwargs)
            return out + probes[key]

        handles.append(e.module.register_forward_hook(hook, with_kwargs=True))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _sample_batches(problem: Problem) -> tuple[Inputs, Inputs]:
    """One-sample and two-sample input batches (the first sample twice when n = 1).

    Inputs of any structure (a tensor, a tuple or dict of tensors): indexed leaf by leaf. On a
    data-parallel Problem, this rank's own first one or two samples.
    """
    info = problem.shard
    first, last = (0, problem.n - 1) if info is None else (info.start, info.stop - 1)
    x1, _ = problem.batch(torch.tensor([first]))
    x2, _ = problem.batch(torch.tensor([first, min(first + 1, last)]))
    return x1, x2


def _param_owners(model: nn.Module) -> tuple[dict[int, str], dict[int, int]]:
    """Flat name of each parameter object, and how many modules own it."""
    names = {id(t): n for n, t in model.named_parameters()}
    owners: dict[int, set[int]] = defaultdict(set)
    for m in model.modules():
        for t in m._parameters.values():
            if t is not None:
                owners[id(t)].add(id(m))
    return names, {k: len(v) for k, v in owners.items()}


def build_plan(problem: Problem, verify: bool = True) -> Plan:
    """Decide, check and verify the structured computation for ``problem`` (cached).

    Args:
        problem: the problem.
        verify: compare every rule with plain autograd on two samples (see module doc).
    """
    cached = _PLANS.get(problem)
    if cached is not None:
        return cached
    x1, x2 = _sample_batches(problem)
    key = (structure_key(problem, x1), verify)
    hit = BY_STRUCTURE.get(key)
    if hit is not None:
        plan = rebind(hit[0], hit[1], problem.model)
        _PLANS[problem] = plan
        return plan
    BUILDS[0] += 1
    model = problem.model
    selected = set(problem.param_names)
    flat_name, n_owners = _param_owners(model)
    reasons: dict[str, str] = {}
    cands: list[tuple[str, nn.Module, Rule, dict[str, str]]] = []
    for mname, m in model.named_modules():
        local = {
            pn: flat_name[id(t)]
            for pn, t in m.named_parameters(recurse=False)
            if flat_name.get(id(t)) in selected
        }
        if not local:
            continue
        rule = rule_for(m)
        label = mname or type(m).__name__
        if rule is None:
            reasons[label] = f"no rule for {type(m).__name__}"
            continue
        why = rule.unsupported(m)
        if why:
            reasons[label] = why
            continue
        shared = [pn for pn, t in m.named_parameters(recurse=False) if n_owners[id(t)] > 1]
        for pn in shared:
            if pn in local:
                reasons[f"{label}.{pn}"] = "parameter shared with another layer"
                del local[pn]
        if local:
            cands.append((label, m, rule, local))

    w = problem.params()
    pdict = problem.param_dict(w)
    mods = [c[1] for c in cands]
    with torch.no_grad():
        with _capture(mods) as rec1:
            problem.forward_with(pdict, x1)
        with _capture(mods) as rec2:
            problem.forward_with(pdict, x2)
    entries: list[LayerEntry] = []
    n, k = problem.n, problem.k
    for idx, (label, m, rule, local) in enumerate(cands):
        calls1, calls2 = rec1.get(idx, []), rec2.get(idx, [])
        why = None
        if not calls2:
            why = "not called in the forward pass (parameters used elsewhere?)"
        elif len(calls1) != len(calls2):
            why = "called a different number of times for different batch sizes"
        else:
            for (i1, o1), (i2, o2) in zip(calls1, calls2, strict=True):
                if not torch.is_tensor(o2):
                    why = "output is not a tensor"
                    break
                why = rule.check_call(m, i1, o1, 1) or rule.check_call(m, i2, o2, 2)
                if why:
                    break
        if why:
            reasons[label] = why
            continue
        G, S, dA, dB = 1, 0, 1, 1
        for inp, out in calls1:
            G, s, dA, dB = rule.shape_info(m, inp, out)
            S += s
        costs = bilinear_costs(1, n, k, G, S, dA, dB)
        route = min(rule.routes, key=lambda r: costs.get(r, math.inf))
        outs = [tuple(o.shape[1:]) for _, o in calls2]
        if route == "materialize":
            per = k * G * dA * dB if rule.name != "layernorm" else 2 * k * dB
        else:
            per = k * G * S * dB + G * S * dA
        entries.append(
            LayerEntry(
                name=label,
                module=m,
                rule=rule,
                active=frozenset(local),
                param_names=[local[pn] for pn in local],
                out_shapes=outs,
                route=route,
                per_sample_elements=int(per),
                shape=(G, S, dA, dB),
            )
        )
    plan = _finish(problem, entries, reasons)
    if verify and plan.entries:
        plan = _verify(problem, plan, w)
    _PLANS[problem] = plan
    path = {id(m): n for n, m in model.named_modules()}
    if len(BY_STRUCTURE) >= MAX_STRUCTURES:
        del BY_STRUCTURE[next(iter(BY_STRUCTURE))]
    detached = [dataclasses.replace(e, module=None) for e in plan.entries]  # keep no model
    BY_STRUCTURE[key] = (
        dataclasses.replace(plan, entries=detached, reasons=dict(plan.reasons)),
        [path[id(e.module)] for e in plan.entries],
    )
    return plan


def agreed_plan(problem: Problem) -> Plan:
    """:func:`build_plan`, the same on every rank of a data-parallel Problem.

    Each rank checks and verifies the rules on its own samples; the ranks then exchange the
    layers each one kept, and a layer that failed on any rank goes to the fallback on all
    (so every rank's factors have the same layout). On one process: :func:`build_plan`.
    """
    plan = build_plan(problem)
    if not problem.is_data_parallel:
        return plan
    from lossgeometry.kernel.exchange import all_gather_object

    kept = all_gather_object([e.name for e in plan.entries], problem)
    common = set(kept[0]).intersection(*kept[1:])
    if all(len(names) == len(common) for names in kept):
        return plan
    reasons = dict(plan.reasons)
    for e in plan.entries:
        if e.name not in common:
            reasons[e.name] = f"{e.rule.name} rule failed its checks on another rank's samples"
    plan = _finish(problem, [e for e in plan.entries if e.name in common], reasons)
    _PLANS[problem] = plan
    return plan


def _finish(problem: Problem, entries: list[LayerEntry], reasons: dict[str, str]) -> Plan:
    covered = {n for e in entries for n in e.param_names}
    fallback = [n for n in problem.param_names if n not in covered]
    shapes = problem.param_shapes
    act = sum(math.prod(s) for e in entries for s in e.out_shapes)
    return Plan(
        entries=entries,
        fallback=fallback,
        reasons=reasons,
        activation_elements=int(act),
        fallback_size=int(sum(math.prod(shapes[n]) for n in fallback)),
    )


def _verify(problem: Problem, plan: Plan, w: torch.Tensor) -> Plan:
    """Check ``uᵀ K_layer u = ‖J_layerᵀ u‖²`` per layer on two samples; demote failures."""
    _, x2 = _sample_batches(problem)
    k = problem.k
    sel = None
    if k > 16:
        sel = torch.linspace(0, k - 1, 16, device=problem.device).round().long().unique()
    ks = k if sel is None else sel.numel()
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(input_count(x2), ks, generator=gen, dtype=torch.float64).to(
        device=problem.device, dtype=problem.dtype
    )
    pdict = problem.param_dict(w)
    factors, _ = chunk_factors(problem, plan, w, x2, sel, with_fallback=False)

    def outputs(pd: dict[str, torch.Tensor]) -> torch.Tensor:
        out = problem.forward_with(pd, x2).reshape(input_count(x2), -1)
        return out if sel is None else out[:, sel]

    pd = {n: t.detach().requires_grad_(True) for n, t in pdict.items()}
    with torch.enable_grad():
        gl = torch.autograd.grad(outputs(pd), list(pd.values()), u, materialize_grads=True)
    g = dict(zip(pd, gl, strict=True))
    tol = 1e-3 if problem.dtype in (torch.float32, torch.float16, torch.bfloat16) else 1e-7
    keep = []
    for e, f in zip(plan.entries, factors, strict=True):
        K = f.block(f, "full")
        quad = float(torch.einsum("ia,iajb,jb->", u, K, u))
        exact = float(sum(g[n].pow(2).sum() for n in e.param_names))
        if abs(quad - exact) <= tol * max(abs(exact), abs(quad)) + 1e-30:
            keep.append(e)
        else:
            plan.reasons[e.name] = (
                f"{e.rule.name} rule failed verification (uᵀKu = {quad:.6g} vs "
                f"‖Jᵀu‖² = {exact:.6g}): its parameters are used outside its forward?"
            )
    if len(keep) == len(plan.entries):
        return plan
    return _finish(problem, keep, plan.reasons)


def chunk_factors(
    problem: Problem,
    plan: Plan,
    w: torch.Tensor,
    x: Inputs,
    sel: torch.Tensor | None,
    with_fallback: bool = True,
) -> tuple[list[Factors], Factors | None]:
    """Kernel factors of one chunk of inputs: one per rule layer, and the fallback's.

    Args:
        problem: the problem.
        plan: from :func:`build_plan`.
        w: flat parameters.
        x: a chunk of inputs ``(b, ...)``.
        sel: output indices (``None``: all ``k``).
        with_fallback: also compute the fallback Jacobians.
    """
    pdict = problem.param_dict(w.detach())
    b = input_count(x)
    factors: list[Factors] = []
    if plan.entries:
        probes = {
            f"{i}:{c}": torch.zeros((b, *shape), device=problem.device, dtype=problem.dtype)
            for i, e in enumerate(plan.entries)
            for c, shape in enumerate(e.out_shapes)
        }

        inputs: dict[str, Any] = {}
        # Plain autograd with batched cotangents (not torch.func.vjp, whose first use in a
        # process imports torch._dynamo, about 1 s): the same batched backward, same numbers.
        with torch.enable_grad():
            for t in probes.values():
                t.requires_grad_(True)
            with _probe(plan.entries, probes, inputs):
                out = problem.forward_with(pdict, x).reshape(b, -1)
            out = out if sel is None else out[:, sel]
            ks = out.shape[1]
            eye = torch.eye(ks, device=problem.device, dtype=out.dtype)
            cot = eye[:, None, :].expand(ks, b, ks)
            gl = torch.autograd.grad(
                out, list(probes.values()), cot, is_grads_batched=True, materialize_grads=True
            )
        grads = dict(zip(probes, gl, strict=True))
        for i, e in enumerate(plan.entries):
            keys = [f"{i}:{c}" for c in range(len(e.out_shapes))]
            if any(key not in inputs for key in keys):
                raise ValueError(
                    f"layer {e.name!r} was called fewer times than when the kernel plan was "
                    "made: data-dependent control flow; use method='jacobian'"
                )
            ins = [inputs[key].detach() for key in keys]
            gs = [grads[key].detach().movedim(0, 1) for key in keys]
            factors.append(e.rule.factors(e.module, ins, gs, e.active, e.route))
    fb = None
    if with_fallback and plan.fallback:
        fb = jacobian_factors(problem, pdict, plan.fallback, x, sel)
    return factors, fb
