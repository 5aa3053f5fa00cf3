"""netsharp: a compiler and trainer for Microsoft's Net# neural-network language.

    import netsharp
    net = netsharp.compile_file("samples/mlp.ns")
    print(net.summary())
"""

from .compiler import compile, compile_file
from .errors import (DataError, NetsharpError, NumericalError, ParseError, ResourceError,
                     SemanticError)
from .ir import Layer, Network, Parameter

__version__ = "0.1.0"

__all__ = ["compile", "compile_file", "Network", "Layer", "Parameter", "Model", "load",
           "NetsharpError", "ParseError", "SemanticError", "ResourceError", "DataError",
           "NumericalError",
           "__version__"]


def __getattr__(name):
    # Lazy: `netsharp compile` must never pay for (or import) the training stack.
    if name in ("Model", "load"):
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module 'netsharp' has no attribute {name!r}")
