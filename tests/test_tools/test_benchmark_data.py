"""tools/analysis/benchmark_data.py on a few generated JPEGs: every pipeline and number is there,
and the data-budget arithmetic is the GPU rate over the per-core rate."""
import json

from famt_mm.analysis import data_budget as db
from tests.conftest import run_tool


def test_benchmark_data_cli_reports_every_pipeline(tmp_path):
    out = tmp_path / 'data.json'
    proc = run_tool(['tools/analysis/benchmark_data.py', '--root', str(tmp_path / 'jpegs'),
                     '--images', '4', '--repeats', '1', '--decoders', 'cv2-reduced',
                     '--workers', '1', '--out', str(out)], timeout=300)
    result = json.load(open(out))
    assert result['setup']['images'] == 4 and len(list((tmp_path / 'jpegs').rglob('*.JPEG'))) == 4
    names = ['mae', 'famt', 'famt decode=cv2-reduced', db.GPU_PATH]
    for kind in ('cpu', 'wall'):
        assert list(result['single_core'][kind]) == names
        assert all(r[0] > 0 for r in result['single_core'][kind].values())
    assert set(result['decode_only']) == {'cv2', 'pillow', 'torchvision', 'pillow 1/2',
                                          'pillow 1/4'}
    assert abs(sum(result['reduction_shares'].values()) - 1) < 1e-9
    assert set(result['workers']) == {'mae', 'famt', 'famt decode=cv2-reduced'}
    for name in names:
        assert f'| {name} | ' in proc.stdout
    assert 'cores per GPU' in proc.stdout


def test_budget_table_divides_the_gpu_rate_by_the_per_core_rate():
    rows = db.budget_table({'mae': [200.0, 220.0, 180.0], 'famt': [250.0],
                            'famt decode=cv2': [500.0]}, {'mae': 3000.0, 'famt': 5000.0}, 8)
    assert rows[2] == '| mae | 200 (180-220) | 1.25 | 15.0 | 120 |'
    assert rows[3] == '| famt | 250 (250-250) | 1.00 | 20.0 | 160 |'
    assert rows[4] == '| famt decode=cv2 | 500 (500-500) | 0.50 | 10.0 | 80 |'
