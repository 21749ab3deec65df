"""The one sampling distribution, on the tiny real Qwen2.5-VL: recorded log-probs, the training forward and the
gradient of a step, each against an independent computation written out here."""

from __future__ import annotations

import copy

import pytest
import torch
from training_support import HOSTILE_GENERATION, load_tiny, make_games, make_sampler

from training.config import GameConfig, LossConfig
from training.game import Transcript
from training.prompts import clue_messages, vote_messages
from training.rollout import token_logprobs
from training.update import accumulate_gradients

pytest_plugins = ["training_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")
GAME = GameConfig(civilians=2, rounds=1)


def independent_logprobs(model, completions, temperature, suppressed):
    """log softmax(logits / T) of each completion token with suppressed ids removed, by a plain forward."""
    prompt_length = completions.prompt_ids.shape[1]
    mm_types = torch.cat([completions.mm_token_type_ids, torch.zeros_like(completions.completion_ids)], dim=1)
    logits = model(
        input_ids=torch.cat([completions.prompt_ids, completions.completion_ids], dim=1),
        attention_mask=torch.cat([completions.prompt_mask, completions.completion_mask], dim=1),
        mm_token_type_ids=mm_types,
        pixel_values=torch.cat([v["pixel_values"] for v in completions.vision]).to(next(model.parameters()).dtype),
        image_grid_thw=torch.cat([v["image_grid_thw"] for v in completions.vision]),
    ).logits[:, prompt_length - 1 : -1]
    allowed = torch.ones(logits.shape[-1], dtype=torch.bool)
    allowed[list(suppressed)] = False
    scaled = logits.double() / temperature
    scaled = scaled.masked_fill(~allowed, float("-inf"))
    picked = torch.log_softmax(scaled, dim=-1).gather(2, completions.completion_ids.unsqueeze(2)).squeeze(2)
    return picked * completions.completion_mask


def test_recorded_logprobs_are_the_tempered_models_whatever_generation_config_asks(hostile_tiny_model, chart_dataset):
    loaded = load_tiny(hostile_tiny_model)
    assert loaded.model.generation_config.repetition_penalty == HOSTILE_GENERATION["repetition_penalty"]
    sampler = make_sampler(loaded, max_new_tokens=20, temperature=0.7)
    games = make_games(chart_dataset, 3, GAME)
    torch.manual_seed(0)
    clues = sampler.sample([clue_messages(game, 1, 1, Transcript()) for game in games])
    votes = sampler.sample([vote_messages(game, game.civilian_seats[0], Transcript()) for game in games], num_samples=3)
    suppressed = sampler.sampling.suppressed
    for completions in (clues, votes):
        with torch.no_grad():
            expected = independent_logprobs(loaded.model, completions, 0.7, suppressed)
            forward = token_logprobs(loaded.model, completions, sampler.sampling)
        assert (completions.old_logprobs.double() - expected).abs().max() < 1e-5, "recorded during generate"
        assert (forward.double() - expected).abs().max() < 1e-5, "training forward"
        assert (expected * completions.completion_mask).sum() < 0
    # The hostile file's length limits are not ours either: max_new_tokens 3 and min_new_tokens 6 are ignored.
    assert max(clues.completion_lengths.max(), votes.completion_lengths.max()) > HOSTILE_GENERATION["max_new_tokens"]
    assert loaded.model.generation_config.top_k == HOSTILE_GENERATION["top_k"], "the model's own config is restored"


def sampled_chunks(tiny_model, chart_dataset, *, max_new_tokens):
    """Two chunks of real completions (3 clue turns; 2 voters x G = 2) with fixed advantages, and the sampler."""
    loaded = load_tiny(tiny_model)
    sampler = make_sampler(loaded, max_new_tokens=max_new_tokens, temperature=0.7)
    games = make_games(chart_dataset, 3, GAME)
    torch.manual_seed(1)
    clues = sampler.sample([clue_messages(game, 1, 1, Transcript()) for game in games])
    votes = sampler.sample(
        [vote_messages(game, game.civilian_seats[0], Transcript()) for game in games[:2]], num_samples=2
    )
    chunks = [(clues, torch.tensor([0.7, -1.3, 0.4])), (votes, torch.tensor([1.0, -1.0, 0.5, -0.5]))]
    return loaded.model, sampler, chunks


