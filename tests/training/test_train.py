"""Each objective trains a tiny Llama on a learnable toy task; weights, resume, data errors."""

import json
import shutil

import pytest
import torch

from tests.training.conftest import toy_rows
from w2s.training import LoraSpec, make_config, train
from w2s.training.data import DataError, load_rows
from w2s.training.evaluate import evaluate_run
from w2s.training.models import build_model
from w2s.training.trainer import collate, compute_loss, prepare_rows


def _losses(run):
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("objective,lr", [("rm", 3e-3), ("dpo", 3e-3), ("simpo", 3e-3), ("sft", 3e-3)])
def test_objective_loss_decreases(tiny_model, tmp_path, objective, lr):
    cfg = make_config(
        objective,
        model=tiny_model,
        out=str(tmp_path / objective),
        learning_rate=lr,
        max_steps=30,
        batch_size=8,
        logging_steps=5,
        save_steps=100,
        progress=False,
        warmup_ratio=0.0,
    )
    run = train(cfg, rows=toy_rows(64))
    losses = _losses(run)
    assert len(losses) == 6
    assert losses[-1] < 0.7 * losses[0], losses
    assert (run / "model" / "trainable.pt").exists() and (run / "config.json").exists()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 30 and summary["pairs"] == 240
    if objective != "sft":  # the trained preference beats chance on fresh toy pairs
        assert evaluate_run(run, toy_rows(32, seed=1), progress=False)["accuracy"] > 0.8


def test_lora_trains_only_adapters_and_head(tiny_model, tmp_path):
    cfg = make_config(
        "rm",
        model=tiny_model,
        out=str(tmp_path / "lora"),
        lora=LoraSpec(r=4, alpha=8, dropout=0.0),
        learning_rate=1e-2,
        max_steps=20,
        batch_size=8,
        progress=False,
        logging_steps=5,
    )
    _, model = build_model(cfg)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    run = train(cfg, rows=toy_rows(64))
    losses = _losses(run)
    assert losses[-1] < losses[0]
    assert (run / "model" / "adapter" / "adapter_config.json").exists()


@pytest.mark.parametrize("objective", ["rm", "dpo", "simpo", "sft"])
def test_zero_weight_removes_gradient(tiny_model, tmp_path, objective):
    """The gradient of a batch where one example has weight 0 equals the gradient without that
    example (scaled by the batch size, since the loss is a mean over the batch)."""
    cfg = make_config(objective, model=tiny_model, out=str(tmp_path / "z"), progress=False)
    tok, model = build_model(cfg)
    rows = toy_rows(3, seed=5)
    rows[1] = dict(rows[1], chosen=rows[1]["rejected"], rejected=rows[1]["chosen"])  # a different example
    if objective == "dpo":
        for r in rows:
            r.update(ref_chosen_logp=-5.0, ref_rejected_logp=-6.0)

    def grads(rs, weights):
        model.zero_grad()
        b = collate([dict(r, weight=w) for r, w in zip(rs, weights)], tok, cfg, "cpu")
        loss, _ = compute_loss(model, b, cfg, 0, 10)
        (loss * len(rs)).backward()  # undo the 1/N of the mean
        return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    with_zero = grads(rows, [1.0, 0.0, 1.0])
    without = grads([rows[0], rows[2]], [1.0, 1.0])
    assert torch.allclose(with_zero, without, atol=1e-5)
    assert not torch.allclose(grads(rows, [1.0, 1.0, 1.0]), without, atol=1e-5)  # the weight matters


