"""Analytic reference potentials written as gnnff energy models (the independent truth).

They follow the model contract (read keys.EDGE_VECTORS, keys.ATOM_TYPE, keys.EDGE_INDEX, write
keys.ATOMIC_ENERGY_RAW) so that the same ForceModel / export / pair_style gnnff path that runs a
trained network runs them, and the results can be compared with LAMMPS's native styles.

* ``lennard_jones``: LAMMPS ``lj/cut`` (no energy shift unless ``shift=True``, like
  ``pair_modify shift yes``). E_i = 1/2 sum_j phi(r_ij).
* ``stillinger_weber``: LAMMPS ``sw`` from a ``.sw`` file. E_i = 1/2 sum_j phi2(r_ij) +
  sum_{j<k} phi3(r_ij, r_ik, theta_jik): the three-body term belongs to its centre atom, so that
  E_i depends only on atoms within the cutoff of i (interaction_range = cutoff). The total equals
  LAMMPS's; LAMMPS's per-atom split (1/3 of phi3 to each of i, j, k) differs.
* ``toy_message_passing``: a seeded two-layer message-passing network (interaction_range =
  2 r_max), smooth at r_max, used to test ghost-atom handling and the edge-feature interface.

Units: LAMMPS metal (Å, eV).
"""

import math
from typing import Dict, List, Optional, Union

import torch

from gnnff import contract, keys
from gnnff.models.base import EnergyModel, seeded_generator
from gnnff.models.registry import register_model
from gnnff.models.wrapper import ForceModel


def _dtype(name: str) -> torch.dtype:
    return contract.torch_dtype(name)  # the one dtype map; refuses anything but float32/float64


def _pair_matrix(value, n_types: int, what: str) -> torch.Tensor:
    """A per-type-pair parameter: one number for all pairs or a symmetric n_types x n_types list."""
    m = torch.as_tensor(value, dtype=torch.float64)
    if m.dim() == 0:
        return m.expand(n_types, n_types).clone()
    if m.shape != (n_types, n_types) or not torch.equal(m, m.T):
        raise ValueError(
            f"{what} must be one number or a symmetric {n_types}x{n_types} list "
            f"(one row per type), got shape {tuple(m.shape)}"
        )
    return m


def _scatter_to_atoms(values: torch.Tensor, index: torch.Tensor, num_atoms: int) -> torch.Tensor:
    out = torch.zeros(num_atoms, dtype=values.dtype, device=values.device)
    return out.index_add(0, index, values)


