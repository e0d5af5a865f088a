# ImageNet-1K for FAMT SimMIM: the SimMIM pipeline with the crop box recorded (the weight
# maps follow the crop and the flip); the model draws the masks, so no SimMIMMaskGenerator.
_base_ = ['imagenet_bs256_simmim.py']
from famt_mm.recipe import famt_pipeline  # noqa: E402 (text config: _base_ first)

train_pipeline = famt_pipeline(_base_.train_pipeline)  # noqa: F821
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
