"""statsmodels' ETS maximum likelihood with scipy's own finite-difference gradient, in one loop.

``ETSModel.fit`` asks L-BFGS-B for ``approx_grad=True``: scipy then evaluates the objective once
per parameter for each gradient (19 calls for the 18 parameters of a seasonal damped model), each
call through its wrappers (copies, dtype checks, counters, bound handling). With one BLAS thread, as
in the workers, those wrappers took about 40% of a fit, the log-likelihood itself about 45%.

:class:`TwoPointLBFGS` sits after ``ETSModel`` in the lean model's method order, where
``ETSModel.fit`` calls ``super().fit(...)``: it gives L-BFGS-B the objective and its gradient from
one function, the gradient computed with the steps scipy's ``approx_derivative`` takes (method
'2-point', absolute step ``epsilon``, one-sided and inside the bounds; ``_adjust_scheme_to_bounds``
is scipy's own). L-BFGS-B therefore gets the same values at the same points and takes the same
iterates: the same estimates to the bit (tested against the stock fit on the embedded series). Any
other call (another method, an analytic score, a given epsilon) goes to statsmodels unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import fmin_l_bfgs_b
from scipy.optimize._constraints import old_bound_to_new
from scipy.optimize._numdiff import _adjust_scheme_to_bounds  # scipy's own step rule at the bounds
from statsmodels.tools.tools import Bunch

#: fmin_l_bfgs_b's default absolute step of its finite differences
EPSILON = 1e-8
#: the step where x + EPSILON == x (scipy's ``_eps_for_method`` for float64, '2-point')
RELATIVE_STEP = float(np.finfo(np.float64).eps ** 0.5)
#: fmin_l_bfgs_b's default limit on evaluations (each gradient counted as one per parameter)
MAXFUN = 15000


def two_point_gradient(
    objective: Callable[[np.ndarray], Any], x: np.ndarray, f0: Any, lb: np.ndarray, ub: np.ndarray
) -> np.ndarray:
    """The gradient of ``objective`` at ``x`` (where it is ``f0``) as scipy's ``approx_derivative``
    computes it with ``method='2-point'``, ``abs_step=EPSILON`` and bounds ``(lb, ub)``."""
    sign = (x >= 0).astype(float) * 2 - 1
    step = np.where(((x + EPSILON) - x) == 0, RELATIVE_STEP * sign * np.maximum(1.0, np.abs(x)), EPSILON)
    step, _ = _adjust_scheme_to_bounds(x, step, 1, "1-sided", lb, ub)
    gradient = np.empty(x.size)
    for i in range(x.size):
        stepped = np.copy(x)
        stepped[i] = x[i] + step[i]
        gradient[i] = (objective(stepped) - f0) / ((x[i] + step[i]) - x[i])
    return gradient


def after_model(base: type) -> type:
    """:class:`TwoPointLBFGS` on ``base`` (the model class's own base), to be listed after the model
    class, so that the model's ``super().fit(...)`` lands in it: ``class Lean(ETSModel,
    after_model(StateSpaceMLEModel))``."""
    return type("TwoPointFit", (TwoPointLBFGS, base), {"__module__": __name__, "__qualname__": "TwoPointFit"})


class TwoPointLBFGS:
    """A mixin for a statsmodels likelihood model (see :func:`after_model`): its ``fit`` is the
    base's L-BFGS fit with the finite-difference gradient of one loop."""

    def fit(  # type: ignore[override]
        self,
        start_params: Any = None,
        method: str = "newton",
        maxiter: int = 100,
        full_output: bool = True,
        disp: bool = True,
        fargs: tuple = (),
        callback: Any = None,
        retall: bool = False,
        skip_hessian: bool = False,
        **kwargs: Any,
    ) -> Any:
        own = {"bounds", "approx_grad", "m", "pgtol", "factr", "iprint", "maxfun"}
        if method != "lbfgs" or not kwargs.get("approx_grad") or retall or set(kwargs) - own:
            return super().fit(  # type: ignore[misc]
                start_params,
                method=method,
                maxiter=maxiter,
                full_output=full_output,
                disp=disp,
                fargs=fargs,
                callback=callback,
                retall=retall,
                skip_hessian=skip_hessian,
                **kwargs,
            )
        return self._two_point_lbfgs(np.asarray(start_params, dtype=float), fargs, maxiter, callback, kwargs)

    def _two_point_lbfgs(
        self, start: np.ndarray, fargs: tuple, maxiter: int, callback: Any, options: dict[str, Any]
    ) -> Any:
        nobs = self.endog.shape[0]  # type: ignore[attr-defined]
        bounds = options.get("bounds") or [(None, None)] * len(start)
        lb, ub = old_bound_to_new(bounds)  # as scipy's L-BFGS-B hands them to its differences

        def objective(params: np.ndarray) -> Any:  # LikelihoodModel.fit's f
            return -self.loglike(params, *fargs) / nobs  # type: ignore[attr-defined]

        def objective_and_gradient(params: np.ndarray) -> tuple[Any, np.ndarray]:
            f0 = objective(params)
            return f0, two_point_gradient(objective, params, f0, lb, ub)

        # scipy counted each gradient as len(start) evaluations more: the same limit, in points
        maxfun = options.get("maxfun", MAXFUN) // (len(start) + 1)
        passed = {key: options[key] for key in ("m", "pgtol", "factr", "iprint") if key in options}
        xopt, fopt, info = fmin_l_bfgs_b(
            objective_and_gradient, start, maxiter=maxiter, callback=callback, bounds=bounds, maxfun=maxfun, **passed
        )
        retvals = {
            "fopt": fopt,
            "gopt": info["grad"],
            "fcalls": info["funcalls"] * (len(start) + 1),
            "warnflag": info["warnflag"],
            "converged": info["warnflag"] == 0,
            "iterations": info["nit"],
        }
        return Bunch(params=xopt, mle_retvals=retvals, mle_settings={"optimizer": "lbfgs", "maxiter": maxiter})
