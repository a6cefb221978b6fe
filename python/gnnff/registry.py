"""Builders by name, for configs: ``{name: ..., **kwargs}`` -> object.

A builder is a plain function whose keyword arguments are the config schema. Unknown names and
unknown keyword arguments are errors that name the closest valid one, so a misspelt config key
fails before any work starts. Used for models (gnnff.models.registry) and loss terms
(gnnff.training.loss_terms).
"""

import importlib
import inspect
from typing import Callable, Dict, List, Sequence

from gnnff.suggest import did_you_mean


def _closest(word: str, options) -> str:
    return did_you_mean(word, options)


class Registry:
    def __init__(self, kind: str, builtin_modules: Sequence[str]):
        self.kind = kind  # "model", "loss term": used in error messages
        self._builtin_modules = tuple(builtin_modules)
        self._builders: Dict[str, Callable] = {}

    def register(self, name: str):
        """Decorator: make ``builder`` available under ``name``."""

        def decorate(builder):
            if name in self._builders:
                raise ValueError(f"{self.kind} name {name!r} is registered twice")
            self._builders[name] = builder
            return builder

        return decorate

    def names(self) -> List[str]:
        self._import_builtins()
        return sorted(self._builders)

    def builder(self, name: str) -> Callable:
        """The builder registered under ``name`` (its signature is the config schema)."""
        self._import_builtins()
        if name not in self._builders:
            raise ValueError(
                f"unknown {self.kind} {name!r}{_closest(name, self._builders)}; "
                f"available: {sorted(self._builders)}"
            )
        return self._builders[name]

    def build(self, name: str, **kwargs):
        builder = self.builder(name)
        params = inspect.signature(builder).parameters
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            for key in kwargs:
                if key not in params:
                    raise ValueError(
                        f"{self.kind} {name!r} has no option {key!r}{_closest(key, params)}; "
                        f"options: {sorted(params)}"
                    )
        return builder(**kwargs)

    def _import_builtins(self) -> None:
        # importing a module runs its registration decorators; a module that does not exist
        # (an optional part) is skipped, an error inside one is not
        for module in self._builtin_modules:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as err:
                if err.name != module:
                    raise