def test_resume_matches_uninterrupted_run(tiny_model, tmp_path):
    kw = dict(
        model=tiny_model,
        learning_rate=3e-3,
        max_steps=8,
        batch_size=4,
        save_steps=4,
        keep_checkpoints=5,
        progress=False,
        logging_steps=2,
        lora=LoraSpec(r=4, alpha=8, dropout=0.1),
    )
    full = train(make_config("rm", out=str(tmp_path / "full"), **kw), rows=toy_rows(40))
    # an "interrupted" run: only the step-4 checkpoint exists, as if the process died after it
    part = tmp_path / "part"
    (part / "checkpoints").mkdir(parents=True)
    shutil.copytree(full / "checkpoints" / "step-4", part / "checkpoints" / "step-4")
    resumed = train(make_config("rm", out=str(part), **kw), rows=toy_rows(40))
    assert json.loads((resumed / "summary.json").read_text())["resumed_from"] == 4
    a = torch.load(full / "model" / "trainable.pt")
    b = torch.load(resumed / "model" / "trainable.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_aux_conf_and_conflict_log_their_terms(tiny_model, tmp_path):
    cfg = make_config(
        "rm",
        model=tiny_model,
        out=str(tmp_path / "aux"),
        aux_conf=True,
        conflict_alpha=0.5,
        max_steps=10,
        batch_size=4,
        logging_steps=1,
        progress=False,
        learning_rate=1e-3,
    )
    run = train(cfg, rows=toy_rows(40))
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    cs = [r["aux_c"] for r in recs]
    assert cs[0] == 0.0 and cs[-1] == pytest.approx(0.5) and all(b >= a for a, b in zip(cs, cs[1:]))
    assert all("conflict" in r for r in recs)


def test_filtering_reweighting_and_extra_data(tmp_path):
    rows = toy_rows(10)
    for i, r in enumerate(rows):
        r.update(entropy=i / 10, weight=0.5, soft_label=0.2 if i == 0 else 0.9)
    extra = tmp_path / "help.jsonl"
    extra.write_text(json.dumps(toy_rows(1)[0] | {"source": ""}) + "\n")
    cfg = make_config(
        "dpo", model="x", filter_entropy_percentile=50, extra_data=[str(extra)], use_weights=False
    )
    kept = prepare_rows(cfg, rows)
    # 11 rows: entropies 0, 0.1 … 0.9 and the extra row's 0; sorted, the 6th (median) is 0.4
    # → keep 0, 0.1, 0.2, 0.3, 0.4 and the extra row
    assert len(kept) == 6
    assert all(r["weight"] == 1.0 for r in kept)
    assert (
        kept[0]["soft_label"] == pytest.approx(0.8) and kept[0]["chosen"] == rows[0]["rejected"]
    )  # oriented
    assert kept[-1]["source"].startswith("extra:")


def test_load_rows_formats_and_errors(tmp_path):
    rows = toy_rows(3)
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "r.parquet")
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "hf"))
    assert load_rows(tmp_path / "r.parquet")[2]["pair_id"] == "p2"
    assert len(load_rows(tmp_path / "hf")) == 3
    hh = tmp_path / "hh.jsonl"
    hh.write_text(
        json.dumps(
            {"chosen": "\n\nHuman: hi\n\nAssistant: safe", "rejected": "\n\nHuman: hi\n\nAssistant: bad"}
        )
        + "\n"
    )
    r = load_rows(hh)[0]
    assert r["prompt"] == "\n\nHuman: hi\n\nAssistant:" and r["chosen"] == " safe" and r["soft_label"] == 1.0
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[0]) + "\n" + json.dumps(rows[1] | {"weight": "heavy"}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl: line 2: field 'weight'"):
        load_rows(bad)
    bad.write_text(json.dumps(rows[0] | {"soft_label": 1.5}) + "\n")
    with pytest.raises(DataError, match=r"line 1: field 'soft_label' out of range"):
        load_rows(bad)


def test_frozen_prefix_cache_gives_the_same_rewards(tiny_model, tmp_path):
    from w2s.training.models import _PREFIX_CACHE

    kw = dict(model=tiny_model, lora=LoraSpec(r=4, alpha=8, dropout=0.0, last_n_layers=1), progress=False)
    tok, plain = build_model(make_config("rm", out=str(tmp_path / "a"), **kw))
    _, cached = build_model(make_config("rm", out=str(tmp_path / "b"), cache_frozen_prefix=True, **kw))
    for p in list(plain.parameters()) + list(cached.parameters()):  # make the adapters non-zero
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.1)
    cached.load_state_dict(plain.state_dict())
    b = collate(toy_rows(4), tok, make_config("rm", model=tiny_model), "cpu")
    n0 = len(_PREFIX_CACHE)
    want = plain(b["input_ids"], b["attention_mask"])
    got = cached(b["input_ids"], b["attention_mask"])
    assert len(_PREFIX_CACHE) == n0 + 8  # chosen and rejected of 4 pairs
    assert torch.allclose(want, got, atol=1e-5)
    assert torch.allclose(cached(b["input_ids"], b["attention_mask"]), want, atol=1e-5)  # from the cache
    got.sum().backward()  # gradients reach the adapters of the top layer
    assert any(
        p.grad is not None and p.grad.abs().sum() > 0 for n, p in cached.named_parameters() if "lora_" in n
    )


