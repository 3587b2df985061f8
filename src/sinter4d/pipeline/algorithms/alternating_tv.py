"""The paper's alternating scheme: a SIRT data step, then steepest descent on total variation.

The ISER-like scheme of [Kamo2015]_ [Kim2021]_, in the open form of
ASD-POCS [Sidky2008]_: the length of the TV descent is tied to the length
of the data step.

References
----------
.. [Kamo2015] K. Kamo, N. Horii, H. Furukawa, H. Kudo, Microscopy 64 (suppl 1),
   i84 (2015) (ISER as used by the paper; abstract).
.. [Kim2021] H. Kim, K. Sadataka, H. Kudo, Proc. 6th Int. Conf. Biomedical
   Signal and Image Processing (ICBIP '21), 65–71 (2021).
.. [Sidky2008] E. Y. Sidky, X. Pan, "Image reconstruction in circular cone-beam
   computed tomography by constrained, total-variation minimization",
   Phys. Med. Biol. 53, 4777–4807 (2008). doi:10.1088/0031-9155/53/17/021
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ...checks import check_int, check_number
from ...errors import InputError
from ...operators import LinearOperator
from ..functions.total_variation import tv_gradient, tv_value
from .base import step_kernel
from .sirt import SIRT

__all__ = ["DEFAULT_TV_FRACTION", "FRACTION_REDUCTION", "GROWTH_LIMIT", "AlternatingTV"]

logger = logging.getLogger(__name__)

#: Default TV strength of :class:`AlternatingTV` (TV descent per iteration / data step length).
DEFAULT_TV_FRACTION = 3.0
#: :class:`AlternatingTV` reduces its TV fraction when the data step grows by more than this ...
GROWTH_LIMIT = 1.05
#: ... multiplying it by this (ASD-POCS's adaptive reduction).
FRACTION_REDUCTION = 0.8


class AlternatingTV(SIRT):
    """The paper's ISER-like scheme: a SIRT data step, then TV-reduction steps.

    Each iteration (i) takes one SIRT step (with ``x >= 0``) of length
    ``dp = ||x_{k+1/2} - x_k||``, then (ii) moves a distance
    ``tv_fraction * dp`` down the isotropic 3D total variation, in
    ``tv_steps`` equal steps along ``-grad TV_eps / ||grad TV_eps||``
    (projecting onto ``x >= 0``). Tying the TV step to the data step makes
    the balance independent of the data scale and shrink as the data are
    fitted: the adaptive steepest descent of ASD-POCS [1]_, the open
    relative of ISER [2]_ [3]_ ("the reconstruction error is first reduced,
    and then the total variation norm is reduced", each iteration).
    ``tv_fraction`` is the strength of the regularisation (the default, 3,
    is what binarises sphere phantoms best over the doses of the sweep; see
    docs/validation.md). If the data step grows by more than 5 % from one iteration to
    the next (the TV steps overshoot), ``tv_fraction`` is multiplied by 0.8,
    ASD-POCS's safeguard. ``relaxation_decay`` < 1 shrinks both steps
    geometrically so the iterate settles (ASD-POCS's beta reduction).

    Memory: the iterate, one work volume (reused for the back-projection and
    for the TV gradient, which is computed without storing the gradient
    field) and one work sinogram. ``relative_change`` is the relative length
    of the data step, ``dp / ||x||``.

    Parameters
    ----------
    operator : LinearOperator
    data : (n_angles, ny, n_det) ndarray
    tv_fraction : float, optional
        TV descent per iteration relative to the data step (>= 0; 0 is SIRT).
    tv_steps : int, optional
        Steps the TV descent is split into (each costs one pass over x).
    smoothing : float, optional
        ``eps`` of the smoothed TV used for its gradient, in units of ``x``;
        default ``1e-3`` times the typical density ``b_99 / median(A 1)``.
    relaxation, relaxation_decay : float, optional
        Data-step relaxation and its factor per iteration (1: constant).
    initial, nonneg, tol
        As for :class:`~sinter4d.pipeline.algorithms.SIRT`.

    References
    ----------
    .. [1] E. Y. Sidky, X. Pan, Phys. Med. Biol. 53, 4777–4807 (2008).
       doi:10.1088/0031-9155/53/17/021
    .. [2] K. Kamo, N. Horii, H. Furukawa, H. Kudo, Microscopy 64, i84 (2015).
    .. [3] H. Kim, K. Sadataka, H. Kudo, ICBIP '21, 65–71 (2021).
    """

    def __init__(
        self,
        operator: LinearOperator,
        data: np.ndarray,
        *,
        tv_fraction: float = DEFAULT_TV_FRACTION,
        tv_steps: int = 1,
        smoothing: float | None = None,
        relaxation: float = 1.0,
        relaxation_decay: float = 1.0,
        initial: np.ndarray | None = None,
        nonneg: bool = True,
        tol: float | None = None,
    ) -> None:
        super().__init__(operator, data, initial=initial, relaxation=relaxation, nonneg=nonneg, tol=tol)
        self.tv_fraction = check_number(tv_fraction, "tv_fraction", minimum=0.0)
        self.tv_steps = check_int(tv_steps, "tv_steps", minimum=0)
        self.relaxation_decay = check_number(relaxation_decay, "relaxation_decay", minimum=0.0, maximum=1.0)
        if self.relaxation_decay == 0:
            raise InputError(f"relaxation_decay={relaxation_decay!r} must be in (0, 1]")
        if smoothing is None:
            smoothing = 1e-3 * _density_scale(self.data, self._row_sums)
        self.smoothing = float(smoothing)
        self._ones = np.ones(self._C.shape, np.float32)
        self._dp_prev: float | None = None

    def update(self) -> None:
        """One data step then ``tv_steps`` TV-descent steps."""
        beta = self.relaxation * self.relaxation_decay**self.iteration
        dp = math.sqrt(self._data_step(beta))
        if self._dp_prev is not None and dp > GROWTH_LIMIT * self._dp_prev:
            self.tv_fraction *= FRACTION_REDUCTION  # the TV steps overshoot: the data step grows
            logger.debug("AlternatingTV: data step grew, tv_fraction -> %.3g", self.tv_fraction)
        self._dp_prev = dp
        if self.tv_fraction == 0 or dp == 0 or self.tv_steps == 0:
            return
        length = self.tv_fraction * dp / self.tv_steps
        for _ in range(self.tv_steps):
            g2 = tv_gradient(self.x, self._w, eps=self.smoothing)
            if g2 <= 0:
                break
            step_kernel(self.x, self._w, self._ones, np.float32(-length / math.sqrt(g2)), self.nonneg)

    def objective(self) -> float:
        """``TV(x)`` (the quantity the TV steps reduce; the data term is :meth:`SIRT.objective`)."""
        return tv_value(self.x)


def _density_scale(data: np.ndarray, rows: np.ndarray) -> float:
    """Typical value of ``x``: the 99th percentile of the data over the median path length."""
    sub = data.ravel()[:: max(1, data.size // 1_000_000)]
    b = float(np.percentile(sub, 99.0))
    hit = rows[rows > 0]
    path = float(np.median(hit)) if hit.size else 1.0
    scale = b / path
    return scale if scale > 0 else 1.0
