"""The decorrelation measure of all layers of a batch in one autograd node (the training path).

Computes, for every recorded layer l, the same rho_l as ``correlation.layer_correlation`` with
``reduction="mean_square"`` (docs/decorrelation.md), but

* reads the features in the layout the model stores them in (``gnnff.models.base``: "e3nn",
  "component_rows" (E, D, mul), "scalars+channel_major" (E, S) + (mul, D, E)), so recording
  costs no copy and no layout conversion;
* selects the subsample of edges (``edge_index``) in that layout first, so everything after it
  is O(k) for k sampled edges; in the backward, the k gradient rows of a recorded (non-leaf)
  tensor are added in place into the tensor's complete gradient by a tensor hook
  (``_add_rows_hook``), so no zero-filled (E, ...) gradient buffer is allocated per recorded
  tensor (which on a large model, e.g. nequip-medium's 8 + 44 + 81 MB of messages, cost more
  than everything else, mostly in page faults); leaves, and all-edges measures, get plain dense
  gradients;
* computes invariants, covariances and the mean-square reduction of all layers in one forward
  and one analytic backward (no per-op autograd nodes: this term is a fixed cost per training
  step, which on small models is dominated by the number of small ops, not by flops).

Layers whose channel counts are small share one covariance GEMM (the diagonal blocks of the
covariance of the concatenated invariants are the per-layer covariances); larger layers get one
GEMM each, so that the cross-layer blocks never cost more than the layers themselves.

Only first derivatives (the training loss needs no more); ``correlation.py`` keeps the composed,
twice-differentiable reference functions and the other reductions.
"""

import math
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

import torch

# a group of layers shares one covariance GEMM while the wasted cross-layer blocks stay small
_SHARED_GEMM_MAX_CHANNELS = 64


@lru_cache(maxsize=256)
def _layer_spec(irreps: str, layout: str) -> Tuple[Tuple[int, str, int, int, int], ...]:
    """Blocks of invariants of one layer, in the channel order of the e3nn irreps string.

    Each block: (part, kind, start, n, m) with part = index of the stored tensor, kind =
    "e3nn" / "rows" / "cmajor", m = 2l + 1 components. "e3nn": columns start .. start + n*m of
    an (E, D) tensor, n channels; "rows"/"cmajor": component rows start .. start + n*m of an
    (E, D, mul) / (mul, D, E) tensor, n irreps of mul channels each. Neighbouring blocks of
    equal l are merged (a norm does not see parity)."""
    from gnnff.training.correlation import irreps_blocks

    blocks = list(irreps_blocks(irreps))
    spec: List[List[int]] = []
    if layout == "e3nn":
        for start, mul, l in blocks:
            if spec and spec[-1][4] == 2 * l + 1:
                spec[-1][3] += mul
            else:
                spec.append([0, "e3nn", start, mul, 2 * l + 1])
        return tuple(tuple(b) for b in spec)
    if layout == "scalars+channel_major":
        first_start, first_mul, first_l = blocks[0]
        if first_l != 0:
            raise ValueError(f"{layout} layer irreps {irreps!r} must start with scalars")
        spec.append([0, "e3nn", 0, first_mul, 1])
        blocks, part, kind = blocks[1:], 1, "cmajor"
    elif layout == "component_rows":
        part, kind = 0, "rows"
    else:
        raise ValueError(f"unknown edge-feature layout {layout!r}")
    row = 0
    for _, _, l in blocks:
        m = 2 * l + 1
        if len(spec) and spec[-1][1] == kind and spec[-1][4] == m:
            spec[-1][3] += 1
        else:
            spec.append([part, kind, row, 1, m])
        row += m
    return tuple(tuple(b) for b in spec)


def _select(x: torch.Tensor, edge_dim: int, index: torch.Tensor) -> torch.Tensor:
    """x.index_select(edge_dim, index), fast for edges in the last dim (a row gather of a 2-D
    view: 7x faster than the strided gather index_select does on a 3-D tensor's last dim)."""
    if edge_dim == 0:
        return x.index_select(0, index)
    if x.is_contiguous():
        return x.reshape(-1, x.shape[-1]).index_select(1, index).view(*x.shape[:-1], -1)
    xt = x.transpose(0, 1)
    if xt.is_contiguous():
        out = xt.reshape(-1, xt.shape[-1]).index_select(1, index)
        return out.view(*xt.shape[:-1], -1).transpose(0, 1)
    return x.index_select(edge_dim, index)