def test_warm_prefix_cache_fills_once_and_matches_the_full_forward(tiny_model, tmp_path):
    """The one-off length-sorted pass over the frozen layers stores exactly what the training
    forward would compute, and a second pass computes nothing."""
    from w2s.training.models import _PREFIX_CACHE
    from w2s.training.trainer import warm_prefix_cache

    lora = LoraSpec(r=4, alpha=8, dropout=0.0, last_n_layers=1)
    cfg = make_config(
        "rm", model=tiny_model, out=str(tmp_path / "w"), lora=lora, cache_frozen_prefix=True, progress=False
    )
    tok, model = build_model(cfg)
    _, plain = build_model(
        make_config("rm", model=tiny_model, out=str(tmp_path / "p"), lora=lora, progress=False)
    )
    plain.load_state_dict(model.state_dict())
    rows = toy_rows(6, seed=11)
    rows[0] = dict(
        rows[0], chosen=rows[0]["chosen"] + " good kind safe help"
    )  # lengths differ: padding in play
    _PREFIX_CACHE.clear()
    n, _ = warm_prefix_cache(model, tok, cfg, rows)
    assert n == len(_PREFIX_CACHE) == len({(r["prompt"], r[s]) for r in rows for s in ("chosen", "rejected")})
    assert warm_prefix_cache(model, tok, cfg, rows)[0] == 0
    b = collate(rows, tok, cfg, "cpu")
    with torch.no_grad():
        assert torch.allclose(
            model(b["input_ids"], b["attention_mask"]), plain(b["input_ids"], b["attention_mask"]), atol=1e-5
        )
    assert len(_PREFIX_CACHE) == n  # the training forward found everything in the cache
    assert warm_prefix_cache(plain, tok, cfg, rows) == (0, 0.0)  # no frozen prefix: nothing to do


def test_rerun_resumes_only_the_same_run(tiny_model, tmp_path):
    """A finished run directory is reused only by the same config on the same rows; anything else
    raises instead of silently handing back another run's weights."""
    kw = dict(model=tiny_model, out=str(tmp_path / "r"), max_steps=2, batch_size=4)
    run = train(make_config("rm", **kw, progress=False), rows=toy_rows(8))
    mtime = (run / "model" / "trainable.pt").stat().st_mtime
    assert (
        train(make_config("rm", **kw, progress=True, logging_steps=1), rows=toy_rows(8)) == run
    )  # volatile fields
    assert (run / "model" / "trainable.pt").stat().st_mtime == mtime
    with pytest.raises(ValueError, match="different config.*learning_rate"):
        train(make_config("rm", **kw, learning_rate=1e-2), rows=toy_rows(8))
    with pytest.raises(ValueError, match="different rows"):
        train(make_config("rm", **kw), rows=toy_rows(8, seed=3))


def test_frozen_backbone_trains_the_head_only(tiny_model, tmp_path):
    cfg = make_config(
        "rm",
        model=tiny_model,
        out=str(tmp_path / "f"),
        freeze_backbone=True,
        head_lr=1e-2,
        max_steps=5,
        batch_size=4,
        progress=False,
    )
    _, model = build_model(cfg)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    run = train(cfg, rows=toy_rows(16))
    saved = torch.load(run / "model" / "trainable.pt")
    assert set(saved) == {"head.weight", "head.bias"}
    _, again = build_model(cfg)
    assert all(torch.equal(before[k], v) for k, v in again.backbone.state_dict().items())
    with pytest.raises(ValueError, match="drop the LoRA"):
        build_model(make_config("rm", model=tiny_model, freeze_backbone=True, lora=LoraSpec()))


def test_frozen_backbone_features_are_computed_once_and_match_the_full_forward(tiny_model, tmp_path):
    """A head-only reward model reads its frozen encoder's pooled features from the cache: one
    length-sorted pass fills it, and the rewards equal those of the full forward."""
    from w2s.training.models import _PREFIX_CACHE
    from w2s.training.trainer import warm_prefix_cache

    cfg = make_config(
        "rm", model=tiny_model, out=str(tmp_path / "f"), freeze_backbone=True, pooling="mean", progress=False
    )
    tok, model = build_model(cfg)
    rows = toy_rows(6, seed=5)
    rows[0] = dict(rows[0], rejected=rows[0]["rejected"] + " bad harm rude hurt")  # padding in play
    b = collate(rows, tok, cfg, "cpu")
    with torch.no_grad():
        want = model.head(model.pooled(b["input_ids"], b["attention_mask"])).squeeze(-1)
    _PREFIX_CACHE.clear()
    n, _ = warm_prefix_cache(model, tok, cfg, rows)
    assert n == len(_PREFIX_CACHE) == len({(r["prompt"], r[s]) for r in rows for s in ("chosen", "rejected")})
    assert warm_prefix_cache(model, tok, cfg, rows)[0] == 0
    got = model(b["input_ids"], b["attention_mask"])
    assert len(_PREFIX_CACHE) == n  # every feature came from the cache
    assert torch.allclose(got, want, atol=1e-5)
    got.sum().backward()
    assert model.head.weight.grad.abs().sum() > 0
