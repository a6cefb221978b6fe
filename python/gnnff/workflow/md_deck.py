"""The LAMMPS input deck the pipeline runs with pair_style gnnff (units metal: Å, eV, ps)."""

DECK = """\
# gnnff pipeline: NVT molecular dynamics of a trained model through pair_style gnnff.
# Run it yourself with: mpirun -np 2 lmp -in {deck_name}
units           metal
atom_style      atomic
boundary        {boundary}
read_data       {data_file}

pair_style      {pair_style}
pair_coeff      * * {model_file} {elements}

velocity        all create {temperature} {seed} mom yes rot yes dist gaussian
timestep        {timestep_ps}
fix             thermostat all nvt temp {temperature} {temperature} {tdamp_ps}

thermo_style    custom step time temp pe ke etotal press
thermo_modify   format float %14.6f
thermo          {thermo_every}
dump            traj all custom {dump_every} {dump_file} id type element x y z
dump_modify     traj element {elements} sort id
run             {steps}
"""


def render_deck(boundary: str = "p p p", pair_style: str = "gnnff", **values) -> str:
    """Fill the deck template; every value is written verbatim into the LAMMPS input.

    ``boundary="f f f"`` is for a molecule in vacuum; ``pair_style`` other than gnnff (with
    ``model_file`` the potential file) runs a reference potential through the same deck.
    """
    return DECK.format(boundary=boundary, pair_style=pair_style, **values)
