"""Numerical solvers of the congruent construction (WIN paper, section 5), in float64.

* :func:`_cg` -- conjugate gradients, row by row, for batches of SPD operators.
* :func:`_solve_left` -- Newton-CG for problem (11), the beta-left gradient of a potential.
* :func:`_torch_single_thread` -- runs torch single-threaded inside (the solvers make many
  small calls, for which intra-op threads cost more than they save).
"""

from __future__ import annotations

import torch

from ..training.device import torch_threads


def _torch_single_thread():
    """Run torch single-threaded inside (restored after): the shared thread guard.

    The congruent-potential solvers make many elementwise calls on (n, d) tensors; torch's
    intra-op threads add more wake-up cost than they save there, and on a busy machine
    they can slow the build down tenfold.
    """
    return torch_threads(1)


def _cg(matvec, B: torch.Tensor, rtol, max_iter: int = 200) -> torch.Tensor:
    """Conjugate gradients, row by row: solve ``A_i x_i = b_i`` for SPD operators A_i.

    ``matvec(P)`` applies every row's operator to its row of P; ``rtol`` is a float or a
    per-row tensor (stop when ``|r_i| <= rtol_i |b_i|``).
    """
    X = torch.zeros_like(B)
    R = B.clone()
    P = R.clone()
    rs = (R * R).sum(1)
    stop = (rtol * torch.sqrt(rs)) ** 2
    for _ in range(max_iter):
        live = rs > stop
        if not bool(live.any()):
            break
        AP = matvec(P)
        pap = (P * AP).sum(1)
        alpha = torch.where(live, rs / torch.where(live, pap, 1.0), 0.0)
        X += alpha[:, None] * P
        R -= alpha[:, None] * AP
        rs_new = (R * R).sum(1)
        P = R + torch.where(live, rs_new / torch.where(live, rs, 1.0), 0.0)[:, None] * P
        rs = rs_new
    return X


def _solve_left(
    pot,
    beta: float,
    X: torch.Tensor,
    Y0: torch.Tensor | None = None,
    tol: float = 1e-12,
    max_iter: int = 100,
):
    """Solve problem (11): ``y = argmax <x, y> - beta |y|^2 / 2 - (1 - beta) psi(y)``.

    Newton-CG (Hessian-vector products of the FICNN, Armijo backtracking row by row) on
    the strongly convex ``Phi(y) - <x, y>``, ``Phi = beta |.|^2 / 2 + (1 - beta) psi``, in
    float64, until ``|grad| <= tol (1 + |x|)`` on every row.

    Returns
    -------
    Y : tensor (n, d)
        ``grad psi^l(x)``.
    G : tensor (n, d)
        ``grad psi(Y)``, i.e. ``grad psi^r(x)``.
    hvp : callable
        Hessian-vector products of psi at Y.
    """
    Y = X.clone() if Y0 is None else Y0.clone()
    scale = 1.0 + torch.linalg.vector_norm(X, dim=1)
    active = torch.arange(len(X))
    for _ in range(max_iter):
        x, y = X[active], Y[active]
        v, g0, hvp = pot.linearize(y)
        grad = beta * y + (1.0 - beta) * g0 - x
        gnorm = torch.linalg.vector_norm(grad, dim=1)
        keep = gnorm > tol * scale[active]
        if not bool(keep.any()):
            break
        if not bool(keep.all()):
            active, x, y, grad, v, gnorm = (t[keep] for t in (active, x, y, grad, v, gnorm))
            v, g0, hvp = pot.linearize(y)
        xy = (x * y).sum(1)
        f = 0.5 * beta * (y * y).sum(1) + (1.0 - beta) * v - xy
        noise = f.abs() + xy.abs() + v.abs()
        eta = torch.clamp(torch.sqrt(gnorm / scale[active]), max=0.1)
        p = -_cg(lambda P, h=hvp: beta * P + (1.0 - beta) * h(P), grad, eta)
        slope = (grad * p).sum(1)
        t = torch.ones(len(active), dtype=X.dtype)
        for _ in range(40):
            y_new = y + t[:, None] * p
            f_new = 0.5 * beta * (y_new * y_new).sum(1) + (1.0 - beta) * pot(y_new)
            f_new = f_new - (x * y_new).sum(1)
            # near the solution the decrease is below the round-off of f: take full steps
            ok = (f_new <= f + 1e-4 * t * slope) | (-slope <= 1e-13 * (1.0 + noise))
            if bool(ok.all()):
                break
            t = torch.where(ok, t, 0.5 * t)
        Y[active] = y + t[:, None] * p
    else:
        raise RuntimeError(f"problem (11) did not converge in {max_iter} Newton steps.")
    _, G, hvp = pot.linearize(Y)
    return Y, G, hvp
