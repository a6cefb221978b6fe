"""ASE calculator for gnnff models (a training checkpoint or an exported TorchScript file).

    from gnnff.calculator import GnnffCalculator
    atoms.calc = GnnffCalculator("run/best.pt")        # or "model.pt" from `gnnff export`
    atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()

Energy eV, forces eV/Å, stress eV/Å^3 in ASE's sign and Voigt order (xx, yy, zz, yz, xz, xy),
stress = -virial / volume; stress only for cells periodic in all three directions.
"""

from typing import List, Optional

import numpy as np
import torch
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from gnnff import keys
from gnnff.data.graph import atoms_to_graph
from gnnff.model_io import load_for_inference, model_dtype, predicted_stress


class GnnffCalculator(Calculator):
    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(
        self,
        model_path: Optional[str] = None,
        model: Optional[torch.nn.Module] = None,
        device: str = "cpu",
        use_ema: bool = True,
        **kwargs,
    ):
        """Load ``model_path`` (checkpoint or exported), or wrap an in-memory ForceModel ``model``."""
        super().__init__(**kwargs)
        if (model_path is None) == (model is None):
            raise ValueError(
                "give exactly one of model_path (checkpoint or exported .pt) and model (a ForceModel)"
            )
        if model_path is not None:
            self.model, info = load_for_inference(model_path, device=device, use_ema=use_ema)
            self.type_names: List[str] = list(info["type_names"])
            self.r_max = float(info["r_max"])
            self.dtype = info["dtype"]
        else:
            self.model = model.eval().to(device)
            self.type_names = list(model.type_names)
            self.r_max = float(model.r_max)
            self.dtype = model_dtype(model)
        self.device = torch.device(device)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if "stress" in properties and not self.atoms.pbc.all():
            raise PropertyNotImplementedError("stress needs a cell periodic in x, y and z")
        graph = atoms_to_graph(self.atoms, self.type_names, self.r_max, dtype=self.dtype)
        graph = {k: v.to(self.device) for k, v in graph.items()}
        out = self.model(graph)
        energy = float(out[keys.TOTAL_ENERGY].sum().detach())
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["energies"] = out[keys.ATOMIC_ENERGY].detach().cpu().double().numpy()
        self.results["forces"] = out[keys.FORCES].detach().cpu().double().numpy()
        if self.atoms.pbc.all():
            stress = predicted_stress(out, graph)[0].detach().cpu().double().numpy()
            self.results["stress"] = np.array(
                [stress[0, 0], stress[1, 1], stress[2, 2], stress[1, 2], stress[0, 2], stress[0, 1]]
            )
