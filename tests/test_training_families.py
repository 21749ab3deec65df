"""Every model family on its tiny real architecture: loading without torchvision, what is never sampled, the shared
prefill, recorded log-probs equal to the training forward; the generic path for a family without an entry; and
bad models refused before any work."""

from __future__ import annotations

import functools
import json
import shutil

import pytest
import torch
from training_support import TINY_PIXELS, load_tiny, make_games, make_sampler
from typer.testing import CliRunner

from cli import app
from training.config import GameConfig
from training.families import FAMILIES, GENERIC, QWEN_SUPPRESSED, Prefill, family_of
from training.game import Transcript
from training.model import processor_tokens
from training.prompts import clue_messages, vote_messages
from training.rollout import token_logprobs
from training.tiny_configs import TINY_SPECS

pytest_plugins = ["training_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
GAME = GameConfig(civilians=2, rounds=1)
FAMILY_NAMES = ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "internvl"]


def counted_forwards(model):
    """Record the batch size and length of every forward of `model` (generate's prefill and steps included)."""
    calls = []
    original = model.forward

    @functools.wraps(original)  # generate reads the forward's signature
    def forward(*args, **kwargs):
        calls.append(tuple(kwargs["input_ids"].shape))
        return original(*args, **kwargs)

    model.forward = forward
    return calls


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_each_family_samples_and_its_recorded_logprobs_equal_the_training_forward(family, tiny_family, chart_dataset):
    loaded = load_tiny(tiny_family(family))
    model, processor = loaded.model, loaded.processor
    assert model.config.model_type == family and family_of(model.config).name == family
    assert type(processor).__name__ == f"ImageOnly{TINY_SPECS[family].processor_class}", "no torchvision here"
    if family == "internvl":
        assert processor.image_processor.max_patches == TINY_PIXELS // 56**2, "max_pixels as a number of tiles"
    else:
        assert processor.image_processor.size["longest_edge"] == TINY_PIXELS

    sampler = make_sampler(loaded, max_new_tokens=16)
    tokenizer = processor.tokenizer
    suppressed = set(sampler.sampling.suppressed)
    own = {
        tokenizer.convert_tokens_to_ids(token)
        for token in [*processor_tokens(processor), *FAMILIES[family].suppressed_tokens]
    }
    vocab_rows = model.get_output_embeddings().weight.shape[0]
    assert own <= suppressed and set(range(len(tokenizer), vocab_rows)) <= suppressed
    assert tokenizer.convert_tokens_to_ids(processor.image_token) in suppressed
    assert tokenizer.eos_token_id not in suppressed

    games = make_games(chart_dataset, 2, GAME)
    torch.manual_seed(0)
    clues = sampler.sample([clue_messages(game, 1, 1, Transcript()) for game in games])
    calls = counted_forwards(model)
    votes = sampler.sample([vote_messages(game, game.civilian_seats[0], Transcript()) for game in games], num_samples=3)
    del model.forward
    assert calls[0][0] == 2, "one prefill per prompt, shared by its 3 samples"
    assert calls[1] == (6, 1), "then the 6 samples go on from the repeated cache, fed only the prompt's last token"
    for completions in (clues, votes):
        with torch.no_grad():
            forward = token_logprobs(model, completions, sampler.sampling)
        # float32: a cached decode step and a full forward round differently, by about 1e-5 at most
        assert (forward - completions.old_logprobs).abs().max() < 3e-5
        assert (completions.old_logprobs * completions.completion_mask).sum() < 0
        assert (completions.mm_token_type_ids is not None) == (family != "internvl")
    subset = votes.select([5, 0])
    with torch.no_grad():
        assert (token_logprobs(model, subset, sampler.sampling) - subset.old_logprobs).abs().max() < 3e-5


def test_a_family_without_an_entry_trains_through_the_generic_path(tiny_model, chart_dataset, monkeypatch):
    monkeypatch.delitem(FAMILIES, "qwen2_5_vl")
    loaded = load_tiny(tiny_model)
    assert family_of(loaded.model.config) is GENERIC
    sampler = make_sampler(loaded, max_new_tokens=16)
    tokenizer = loaded.processor.tokenizer
    suppressed = set(sampler.sampling.suppressed)
    assert {tokenizer.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>")} <= suppressed
    assert tokenizer.convert_tokens_to_ids("<|box_start|>") not in suppressed, "only the table knows Qwen's others"
    assert sampler.with_mm_token_type_ids, "found in the forward's signature"
    games = make_games(chart_dataset, 2, GAME)
    calls = counted_forwards(loaded.model)
    torch.manual_seed(1)
    votes = sampler.sample([vote_messages(game, game.civilian_seats[0], Transcript()) for game in games], num_samples=2)
    del loaded.model.forward
    assert calls[0][0] == 4, "no shared prefill: every sample prefills its own copy of its prompt"
    with torch.no_grad():
        forward = token_logprobs(loaded.model, votes, sampler.sampling)
    assert (forward - votes.old_logprobs).abs().max() < 1e-5


def test_the_table_covers_the_papers_families_and_qwen_needs_its_mrope_inputs():
    assert {name: FAMILIES[name].prefill for name in FAMILY_NAMES} == {
        "qwen2_vl": Prefill.ROPE_DELTAS,
        "qwen2_5_vl": Prefill.ROPE_DELTAS,
        "qwen3_vl": Prefill.ROPE_DELTAS,
        "internvl": Prefill.PLAIN,
    }
    assert "<|image_pad|>" in QWEN_SUPPRESSED and "<IMG_CONTEXT>" in FAMILIES["internvl"].suppressed_tokens


def _model_copy(source, target, *, config=None, drop_template=False):
    shutil.copytree(source, target)
    if config is not None:
        (target / "config.json").write_text(json.dumps(config))
    if drop_template:
        (target / "chat_template.jinja").unlink()
        tokenizer_config = json.loads((target / "tokenizer_config.json").read_text())
        tokenizer_config.pop("chat_template", None)
        (target / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return target


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("text-only-model", "model type 'llama' is not a vision-language model"),
        ("no-chat-template", "has no chat template"),
    ],
)
def test_a_model_that_cannot_play_is_refused_before_any_work(case, message, tmp_path, tiny_model, chart_dataset):
    if case == "text-only-model":
        model = _model_copy(tiny_model, tmp_path / "llama", config={"model_type": "llama", "hidden_size": 64})
    else:
        model = _model_copy(tiny_model, tmp_path / "bare", drop_template=True)
    out = tmp_path / "run"
    train = runner.invoke(app, ["train", "--data", str(chart_dataset), "--model", str(model), "--out", str(out),
                                "--recipe", "tiny-cpu"])  # fmt: skip
    evaluate = runner.invoke(app, ["eval", "--model", str(model), "--data", str(chart_dataset), "--out", str(out)])
    for result in (train, evaluate):
        assert result.exit_code == 1 and message in " ".join(result.output.split()), result.output
    assert not out.exists()


def test_an_unknown_tiny_family_or_a_used_folder_is_refused(tmp_path):
    result = runner.invoke(app, ["make-tiny-model", str(tmp_path / "m"), "--family", "llava"])
    assert result.exit_code == 1 and "tiny models exist for qwen2_vl, qwen2_5_vl, qwen3_vl, internvl" in result.output
    assert not (tmp_path / "m").exists()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "processor_config.json").write_text("{}")
    result = runner.invoke(app, ["make-tiny-model", str(tmp_path / "old")])
    assert result.exit_code == 1 and "exists and is not an empty folder" in result.output
    assert [p.name for p in (tmp_path / "old").iterdir()] == ["processor_config.json"]
