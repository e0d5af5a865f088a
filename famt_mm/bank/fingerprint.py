"""Identity of a training set's sample list, stored with a bank to refuse another dataset."""
import hashlib


def dataset_fingerprint(dataset) -> str:
    """SHA-1 (hex) of a dataset's size and sample list, order included; cheap for ImageNet.

    mmengine's serialised datasets hash their packed ``data_bytes``; other datasets with a
    ``data_list`` hash each sample's ``img_path`` (or ``sample_idx``) and ``gt_label``.
    """
    h = hashlib.sha1(str(len(dataset)).encode())
    if (getattr(dataset, 'serialize_data', False)
            and getattr(dataset, 'data_bytes', None) is not None):
        h.update(memoryview(dataset.data_bytes).cast('B'))
    elif getattr(dataset, 'data_list', None):
        for info in dataset.data_list:
            h.update(str(info.get('img_path', info.get('sample_idx', ''))).encode())
            h.update(str(info.get('gt_label', '')).encode())
    return h.hexdigest()
