"""The data preprocessor of the GPU decoding path (``decode='gpu'``, issue 21, the data budget).

With ``famt_train_dataloader(..., decode='gpu')`` the loader's workers only read each file and
draw its crop box and flip (``FAMTJPEGCropRecord``); the JPEG bytes and ``crop_xywh`` travel in
the data samples' metainfo. :class:`FAMTGPUDecodePreprocessor` turns such a batch into pixels on
the model's device (``decode_crop_batch``: nvJPEG on CUDA), then normalises exactly as
mmpretrain's ``SelfSupDataPreprocessor`` does with the CPU path's batch. A batch that already
has ``inputs`` (the refresh pass, which keeps its CPU loader) goes through unchanged.
"""
import torch
from mmpretrain.models.utils.data_preprocessor import SelfSupDataPreprocessor
from mmpretrain.registry import MODELS

from ..datasets.decode_crop import decode_crop_batch

#: Metainfo keys ``FAMTJPEGCropRecord`` sets and PackInputs must keep for this preprocessor.
GPU_DECODE_META_KEYS = ('jpeg', 'crop_xywh')


@MODELS.register_module()
class FAMTGPUDecodePreprocessor(SelfSupDataPreprocessor):
    """``SelfSupDataPreprocessor`` that first decodes, crops, resizes and flips on its device.

    Same arguments as ``SelfSupDataPreprocessor`` (mean, std, to_rgb, ...). A batch without
    ``inputs`` must carry ``jpeg`` (uint8 file bytes), ``crop_xywh``, ``flip`` and
    ``img_shape`` (output H, W) in every data sample; the decoded (N, 3, H, W) RGB batch is
    put in channel order BGR, which is what ``PackInputs`` gives from ``LoadImageFromFile``,
    so ``to_rgb`` and the mean / std mean the same as on the CPU path. The file bytes are
    dropped from the samples once decoded.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        if data.get('inputs') is None and 'data_samples' in data:
            data = dict(inputs=self.decode(data['data_samples']),
                        data_samples=data['data_samples'])
        return super().forward(data, training)

    def decode(self, data_samples) -> torch.Tensor:
        """(N, 3, H, W) uint8 BGR on this preprocessor's device, from the samples' records."""
        try:
            jpegs = [s.jpeg for s in data_samples]
            crops = [tuple(s.crop_xywh) for s in data_samples]
            flips = [bool(s.get('flip', False)) for s in data_samples]
            shapes = {tuple(s.img_shape[:2]) for s in data_samples}
        except AttributeError as e:
            raise KeyError(
                'FAMTGPUDecodePreprocessor: a batch without inputs needs jpeg and crop_xywh in '
                'every data sample: build the training loader with famt_train_dataloader(..., '
                f"decode='gpu') (FAMTJPEGCropRecord, PackInputs keeping them) ({e})") from e
        if len(shapes) != 1:
            raise ValueError(f'FAMTGPUDecodePreprocessor: one output size per batch, got {shapes}')
        out_hw, device = shapes.pop(), str(self.device)
        try:
            rgb = decode_crop_batch(jpegs, crops, flips, out_hw, device=device)
        except RuntimeError as e:  # a batch error names no file: find the one that fails
            for sample, jpeg, crop in zip(data_samples, jpegs, crops):
                try:
                    decode_crop_batch([jpeg], [crop], [False], out_hw, device=device)
                except RuntimeError as one:
                    raise OSError(
                        f"cannot decode training image {sample.get('img_path', '?')} on "
                        f'{device}: {one} (remove or replace the file)') from e
            raise
        for sample in data_samples:  # the bytes are not needed past this point
            del sample.jpeg
        return rgb[:, [2, 1, 0]]
