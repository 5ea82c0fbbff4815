"""Aligned weak masters: small models trained on gold (the ground-truth split) that decide a pair's
label, with its principle tree (the master) or from the pair alone (its no-tree twin, "aligned weak
alone"). See docs/design.md#aligned-masters.

- estimators in the scikit-learn style: `FeaturesMaster` and `TwinMaster` (w2s.masters.estimators);
  the text-reading ones are in w2s.masters.experimental (`TextMaster`);
- what they read: `MasterInputs` and the pure feature builders (w2s.masters.features), the weak
  model's features and margin (`WeakFeatures`, `fit_margin`);
- `train_master` fits a `Master` (estimators + twin + metrics) for a `MasterConfig` of a kind
  (w2s.masters.kinds);
- run ids and run directories (w2s.masters.runs), masters saved in the store by name
  (w2s.masters.saved), and the store queries (w2s.masters.data).
"""

from w2s.masters.config import FEATURES, PRINCIPLE_WEIGHTS, MasterConfig
from w2s.masters.data import reasoning_rows, training_inputs, training_rows, trees_for_master
from w2s.masters.estimators import FeaturesMaster, TwinMaster
from w2s.masters.experimental import TextMaster
from w2s.masters.features import (
    MasterInputs,
    design,
    features_x,
    gold_labels,
    node_features,
    tree_features,
    trust_table,
)
from w2s.masters.kinds import KINDS, Kind, get_kind
from w2s.masters.master import Master, train_master
from w2s.masters.runs import data_hash, is_run_dir, run_id
from w2s.masters.saved import (
    UnknownMaster,
    default_name,
    export_run,
    import_run,
    load_saved,
    resolve_master,
    save_master,
    saved_masters,
)
from w2s.masters.weak import MarginFit, WeakFeatures, fit_margin, shared_features

__all__ = [
    "FEATURES",
    "KINDS",
    "PRINCIPLE_WEIGHTS",
    "FeaturesMaster",
    "Kind",
    "MarginFit",
    "Master",
    "MasterConfig",
    "MasterInputs",
    "TextMaster",
    "TwinMaster",
    "UnknownMaster",
    "WeakFeatures",
    "data_hash",
    "default_name",
    "design",
    "export_run",
    "features_x",
    "fit_margin",
    "get_kind",
    "gold_labels",
    "import_run",
    "is_run_dir",
    "load_saved",
    "node_features",
    "reasoning_rows",
    "resolve_master",
    "run_id",
    "save_master",
    "saved_masters",
    "shared_features",
    "train_master",
    "training_inputs",
    "training_rows",
    "tree_features",
    "trees_for_master",
    "trust_table",
]
