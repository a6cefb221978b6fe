"""Fused channel-wise tensor products: e3nn's TensorProduct as a few dense matrix products.

e3nn's generic ``o3.TensorProduct`` runs one small einsum per path (irrep pair -> output irrep),
then slices, sums and concatenates; on CPU most of the time goes into many small kernels, copies
and zero fills (issue 13's profile: mul 22 %, copy_ 10 %, fill_ 8.5 %). The two products the
models use have more structure:

- ``ChannelwiseTensorProduct`` (Allegro, mode 'uuu': channel u of x1 with channel u of x2, a
  learned weight per path and channel), on channel-major features (mul, D, E) (edges innermost,
  ``channel_layout.py``). Per channel, the path weights times the 3j blocks of all paths are
  summed into one matrix W_u (one small GEMM per call, independent of the number of edges); then
  ``M = W_u @ x_big`` (one batched GEMM over channels, x_big = the input with more components)
  and ``out = sum_j x_small[j] * M[j]`` (one broadcast product and sum, vectorised over edges).
  On CPU, when gnnff's compiled operators are loaded (``gnnff.ops``), the same product is one
  pass over the edges instead: ``torch.ops.gnnff.trilinear`` sums only the non-zero 3j entries
  and never materialises the (mul, D_small, D_out, E) intermediate (cpp/src/ops/trilinear.cpp;
  its derivatives are the same operators, so forces and training on forces use it too).
- ``ShTensorProduct`` (NequIP, mode 'uvu' with the spherical harmonics (multiplicity 1) as input 2
  and per-edge weights): the harmonics are contracted first, ``M_e = Y_e @ C`` (one GEMM, a
  (D1, D_out) matrix per edge, independent of the channel), then ``out_e = x1_e @ M_e`` (batched
  GEMM) times the per-edge path weights.

No slices or selects in the forward pass: their backward allocates and zero-fills a full-size
gradient per slice (the fill_ of the profile). Both take their instructions, path normalisation
and weights from the e3nn object they replace and keep its parameter names and shapes
(``weight``, ``output_mask``); the e3nn 3j tables found in old state dicts are dropped on load, so
checkpoints of the e3nn version load unchanged. The e3nn product stays the reference:
tests/models/test_fused_tp.py checks values and gradients in float64 (1e-12) and float32. The
3j tables are rebuilt in float64 after every dtype change (see precision.py for why).
"""

from typing import Dict, List, Optional

import torch
from e3nn import o3

from gnnff import ops
from gnnff.models.common.channel_layout import common_mul


def _offsets(irreps: o3.Irreps) -> List[int]:
    out, start = [], 0
    for _, ir in irreps:
        out.append(start)
        start += ir.dim
    return out


def _nonzero_entries(paths: torch.Tensor) -> torch.Tensor:
    """Mask of the flattened 3j entries that are non-zero in some path (paths: (P, entries))."""
    return (paths != 0).any(0)


class _E3nnStateMixin:
    """Load state dicts saved from e3nn's TensorProduct: its 3j tables (buffers of the submodule
    ``_compiled_main_left_right``) are dropped, the fused product rebuilds its own exactly."""

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for key in [k for k in state_dict if k.startswith(prefix + "_compiled_main_left_right.")]:
            del state_dict[key]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class _Exact3jMixin:
    """Rebuild the non-persistent Clebsch-Gordan buffers from float64 after .to()/.double()."""

    def _apply(self, fn, recurse=True):
        result = super()._apply(fn, recurse)
        for name, exact in self._exact_constants().items():
            buf = getattr(self, name)
            setattr(self, name, exact.to(device=buf.device, dtype=buf.dtype))
        return result


