"""tools/analysis/benchmark_pretrain.py run as a user runs it, in a tiny setting.

No timing is asserted (the machine is shared); the run must complete and report
every number, and the FLOP count must be the hand count.
"""
import json

from tests.conftest import run_tool

# ViT-T/16 on 64 px (L = 16 patches) with the small-recipe decoder (128-d x 8).
ARGS = ['tools/analysis/benchmark_pretrain.py', '--arch', 't', '--batch', '2', '--steps', '2',
        '--warmup', '1', '--img-size', '64', '--threads', '1', '--bank-size', '50',
        '--famt-config', 'configs/famt_mae_vit-s_cifar10.py',
        '--mae-config', 'configs/mae_vit-s_cifar10.py']


def positive(x):
    return isinstance(x, (int, float)) and x > 0


def test_benchmark_cli_reports_every_number(tmp_path):
    out = tmp_path / 'bench.json'
    proc = run_tool(ARGS + ['--warm-up-throw', '--out', str(out)], timeout=300)
    assert 'FAMT speed-up' in proc.stdout and 'refresh pass' in proc.stdout
    assert 'warm-up throw (random phase, mask 0.45 / throw 0.4, uniform)' in proc.stdout
    r = json.loads(out.read_text())

    setup = r['setup']
    assert setup['arch_name'] == 'ViT-T/16' and setup['batch'] == 2 and setup['img_size'] == 64
    assert setup['precision'] == 'fp32' and setup['device'] == 'cpu' and setup['threads'] == 1
    assert len(setup['load_avg_before']) == 3

    # L = 16: 7 masked, 6 thrown, 3 visible; MAE keeps int(16 * 0.25) = 4
    assert r['tokens'] == dict(num_patches=16, famt_masked=7, famt_thrown=6, famt_visible=3,
                               famt_encoder=4, famt_decoder=11, mae_encoder=5, mae_decoder=17)
    for name in ('famt', 'mae'):
        step = r[name]['step']
        assert step['n'] == 2 and all(positive(step[k]) for k in ('median_s', 'images_per_s'))
        mem = r[name]['memory']
        assert mem['kind'] and (mem['step_bytes'] is None or mem['step_bytes'] >= 0)
        assert positive(r[name]['flops_per_image']) and positive(r[name]['params'])
    assert r['famt']['params'] == r['mae']['params']  # FAMT adds no parameters
    assert positive(r['famt']['step_uint8_bank']['images_per_s'])
    assert positive(r['refresh']['images_per_s']) and positive(r['sampling']['median_s'])
    for key in ('speedup', 'speedup_paired_median', 'flop_ratio', 'refresh_vs_mae_step',
                'sampling_share_of_famt_step', 'uint8_vs_float16_step'):
        assert positive(r['ratios'][key]), key
    assert r['bank']['bytes_per_image'] == dict(float16=32, uint8=16)
    warm = r['warm_up_throw']  # the random phase at FAMT's ratios, timed in turns
    assert warm['ratios'] == [0.45, 0.4] and warm['step']['n'] == 2
    assert all(positive(warm[k]) for k in ('speedup', 'speedup_paired_median', 'vs_famt_step'))
    assert r['bank']['bytes_per_patch']['uint8'] == 1

    # FLOPs by hand: deit-tiny (192-d, MLP 768, 12 blocks), decoder 128-d (MLP 512, 8 blocks),
    # patches of 16 x 16 x 3 = 768 values; FAMT embeds its 3 visible patches, MAE all 16.
    def step(n_embed, n_enc, n_dec, n_pred):
        enc = 12 * (n_enc * (4 * 192 * 192 + 2 * 192 * 768) + 2 * n_enc * n_enc * 192)
        dec = n_enc * 192 * 128 + n_pred * 128 * 768
        dec += 8 * (n_dec * (4 * 128 * 128 + 2 * 128 * 512) + 2 * n_dec * n_dec * 128)
        return 2 * 2 * n_embed * 768 * 192 + 3 * 2 * (enc + dec)
    assert r['famt']['flops_per_image'] == step(3, 4, 11, 7)
    assert r['mae']['flops_per_image'] == step(16, 5, 17, 17)
    assert abs(r['ratios']['flop_ratio'] - step(16, 5, 17, 17) / step(3, 4, 11, 7)) < 1e-9


def test_benchmark_cli_simmim_pair(tmp_path):
    """--algorithm simmim: FAMT SimMIM against plain SimMIM, ViT-T/16 on 64 px.

    4 x 4 patches = 2 x 2 units of 32 px: int(4 * .44) = 1 masked, int(4 * .70) - 1 = 1
    thrown, 2 visible units, i.e. 4 / 4 / 8 patches.
    """
    out = tmp_path / 'bench_simmim.json'
    proc = run_tool(ARGS[:-4] + ['--algorithm', 'simmim', '--out', str(out)], timeout=300)
    assert 'FAMT speed-up (images/s FAMT / SimMIM)' in proc.stdout
    r = json.loads(out.read_text())
    assert r['setup']['baseline'] == 'simmim' and 'warm_up_throw' not in r  # opt-in
    assert r['setup']['famt_config'] == 'configs/famt_simmim_vit-b-p16_in1k.py'
    assert r['setup']['baseline_config'] == 'configs/simmim_vit-b-p16_in1k.py'
    assert r['tokens'] == dict(num_patches=16, num_units=4, famt_masked=4, famt_thrown=4,
                               famt_visible=8, famt_encoder=13, simmim_encoder=17)
    for name in ('famt', 'simmim'):
        assert r[name]['step']['n'] == 2 and positive(r[name]['step']['images_per_s'])
    assert r['famt']['params'] == r['simmim']['params']
    for key in ('speedup', 'flop_ratio', 'refresh_vs_simmim_step',
                'sampling_share_of_famt_step', 'uint8_vs_float16_step'):
        assert positive(r['ratios'][key]), key
    assert r['bank']['bytes_per_image'] == dict(float16=8, uint8=4)  # 2 x 2 units
    assert r['bank']['bytes_per_unit']['uint8'] == 1

    # FLOPs by hand: deit-tiny (192-d, MLP 768, 12 blocks), decoder 192 -> 16 * 16 * 3
    def step(n_embed, n_enc, n_pred):
        enc = 12 * (n_enc * (4 * 192 * 192 + 2 * 192 * 768) + 2 * n_enc * n_enc * 192)
        return 2 * 2 * n_embed * 768 * 192 + 3 * 2 * (enc + n_pred * 192 * 768)
    assert r['famt']['flops_per_image'] == step(8, 13, 4)
    assert r['simmim']['flops_per_image'] == step(16, 17, 16)


def test_step_rows_benchmark_reports_host_time_and_bytes(tmp_path):
    out = tmp_path / 'rows.json'
    proc = run_tool(['tools/analysis/benchmark_step_rows.py', '--batch', '32', '--images', '3000',
                     '--steps', '2', '--dtype', 'uint8', '--dir', str(tmp_path),
                     '--out', str(out)], timeout=300)
    r = json.loads(out.read_text())
    assert 'host ms per step' in proc.stdout
    assert r['bank_file_bytes'] > 3000 * 14 * 14 and not list(tmp_path.glob('tmp*'))
    assert r['bytes_per_step'] == dict(file=32 * 196 + 32 * 48, inline=32 * 48)
    assert all(positive(r[k][0]) for k in ('meta_ms', 'rows_file_warm_ms', 'rows_file_cold_ms'))
