"""netsharp: a compiler and trainer for Microsoft's Net# neural-network language.

    import netsharp
    net = netsharp.compile_file("samples/mlp.ns")
    print(net.summary())
"""

from .compiler import compile, compile_file
from .errors import DataError, NetsharpError, ParseError, ResourceError, SemanticError
from .ir import Layer, Network, Parameter

__version__ = "0.1.0"

__all__ = ["compile", "compile_file", "Network", "Layer", "Parameter", "NetsharpError",
           "ParseError", "SemanticError", "ResourceError", "DataError", "__version__"]