class LennardJonesEnergy(EnergyModel):
    """phi(r) = 4 eps [(s/r)^12 - (s/r)^6] - offset for r < cutoff, evaluated like lj/cut.

    No learned parameters: no head (HEAD_MODULES empty) and no edge features."""

    def __init__(
        self,
        epsilon: torch.Tensor,
        sigma: torch.Tensor,
        cutoff: float,
        shift: bool,
        r_max: Optional[float] = None,
    ):
        super().__init__()
        self.register_buffer("lj3", 4.0 * epsilon * sigma**12)
        self.register_buffer("lj4", 4.0 * epsilon * sigma**6)
        self.cutsq = float(cutoff) ** 2
        # the graph's cutoff (Å); pairs beyond the LJ cutoff are masked only if it is longer
        self.r_max_sq = float(cutoff if r_max is None else r_max) ** 2
        if self.r_max_sq < self.cutsq:
            raise ValueError(f"r_max {r_max} Å is shorter than the LJ cutoff {cutoff} Å")
        ratio6 = (sigma / cutoff) ** 6
        offset = 4.0 * epsilon * (ratio6 * ratio6 - ratio6) if shift else torch.zeros_like(epsilon)
        self.register_buffer("offset", offset)

    def forward(self, data: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        vec = data[keys.EDGE_VECTORS]
        types = data[keys.ATOM_TYPE]
        edge_index = data[keys.EDGE_INDEX]
        # |r|^2 as an (E,3) x (3,) product, and every edge kept with pairs beyond the cutoff
        # masked to zero: on CPU both are several times cheaper than a row sum and gathers.
        # pow(2), not vec * vec: the same values, and its backward is one pass over (E,3)
        # where the product's is two and an add (1.9x cheaper forward + backward on the CPU)
        rsq = torch.mv(vec.pow(2), torch.ones(3, dtype=vec.dtype, device=vec.device))
        centre = edge_index[0]
        r6inv = (1.0 / rsq) ** 3
        # each directed edge carries half the pair energy to its centre atom: the tables are
        # halved (a (types, types) product, not a pass over the edges; scaling by 0.5 is exact,
        # so these are the bits of 0.5 * phi)
        lj3, lj4, offset = 0.5 * self.lj3, 0.5 * self.lj4, 0.5 * self.offset
        n_types = lj3.shape[0]
        if n_types == 1:  # one type: the (1, 1) tables broadcast, no per-edge lookups
            half = r6inv * (lj3.reshape(1) * r6inv - lj4.reshape(1)) - offset.reshape(1)
        else:
            pair_type = types.index_select(0, centre) * n_types + types.index_select(
                0, edge_index[1]
            )
            lj3 = lj3.reshape(-1).index_select(0, pair_type)
            lj4 = lj4.reshape(-1).index_select(0, pair_type)
            offset = offset.reshape(-1).index_select(0, pair_type)
            half = r6inv * (lj3 * r6inv - lj4) - offset
        if self.cutsq < self.r_max_sq:
            # pairs between the LJ cutoff and the graph's r_max contribute nothing
            half = torch.where(rsq < self.cutsq, half, torch.zeros_like(half))
        # (no mask when the cutoff is r_max, as lennard_jones() builds it: the graph holds the
        # pairs with |r| < r_max and nothing else, the criterion of lj/cut's rsq < cutsq)
        data[keys.ATOMIC_ENERGY_RAW] = _scatter_to_atoms(half, centre, types.shape[0])
        return data


@register_model("lennard_jones")
def lennard_jones(
    type_names: List[str] = ["Ar"],
    epsilon: Union[float, List[List[float]]] = 0.0104,
    sigma: Union[float, List[List[float]]] = 3.4,
    cutoff: float = 8.5,
    shift: bool = False,
    dtype: str = "float64",
) -> ForceModel:
    """LAMMPS lj/cut: epsilon (eV), sigma (Å), cutoff (Å); ``shift`` = pair_modify shift yes."""
    if not cutoff > 0:
        raise ValueError(f"cutoff must be positive (Å), got {cutoff}")
    n = len(type_names)
    energy = LennardJonesEnergy(
        _pair_matrix(epsilon, n, "epsilon"), _pair_matrix(sigma, n, "sigma"), cutoff, shift
    )
    model = ForceModel(energy, type_names, cutoff, cutoff, "lennard_jones")
    return model.to(_dtype(dtype))


def _centre_pairs(centre: torch.Tensor, num_atoms: int):
    """All unordered pairs (a, b), a != b, of edges that share a centre atom."""
    order = torch.sort(centre, stable=True)[1]
    counts = torch.bincount(centre, minlength=num_atoms)
    starts = torch.cumsum(counts, 0) - counts
    sorted_centre = centre[order]
    position = torch.arange(centre.shape[0], device=centre.device)
    n_after = starts[sorted_centre] + counts[sorted_centre] - position - 1
    first = torch.repeat_interleave(position, n_after)
    pair_start = torch.cumsum(n_after, 0) - n_after
    second = first + 1 + torch.arange(first.shape[0], device=centre.device) - pair_start[first]
    return order[first], order[second]


_SW_FIELDS = ("epsilon", "sigma", "a", "lambda", "gamma", "costheta0", "A", "B", "p", "q", "tol")


def read_sw_parameters(path: str, type_names: List[str]) -> Dict[str, torch.Tensor]:
    """Parameter tables of a LAMMPS ``.sw`` file for ``type_names``, derived as pair_sw.cpp does.

    Each entry: three element names and epsilon (eV), sigma (Å), a, lambda, gamma, costheta0, A,
    B, p, q, tol. Pair tables [ti, tj] come from entry (ti, tj, tj); triplet tables from (ti, tj, tk).
    """
    try:
        with open(path) as handle:
            words = [w for line in handle for w in line.split("#", 1)[0].split()]
    except OSError as err:
        raise ValueError(
            f"cannot read Stillinger-Weber file {path!r} ({err}); give the path of a .sw file"
        ) from err
    width = 3 + len(_SW_FIELDS)
    if len(words) % width:
        raise ValueError(
            f"{path!r} is not a .sw file: entries need {width} fields (3 elements, {', '.join(_SW_FIELDS)})"
        )
    entries: Dict[tuple, Dict[str, float]] = {}
    for start in range(0, len(words), width):
        names = tuple(words[start : start + 3])
        if names in entries:
            raise ValueError(f"{path!r} has a duplicate entry for {names}; keep one")
        entries[names] = {f: float(v) for f, v in zip(_SW_FIELDS, words[start + 3 : start + width])}
    n = len(type_names)
    out = {
        k: torch.zeros(n, n, dtype=torch.float64)
        for k in ("cutsq", "cut", "sigma", "sigma_gamma", "c5", "c6", "powerp", "powerq")
    }
    out["lambda_epsilon"] = torch.zeros(n, n, n, dtype=torch.float64)
    out["costheta"] = torch.zeros(n, n, n, dtype=torch.float64)
    for i, ni in enumerate(type_names):
        for j, nj in enumerate(type_names):
            for k, nk in enumerate(type_names):
                e = entries.get((ni, nj, nk))
                if e is None:
                    raise ValueError(
                        f"{path!r} has no entry for {ni} {nj} {nk}; every triplet of {list(type_names)} is needed"
                    )
                out["lambda_epsilon"][i, j, k] = e["lambda"] * e["epsilon"]
                out["costheta"][i, j, k] = e["costheta0"]
                if j != k:
                    continue
                cut = e["sigma"] * e["a"]
                reach = cut  # pair_sw.cpp shortens the neighbour cutoff when tol > 0
                if e["tol"] > 0.0:
                    tol = min(e["tol"], 0.01)
                    reach += (
                        e["gamma"] * e["sigma"] if e["gamma"] < 1.0 else e["sigma"]
                    ) / math.log(tol)
                out["cutsq"][i, j] = reach * reach
                out["cut"][i, j] = cut
                out["sigma"][i, j] = e["sigma"]
                out["sigma_gamma"][i, j] = e["sigma"] * e["gamma"]
                out["c5"][i, j] = e["A"] * e["epsilon"] * e["B"] * e["sigma"] ** e["p"]
                out["c6"][i, j] = e["A"] * e["epsilon"] * e["sigma"] ** e["q"]
                out["powerp"][i, j] = e["p"]
                out["powerq"][i, j] = e["q"]
    # LAMMPS evaluates a pair once, from whichever end its tag rule picks, and a triplet (j, k)
    # in neighbour-list order: a file that is not symmetric has no well-defined energy there.
    for name in ("cutsq", "cut", "sigma", "c5", "c6", "powerp", "powerq"):
        if not torch.equal(out[name], out[name].T):
            raise ValueError(
                f"{path!r}: two-body parameters of (i, j, j) and (j, i, i) differ ({name}); make them equal"
            )
    for name in ("lambda_epsilon", "costheta"):
        if not torch.equal(out[name], out[name].transpose(1, 2)):
            raise ValueError(
                f"{path!r}: three-body parameters of (i, j, k) and (i, k, j) differ ({name}); make them equal"
            )
    if not (out["cutsq"] > 0).all():
        raise ValueError(
            f"{path!r}: a pair of {list(type_names)} has a zero cutoff (sigma * a); give sigma and a"
        )
    return out


class StillingerWeberEnergy(EnergyModel):
    """LAMMPS pair sw. Pair parameters [ti, tj] come from the file entry (ti, tj, tj), triplet
    parameters [ti, tj, tk] from (ti, tj, tk), exactly as pair_sw.cpp looks them up.
    No learned parameters: no head and no edge features."""

    def __init__(self, p: Dict[str, torch.Tensor]):
        super().__init__()
        for name in ("cutsq", "cut", "sigma", "sigma_gamma", "c5", "c6", "powerp", "powerq"):
            self.register_buffer(name, p[name])
        self.register_buffer("lambda_epsilon", p["lambda_epsilon"])
        self.register_buffer("costheta", p["costheta"])

    def forward(self, data: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        vec = data[keys.EDGE_VECTORS]
        types = data[keys.ATOM_TYPE]
        edge_index = data[keys.EDGE_INDEX]
        num_atoms = types.shape[0]
        rsq = (vec * vec).sum(dim=1)
        ti_all = types[edge_index[0]]
        tj_all = types[edge_index[1]]
        keep = torch.nonzero(rsq < self.cutsq[ti_all, tj_all]).squeeze(1)
        vec = vec[keep]
        centre = edge_index[0][keep]
        ti = ti_all[keep]
        tj = tj_all[keep]
        r = torch.sqrt(rsq[keep])

        # two-body: (c5 r^-p - c6 r^-q) exp(sigma / (r - a sigma)), half to each end
        cut = self.cut[ti, tj]
        phi2 = (
            self.c5[ti, tj] * r.pow(-self.powerp[ti, tj])
            - self.c6[ti, tj] * r.pow(-self.powerq[ti, tj])
        ) * torch.exp(self.sigma[ti, tj] / (r - cut))
        energy = _scatter_to_atoms(0.5 * phi2, centre, num_atoms)

        # three-body: lambda eps (cos - cos0)^2 exp(gamma sigma/(r_ij - a sigma)) exp(... r_ik)
        radial = torch.exp(self.sigma_gamma[ti, tj] / (r - cut))
        a, b = _centre_pairs(centre, num_atoms)
        cos = (vec[a] * vec[b]).sum(dim=1) / (r[a] * r[b])
        tk = tj[b]
        delta = cos - self.costheta[ti[a], tj[a], tk]
        phi3 = self.lambda_epsilon[ti[a], tj[a], tk] * delta * delta * radial[a] * radial[b]
        data[keys.ATOMIC_ENERGY_RAW] = energy.index_add(0, centre[a], phi3)
        return data


@register_model("stillinger_weber")
def stillinger_weber(
    potential_file: str, type_names: List[str] = ["Si"], dtype: str = "float64"
) -> ForceModel:
    """LAMMPS pair sw with the parameters of a ``.sw`` file (e.g. LAMMPS's Si.sw) for type_names."""
    params = read_sw_parameters(potential_file, type_names)
    cutoff = float(torch.sqrt(params["cutsq"].max()))
    model = ForceModel(
        StillingerWeberEnergy(params), type_names, cutoff, cutoff, "stillinger_weber"
    )
    return model.to(_dtype(dtype))


class ToyMessagePassingEnergy(EnergyModel):
    """Two message-passing layers on Gaussian radial bases times a smooth envelope.

    h0_i = embed(t_i);  h1_i = tanh(h0_i + sum_j (R1(r_ij)) * h0_j)
    h2_i = sum_j R2(r_ij) * (h1_j M);  e_i = w . tanh(h2_i)
    R_l(r) = basis(r) W_l with basis_k(r) = exp(-((r - mu_k)/w)^2) (1 - (r/r_max)^2)^3 for
    r < r_max, so energy and forces are continuous at r_max. e_i depends on atoms up to 2 r_max.
    """

    HEAD_MODULES = ("readout",)

    def __init__(self, n_types: int, r_max: float, n_basis: int, n_features: int, seed: int):
        super().__init__()
        gen = seeded_generator(seed)

        def draw(*shape: int) -> torch.nn.Parameter:
            scale = 1.0 / math.sqrt(shape[0])
            return torch.nn.Parameter(
                torch.randn(*shape, generator=gen, dtype=torch.float64) * scale
            )

        self.r_max = float(r_max)
        self.register_buffer("mu", torch.linspace(0.0, r_max, n_basis, dtype=torch.float64))
        self.width = float(r_max) / n_basis * 1.5
        self.embedding = draw(n_types, n_features)
        self.radial_1 = draw(n_basis, n_features)
        self.radial_2 = draw(n_basis, n_features)
        self.mix = draw(n_features, n_features)
        self.readout = draw(n_features)
        self.declare_edge_features([f"{n_features}x0e", f"{n_features}x0e"])

    def forward(self, data: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        vec = data[keys.EDGE_VECTORS]
        types = data[keys.ATOM_TYPE]
        edge_index = data[keys.EDGE_INDEX]
        centre = edge_index[0]
        neighbour = edge_index[1]
        r = torch.sqrt((vec * vec).sum(dim=1))
        x = r / self.r_max
        # zero beyond r_max even if a caller passes longer edges (e.g. a list with skin)
        envelope = torch.where(x < 1.0, (1.0 - x * x) ** 3, torch.zeros_like(x))
        basis = torch.exp(-(((r.unsqueeze(1) - self.mu) / self.width) ** 2)) * envelope.unsqueeze(1)

        h0 = self.embedding[types]
        w1 = basis @ self.radial_1
        message_1 = w1 * h0[neighbour]
        h1 = torch.tanh(h0 + torch.zeros_like(h0).index_add(0, centre, message_1))
        w2 = basis @ self.radial_2
        message_2 = w2 * (h1[neighbour] @ self.mix)
        h2 = torch.zeros_like(h0).index_add(0, centre, message_2)
        data[keys.ATOMIC_ENERGY_RAW] = torch.tanh(h2) @ self.readout
        if self.record_edge_features:
            data[self.edge_feature_keys[0]] = message_1
            data[self.edge_feature_keys[1]] = message_2
        return data


@register_model("toy_message_passing")
def toy_message_passing(
    type_names: List[str] = ["Si"],
    r_max: float = 3.0,
    n_basis: int = 8,
    n_features: int = 8,
    seed: int = 0,
    dtype: str = "float64",
) -> ForceModel:
    """Deterministic 2-layer message-passing test model; interaction_range = 2 r_max."""
    if not r_max > 0:
        raise ValueError(f"r_max must be positive (Å), got {r_max}")
    energy = ToyMessagePassingEnergy(len(type_names), r_max, n_basis, n_features, seed)
    model = ForceModel(energy, type_names, r_max, 2.0 * r_max, "toy_message_passing")
    return model.to(_dtype(dtype))
