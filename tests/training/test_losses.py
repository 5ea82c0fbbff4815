"""The losses against the papers' formulas, computed by hand."""

import math

import pytest
import torch

from w2s.training import losses as L

sig = lambda x: 1 / (1 + math.exp(-x))


def test_bradley_terry_is_minus_log_sigmoid_of_reward_gap():
    rc, rr = torch.tensor([2.0, 0.5]), torch.tensor([1.0, 1.5])
    # hard labels: mean(−log σ(1), −log σ(−1))
    want = (-math.log(sig(1.0)) - math.log(sig(-1.0))) / 2
    assert float(L.bradley_terry_loss(rc, rr, torch.ones(2))) == pytest.approx(want, rel=1e-6)
    # soft label 0.7 on pair 0: −0.7 log σ(1) − 0.3 log σ(−1)
    got = L.bradley_terry_loss(rc[:1], rr[:1], torch.tensor([0.7]))
    assert float(got) == pytest.approx(-0.7 * math.log(sig(1)) - 0.3 * math.log(sig(-1)), rel=1e-6)


def test_dpo_formula():
    # β[(−10 − −12) − (−11 − −10)] = 0.1·(2 + 1) = 0.3
    z = L.dpo_logits(
        torch.tensor([-10.0]), torch.tensor([-11.0]), torch.tensor([-12.0]), torch.tensor([-10.0]), beta=0.1
    )
    assert float(z) == pytest.approx(0.3)
    loss = L.dpo_loss(
        torch.tensor([-10.0]),
        torch.tensor([-11.0]),
        torch.tensor([-12.0]),
        torch.tensor([-10.0]),
        torch.ones(1),
    )
    assert float(loss) == pytest.approx(-math.log(sig(0.3)), rel=1e-6)


def test_simpo_formula():
    # avg log-probs −1.0 (chosen) and −1.5 (rejected): z = 2.0·0.5 − 1.0 = 0
    z = L.simpo_logits(torch.tensor([-1.0]), torch.tensor([-1.5]), beta=2.0, gamma=1.0)
    assert float(z) == pytest.approx(0.0)
    assert float(L.simpo_loss(torch.tensor([-1.0]), torch.tensor([-1.5]), torch.ones(1))) == pytest.approx(
        math.log(2), rel=1e-6
    )


def test_sft_is_mean_token_nll_weighted():
    lp = torch.tensor([[-1.0, -2.0, 0.0], [-3.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    # example NLLs 1.5 and 3.0; weights 1 and 0.5: (1.5 + 1.5) / 2 = 1.5
    assert float(L.sft_loss(lp, mask, torch.tensor([1.0, 0.5]))) == pytest.approx(1.5)


def test_weights_multiply_each_example():
    per = torch.tensor([1.0, 3.0])
    assert float(L.weighted_mean(per, torch.tensor([0.0, 1.0]))) == pytest.approx(1.5)  # (0·1 + 1·3) / 2


def test_aux_conf_coefficient_warms_smoothly_to_half():
    c = [L.aux_conf_coef(s, 100, 0.5, 0.2) for s in range(101)]
    assert c[0] == 0.0 and c[20] == pytest.approx(0.5) and c[100] == pytest.approx(0.5)
    assert c[10] == pytest.approx(0.25)  # half way through the half-cosine ramp
    assert all(b >= a for a, b in zip(c, c[1:]))


def test_aux_conf_target():
    weak = torch.tensor([0.8, 0.8])
    z = torch.tensor([-2.0, 3.0])  # strong predicts rejected, then chosen: hardened 0 and 1
    # (1 − 0.5)·0.8 + 0.5·0 = 0.4 ; 0.5·0.8 + 0.5·1 = 0.9
    assert L.aux_conf_target(weak, z, 0.5).tolist() == pytest.approx([0.4, 0.9])


def test_explicit_conflict_only_where_student_already_wrong():
    z = torch.tensor([1.0, -1.0])  # pair 0: student agrees with gold; pair 1: student disagrees
    gold = torch.ones(2)
    # only pair 1 counts, pushed to the wrong side: ℓ(−1, 0) = −log σ(1); mean over 2 pairs
    assert float(L.explicit_conflict_loss(z, gold)) == pytest.approx(-math.log(sig(1.0)) / 2, rel=1e-6)
