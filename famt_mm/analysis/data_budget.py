"""The data budget: training pipelines in images per second per CPU core, and CPU cores per GPU.

A pre-training step consumes a batch of JPEGs; the CPU cores feeding one GPU must decode,
crop, resize and pack them as fast as the GPU steps. Measured here, per pipeline of
:func:`pipelines`, on one process with one thread (the unit a data loader worker is), in
rounds that visit every pipeline in turn so that a load change on a shared machine hits all
alike; and with N worker processes. ``tools/analysis/benchmark_data.py`` is the command line.
"""
import io
import multiprocessing as mp
import time
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from PIL import Image

from ..datasets.decode_crop import DECODERS, FAMTJPEGCropRecord, decode_crop_batch
from ..recipe import famt_pipeline

#: mmpretrain's MAE ImageNet training pipeline (configs/_base_/datasets/imagenet_bs512_mae.py).
MAE_PIPELINE = (
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
)
#: Step rates quoted by issue 21 (not measured here): a bare prototype of mmpretrain's MAE
#: ViT-B/16 on one H200, batch 512, bf16, and the same with FAMT's token budget, images/s.
ISSUE_21_GPU_RATES = {'mae': 3629.0, 'famt': 5398.0}
#: The pipeline each GPU rate is fed by (the FAMT rate by every FAMT pipeline).
GPU_PATH = 'famt gpu-path (CPU side)'


def pipelines(decoders: Sequence[str] = DECODERS) -> Dict[str, list]:
    """Name -> transform configs: MAE's, FAMT's (``famt_pipeline``), FAMT's with each
    ``decode=`` switch, and the CPU side of the GPU decoding path (``decode='gpu'``: the
    record and ``PackInputs``, what a loader worker runs in training)."""
    out = {'mae': [dict(t) for t in MAE_PIPELINE], 'famt': famt_pipeline(MAE_PIPELINE)}
    for decode in decoders:
        out[f'famt decode={decode}'] = famt_pipeline(MAE_PIPELINE, decode=decode)
    out[GPU_PATH] = famt_pipeline(MAE_PIPELINE, decode='gpu')
    return out


def one_thread() -> None:
    """One compute thread for torch and OpenCV (a data loader worker's setting)."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def build(cfg: Sequence[dict]):
    """The transform configs as one callable (mmcv ``Compose`` of mmpretrain transforms)."""
    import famt_mm  # noqa: F401  (registers the FAMT transforms)
    from mmcv.transforms import Compose
    from mmpretrain.registry import TRANSFORMS
    return Compose([TRANSFORMS.build(dict(t)) for t in cfg])


def run_over(pipeline, paths: Sequence[str], seed: int = 0) -> Tuple[float, float]:
    """(wall, CPU) seconds of this process to put every file in ``paths`` through
    ``pipeline`` once."""
    np.random.seed(seed)
    start, cpu = time.perf_counter(), time.process_time()
    for i, path in enumerate(paths):
        pipeline(dict(img_path=path, sample_idx=i))
    return time.perf_counter() - start, time.process_time() - cpu


def single_core_rates(configs: Dict[str, list], paths: Sequence[str],
                      repeats: int = 3) -> Dict[str, Dict[str, List[float]]]:
    """'cpu' / 'wall' -> name -> images per CPU second / per wall second of each round (one
    process, one thread), after one warm-up pass. On a shared machine the CPU-time rate is
    what the pipeline costs; the wall rate also counts the time other jobs held the core."""
    one_thread()
    built = {name: build(cfg) for name, cfg in configs.items()}
    for pipeline in built.values():
        run_over(pipeline, paths[:10])
    rates = {kind: {name: [] for name in built} for kind in ('cpu', 'wall')}
    for round_ in range(repeats):
        for name, pipeline in built.items():
            wall, cpu = run_over(pipeline, paths, seed=round_)
            rates['wall'][name].append(len(paths) / wall)
            rates['cpu'][name].append(len(paths) / cpu)
    return rates


def decode_only_rates(paths: Sequence[str], repeats: int = 3) -> Dict[str, List[float]]:
    """Full-size decoding alone, images per CPU second per round: OpenCV, Pillow, torchvision,
    and Pillow at 1/2 and 1/4 scale (what DCT scaling saves where a crop allows it)."""
    from torchvision.io import ImageReadMode, decode_jpeg
    one_thread()
    files = [open(p, 'rb').read() for p in paths]

    def pillow_draft(data, factor):
        img = Image.open(io.BytesIO(data))
        img.draft('RGB', (img.size[0] // factor, img.size[1] // factor))
        return img.convert('RGB')

    decoders = {
        'cv2': lambda d: cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_COLOR),
        'pillow': lambda d: Image.open(io.BytesIO(d)).convert('RGB'),
        'torchvision': lambda d: decode_jpeg(torch.frombuffer(bytearray(d), dtype=torch.uint8),
                                             mode=ImageReadMode.RGB),
        'pillow 1/2': lambda d: pillow_draft(d, 2),
        'pillow 1/4': lambda d: pillow_draft(d, 4),
    }
    rates = {name: [] for name in decoders}
    for _ in range(repeats):
        for name, fn in decoders.items():
            start = time.process_time()
            for data in files:
                fn(data)
            rates[name].append(len(files) / (time.process_time() - start))
    return rates


_WORKER = {}


def _worker_init(cfg):
    one_thread()
    _WORKER['pipeline'] = build(cfg)


def _worker_run(job):
    index, path = job
    np.random.seed(index)
    out = _WORKER['pipeline'](dict(img_path=path, sample_idx=index))
    return out.get('inputs', out.get('jpeg'))  # what a data loader worker sends back


def worker_rate(cfg: Sequence[dict], paths: Sequence[str], workers: int,
                passes: int = 2) -> float:
    """Images/s of ``workers`` processes (one thread each) putting ``paths`` through ``cfg``
    ``passes`` times, results sent back to the parent as a data loader's workers do."""
    jobs = [(i, p) for _ in range(passes) for i, p in enumerate(paths)]
    with mp.get_context('fork').Pool(workers, _worker_init, (list(cfg),)) as pool:
        pool.map(_worker_run, jobs[:2 * workers], chunksize=1)  # start-up, warm-up
        start = time.perf_counter()
        pool.map(_worker_run, jobs, chunksize=8)
        return len(jobs) / (time.perf_counter() - start)


