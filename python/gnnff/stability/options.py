"""The criterion registry, and options declared once per criterion.

A criterion declares its options as a dataclass whose fields are made with :func:`option`
(default, help text, and optionally the keyword and command-line flag). From these
declarations come, with nothing written twice:

* the keywords of :class:`StabilityOptions` (``StabilityOptions(rdf_window=10)``),
* the ``gnnff analyze`` / ``scripts/analyze_dump.py`` flags (``--rdf-window``) with their
  defaults and help (:func:`add_criterion_arguments`),
* the list of names ``--criteria`` accepts.

Importing this module imports no criterion (the registry imports them on first use).
"""

import argparse
import dataclasses
import typing
from typing import Any, Dict, List, Optional, Sequence

from ..registry import Registry
from ..suggest import did_you_mean

CRITERIA = Registry(
    "stability criterion",
    [
        f"gnnff.stability.{module}"
        for module in ("bonds", "rdf", "close_contacts", "sanity", "thermo_criteria")
    ],
)


def register_criterion(name: str):
    """Class decorator: register a Criterion subclass under ``name`` (also its ``name``)."""

    def decorate(cls):
        cls.name = name
        return CRITERIA.register(name)(cls)

    return decorate


def option(
    default,
    help: str,
    *,
    key: Optional[str] = None,
    flag: Optional[str] = None,
    metavar: Optional[str] = None,
):
    """A criterion option: a dataclass field. ``key`` (the StabilityOptions keyword and argparse
    dest) defaults to ``<criterion>_<field>``, ``flag`` to ``--`` + key with dashes."""
    return dataclasses.field(
        default=default, metadata={"help": help, "key": key, "flag": flag, "metavar": metavar}
    )


@dataclasses.dataclass
class OptionSpec:
    criterion: str
    field: str
    key: str
    flag: str
    default: Any
    type: type  # float, int or str (the inner type of Optional[...])
    help: str
    metavar: Optional[str]


def criterion_classes() -> List[type]:
    """Registered criteria in report order."""
    return sorted((CRITERIA.builder(n) for n in CRITERIA.names()), key=lambda c: c.order)


def option_specs() -> List[OptionSpec]:
    specs = []
    for cls in criterion_classes():
        hints = typing.get_type_hints(cls.Options)
        for f in dataclasses.fields(cls.Options):
            meta = f.metadata
            key = meta.get("key") or f"{cls.name}_{f.name}"
            kind = hints[f.name]
            inner = [a for a in typing.get_args(kind) if a is not type(None)]
            specs.append(
                OptionSpec(
                    criterion=cls.name,
                    field=f.name,
                    key=key,
                    flag=meta.get("flag") or "--" + key.replace("_", "-"),
                    default=f.default,
                    type=inner[0] if inner else kind,
                    help=meta.get("help", ""),
                    metavar=meta.get("metavar"),
                )
            )
    return specs


class StabilityOptions:
    """Run-wide settings plus every criterion's options by their keyword.

    ``StabilityOptions(timestep_ps=0.002, rdf_window=4, close_fraction=0.4)``; an unknown
    keyword is an error naming the closest one.
    """

    def __init__(
        self,
        timestep_ps: Optional[float] = None,
        elements: Optional[Sequence[str]] = None,
        criteria: Optional[Sequence[str]] = None,
        progress: bool = False,
        **criterion_options,
    ):
        self.timestep_ps = timestep_ps  # time per MD step; default: from the log, else 0.001
        self.elements = elements  # element of LAMMPS type 1, 2, ...
        self.criteria = criteria  # the ones that count; default: automatic choice
        self.progress = progress
        specs = {s.key: s for s in option_specs()}
        for key in criterion_options:
            if key not in specs:
                raise ValueError(
                    f"unknown stability option {key!r}{did_you_mean(key, specs)}; options: "
                    f"{sorted(specs)}"
                )
        self._values = {k: criterion_options.get(k, s.default) for k, s in specs.items()}

    def __getattr__(self, key):
        values = self.__dict__.get("_values", {})
        if key in values:
            return values[key]
        raise AttributeError(key)

    def for_criterion(self, cls) -> Any:
        """The ``cls.Options`` instance these settings give (its checks run here)."""
        kwargs = {s.field: self._values[s.key] for s in option_specs() if s.criterion == cls.name}
        return cls.Options(**kwargs)

    def __repr__(self) -> str:
        return (
            f"StabilityOptions(timestep_ps={self.timestep_ps!r}, elements={self.elements!r}, "
            f"criteria={self.criteria!r}, progress={self.progress!r}, {self._values!r})"
        )


def add_criterion_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per criterion option, default and help from its declaration."""
    group = parser.add_argument_group("criterion options")
    for spec in option_specs():
        default = "" if spec.default is None else f" (default {spec.default})"
        group.add_argument(
            spec.flag,
            dest=spec.key,
            type=spec.type,
            default=spec.default,
            metavar=spec.metavar,
            help=f"{spec.criterion}: {spec.help}{default}",
        )


def criterion_options_from_args(args: argparse.Namespace) -> Dict[str, Any]:
    return {s.key: getattr(args, s.key) for s in option_specs()}