def _scatter_back(layout, edge_dim: int, index, grad: torch.Tensor) -> torch.Tensor:
    """Gradient of a stored tensor (``layout`` = its shape and strides) from the gradient of its
    selected rows (repeated indices add up)."""
    shape, stride = layout
    full = torch.empty_strided(shape, stride, dtype=grad.dtype, device=grad.device).zero_()
    if edge_dim == 0:
        return full.index_add_(0, index, grad)
    if full.is_contiguous():
        full.view(-1, full.shape[-1]).index_add_(1, index, grad.reshape(-1, grad.shape[-1]))
        return full
    ft, gt = full.transpose(0, 1), grad.transpose(0, 1)
    if ft.is_contiguous():
        ft.view(-1, ft.shape[-1]).index_add_(1, index, gt.reshape(-1, gt.shape[-1]))
        return full
    return full.index_add_(edge_dim, index, grad)


def _edge_dim(kind: str) -> int:
    return 2 if kind == "cmajor" else 0


def _invariants_t(
    parts: Sequence[torch.Tensor], spec, norm_eps: float
) -> Tuple[List[torch.Tensor], List[Optional[torch.Tensor]]]:
    """Rows of the transposed invariants Z^T (C, k) of one layer from its (selected) parts, one
    (c, k) piece per block (views where the layout allows), and each norm block's norms."""
    rows: List[torch.Tensor] = []
    norms: List[Optional[torch.Tensor]] = []
    for part, kind, start, n, m in spec:
        x = parts[part]
        if kind == "e3nn":  # (k, D): columns start .. start + n*m
            k = x.shape[0]
            if m == 1:
                z = x[:, start : start + n].t()
            else:
                z = x[:, start : start + n * m].reshape(k, n, m).square().sum(2).t()
        elif kind == "rows":  # (k, D, mul): component rows start .. start + n*m
            k, mul = x.shape[0], x.shape[2]
            if m == 1:
                z = x[:, start : start + n, :].reshape(k, n * mul).t()
            else:
                blk = x[:, start : start + n * m, :].reshape(k, n, m, mul)
                z = blk.square().sum(2).reshape(k, n * mul).t()
        else:  # (mul, D, k)
            mul, k = x.shape[0], x.shape[2]
            if m == 1:
                z = x[:, start : start + n, :].transpose(0, 1).reshape(n * mul, k)
            else:
                blk = x[:, start : start + n * m, :].reshape(mul, n, m, k)
                z = blk.square().sum(2).transpose(0, 1).reshape(n * mul, k)
        if m > 1:
            z = z.add(norm_eps).sqrt_()
            norms.append(z)
        else:
            norms.append(None)
        rows.append(z)
    return rows, norms


def _invariants_backward(
    parts: Sequence[torch.Tensor], spec, norms, dzt: torch.Tensor
) -> List[Optional[torch.Tensor]]:
    """Gradient of each (selected) part from the gradient dZ^T (C, k) of its invariants."""
    pieces: Dict[int, List[torch.Tensor]] = {}
    c = 0
    for (part, kind, start, n, m), nrm in zip(spec, norms):
        x = parts[part]
        if kind == "e3nn":
            k = x.shape[0]
            g = dzt[c : c + n]
            c += n
            if m == 1:
                g = g.t()
            else:
                coef = (g / nrm).t().unsqueeze(2)
                g = (coef * x[:, start : start + n * m].reshape(k, n, m)).reshape(k, n * m)
        elif kind == "rows":
            k, mul = x.shape[0], x.shape[2]
            g = dzt[c : c + n * mul]
            c += n * mul
            if m == 1:
                g = g.t().reshape(k, n, mul)
            else:
                coef = (g / nrm).t().reshape(k, n, 1, mul)
                blk = x[:, start : start + n * m, :].reshape(k, n, m, mul)
                g = (coef * blk).reshape(k, n * m, mul)
        else:
            mul, k = x.shape[0], x.shape[2]
            g = dzt[c : c + n * mul]
            c += n * mul
            if m == 1:
                g = g.reshape(n, mul, k).transpose(0, 1)
            else:
                coef = (g / nrm).reshape(n, mul, 1, k).transpose(0, 1)
                blk = x[:, start : start + n * m, :].reshape(mul, n, m, k)
                g = (coef * blk).reshape(mul, n * m, k)
        pieces.setdefault(part, []).append(g)
    out: List[Optional[torch.Tensor]] = []
    for p in range(len(parts)):
        got = pieces.get(p)
        # dim 1: the columns of an (E, D) part, the component rows of (E, D, mul) / (mul, D, E)
        out.append(None if got is None else torch.cat(got, dim=1) if len(got) > 1 else got[0])
    return out


