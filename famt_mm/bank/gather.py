"""The distributed side of a bank refresh: every rank's rows in dataset order, then one check
that all ranks hold the same bank."""
import math
from typing import List, Sequence

import torch
from mmengine.dist import all_gather, all_gather_object, get_dist_info


def gather_by_index(idx: torch.Tensor, maps: torch.Tensor, num_samples: int,
                    device=None) -> torch.Tensor:
    """Every rank's maps put in dataset order: the full N x h x w bank on the CPU.

    Args:
        idx (Tensor): K (long), the dataset indices of this rank's maps.
        maps (Tensor): K x h x w, this rank's (quantised) maps.
        num_samples (int): N, the training-set size.
        device: where the collective runs (the model's device: gloo on CPU, nccl on GPU).

    Raises ``RuntimeError`` naming up to 10 indices when some image has no map.
    """
    _, world = get_dist_info()
    grid = tuple(maps.shape[1:])
    # Equal-size pieces for all_gather: pad with index -1.
    pad = math.ceil(num_samples / world) - idx.numel()
    idx = torch.cat([idx, idx.new_full((pad, ), -1)])
    maps = torch.cat([maps, maps.new_zeros(pad, *grid)])
    if world > 1:
        idx = torch.cat([t.cpu() for t in all_gather(idx.to(device))])
        maps = torch.cat([t.cpu() for t in all_gather(maps.to(device))])
    keep = idx >= 0
    bank = torch.zeros(num_samples, *grid, dtype=maps.dtype)
    filled = torch.zeros(num_samples, dtype=torch.bool)
    bank[idx[keep]] = maps[keep]
    filled[idx[keep]] = True
    if not bool(filled.all()):
        missing = (~filled).nonzero().flatten()[:10].tolist()
        raise RuntimeError(f'FAMT refresh left {int((~filled).sum())} images without '
                           f'weights (e.g. {missing})')
    return bank


def check_ranks_agree(checksum: str) -> List[str]:
    """Every rank's checksum; raises on every rank unless they are all equal.

    Each rank trains with its own copy of the bank, so a divergent copy would train silently
    wrong on that rank's shard of every epoch; this costs one all_gather of a short string.
    """
    sums: Sequence[str] = all_gather_object(checksum)
    if len(set(sums)) != 1:
        raise RuntimeError(
            f'FAMT refresh: the {len(sums)} ranks hold different weight banks (SHA-1 per '
            f'rank: {[c[:12] for c in sums]}); the gather of the refresh pass is broken, '
            'stopping rather than training on inconsistent weights')
    return list(sums)
