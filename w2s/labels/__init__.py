"""The labels stage: from many answers per pair to one label per pair, and how far to trust it.

`aggregate` turns the annotations of humans, models and prompt variants into label sets (majority vote,
soft vote, Dawid-Skene); `variants` makes the prompt variations whose spread `reliability` turns into a
per-pair reliability; `agreement` measures inter-annotator agreement; `ensembles` trains bootstrap
ensembles of weak supervisors; `quality` scores annotations against gold; `calibration` draws the
calibration reports of a label set; `evidence_first` reports whether the trees help people. The modules
are imported by their own path (`from w2s.labels.aggregate import build_label_set`); importing the package
itself loads none of them.
"""

__all__ = [
    "aggregate",
    "agreement",
    "calibration",
    "ensembles",
    "evidence_first",
    "quality",
    "reliability",
    "variants",
]
