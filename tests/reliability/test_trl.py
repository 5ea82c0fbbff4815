"""The export loads straight into TRL: one RewardTrainer step on a tiny Llama built here (no hub)."""

import math

import pytest
import torch

from w2s.labels.aggregate import build_label_set
from w2s.store import session_scope
from w2s.store.export import export_label_set


def tiny_tokenizer(texts):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, "[EOS]": 2}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    words = sorted({w for t in texts for w, _ in tok.pre_tokenizer.pre_tokenize_str(t)})
    tok = Tokenizer(
        models.WordLevel(vocab={**vocab, **{w: i + 3 for i, w in enumerate(words)}}, unk_token="[UNK]")
    )
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]"
    )


def tiny_reward_model(vocab_size: int, pad_id: int):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        num_labels=1,
        pad_token_id=pad_id,
    )
    return LlamaForSequenceClassification(config)


@pytest.mark.parametrize("fmt", ["hf", "jsonl"])
def test_reward_trainer_runs_one_step_on_the_export(crowd, tmp_path, fmt):
    from datasets import load_dataset, load_from_disk
    from trl import RewardConfig, RewardTrainer

    torch.set_num_threads(1)
    with session_scope(crowd.url) as s:
        build_label_set(s, method="dawid-skene", temperature=0.2)
        export_label_set(s, fmt, tmp_path / "out")
    ds = (
        load_from_disk(str(tmp_path / "out"))
        if fmt == "hf"
        else load_dataset("json", data_files=str(tmp_path / "out"), split="train")
    )
    assert {"prompt", "chosen", "rejected", "weight"} <= set(ds.column_names)
    tokenizer = tiny_tokenizer([r[c] for r in ds for c in ("prompt", "chosen", "rejected")])
    model = tiny_reward_model(len(tokenizer), tokenizer.pad_token_id)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = RewardConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=1,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = RewardTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer)
    result = trainer.train()
    assert result.global_step == 1 and math.isfinite(result.training_loss)
    changed = [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert changed, "one optimiser step must move the weights"


def test_weighted_reward_trainer_honours_weight_and_soft_label(crowd, tmp_path):
    """Plain TRL drops `weight` and `soft_label`; WeightedRewardTrainer trains on both (w2s's BT loss)."""
    from datasets import load_dataset
    from trl import RewardConfig, RewardTrainer

    from w2s.training.losses import bradley_terry_loss
    from w2s.training.trl_reward import WeightedRewardTrainer

    torch.set_num_threads(1)
    with session_scope(crowd.url) as s:
        build_label_set(s, method="soft", temperature=0.2)
        export_label_set(s, "jsonl", tmp_path / "out.jsonl")
    ds = load_dataset("json", data_files=str(tmp_path / "out.jsonl"), split="train")
    assert len(set(ds["weight"])) > 1 and min(ds["soft_label"]) < 1.0  # the columns carry information
    tokenizer = tiny_tokenizer([r[c] for r in ds for c in ("prompt", "chosen", "rejected")])
    model = tiny_reward_model(len(tokenizer), tokenizer.pad_token_id)
    args = RewardConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=1,
        per_device_train_batch_size=8,
        learning_rate=1e-2,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    plain = RewardTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer)
    assert "weight" not in next(iter(plain.get_train_dataloader()))  # what TRL drops

    trainer = WeightedRewardTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer)
    batch = next(iter(trainer.get_train_dataloader()))
    assert {"weight", "soft_label"} <= set(batch)
    model.eval()
    with torch.no_grad():
        r_c, r_r = torch.chunk(
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1), 2
        )
        expected = bradley_terry_loss(r_c, r_r, batch["soft_label"], batch["weight"])
        got = trainer.compute_loss(model, dict(batch))
        hard = plain.compute_loss(
            model, {k: v for k, v in batch.items() if k not in ("weight", "soft_label")}
        )
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    assert abs(got.item() - hard.item()) > 1e-3
    model.train()
    result = trainer.train()
    assert result.global_step == 1 and math.isfinite(result.training_loss)
