"""FLOPs of one training-step forward, FAMT against mmpretrain's own algorithm, side by side.

    python tools/analysis/flop_ratio.py                      # every FAMT algorithm's known pair
    python tools/analysis/flop_ratio.py --pair FAMT_CONFIG PLAIN_CONFIG

Without ``--pair`` it measures, for every registered FAMT algorithm (FAMT_ALGORITHMS), the
pair of famt_mm.analysis.flop_ratio.FLOP_PAIRS (ViT-B/16, 224 px) and names any algorithm
that has none. Counting: torch's FlopCounterMode over the real forward (the logic and what it
counts: famt_mm/analysis/flop_ratio.py). CPU is enough (one image per model).
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--pair', nargs=2, metavar=('FAMT_CONFIG', 'PLAIN_CONFIG'),
                        help='measure this pair instead of the known ones')
    parser.add_argument('--batch', type=int, default=1, help='images per forward')
    parser.add_argument('--json', default=None, help='also write the rows to this file')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import torch

    import famt_mm  # noqa: F401  (registers every FAMT algorithm)
    from famt_mm.analysis.flop_ratio import FLOP_PAIRS, FlopPair, flop_ratio_rows, format_rows
    from famt_mm.models.famt_algorithm import FAMT_ALGORITHMS, missing_contract
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.pair:
        pairs = {'given pair': FlopPair(*args.pair)}
    else:
        plain = sorted({c.plain_algorithm for c in FAMT_ALGORITHMS.values()
                        if not missing_contract(c)})
        without = [p for p in plain if p not in FLOP_PAIRS]
        if without:
            print(f'no config pair for {without}: add a line to FLOP_PAIRS in '
                  'famt_mm/analysis/flop_ratio.py', file=sys.stderr)
        pairs = {p: FLOP_PAIRS[p] for p in plain if p in FLOP_PAIRS}
    rows = flop_ratio_rows(pairs, args.batch)
    print(format_rows(rows))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == '__main__':
    main()
