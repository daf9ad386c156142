"""Names of a package imported on first use (PEP 562), one way for every package that defers a heavy import.

``__getattr__, __dir__ = lazy_names(__name__, {"name": "module.defining.it", ...}, globals())`` in a package's
``__init__``: ``package.name`` imports its module on first use and keeps the value in the package (a second use costs
nothing); ``dir(package)`` lists the deferred names too.
"""

import importlib


def lazy_names(package: str, table: dict, namespace: dict):
    """``(__getattr__, __dir__)`` for the package ``package`` whose globals are ``namespace``: each name of ``table``
    comes from the module ``table[name]`` (a full module name) the first time it is asked for."""

    def __getattr__(name: str):
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(table[name]), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
