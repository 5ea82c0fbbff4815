"""The master kinds: what each reads of a pair beside the pair itself, and which estimator decides.

| kind              | reads                                   | estimator                      |
|-------------------|-----------------------------------------|--------------------------------|
| features          | the tree's node features + weak margin  | FeaturesMaster                 |
| rm                | the pair with the tree's notes as text  | experimental TextMaster        |
| cot-v1/v2/v3      | the pair with that CoT's stored reasoning | experimental TextMaster      |

Every kind has the same twin (TwinMaster on the weak margin).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from w2s.masters.estimators import FeaturesMaster
from w2s.masters.experimental.text import TextMaster, text_x
from w2s.masters.features import MasterInputs, tree_features
from w2s.reasoning import COT_METHODS


@dataclass(frozen=True)
class Kind:
    name: str
    reads: str
    """'tree' (node features), 'notes' (the tree's notes as text) or 'reasoning' (a CoT's stored text)."""
    estimator: type
    experimental: bool = False

    @property
    def reads_trees(self) -> bool:
        return self.reads in ("tree", "notes")

    @property
    def reads_text(self) -> bool:
        return self.reads in ("notes", "reasoning")

    def x(self, features, inputs: MasterInputs) -> np.ndarray:
        """What this kind reads of the pairs beside the margin: tree features (n, 4·K), or the weak
        model's feature differences on the pair with the text."""
        if self.reads == "tree":
            return tree_features(inputs)
        return text_x(features, inputs, self.reads)


KINDS: dict[str, Kind] = {
    "features": Kind("features", "tree", FeaturesMaster),
    "rm": Kind("rm", "notes", TextMaster, experimental=True),
    **{m: Kind(m, "reasoning", TextMaster, experimental=True) for m in COT_METHODS},
}
"""Every master kind by name."""


def get_kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown master kind {name!r}: {', '.join(KINDS)}") from None
