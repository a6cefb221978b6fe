"""How the shipped molecule geometries (python/gnnff/datagen/structures/*.xyz) were made; run
by hand once. A maintainer's script, not part of the package (nothing imports it).

Step 1 (needs rdkit, NOT a gnnff dependency; use a throw-away venv with ``pip install rdkit``):
    python scripts/make_structures.py embed CONFDIR
  embeds 12 conformers per SMILES (ETKDG, fixed random seed) and optimises each with MMFF94.
Step 2 (gnnff venv, needs tblite + ase: ``pip install .[xtb]``):
    python scripts/make_structures.py relax CONFDIR python/gnnff/datagen/structures
  relaxes every conformer with GFN2-xTB (BFGS, fmax 0.005 eV/Å) and keeps the lowest-energy
  one per molecule, so that e.g. salicylic acid has its intramolecular hydrogen bond.
"""

import glob
import os
import sys

SMILES = {
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
    "ethanol": "CCO",
    "naphthalene": "c1ccc2ccccc2c1",
    "salicylic_acid": "OC(=O)c1ccccc1O",
    "malonaldehyde": "O/C=C\\C=O",
    "toluene": "Cc1ccccc1",
    "uracil": "O=C1C=CNC(=O)N1",
    "benzene": "c1ccccc1",
}


def embed(confdir: str) -> None:
    from rdkit import Chem
    from rdkit.Chem import AllChem

    os.makedirs(confdir, exist_ok=True)
    for name, smiles in SMILES.items():
        mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
        conf_ids = AllChem.EmbedMultipleConfs(mol, numConfs=12, randomSeed=20250101)
        AllChem.MMFFOptimizeMoleculeConfs(mol, maxIters=2000)
        for cid in conf_ids:
            conf = mol.GetConformer(cid)
            with open(os.path.join(confdir, f"{name}_{cid}.xyz"), "w") as f:
                f.write(f"{mol.GetNumAtoms()}\n{name} smiles={smiles}\n")
                for atom in mol.GetAtoms():
                    p = conf.GetAtomPosition(atom.GetIdx())
                    f.write(f"{atom.GetSymbol()} {p.x:.6f} {p.y:.6f} {p.z:.6f}\n")


def relax(confdir: str, outdir: str) -> None:
    import ase.io
    from ase.optimize import BFGS
    from tblite.ase import TBLite

    for name, smiles in SMILES.items():
        best = None
        for path in sorted(glob.glob(os.path.join(confdir, f"{name}_*.xyz"))):
            atoms = ase.io.read(path)
            atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
            BFGS(atoms, logfile=None).run(fmax=0.005, steps=500)
            energy = atoms.get_potential_energy()
            if best is None or energy < best[0]:
                best = (energy, atoms.copy())
        energy, atoms = best
        atoms.positions -= atoms.get_center_of_mass()
        comment = f"{name} smiles={smiles} GFN2-xTB relaxed (tblite) energy_eV={energy:.6f}"
        with open(os.path.join(outdir, f"{name}.xyz"), "w") as f:
            f.write(f"{len(atoms)}\n{comment}\n")
            for symbol, p in zip(atoms.get_chemical_symbols(), atoms.positions):
                f.write(f"{symbol:2s} {p[0]:12.6f} {p[1]:12.6f} {p[2]:12.6f}\n")
        print(name, len(atoms), f"{energy:.4f} eV")


if __name__ == "__main__":
    if sys.argv[1] == "embed":
        embed(sys.argv[2])
    else:
        relax(sys.argv[2], sys.argv[3])
