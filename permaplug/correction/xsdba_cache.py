"""Keep xsdba's compiled quantile kernel between processes.

xsdba computes the training quantiles of ``EmpiricalQuantileMapping`` (``qm``), ``qdm`` and
``dqm`` with ``xsdba.nbutils._quantile``, which calls ``_wrapper_quantile1d``: a numba function
declared with a plain ``@njit`` (xsdba 0.7), so unlike xsdba's other kernels it is compiled
again in every process -- several seconds of every ``permaplug run``, ``project`` and
``correct`` (issue 16 item 4). :func:`cache_quantile_kernel` re-declares the same Python
function with ``cache=True``: the machine code is then written once into xsdba's
``__pycache__`` (or ``NUMBA_CACHE_DIR``) and loaded by later processes. Same code, same results;
xsdba's other functions are untouched.
"""
from __future__ import annotations

_NAME = "_wrapper_quantile1d"


def cache_quantile_kernel() -> bool:
    """Make xsdba's ``nbutils._wrapper_quantile1d`` a cached numba function (idempotent).

    Returns True when the function was replaced (False: xsdba's own already caches, or the
    function is absent in this xsdba version).
    """
    from xsdba import nbutils

    func = getattr(nbutils, _NAME, None)
    py_func = getattr(func, "py_func", None)
    if py_func is None or type(getattr(func, "_cache", None)).__name__ != "NullCache":
        return False
    from numba import njit

    setattr(nbutils, _NAME, njit(cache=True)(py_func))
    return True