def draw_channels(width: int, m: int, device) -> torch.Tensor:
    """m of ``width`` channels, uniformly without replacement (torch's global RNG), sorted."""
    return torch.randperm(width, device=device)[:m].sort().values


def _block_channels(x: torch.Tensor, kind: str, n: int) -> int:
    """Invariant channels of one spec block: n irreps, times the multiplicity for rows/cmajor."""
    return n if kind == "e3nn" else n * x.shape[2 if kind == "rows" else 0]


def _edge_matrix(x: torch.Tensor, kind: str, writable: bool = False):
    """A 2-D view of a stored tensor, edges first for "e3nn" (E, D) and "rows" (E, D*mul),
    edges last for "cmajor": (mul*D, E), or (D*mul, E) for a transposed (D, mul, E) buffer
    (Allegro's); and whether it is the transposed one. A tensor with other strides is copied
    (reading), or None is returned (``writable``: the caller needs a view to write into)."""
    if kind == "e3nn":
        return x, False
    if kind == "rows":
        if x.is_contiguous():
            return x.view(x.shape[0], -1), False
        return (None, False) if writable else (x.contiguous().view(x.shape[0], -1), False)
    if x.is_contiguous():
        return x.view(-1, x.shape[2]), False
    if x.transpose(0, 1).is_contiguous():
        return x.transpose(0, 1).reshape(-1, x.shape[2]), True
    return (None, False) if writable else (x.contiguous().view(-1, x.shape[2]), False)


def _flat_positions(x: torch.Tensor, kind: str, transposed: bool, d, c) -> torch.Tensor:
    """Positions in _edge_matrix's non-edge dimension of the components (component row d,
    multiplicity column c; for "e3nn", column d)."""
    if kind == "e3nn":
        return d
    if kind == "rows" or transposed:
        return d * x.shape[2 if kind == "rows" else 0] + c
    return c * x.shape[1] + d


def _put_drawn(full: torch.Tensor, kind: str, index, d, c, grad: torch.Tensor) -> torch.Tensor:
    """full[edges, components (d, c)] += grad (k, n), in place where full's strides allow (else
    into a contiguous copy, returned); index None: all edges, each component written once."""
    matrix, transposed = _edge_matrix(full, kind, writable=True)
    if matrix is None:
        full = full.contiguous()
        matrix, transposed = _edge_matrix(full, kind, writable=True)
    flat = _flat_positions(full, kind, transposed, d, c)
    if kind == "cmajor":  # edges last
        if index is None:
            matrix.index_copy_(0, flat, grad.t())
        else:
            matrix.index_put_((flat[:, None], index[None, :]), grad.t(), accumulate=True)
    elif index is None:
        matrix.index_copy_(1, flat, grad)
    else:
        matrix.index_put_((index[:, None], flat[None, :]), grad, accumulate=True)
    return full


