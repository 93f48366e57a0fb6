"""The twins of tests/twins/ on their own: each holds exactly its reference count of parameters
(torchvision's or the original's published figure where there is one), whether or not its zoo
spec exists yet; and the behaviour each twin is about (causality, padding, sharing, noise) holds."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

TWINS = sorted(p.stem for p in (Path(__file__).resolve().parent / "twins").glob("*.py") if not p.stem.startswith("_"))


def _twin(stem: str):
    return importlib.import_module(f"twins.{stem}")


@pytest.mark.parametrize("stem", TWINS)
def test_twin_has_its_reference_count(stem):
    twin = _twin(stem)
    with torch.device("meta"):  # counting needs no memory for the weights
        module = twin.build()
    assert sum(p.numel() for p in module.parameters()) == twin.REFERENCE


def test_gpt2_attends_only_to_earlier_positions_and_ties_its_head():
    gpt2 = _twin("gpt2_small").GPT2(vocab=50, context=16, dim=16, heads=2, layers=2).eval()
    assert gpt2.lm_head.weight is gpt2.wte.weight
    tokens = torch.randint(0, 50, (2, 6))
    changed = tokens.clone()
    changed[:, -1] = (tokens[:, -1] + 1) % 50
    with torch.no_grad():
        a, b = gpt2(tokens), gpt2(changed)
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(a[:, -1], b[:, -1])


def test_bert_ignores_padded_positions():
    bert = _twin("bert_base").Bert(dim=16, heads=2, hidden=32, layers=2).eval()
    tokens, padding = _twin("bert_base").inputs(2, length=6)
    changed = tokens.clone()
    changed[0, -3:] = (tokens[0, -3:] + 1) % 30522  # only padded positions of sample 0
    with torch.no_grad():
        (_, pooled_a), (_, pooled_b) = bert(tokens, padding), bert(changed, padding)
    torch.testing.assert_close(pooled_a, pooled_b)


def test_siamese_applies_one_tower_to_both_inputs():
    siamese = _twin("siamese").build().eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        ea, eb, similarity = siamese(x, x)
    torch.testing.assert_close(ea, eb)
    torch.testing.assert_close(similarity, torch.ones(2))


def test_vae_noise_follows_the_seed():
    vae = _twin("vae").build().eval()
    x = torch.rand(2, 784)
    outs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        with torch.no_grad():
            outs.append(vae(x))
    torch.testing.assert_close(outs[0], outs[1])
    assert not torch.allclose(outs[0][0], outs[2][0])
    torch.testing.assert_close(outs[0][1:], outs[2][1:])  # mu and logvar do not depend on the noise


def test_swin_shift_mask_separates_regions():
    swin = _twin("swin_t")
    mask = swin.shift_mask(14, 14, 7, 3)
    assert mask.shape == (4, 49, 49)
    assert not mask[0].any()  # the top-left window holds one region only
    assert mask[3].ne(0).any() and torch.equal(mask, mask.transpose(1, 2))
    index = swin.relative_position_index(7)
    assert index.shape == (49, 49) and index.min() == 0 and index.max() == 168 and index[0, 0] == 84
