"""``FAMTLoadImageFromFile``: mmcv's ``LoadImageFromFile`` whose failures name the file.

mmcv raises the decoder's own error: a zero-byte or non-image file gives OpenCV's
``(-215:Assertion failed) !buf.empty()`` or PIL's ``cannot identify image file
<_io.BytesIO ...>``, naming no file. This one re-raises any read / decode error as
``OSError('cannot read training image PATH: ...')``, whatever the decoder, and with
``ignore_empty=True`` it skips such a file with a warning naming it (mmengine's
dataset then takes another image), for cv2 too (mmcv's cv2 path returns None, then
asserts). Same arguments as ``LoadImageFromFile``.
"""
from typing import Optional

from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log
from mmpretrain.registry import TRANSFORMS


def unreadable_image(transform: str, path: str, error: Exception, skip: bool) -> None:
    """What a loading transform does with a file it cannot read: with ``skip`` warn naming
    the file and return None (mmengine's dataset takes another image), else raise ``OSError``
    naming it."""
    if skip:
        print_log(f'{transform}: skipping unreadable image {path} '
                  f'({type(error).__name__}: {error})', logger='current', level=30)
        return None
    raise OSError(f'cannot read training image {path}: {type(error).__name__}: {error} '
                  '(remove or replace the file, or set ignore_empty=True to skip it)') from error


@TRANSFORMS.register_module()
class FAMTLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that names the file it cannot read (see module doc)."""

    def transform(self, results: dict) -> Optional[dict]:
        path = results.get('img_path', '?')
        ignore_empty, self.ignore_empty = self.ignore_empty, False  # errors come back here
        try:
            out = super().transform(results)
        except Exception as e:  # noqa: BLE001  (any reader / decoder error)
            return unreadable_image('FAMTLoadImageFromFile', path, e, ignore_empty)
        finally:
            self.ignore_empty = ignore_empty
        return out
