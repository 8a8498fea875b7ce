import pytest
import torch

from engines.base import SamplingParams
from engines.sampling import sample_next_tokens


def _sample(logits, temperature=1.0, top_k=0, top_p=1.0, presence=0.0, seen=None, u=0.5):  # type: ignore[no-untyped-def]
    rows = logits.shape[0]
    return sample_next_tokens(
        logits,
        temperature=torch.full((rows,), temperature),
        top_k=torch.full((rows,), top_k, dtype=torch.long),
        top_p=torch.full((rows,), top_p),
        presence_penalty=torch.full((rows,), presence),
        seen=seen if seen is not None else torch.zeros_like(logits, dtype=torch.bool),
        uniforms=torch.full((rows,), u),
    )


def test_zero_temperature_is_greedy() -> None:
    logits = torch.tensor([[0.1, 3.0, 2.9], [5.0, 0.0, 0.0]])
    assert _sample(logits, temperature=0.0, u=0.99).tolist() == [1, 0]


def test_top_k_one_always_picks_the_best_token() -> None:
    logits = torch.tensor([[1.0, 1.1, 0.9, 1.05]])
    for u in (0.0, 0.3, 0.7, 0.999):
        assert _sample(logits, top_k=1, u=u).tolist() == [1]


def test_top_p_keeps_only_the_nucleus() -> None:
    # Probabilities ~ [0.7, 0.2, 0.1]: top_p 0.6 keeps only the first.
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]]))
    assert {int(_sample(logits, top_p=0.6, u=u)) for u in (0.0, 0.5, 0.99)} == {0}
    assert {int(_sample(logits, top_p=0.85, u=u)) for u in (0.0, 0.99)} == {0, 1}


def test_presence_penalty_steers_away_from_seen_tokens() -> None:
    logits = torch.tensor([[2.0, 1.9]])
    seen = torch.tensor([[True, False]])
    assert _sample(logits, temperature=0.0, presence=0.0, seen=seen).tolist() == [0]
    assert _sample(logits, temperature=0.0, presence=0.5, seen=seen).tolist() == [1]


def test_sampling_follows_the_distribution() -> None:
    logits = torch.log(torch.tensor([[0.25, 0.75]]))
    picks = [int(_sample(logits, u=u)) for u in torch.linspace(0.001, 0.999, 400).tolist()]
    assert 0.7 < sum(picks) / len(picks) < 0.8


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"temperature": 3}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": "hot"}, "number"),
        ({"stop": [1]}, "stop"),
        ({"bogus": 1}, "unknown"),
    ],
)
def test_bad_sampling_parameters_are_refused_with_a_reason(bad, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        SamplingParams.from_dict(bad)