class ChannelwiseTensorProduct(_E3nnStateMixin, _Exact3jMixin, torch.nn.Module):
    """e3nn 'uuu' TensorProduct with internal weights, on channel-major inputs x1 (mul, D1, E),
    x2 (mul, D2, E); output (mul, D_out, E) in the e3nn product's irreps_out order."""

    # fixed when the module is built (gnnff.ops.kernels_enabled()): TorchScript then compiles
    # only the branch in use, so a model built without the operators never refers to them
    use_kernel: torch.jit.Final[bool]

    def __init__(self, tp: o3.TensorProduct):
        super().__init__()
        if not tp.internal_weights or any(
            ins.connection_mode != "uuu" or not ins.has_weight for ins in tp.instructions
        ):
            raise ValueError(
                "ChannelwiseTensorProduct replaces only 'uuu' products with internal weights"
            )
        self.mul = common_mul(tp.irreps_in1 + tp.irreps_in2 + tp.irreps_out, "a 'uuu' product")
        self.irreps_out = tp.irreps_out
        self.weight = torch.nn.Parameter(tp.weight.detach().clone())
        self.register_buffer("output_mask", tp.output_mask.clone())
        self.n_paths = len(tp.instructions)
        self.d1, self.d2 = tp.irreps_in1.dim // self.mul, tp.irreps_in2.dim // self.mul
        self.d_out = tp.irreps_out.dim // self.mul
        # the larger input goes through the GEMM, the smaller one is summed over elementwise
        # (the GEMM's output, kept for the backward pass, has mul x d_small x D_out rows per edge)
        self.gemm_on_x1 = self.d1 > self.d2
        self.d_gemm, self.d_small = (self.d1, self.d2) if self.gemm_on_x1 else (self.d2, self.d1)
        off1, off2, offo = _offsets(tp.irreps_in1), _offsets(tp.irreps_in2), _offsets(tp.irreps_out)
        self._entries = [
            (
                off1[ins.i_in1],
                off2[ins.i_in2],
                offo[ins.i_out],
                tp.irreps_in1[ins.i_in1].ir.l,
                tp.irreps_in2[ins.i_in2].ir.l,
                tp.irreps_out[ins.i_out].ir.l,
                float(ins.path_weight),
            )
            for ins in tp.instructions
        ]
        self.use_kernel = ops.kernels_enabled()
        exact = self._exact_constants()
        self.register_buffer(
            "paths", exact["paths"].to(torch.get_default_dtype()), persistent=False
        )
        # the kernel's form: the 3j entries that are non-zero in some path, (small, out, gemm)
        # component indices of each, and the paths' values at them (paths_nz, same order)
        index = _nonzero_entries(exact["paths"]).view(self.d_small, self.d_out, self.d_gemm)
        index = index.nonzero()
        self.register_buffer("nz_small", index[:, 0].contiguous(), persistent=False)
        self.register_buffer("nz_out", index[:, 1].contiguous(), persistent=False)
        self.register_buffer("nz_gemm", index[:, 2].contiguous(), persistent=False)
        self.register_buffer(
            "paths_nz", exact["paths_nz"].to(torch.get_default_dtype()), persistent=False
        )

    def _exact_constants(self) -> Dict[str, torch.Tensor]:
        """paths[p] = path p's scaled 3j block, laid out (d_small, D_out, d_gemm); paths_nz =
        the columns of paths at the entries that are non-zero in some path."""
        t = torch.zeros(self.n_paths, self.d1, self.d2, self.d_out, dtype=torch.float64)
        for p, (r1, r2, c, l1, l2, l3, alpha) in enumerate(self._entries):
            t[p, r1 : r1 + 2 * l1 + 1, r2 : r2 + 2 * l2 + 1, c : c + 2 * l3 + 1] = (
                alpha * o3.wigner_3j(l1, l2, l3, dtype=torch.float64)
            )
        t = t.permute(0, 2, 3, 1) if self.gemm_on_x1 else t.permute(0, 1, 3, 2)
        paths = t.reshape(self.n_paths, -1)
        return {"paths": paths, "paths_nz": paths[:, _nonzero_entries(paths)]}

    def forward(
        self, x1: torch.Tensor, x2: torch.Tensor, x2_index: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """With ``x2_index``, x2 holds rows of atoms (mul, D2, N) and edge e reads column
        x2_index[e] (Allegro's environment of the edge's centre); the operator gathers it inside
        its pass (and sums its gradient onto the atoms), the torch form selects it first."""
        n = x1.shape[2]
        if self.use_kernel and x1.device.type == "cpu":
            w_nz = torch.mm(self.weight.view(self.n_paths, self.mul).t(), self.paths_nz)
            # the operator is symmetric in its first two operands: x2 goes into the one slot
            # that may be indexed, with its component indices
            i1, i2 = (
                (self.nz_gemm, self.nz_small) if self.gemm_on_x1 else (self.nz_small, self.nz_gemm)
            )
            return torch.ops.gnnff.trilinear(
                x1, x2, w_nz, i1, i2, self.nz_out, self.d_out, x2_index
            )
        if x2_index is not None:
            x2 = x2.index_select(2, x2_index)
        gemm_in, small = (x1, x2) if self.gemm_on_x1 else (x2, x1)
        # per channel u: the 3j blocks weighted by that channel's path weights, summed over paths
        w = torch.mm(self.weight.view(self.n_paths, self.mul).t(), self.paths)
        m = torch.bmm(w.view(self.mul, self.d_small * self.d_out, self.d_gemm), gemm_in)
        m = m.view(self.mul, self.d_small, self.d_out, n)
        # broadcast product and sum rather than a loop over slices: slice and select backwards
        # would zero-fill a full-size gradient per slice
        return (small.unsqueeze(2) * m).sum(1)


class ShTensorProduct(_E3nnStateMixin, _Exact3jMixin, torch.nn.Module):
    """e3nn 'uvu' TensorProduct of features x1 (B, D1, mul) (``component_rows`` layout) with
    spherical harmonics (B, D2) (multiplicity 1) and per-edge weights (B, weight_numel); output
    (B, D_out, mul), components in the e3nn product's irreps_out order. Channels innermost: the
    per-edge path weights (B, paths, mul) then expand to components by a gather of whole rows.
    On CPU tensors with gnnff's operators built (``use_kernel``), the product and its derivatives
    are ``gnnff::uvu_contract`` (cpp/src/ops/uvu_contract.cpp) on the non-zero 3j entries."""

    use_kernel: torch.jit.Final[bool]

    def __init__(self, tp: o3.TensorProduct):
        super().__init__()
        self.use_kernel = ops.kernels_enabled()
        if (
            tp.internal_weights
            or tp.shared_weights
            or any(ins.connection_mode != "uvu" or not ins.has_weight for ins in tp.instructions)
        ):
            raise ValueError("ShTensorProduct replaces only 'uvu' products with per-edge weights")
        if any(mul != 1 for mul, _ in tp.irreps_in2):
            raise ValueError(f"ShTensorProduct needs multiplicity-1 input 2, got {tp.irreps_in2}")
        self.mul = common_mul(tp.irreps_in1 + tp.irreps_out, "a 'uvu' product's input 1 and output")
        outputs = [ins.i_out for ins in tp.instructions]
        if sorted(outputs) != list(range(len(tp.irreps_out))):
            raise ValueError("ShTensorProduct needs exactly one path per output irrep")
        self.irreps_in1, self.irreps_in2, self.irreps_out = (
            tp.irreps_in1,
            tp.irreps_in2,
            tp.irreps_out,
        )
        self.weight = torch.nn.Parameter(tp.weight.detach().clone())  # empty: weights come per edge
        self.register_buffer("output_mask", tp.output_mask.clone())
        self.n_paths = len(tp.instructions)
        self.d1, self.d2, self.d_out = (
            tp.irreps_in1.dim // self.mul,
            tp.irreps_in2.dim,
            tp.irreps_out.dim // self.mul,
        )
        off1, off2, offo = _offsets(tp.irreps_in1), _offsets(tp.irreps_in2), _offsets(tp.irreps_out)
        self._entries = []
        col_path = [0] * self.d_out
        for p, ins in enumerate(tp.instructions):
            l1, l2, l3 = (
                tp.irreps_in1[ins.i_in1].ir.l,
                tp.irreps_in2[ins.i_in2].ir.l,
                tp.irreps_out[ins.i_out].ir.l,
            )
            self._entries.append(
                (
                    off1[ins.i_in1],
                    off2[ins.i_in2],
                    offo[ins.i_out],
                    l1,
                    l2,
                    l3,
                    float(ins.path_weight),
                )
            )
            for k in range(offo[ins.i_out], offo[ins.i_out] + 2 * l3 + 1):
                col_path[k] = p
        self.register_buffer("col_path", torch.tensor(col_path), persistent=False)
        exact = self._exact_constants()
        self.register_buffer("cg", exact["cg"].to(torch.get_default_dtype()), persistent=False)
        # the kernel's form: the (output, input) component pairs some 3j entry joins, and the
        # columns of cg at them (cg_nz, same order)
        pairs = _nonzero_entries(exact["cg"]).view(self.d_out, self.d1).nonzero()
        self.register_buffer("nz_out", pairs[:, 0].contiguous(), persistent=False)
        self.register_buffer("nz_in", pairs[:, 1].contiguous(), persistent=False)
        self.register_buffer(
            "cg_nz", exact["cg_nz"].to(torch.get_default_dtype()), persistent=False
        )

    def _exact_constants(self) -> Dict[str, torch.Tensor]:
        cg = torch.zeros(self.d2, self.d_out, self.d1, dtype=torch.float64)  # (j, k, i)
        for r1, r2, c, l1, l2, l3, alpha in self._entries:
            w3j = o3.wigner_3j(l1, l2, l3, dtype=torch.float64)  # (i, j, k)
            cg[r2 : r2 + 2 * l2 + 1, c : c + 2 * l3 + 1, r1 : r1 + 2 * l1 + 1] += (
                alpha * w3j.permute(1, 2, 0)
            )
        cg = cg.reshape(self.d2, self.d_out * self.d1)
        return {"cg": cg, "cg_nz": cg[:, _nonzero_entries(cg)]}

    def _contract(
        self,
        x: torch.Tensor,
        sh: torch.Tensor,
        weights: torch.Tensor,
        neighbour: Optional[torch.Tensor] = None,
        centre: Optional[torch.Tensor] = None,
        num_atoms: int = -1,
    ) -> torch.Tensor:
        """The product as gnnff::uvu_contract, per edge or (neighbour, centre) summed onto atoms."""
        return torch.ops.gnnff.uvu_contract(
            torch.mm(sh, self.cg_nz),
            x,
            weights.view(sh.shape[0], self.n_paths, self.mul),
            None,
            self.nz_out,
            self.nz_in,
            self.col_path,
            self.d1,
            self.n_paths,
            neighbour,
            centre,
            -1,
            num_atoms,
        )

    def forward(self, x1: torch.Tensor, sh: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        n = x1.shape[0]
        if self.use_kernel and x1.device.type == "cpu":
            # out[e, k, u] = w[e, path(k), u] sum_i M[e, k, i] x1[e, i, u] over the non-zero
            # entries of M = Y cg, without the (B, D_out, mul) intermediates of the form below
            return self._contract(x1, sh, weights)
        per_edge = torch.mm(sh, self.cg).view(n, self.d_out, self.d1)  # Y contracted first
        out = torch.bmm(per_edge, x1)  # (B, D_out, mul)
        return out * weights.view(n, self.n_paths, self.mul).index_select(1, self.col_path)

    def summed(
        self,
        x_atoms: torch.Tensor,
        neighbour: torch.Tensor,
        centre: torch.Tensor,
        num_atoms: int,
        sh: torch.Tensor,
        weights: torch.Tensor,
    ) -> torch.Tensor:
        """sum_{e: centre(e) = a} forward(x_atoms[neighbour(e)], sh[e], weights[e]): the products
        summed onto the centre atoms (num_atoms, D_out, mul); with the kernel, the per-edge
        features and products are never materialised (the operator reads x_atoms by row)."""
        if self.use_kernel and x_atoms.device.type == "cpu":
            return self._contract(x_atoms, sh, weights, neighbour, centre, num_atoms)
        products = self.forward(x_atoms.index_select(0, neighbour), sh, weights)
        out = torch.zeros(
            [num_atoms] + list(products.shape[1:]), dtype=products.dtype, device=products.device
        )
        return out.index_add(0, centre, products)
