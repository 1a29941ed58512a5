"""The one way the backtester compiles a function with numba.

Compiled for exactly the declared types when its module is imported, once per machine:
the machine code is cached beside the module (or in ``NUMBA_CACHE_DIR``), so a new
process loads it instead (about half a second, importing numba included, paid by the
first backtest of a process: the modules that compile are imported lazily). Arrays of
other types are refused rather than compiled anew. No ``fastmath``: numba then compiles
IEEE-754 operations as written, neither reassociated nor fused, so a compiled expression
gives the float Python or numpy gives for it, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

_Function = TypeVar("_Function", bound=Callable[..., Any])


def compiled(signature: str) -> Callable[[_Function], _Function]:
    """``numba.njit`` for ``signature``, cached, releasing the GIL; a division by zero
    gives an infinity or a NaN, as in numpy, instead of raising.
    """

    def compile_(function: _Function) -> _Function:
        # A Dispatcher, called like the function it compiled.
        jit = numba.njit(signature, cache=True, nogil=True, error_model="numpy")
        return cast(_Function, jit(function))

    return compile_
