"""Agree across ranks: every decision that leads into a collective or ends the run is taken by
all ranks at once, so one rank's fault stops (or heals) the whole job instead of hanging it.

One collective per decision: an all-reduce of a world-size vector of 0 / 1 flags (a few bytes,
on the device the process group's backend communicates on: the CPU for gloo, the current GPU
for nccl). Without torch.distributed (or with one process) these are plain local decisions.
See docs/design.md, "Reliability".
"""
from typing import Callable, Dict, List, Optional, TypeVar

import torch
import torch.distributed as dist
from mmengine.dist import get_dist_info

T = TypeVar('T')


def _comm_device() -> torch.device:
    """The device the default process group communicates on (nccl: this rank's GPU)."""
    if dist.get_backend() == 'nccl':
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')


def rank_codes(code: int) -> List[int]:
    """Every rank's small int ``code`` (>= 0), in rank order, on every rank (one all-reduce)."""
    rank, world = get_dist_info()
    if world == 1:
        return [int(code)]
    codes = torch.zeros(world, dtype=torch.int32, device=_comm_device())
    codes[rank] = int(code)
    dist.all_reduce(codes, op=dist.ReduceOp.SUM)
    return codes.tolist()


def flagged_ranks(flag: bool) -> List[int]:
    """The ranks whose ``flag`` is true, the same list on every rank (one all-reduce)."""
    return [r for r, c in enumerate(rank_codes(int(bool(flag)))) if c]


def any_rank(flag: bool) -> bool:
    """Whether ``flag`` is true on at least one rank (the same answer on every rank)."""
    return bool(flagged_ranks(flag))


def all_ranks(flag: bool) -> bool:
    """Whether ``flag`` is true on every rank (the same answer on every rank)."""
    return len(flagged_ranks(flag)) == get_dist_info()[1]


class RankFailure(RuntimeError):
    """Raised on every rank when a step failed on one or more ranks (:func:`on_every_rank`)."""

    def __init__(self, what: str, errors: dict):
        self.errors = errors  # rank -> 'ExceptionType: message' of that rank's failure
        detail = '; '.join(f'rank {r}: {e}' for r, e in sorted(errors.items()))
        super().__init__(f'{what} failed on rank(s) {sorted(errors)} ({detail}); stopping every '
                         'rank')


def rank_problems(problem: Optional[str]) -> Dict[int, str]:
    """Every rank's ``problem`` (None: none), as {rank: problem} for the ranks that have one,
    the same dict on every rank; empty when no rank has one (then one all-reduce, else also one
    all_gather of the texts)."""
    failed = flagged_ranks(problem is not None)
    if not failed:
        return {}
    _, world = get_dist_info()
    texts = [problem]
    if world > 1:  # only now, on every rank alike: the texts themselves
        texts = [None] * world
        dist.all_gather_object(texts, problem)
    return {r: texts[r] for r in failed}


def on_every_rank(fn: Callable[[], T], what: str) -> T:
    """Run ``fn()`` on each rank, then agree: if it raised on any rank, raise
    :class:`RankFailure` on every rank, naming each failed rank and its error (the original
    exception is chained on the rank it happened on). Returns ``fn()``'s result otherwise.

    Every rank must call it at the same point (it holds one or two collectives). In a single
    process it is ``fn()`` itself (its exception propagates unchanged)."""
    if get_dist_info()[1] == 1:
        return fn()
    error, result = None, None
    try:
        result = fn()
    except Exception as e:  # noqa: BLE001  (re-raised below, on every rank)
        error = e
    errors = rank_problems(None if error is None else f'{type(error).__name__}: {error}')
    if errors:
        raise RankFailure(what, errors) from error
    return result


__all__ = ['rank_codes', 'flagged_ranks', 'any_rank', 'all_ranks', 'rank_problems', 'on_every_rank',
           'RankFailure']
