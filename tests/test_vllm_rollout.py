"""The parts of the vLLM rollout backend that run without vLLM (vLLM itself is not installable here): the sampling
parameters that reproduce our distribution, and vLLM's outputs turned into the same `Completions` as the HF path.

vLLM's `RequestOutput`/`CompletionOutput`/`Logprob` are stood in for by plain objects with the documented fields
(`outputs`, `token_ids`, `text`, `logprobs`: one dict per token from token id to an object with `.logprob`)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from training_support import load_tiny, make_games, make_sampler

from datagen.errors import ConfigError
from training.config import GameConfig
from training.game import Transcript
from training.prompts import vote_messages
from training.recipe import load_recipe
from training.rollout import EncodedPrompts, SamplingConfig
from training.vllm_rollout import completions_from_outputs, sampling_params_kwargs

pytest_plugins = ["training_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")


def test_sampling_params_switch_off_everything_but_the_temperature_and_exclude_suppressed_ids():
    sampling = SamplingConfig(max_new_tokens=64, temperature=0.8, suppressed=(3, 7, 9))
    kwargs = sampling_params_kwargs(sampling, num_samples=8, vocab_size=12, eos_ids=[5], seed=11)
    assert kwargs["n"] == 8 and kwargs["temperature"] == 0.8 and kwargs["max_tokens"] == 64 and kwargs["seed"] == 11
    assert (kwargs["top_p"], kwargs["top_k"], kwargs["min_p"], kwargs["repetition_penalty"]) == (1.0, -1, 0.0, 1.0)
    assert (kwargs["presence_penalty"], kwargs["frequency_penalty"], kwargs["min_tokens"]) == (0.0, 0.0, 0)
    assert kwargs["allowed_token_ids"] == [0, 1, 2, 4, 5, 6, 8, 10, 11] and kwargs["stop_token_ids"] == [5]
    assert kwargs["logprobs"] == 0, "the sampled token's own log-prob"


def test_vllm_outputs_become_the_completions_the_hf_path_makes(tiny_model, chart_dataset):
    loaded = load_tiny(tiny_model)
    sampler = make_sampler(loaded, max_new_tokens=10, temperature=0.7)
    games = make_games(chart_dataset, 2, GameConfig(civilians=2, rounds=1))
    prompts = [vote_messages(game, game.civilian_seats[0], Transcript()) for game in games]
    torch.manual_seed(0)
    hf = sampler.sample(prompts, num_samples=3)
    # What vLLM would return for the same samples: token ids without padding, one log-prob dict per token.
    outputs = []
    for prompt in range(len(prompts)):
        samples = []
        for row in range(prompt * 3, prompt * 3 + 3):
            length = int(hf.completion_mask[row].sum())
            tokens = hf.completion_ids[row, :length].tolist()
            steps = [{token: SimpleNamespace(logprob=float(hf.old_logprobs[row, t]))} for t, token in enumerate(tokens)]
            samples.append(SimpleNamespace(token_ids=tokens, logprobs=steps, text=hf.texts[row]))
        outputs.append(SimpleNamespace(outputs=samples))
    got = completions_from_outputs(
        sampler.encode(prompts), outputs, num_samples=3, eos_ids=sampler.eos_ids, pad_id=sampler.pad_id
    )
    for name in ("prompt_ids", "prompt_mask", "mm_token_type_ids", "completion_ids", "completion_mask",
                 "old_logprobs", "truncated"):  # fmt: skip
        assert torch.equal(getattr(got, name), getattr(hf, name)), name
    assert got.texts == hf.texts and len(got.vision) == len(hf.vision)
    for ours, theirs in zip(got.vision, hf.vision, strict=True):
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[key], theirs[key]) for key in ours)
    with pytest.raises(ValueError, match="expected 3 samples per prompt"):
        completions_from_outputs(sampler.encode(prompts), outputs[:1] + [SimpleNamespace(outputs=[])],
                                 num_samples=3, eos_ids=sampler.eos_ids, pad_id=sampler.pad_id)  # fmt: skip


def test_the_vllm_backend_is_refused_clearly_where_it_cannot_run(tmp_path, chart_dataset, tiny_model):
    from training.trainer import SPOTrainer, TrainOptions

    recipe = load_recipe("tiny-cpu", ["rollout.backend=vllm", "max_steps=1"])
    trainer = SPOTrainer(
        TrainOptions(data=str(chart_dataset), model=str(tiny_model), out=tmp_path / "run", recipe=recipe)
    )
    with pytest.raises(ConfigError, match="needs a GPU and the vllm extra"):
        trainer.setup()
    trainer.cleanup()
    with pytest.raises(ConfigError, match="lora with rollout backend vllm"):
        load_recipe("tiny-cpu", ["rollout.backend=vllm", "lora.rank=4"])


def test_a_vllm_sample_cut_short_without_an_end_token_is_masked_to_its_own_length():
    """E.g. stopped by the engine's max_model_len: fewer tokens than the longest sample and no end-of-turn token."""
    eos, pad = 9, 0
    step = [{token: SimpleNamespace(logprob=-0.5)} for token in (4, 5, 6, eos)]
    full = SimpleNamespace(token_ids=[4, 5, 6, eos], logprobs=step, text="full")
    short = SimpleNamespace(token_ids=[4, 5], logprobs=step[:2], text="short")
    tokens = {"input_ids": torch.tensor([[1, 2]]), "attention_mask": torch.ones(1, 2, dtype=torch.long)}
    encoded = EncodedPrompts(tokens, [{}])
    got = completions_from_outputs(encoded, [SimpleNamespace(outputs=[full, short])], num_samples=2,
                                   eos_ids=[eos], pad_id=pad)  # fmt: skip
    assert got.completion_mask.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert got.completion_ids.tolist() == [[4, 5, 6, eos], [4, 5, pad, pad]]
    assert got.old_logprobs.tolist() == [[-0.5] * 4, [-0.5, -0.5, 0.0, 0.0]]
    assert got.truncated.tolist() == [False, True]
