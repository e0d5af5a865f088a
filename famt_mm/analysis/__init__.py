"""Analysis tools of the CPU probe experiment (docs/evaluation.md): a budgeted training loop,
frozen-feature probes, object-focus measurement, the oracle weight term and the experiment
driver."""
from .budget_loop import BudgetedEpochBasedTrainLoop, cpu_seconds  # noqa: F401
from .hooks import (FAMTFocusHook, UniformFAMTBankHook, bank_object_focus,  # noqa: F401
                    object_covers)
from .oracle import dataset_object_covers, object_coverage  # noqa: F401  (the oracle term)
from .probe import (ProbeData, build_probe_encoder, extract_features, knn_probe,  # noqa: F401
                    linear_probe, probe_checkpoint)