def perturbed_copy(model: torch.nn.Module) -> torch.nn.Module:
    reference = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype) * 0.02)
    return reference.requires_grad_(False)


def expected_gradients(policy, reference, chunks, sampling, aggregation, keep=None):
    """The loss of the whole step at once, by hand: per token -min(r A, clip(r) A) + 0.04 k3, then the mean per
    completion and over completions (`sequence`), or over all tokens (`token`); `keep` picks rows per chunk."""
    policy.zero_grad(set_to_none=True)
    per_completion, per_token = [], []
    for index, (completions, advantages) in enumerate(chunks):
        rows = range(len(completions)) if keep is None else keep[index]
        if not rows:
            continue
        batch = completions.select(list(rows))
        logp = independent_logprobs(policy, batch, sampling.temperature, sampling.suppressed)
        with torch.no_grad():
            ref = independent_logprobs(reference, batch, sampling.temperature, sampling.suppressed)
        for row, advantage in zip(range(len(batch)), advantages[list(rows)].tolist()):
            length = int(batch.completion_mask[row].sum())
            lp, old, rf = logp[row, :length], batch.old_logprobs[row, :length].double(), ref[row, :length]
            ratio = torch.exp(lp - old)
            pg = -torch.minimum(ratio * advantage, ratio.clamp(0.8, 1.2) * advantage)
            kl = torch.exp(rf - lp) - (rf - lp) - 1
            terms = pg + 0.04 * kl
            per_completion.append(terms.mean())
            per_token.extend(terms)
    loss = torch.stack(per_completion).mean() if aggregation == "sequence" else torch.stack(per_token).mean()
    loss.backward()
    return {name: p.grad.clone() for name, p in policy.named_parameters() if p.grad is not None}