def reduction_shares(paths: Sequence[str], seeds: int = 4) -> Dict[int, float]:
    """Share of crops decoded at each DCT factor by ``decode='pillow-draft'`` (MAE's crop)."""
    pipeline = build(pipelines(['pillow-draft'])['famt decode=pillow-draft'][:1])
    counts = {1: 0, 2: 0, 4: 0, 8: 0}
    for seed in range(seeds):
        np.random.seed(seed)
        for i, path in enumerate(paths):
            counts[pipeline(dict(img_path=path, sample_idx=i))['famt_decode_factor']] += 1
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()}


def gpu_path_rate(paths: Sequence[str], batch: int = 256, device: str = 'cuda',
                  repeats: int = 3) -> List[float]:
    """Images/s of :func:`decode_crop_batch` (decode, crop, resize, flip on ``device``) over
    batches of ``batch`` files whose records the CPU side made; one rate per round."""
    record = FAMTJPEGCropRecord(scale=224, crop_ratio_range=(0.2, 1.0), flip_prob=0.5)
    np.random.seed(0)
    recs = [record(dict(img_path=p, sample_idx=i)) for i, p in enumerate(paths)]
    recs = (recs * (batch // len(recs) + 1))[:batch]
    args = ([r['jpeg'] for r in recs], [r['crop_xywh'] for r in recs],
            [r['flip'] for r in recs], (224, 224), device)
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
    decode_crop_batch(*args)
    sync()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        decode_crop_batch(*args)
        sync()
        rates.append(batch / (time.perf_counter() - start))
    return rates


def cores_per_gpu(gpu_images_per_s: float, images_per_s_per_core: float) -> float:
    """CPU cores one GPU needs so that data loading keeps up with its steps."""
    return gpu_images_per_s / images_per_s_per_core


def median(values: Sequence[float]) -> float:
    return float(np.median(values))


def budget_table(rates: Dict[str, List[float]], gpu_rates: Optional[Dict[str, float]] = None,
                 gpus_per_node: int = 8) -> List[str]:
    """Markdown rows: pipeline, img/s/core (median, range), CPU cost vs FAMT's, cores per GPU
    and per node at the GPU rate of its model (MAE's for 'mae', FAMT's for the others)."""
    gpu_rates = gpu_rates or ISSUE_21_GPU_RATES
    base = median(rates['famt'])
    rows = ['| pipeline | img/s per core (median; range) | CPU cost per image vs FAMT today '
            f'| cores per GPU | cores per {gpus_per_node}-GPU node |',
            '| --- | --- | --- | --- | --- |']
    for name, values in rates.items():
        rate = median(values)
        gpu = gpu_rates['mae' if name == 'mae' else 'famt']
        cores = cores_per_gpu(gpu, rate)
        rows.append(f'| {name} | {rate:.0f} ({min(values):.0f}-{max(values):.0f}) | '
                    f'{base / rate:.2f} | {cores:.1f} | {cores * gpus_per_node:.0f} |')
    return rows
