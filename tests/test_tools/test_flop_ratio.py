"""tools/analysis/flop_ratio.py: the counted FLOPs are the matmuls of the tokens each model
really runs (checked against a hand count on the tiny demo MAE), for any contract model."""
import os.path as osp

from famt_mm.analysis.flop_ratio import FLOP_PAIRS, step_flops
from famt_mm.models.famt_algorithm import FAMT_ALGORITHMS, missing_contract
from tests.conftest import REPO


def layer_flops(n, c, ffn):
    """One pre-norm ViT block on n tokens of c channels: qkv, q k^T, attn v, proj, FFN."""
    return 2 * n * c * 3 * c + 2 * 2 * n * n * c + 2 * n * c * c + 2 * 2 * n * c * ffn


def test_tiny_mae_step_flops_are_the_hand_count():
    # the demo's encoder: 64 px, 8 px patches (L = 64), 192-d x 6 blocks (FFN 768); decoder
    # 128-d x 2 blocks (FFN 512): configs/_base_/models/*mae_vit-tiny-p8.py
    L, C, F, D, DF, P = 64, 192, 768, 128, 512, 8 * 8 * 3
    famt = step_flops(osp.join(REPO, 'configs', 'famt_mae_vit-t_demo.py'))
    m, t, v = (famt['counts'][k] for k in ('masked', 'thrown', 'visible'))
    assert (m, t, v) == (28, 26, 10) and famt['input_hw'] == (64, 64)  # .45 / .40 of 64
    expected = (2 * v * P * C + 6 * layer_flops(1 + v, C, F)  # embed V patches, encoder
                + 2 * (1 + v) * C * D + 2 * layer_flops(1 + v + m, D, DF)  # decoder
                + 2 * m * D * P)  # prediction of the masked patches only
    assert famt['total'] == expected
    plain = step_flops(osp.join(REPO, 'configs', 'mae_vit-t_demo.py'))
    keep = L // 4  # mask ratio .75
    expected = (2 * L * P * C + 6 * layer_flops(1 + keep, C, F)
                + 2 * (1 + keep) * C * D + 2 * layer_flops(1 + L, D, DF) + 2 * (1 + L) * D * P)
    assert plain['total'] == expected


def test_cli_on_a_simmim_pair_and_every_algorithm_has_a_known_pair(tmp_path, capsys):
    import json

    from tools.analysis.flop_ratio import main
    main(['--pair', 'configs/famt_simmim_vit-t_demo.py', 'configs/simmim_vit-t_demo.py',
          '--json', str(tmp_path / 'rows.json')])
    row, = json.load(open(tmp_path / 'rows.json'))
    famt, plain = row['famt'], row['plain']
    assert (famt['model'], plain['model']) == ('FAMTSimMIM', 'SimMIM')
    assert f"| {row['ratio']:.3f} |" in capsys.readouterr().out
    # the FAMT encoder sees the masked + visible patches of 16 units (7 / 4 / 5) of 2 x 2
    assert famt['counts'] == dict(masked=28, thrown=16, visible=20)
    assert 0 < famt['total'] < plain['total']
    plain_algorithms = {c.plain_algorithm for c in FAMT_ALGORITHMS.values()
                        if not missing_contract(c)}
    assert plain_algorithms <= set(FLOP_PAIRS), plain_algorithms - set(FLOP_PAIRS)
    for pair in FLOP_PAIRS.values():
        assert osp.isfile(osp.join(REPO, pair.famt_config)), pair
        assert osp.isfile(osp.join(REPO, pair.plain_config)), pair
