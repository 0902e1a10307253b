"""srlib: super-resolving 3D nanostructures with networks trained on artificial images.

A thin library implementing every method of Furat, Gräfensteiner et al., "Super-resolving
3D nanostructures using artificially generated image data and spatial transport simulations".

Modules are named after the paper's concepts and imported explicitly, e.g.
``from srlib import stochastic``; importing :mod:`srlib` itself is cheap and loads neither
torch nor scikit-fem.

Conventions used everywhere: images are NumPy arrays indexed ``[z, y, x]``; binary images are
``bool`` with ``True`` = solid and ``False`` = pore (the paper's 1 and 0); the image is the
first argument and options are keyword-only; inputs are never modified; bad input raises
:class:`ValueError` with a message naming the problem.
"""

from importlib import import_module

__version__ = "0.1.0"

_SUBMODULES = (
    "baselines",
    "capacity",
    "cli",
    "samples",
    "comparison",
    "config",
    "datasets",
    "devices",
    "evaluation",
    "fem",
    "fields",
    "fieldnets",
    "findings",
    "geodesic",
    "inference",
    "layers",
    "intervals",
    "io",
    "machine",
    "methods",
    "metrics",
    "network",
    "parallel",
    "plan",
    "plotting",
    "resample",
    "resolvers",
    "stochastic",
    "training",
    "transport",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name):
    """Import submodules lazily, so ``import srlib`` stays cheap."""
    if name in _SUBMODULES:
        return import_module(f"srlib.{name}")
    raise AttributeError(f"module 'srlib' has no attribute {name!r}")
