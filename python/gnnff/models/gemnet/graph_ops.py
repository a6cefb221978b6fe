"""Index bookkeeping of GemNet-T, built inside the model from ``edge_index`` with torch ops only.

Convention (gnnff contract): edge e = (i, j) has centre i = edge_index[0, e] and neighbour
j = edge_index[1, e]; r_ij = x_j - x_i (+ shift). In GemNet's words the edge carries the message
j -> i, so the centre i is the *target* atom that collects it.

- ``triplet_partners``: for every edge e_out all other edges e_in with the same centre a, padded
  to (E, K); the basis of the angle between r_a(e_out) and r_a(e_in) weights the message of e_in
  that is summed into e_out (GemNet's id3_reduce_ca / id3_expand_ba).
- ``reverse_edges``: index of edge (j, i) for every edge (i, j) (GemNet's id_swap), or -1 where
  the reverse edge is not in the graph (only at the outer rim of a LAMMPS ghost shell).
"""

from typing import List, Tuple

import torch


def triplet_partners(centre: torch.Tensor, num_atoms: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Padded triplets: (partner (E, K), valid (E, K)), K = most edges at one centre.

    partner[e, k] runs over all edges with the same centre as e; valid is False for e itself
    and for padding. The padded layout lets the triplet sum be one batched matrix product
    (GemNet's "efficient" ragged form) instead of a scatter over every triplet.
    """
    num_edges = centre.shape[0]
    device = centre.device
    if num_edges == 0:
        empty = torch.zeros(0, 0, dtype=torch.long, device=device)
        return empty, empty.to(torch.bool)
    order = torch.argsort(centre, stable=True)  # edges grouped by centre
    counts = torch.bincount(centre, minlength=num_atoms)
    group_start = torch.cumsum(counts, 0) - counts  # first sorted position of each centre
    width = int(counts.max().item())
    slot = torch.arange(width, device=device).unsqueeze(0)  # (1, K)
    sorted_position = group_start[centre].unsqueeze(1) + slot  # (E, K)
    valid = slot < counts[centre].unsqueeze(1)
    partner = order[sorted_position.clamp(max=num_edges - 1)]
    valid = valid & (partner != torch.arange(num_edges, device=device).unsqueeze(1))
    partner = torch.where(valid, partner, torch.zeros_like(partner))
    return partner, valid


def reverse_edges(
    edge_index: torch.Tensor, edge_vectors: torch.Tensor, num_atoms: int
) -> torch.Tensor:
    """For each edge (i, j, r) the index of edge (j, i, -r), or -1 if absent.

    Periodic images give several edges with the same (i, j); the edge vector tells them apart.
    r_ji = -r_ij holds *exactly* in floating point (negation is exact and rounding symmetric),
    so vectors are matched through an integer hash of round(r / 1e-3 Å), checked afterwards.
    """
    num_edges = edge_index.shape[1]
    if num_edges == 0:
        return torch.zeros(0, dtype=torch.long, device=edge_index.device)
    i = edge_index[0]
    j = edge_index[1]
    q = torch.round(edge_vectors.detach() * 1000.0).to(torch.long)  # (E, 3), 1e-3 Å grid
    # room for the hash below i * N + j in a signed 64-bit key
    pair_count = max(num_atoms, 1) * max(num_atoms, 1)
    modulus = 1
    while modulus < (1 << 30) and modulus * 2 * pair_count < (1 << 62):
        modulus = modulus * 2

    forward_key = _edge_key(i, j, q, num_atoms, modulus)
    wanted_key = _edge_key(j, i, -q, num_atoms, modulus)
    sorted_key, order = torch.sort(forward_key)
    pos = torch.searchsorted(sorted_key, wanted_key).clamp(max=num_edges - 1)
    candidate = order[pos]
    found = (
        (sorted_key[pos] == wanted_key)
        & (i[candidate] == j)
        & (j[candidate] == i)
        & (q[candidate] == -q).all(dim=1)
    )
    return torch.where(found, candidate, torch.full_like(candidate, -1))


def _edge_key(
    a: torch.Tensor, b: torch.Tensor, q: torch.Tensor, num_atoms: int, modulus: int
) -> torch.Tensor:
    """Sortable int64 key: atom pair first, hash of the quantised vector below it."""
    h = torch.bitwise_xor(
        torch.bitwise_xor(q[:, 0] * 73856093, q[:, 1] * 19349663), q[:, 2] * 83492791
    )
    return (a * num_atoms + b) * modulus + torch.remainder(h, modulus)


def gather_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[index] for an integer index of any shape, as one ``index_select``.

    The same values and, in float32 and float64, the same gradients bit for bit as advanced
    indexing, whose backward is an accumulating ``index_put_``; ``index_select``'s is an
    ``index_add_``, which is cheaper on the CPU (GemNet-T gathers rows per edge and per triplet
    in every block, so this is a measurable share of a small molecule's step).
    """
    shape: List[int] = list(index.shape) + list(x.shape[1:])
    return torch.index_select(x, 0, index.reshape(-1)).view(shape)


def gather_rows_or_zero(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[index] with a zero row wherever index is -1."""
    padded = torch.cat([x, torch.zeros(1, x.shape[1], dtype=x.dtype, device=x.device)], dim=0)
    safe = torch.where(index < 0, torch.full_like(index, x.shape[0]), index)
    return gather_rows(padded, safe)