def accumulated(policy, reference, chunks, sampling, config, micro_batch_size):
    policy.zero_grad(set_to_none=True)
    totals = accumulate_gradients(
        lambda batch: token_logprobs(policy, batch, sampling),
        lambda batch: token_logprobs(reference, batch, sampling),
        chunks,
        loss_config=config,
        micro_batch_size=micro_batch_size,
        backward=lambda loss, last: loss.backward(),
    )
    return totals, {name: p.grad.clone() for name, p in policy.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("aggregation", ["sequence", "token"])
def test_micro_batches_give_the_gradient_of_the_whole_step(tiny_model, chart_dataset, aggregation):
    model, sampler, chunks = sampled_chunks(tiny_model, chart_dataset, max_new_tokens=14)
    policy = model.double()  # float64, so that only the algebra (not rounding) can tell the two apart
    reference = perturbed_copy(policy)
    expected = expected_gradients(policy, reference, chunks, sampler.sampling, aggregation)
    config = LossConfig(aggregation=aggregation)
    for size in (1, 2, 100):
        totals, got = accumulated(policy, reference, chunks, sampler.sampling, config, size)
        assert got.keys() == expected.keys()
        worst = max(float((got[name] - expected[name]).abs().max()) for name in expected)
        assert worst < 1e-6, f"micro-batch size {size}: gradients differ by {worst}"
        assert totals.trained_completions == 7 and totals.excluded_truncated == 0
    assert max(float(g.abs().max()) for g in expected.values()) > 1e-3, "a gradient that says something"


def test_truncated_completions_are_flagged_and_can_be_left_out_of_the_loss(tiny_model, chart_dataset):
    model, sampler, chunks = sampled_chunks(tiny_model, chart_dataset, max_new_tokens=9)
    eos = set(sampler.eos_ids)
    keep = []
    for completions, _ in chunks:
        ended = [any(token in eos for token in row) for row in completions.completion_ids.tolist()]
        assert completions.truncated.tolist() == [not flag for flag in ended]
        for row in range(len(completions)):
            if completions.truncated[row]:
                assert completions.completion_mask[row].sum() == completions.completion_ids.shape[1] == 9
        keep.append([row for row, flag in enumerate(ended) if flag])
    kept = sum(len(rows) for rows in keep)
    assert 0 < kept < 7, f"the sample should mix ended and cut-off completions, got {kept} of 7 ended"

    policy = model.double()
    reference = perturbed_copy(policy)
    expected = expected_gradients(policy, reference, chunks, sampler.sampling, "sequence", keep=keep)
    totals, got = accumulated(policy, reference, chunks, sampler.sampling, LossConfig(exclude_truncated=True), 2)
    assert (totals.trained_completions, totals.excluded_truncated) == (kept, 7 - kept)
    assert max(float((got[name] - expected[name]).abs().max()) for name in expected) < 1e-6
    _, trained = accumulated(policy, reference, chunks, sampler.sampling, LossConfig(), 2)
    assert max(float((trained[name] - expected[name]).abs().max()) for name in expected) > 1e-4, "by default all train"


def rows_of_each_generate_call(model: torch.nn.Module) -> list[int]:
    """A list that `model.generate` appends each call's number of rows to (the model's own `generate` still runs)."""
    rows: list[int] = []
    generate = model.generate

    def counting_generate(*args, **kwargs):
        rows.append(kwargs["input_ids"].shape[0])
        return generate(*args, **kwargs)

    model.generate = counting_generate
    return rows


def test_a_row_cap_splits_a_turn_into_calls_of_whole_prompts(tiny_model, chart_dataset):
    loaded = load_tiny(tiny_model)
    sampler = make_sampler(loaded, max_new_tokens=12, temperature=0.7)
    sampler.max_rows_per_call = 5  # 2 prompts x G = 2 fit, a third would not
    calls = rows_of_each_generate_call(loaded.model)
    games = make_games(chart_dataset, 3, GAME)
    prompts = [vote_messages(game, game.civilian_seats[0], Transcript()) for game in games]
    torch.manual_seed(2)
    completions = sampler.sample(prompts, num_samples=2)
    assert calls == [4, 2] and len(completions) == 6 and len(completions.texts) == 6
    for row in range(6):  # row r holds a sample of prompt r // 2, whatever call made it
        alone = sampler.encode([prompts[row // 2]]).tokens["input_ids"][0]
        assert completions.prompt_ids[row][completions.prompt_mask[row].bool()].tolist() == alone.tolist()
    with torch.no_grad():
        forward = token_logprobs(loaded.model, completions, sampler.sampling)
    assert (forward - completions.old_logprobs).abs().max() < 1e-5
    assert [len(vision["image_grid_thw"]) for vision in completions.vision] == [1] * 6


def test_rows_that_have_ended_leave_the_batch_and_the_rest_keep_their_distribution(tiny_model, chart_dataset):
    loaded = load_tiny(tiny_model)
    sampler = make_sampler(loaded, max_new_tokens=30, temperature=0.7)
    sampler.prune_every = 5
    rows_per_call = rows_of_each_generate_call(loaded.model)
    games = make_games(chart_dataset, 3, GAME)
    torch.manual_seed(5)
    clues = [clue_messages(game, 1, 1, Transcript()) for game in games]
    votes = [vote_messages(game, game.civilian_seats[0], Transcript()) for game in games]
    calls = []
    for prompts, samples in ((clues, 1), (votes, 3)):
        rows_per_call.clear()
        completions = sampler.sample(prompts, num_samples=samples)
        lengths = completions.completion_lengths.tolist()
        assert len(completions) == 3 * samples and len(rows_per_call) <= 6
        # A call holds exactly the rows still going: those longer than the tokens made before it.
        assert rows_per_call == [sum(length > 5 * call for length in lengths) for call in range(len(rows_per_call))]
        calls.append(list(rows_per_call))
        with torch.no_grad():
            forward = token_logprobs(loaded.model, completions, sampler.sampling)
        assert (forward - completions.old_logprobs).abs().max() < 1e-5
        eos = set(sampler.eos_ids)
        for row, length in enumerate(lengths):
            ids = completions.completion_ids[row, :length].tolist()
            assert (ids[-1] in eos) != bool(completions.truncated[row]) and not eos & set(ids[:-1])
            assert completions.truncated[row] == (length == 30 and ids[-1] not in eos)
    assert any(rows[-1] < rows[0] for rows in calls), f"some rows ended early and left the batch: {calls}"