def _gather_drawn(parts: Sequence[torch.Tensor], kinds, spec, channels: torch.Tensor, index):
    """The components of the drawn invariant ``channels`` (sorted) of one layer, gathered from
    its stored parts (all E edges, before any selection) at the ``index`` edges (None: all) into
    one (k, F) matrix in e3nn layout (channel after channel, its 2l + 1 components together);
    with the spec of that matrix and, per part, where the components came from:
    [(part, d, c, first column, last column + 1)]. Costs O(k F) for the F gathered components,
    not O(k D) for the whole layer."""
    per_part: Dict[int, List[Tuple[torch.Tensor, Optional[torch.Tensor]]]] = {}
    new_spec = []
    column, offset = 0, 0
    for part, kind, start, n, m in spec:
        x = parts[part]
        count = _block_channels(x, kind, n)
        local = channels[(channels >= offset) & (channels < offset + count)] - offset
        offset += count
        if local.numel() == 0:
            continue
        comp = torch.arange(m, device=local.device)
        if kind == "e3nn":  # channel j: columns start + j*m + comp
            d, c = (start + local[:, None] * m + comp).flatten(), None
        else:  # channel i*mul + c: component rows start + i*m + comp, multiplicity column c
            mul = x.shape[2 if kind == "rows" else 0]
            d = (start + (local // mul)[:, None] * m + comp).flatten()
            c = (local % mul)[:, None].expand(-1, m).flatten()
        per_part.setdefault(part, []).append((d, c))
        new_spec.append((0, "e3nn", column, int(local.numel()), m))
        column += d.numel()
    pieces, back, column = [], [], 0
    for part, dcs in per_part.items():
        kind = kinds[part]
        d = torch.cat([dc[0] for dc in dcs])
        c = None if kind == "e3nn" else torch.cat([dc[1] for dc in dcs])
        matrix, transposed = _edge_matrix(parts[part], kind)
        flat = _flat_positions(parts[part], kind, transposed, d, c)
        if kind == "cmajor":  # edges last
            piece = matrix.index_select(0, flat) if index is None else matrix[flat[:, None], index]
            pieces.append(piece.t())
        else:
            pieces.append(
                matrix.index_select(1, flat) if index is None else matrix[index[:, None], flat]
            )
        back.append((part, d, c, column, column + d.numel()))
        column += d.numel()
    gathered = torch.cat(pieces, dim=1) if len(pieces) > 1 else pieces[0]
    return gathered, tuple(new_spec), back


@lru_cache(maxsize=64)
def _group_tables(sizes: Tuple[int, ...], variance_eps: float, dtype: torch.dtype, device: str):
    """Constants of a group of layers with ``sizes`` channels (C = sum of sizes, L layers):

    member^T (L, C) one-hot layer membership; W (C, C) pair weights 1 / (C_l (C_l - 1)) for
    a != b in the same layer, 0 elsewhere (diagonal, other layers); T (C, C) with
    d = v T + t, i.e. d_c = v_c + eps mean_{c' in layer(c)} v_c' + t (the variance floor);
    t = sqrt(tiny) as a (C,) vector."""
    dev = torch.device(device)
    total = sum(sizes)
    member_t = torch.zeros(len(sizes), total, dtype=torch.float64)
    weights = torch.zeros(total, total, dtype=torch.float64)
    floor = torch.eye(total, dtype=torch.float64)
    start = 0
    for i, c in enumerate(sizes):
        member_t[i, start : start + c] = 1.0
        if c >= 2:
            weights[start : start + c, start : start + c] = 1.0 / (c * (c - 1))
        floor[start : start + c, start : start + c] += variance_eps / c
        start += c
    weights.fill_diagonal_(0.0)
    tiny = torch.full((total,), math.sqrt(torch.finfo(dtype).tiny), dtype=dtype, device=dev)
    return (
        member_t.to(dtype=dtype, device=dev),
        weights.to(dtype=dtype, device=dev),
        floor.to(dtype=dtype, device=dev),
        tiny,
    )


def _groups(sizes: Sequence[int]) -> List[List[int]]:
    """Layers that share one covariance GEMM: consecutive layers while the group's channels stay
    <= _SHARED_GEMM_MAX_CHANNELS; larger layers alone."""
    groups: List[List[int]] = []
    total = 0
    for i, c in enumerate(sizes):
        if groups and total + c <= _SHARED_GEMM_MAX_CHANNELS:
            groups[-1].append(i)
            total += c
        else:
            groups.append([i])
            total = c
    return groups


class _FusedMeanSquare(torch.autograd.Function):
    """rho_l (mean_square) of every layer: forward and analytic backward, see module doc.

    Per group of layers, with Zc^T (C, k) the centred invariants, S = Zc^T Zc / k, v = diag(S),
    d = v T + t (T: the floor matrix of _group_tables), R = S o (u u^T) with u = d^(-1/2), W the
    pair weights and Q = R o W:
        rho_l = sum_{a in l} q_a,   q_a = sum_b Q_ab R_ab
    Backward, with g_c the upstream gradient of the rho of channel c's layer:
        g_d = -2 q g / d,   g_v = T g_d,   dS = 2 Q o (u u^T) g + diag(g_v)   (symmetric)
        dZc^T = (dS + dS^T) Zc^T / k = (2 / k) dS Zc^T
    (the centring needs no backward: the rows of dS Zc^T have zero mean over the k edges).

    A layer with more than ``channel_subsample`` invariant channels is measured on that many of
    them, drawn uniformly without replacement (torch's global RNG, one draw per layer and call):
    only the drawn channels' components are gathered (_gather_drawn) and measured, so its rho is
    the rho of the drawn sub-layer, computed exactly as above (the variance floor from the drawn
    channels' mean), and the other components get a zero gradient.
    """

    @staticmethod
    def forward(ctx, edge_index, meta, slots, *parts):
        specs, part_counts, kinds, norm_eps, variance_eps, channel_subsample = meta
        ctx.slots = slots
        index = edge_index if edge_index.numel() > 0 else None
        selected: List[torch.Tensor] = []
        zts: List[List[torch.Tensor]] = []
        all_norms = []
        sizes = []
        drawn = []  # per layer: None, or (gathered (k, F), its spec, where it came from)
        p = 0
        for spec, count, layer_kinds in zip(specs, part_counts, kinds):
            layer_parts = parts[p : p + count]
            width = sum(_block_channels(layer_parts[b[0]], b[1], b[3]) for b in spec)
            if channel_subsample is not None and width > channel_subsample:
                # a wide layer: gather the drawn channels' components of the index edges only
                channels = draw_channels(width, channel_subsample, layer_parts[0].device)
                gathered, spec, back = _gather_drawn(
                    layer_parts, layer_kinds, spec, channels, index
                )
                drawn.append((gathered, spec, back))
                selected += layer_parts  # kept for their shapes and dtype only
                layer_parts = [gathered]
            else:
                drawn.append(None)
                if index is not None:
                    layer_parts = [
                        _select(x, _edge_dim(kind), index)
                        for x, kind in zip(layer_parts, layer_kinds)
                    ]
                selected += layer_parts
            rows, norms = _invariants_t(layer_parts, spec, norm_eps)
            zts.append(rows)
            all_norms.append(norms)
            sizes.append(sum(r.shape[0] for r in rows))
            p += count
        k = zts[0][0].shape[1]
        dtype, device = selected[0].dtype, selected[0].device
        rhos: List[torch.Tensor] = []
        saved = []
        for group in _groups(sizes) if k >= 2 else []:
            rows = [r for i in group for r in zts[i]]
            zt = torch.cat(rows, dim=0) if len(rows) > 1 else rows[0]
            member_t, weights, floor, tiny = _group_tables(
                tuple(sizes[i] for i in group), variance_eps, dtype, str(device)
            )
            ztc = zt - zt.mean(dim=1, keepdim=True)
            cov = torch.mm(ztc, ztc.t()).div_(k)
            d = torch.addmv(tiny, floor.t(), cov.diagonal())  # v T + t
            u = d.rsqrt()
            scale = torch.outer(u, u)
            corr = cov.mul_(scale)
            q_mat = corr * weights
            q = (q_mat * corr).sum(1)
            rhos.append(torch.mv(member_t, q))
            saved.append((group, ztc, d, scale, q_mat, q))
        if not rhos:  # fewer than 2 edges: nothing to correlate
            rho = torch.zeros(len(sizes), dtype=dtype, device=device)
        else:
            rho = torch.cat(rhos) if len(rhos) > 1 else rhos[0]
        ctx.meta = meta
        ctx.rows = k
        ctx.sizes = sizes
        ctx.saved = saved
        ctx.norms = all_norms
        ctx.drawn = drawn
        ctx.index = index
        ctx.save_for_backward(*selected)
        ctx.layouts = [(x.shape, x.stride()) for x in parts]
        return rho

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_rho):
        specs, part_counts, kinds, norm_eps, variance_eps, _ = ctx.meta
        sizes, k = ctx.sizes, ctx.rows
        selected = ctx.saved_tensors
        dzts: List[Optional[torch.Tensor]] = [None] * len(sizes)
        for group, ztc, d, scale, q_mat, q in ctx.saved:
            member_t, _, floor, _ = _group_tables(
                tuple(sizes[i] for i in group), variance_eps, ztc.dtype, str(ztc.device)
            )
            g = torch.mv(member_t.t(), grad_rho[group[0] : group[-1] + 1])
            g_d = (q * g).div_(d).mul_(-2.0)
            g_v = torch.mv(floor, g_d)
            d_cov = (scale * g.unsqueeze(1)).mul_(q_mat).mul_(2.0)
            d_cov.diagonal().add_(g_v)
            dzt = torch.mm(d_cov, ztc).mul_(2.0 / k)
            start = 0
            for i in group:
                dzts[i] = dzt[start : start + sizes[i]]
                start += sizes[i]
        grads: List[Optional[torch.Tensor]] = []
        p = 0
        for layer, (spec, count) in enumerate(zip(specs, part_counts)):
            wanted = [ctx.needs_input_grad[3 + p + j] for j in range(count)]
            if dzts[layer] is None or not any(wanted):
                grads += [None] * count
                p += count
                continue
            if ctx.drawn[layer] is not None:
                grads += _drawn_gradients(ctx, layer, p, count, dzts[layer], wanted)
                p += count
                continue
            g_sel = _invariants_backward(
                selected[p : p + count], spec, ctx.norms[layer], dzts[layer]
            )
            for j in range(count):
                g = g_sel[j]
                if g is None or not wanted[j]:
                    grads.append(None)
                elif ctx.index is None:
                    grads.append(g)
                elif ctx.slots is not None and ctx.slots[p + j] is not None:
                    # the k rows go to the tensor's hook (see _add_rows_hook); autograd gets a
                    # zero gradient that costs no memory (a broadcast scalar)
                    ctx.slots[p + j].append((_edge_dim(kinds[layer][j]), ctx.index, g))
                    shape = ctx.layouts[p + j][0]
                    grads.append(g.new_zeros(()).expand(shape))
                else:
                    grads.append(
                        _scatter_back(ctx.layouts[p + j], _edge_dim(kinds[layer][j]), ctx.index, g)
                    )
            p += count
        return (None, None, None, *grads)


def _drawn_gradients(ctx, layer: int, first: int, count: int, dzt, wanted) -> list:
    """Gradients of the stored tensors of a layer measured on drawn channels: the components of
    the drawn channels at the measured edges, the rest zero; through the tensor's hook where it
    has one (no dense buffer), else as a dense gradient."""
    gathered, spec, back = ctx.drawn[layer]
    (g_gathered,) = _invariants_backward([gathered], spec, ctx.norms[layer], dzt)
    kinds = ctx.meta[2][layer]
    out: List[Optional[torch.Tensor]] = [None] * count
    for part, d, c, lo, hi in back:
        j = first + part
        if not wanted[part]:
            continue
        g = g_gathered[:, lo:hi]
        shape = ctx.layouts[j][0]
        if ctx.index is not None and ctx.slots is not None and ctx.slots[j] is not None:
            ctx.slots[j].append(("drawn", kinds[part], ctx.index, d, c, g))
            out[part] = g.new_zeros(()).expand(shape)
        else:
            out[part] = _put_drawn(g.new_zeros(shape), kinds[part], ctx.index, d, c, g)
    return out


def _add_rows_hook(slot: list):
    """Tensor hook of a recorded (non-leaf) tensor: adds the k gradient rows the fused node left
    in ``slot`` into the tensor's complete gradient, just before its producer's backward.

    The fused node is a consumer of the tensor, so autograd runs it first; it sends a broadcast
    zero as its own gradient, so the gradient the hook sees is an accumulation (the model's
    gradient + zero) that autograd owns exclusively: adding in place is then safe. When the
    fused node was the only consumer, the hook sees the broadcast zero itself and builds a
    dense gradient (the rare case: a backward of the term alone)."""

    def hook(grad: torch.Tensor):
        if not slot:
            return None
        total = grad
        for entry in slot:
            rows = entry[-1]
            if total.stride() == (0,) * total.dim() or any(st == 0 for st in total.stride()):
                total = torch.zeros(total.shape, dtype=rows.dtype, device=rows.device)
            if entry[0] == "drawn":  # components of drawn channels (see _drawn_gradients)
                total = _put_drawn(total, *entry[1:])
            else:
                total = _index_add_rows(total, *entry)
        slot.clear()
        return total

    return hook


def _index_add_rows(full: torch.Tensor, edge_dim: int, index, grad: torch.Tensor) -> torch.Tensor:
    """full[edge rows index] += grad, in place, for any strides of ``full``."""
    if edge_dim == 0:
        return full.index_add_(0, index, grad)
    if full.is_contiguous():
        full.view(-1, full.shape[-1]).index_add_(1, index, grad.reshape(-1, grad.shape[-1]))
        return full
    ft, gt = full.transpose(0, 1), grad.transpose(0, 1)
    if ft.is_contiguous():
        ft.view(-1, ft.shape[-1]).index_add_(1, index, gt.reshape(-1, gt.shape[-1]))
        return full
    return full.index_add_(edge_dim, index, grad)


def part_kinds(layout: str) -> Tuple[str, ...]:
    """Kind of each stored tensor of a layer ("e3nn" (E, D), "rows" (E, D, mul), "cmajor")."""
    return {
        "e3nn": ("e3nn",),
        "component_rows": ("rows",),
        "scalars+channel_major": ("e3nn", "cmajor"),
    }[layout]


def fused_mean_square_correlations(
    layers: Sequence[Tuple[str, str, Sequence[torch.Tensor]]],
    edge_index: Optional[torch.Tensor] = None,
    norm_eps: float = 1e-8,
    variance_eps: float = 1e-6,
    channel_subsample: Optional[int] = None,
) -> torch.Tensor:
    """(L,) rho_l (mean_square) for layers given as (irreps, layout, stored tensors).

    All layers must cover the same E edges; ``edge_index`` (k indices, repeats allowed) selects
    the edges to measure. Fewer than 2 edges: zeros. ``channel_subsample`` m: a layer with more
    than m invariant channels is measured on m of them drawn uniformly without replacement (an
    unbiased estimate of its rho over the draw when ``variance_eps`` is 0; see _FusedMeanSquare). Gradients flow to every stored tensor that
    requires grad (pass detached tensors for layers that are measured for the logs only)."""
    specs = tuple(_layer_spec(irreps, layout) for irreps, layout, _ in layers)
    counts = tuple(len(parts) for _, _, parts in layers)
    kinds = tuple(part_kinds(layout) for _, layout, _ in layers)
    parts = [x for _, _, ps in layers for x in ps]
    for (irreps, layout, ps), kk in zip(layers, kinds):
        if len(ps) != len(kk):
            raise ValueError(f"layout {layout!r} stores {len(kk)} tensors, got {len(ps)}")
    index = edge_index if edge_index is not None else parts[0].new_zeros(0, dtype=torch.long)
    if channel_subsample is not None and channel_subsample < 2:
        raise ValueError(f"channel_subsample must be None or >= 2, got {channel_subsample}")
    meta = (specs, counts, kinds, float(norm_eps), float(variance_eps), channel_subsample)
    slots = None
    if edge_index is not None and torch.is_grad_enabled() and any(x.requires_grad for x in parts):
        # subsample: add the k gradient rows into each tensor's own (model) gradient in a hook,
        # instead of returning a zero-filled (E, ...) gradient per tensor for autograd to add
        slots = [[] for _ in parts]
        for x, slot in zip(parts, slots):
            if x.requires_grad and x.grad_fn is not None:  # leaves: plain dense gradients
                x.register_hook(_add_rows_hook(slot))
        slots = [
            slot if x.requires_grad and x.grad_fn is not None else None
            for x, slot in zip(parts, slots)
        ]
    return _FusedMeanSquare.apply(index, meta, slots, *parts)
