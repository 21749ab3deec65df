"""Models in, evidence out, per family: train 2 steps, `vzero export-model`, reload as evaluators do, and `vzero eval`
of the starting model against the checkpoint on the same held-out games of all three domains."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from training_support import gathered_training_state
from typer.testing import CliRunner

from cli import app
from training.model import load_processor
from training.processor_files import list_processor_files

pytest_plugins = ["training_fixtures", "three_domains"]
pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
STOCK_PIXELS = {"qwen2_vl": 12845056, "qwen2_5_vl": 12845056, "qwen3_vl": 16777216}
GAME_SIZE = [
    "--set",
    "rollout.games_per_step=2",
    "--set",
    "rollout.num_samples=2",
    "--set",
    "rollout.max_new_tokens=12",
]


def words(output: str) -> str:
    return " ".join(output.split())


@pytest.mark.parametrize("family", ["qwen2_5_vl", "internvl", "qwen2_vl", "qwen3_vl"])
def test_train_export_reload_and_evaluate_side_by_side(family, tiny_family, three_domains, tmp_path):
    from transformers import AutoModelForImageTextToText

    base = tiny_family(family)
    run = tmp_path / "run"
    trained = runner.invoke(app, ["train", "--data", str(three_domains), "--model", str(base), "--out", str(run),
                                  "--recipe", "tiny-cpu", "--max-steps", "2", *GAME_SIZE])  # fmt: skip
    assert trained.exit_code == 0, trained.output

    out = tmp_path / f"tiny-{family}-step2"  # "qwen2_5_vl" holds VLMEvalKit's "2_5": its Qwen2.5-VL classes
    exported = runner.invoke(app, ["export-model", str(run), str(out)])
    assert exported.exit_code == 0, exported.output
    printed = words(exported.output)
    lmms = {"qwen2_vl": "qwen2_vl", "qwen2_5_vl": "qwen2_5_vl", "qwen3_vl": "qwen3_vl", "internvl": "internvl_hf"}
    assert f"python -m lmms_eval --model {lmms[family]} --model_args pretrained={out.resolve()}" in printed
    if family == "internvl":
        assert "python run.py" not in printed and "InternVLChat needs OpenGVLab's remote-code" in printed
    else:
        vlmevalkit_class = "Qwen3VLChat" if family == "qwen3_vl" else "Qwen2VLChat"
        assert f'"class": "{vlmevalkit_class}", "model_path": "{out.resolve()}"' in printed
        assert f"python run.py --config {out.name}-vlmevalkit.json" in printed

    # The processor, tokenizer and chat template are the starting model's files, byte for byte.
    files = list_processor_files(base)
    assert files == list_processor_files(out) and "tokenizer_config.json" in files
    assert all((out / name).read_bytes() == (base / name).read_bytes() for name in files)
    assert not (out / "training_state").exists() and json.loads((out / "vision_zero.json").read_text())["step"] == 2
    # bf16 weights, declared so; the class the config names is the one AutoModelForImageTextToText loads.
    config = json.loads((out / "config.json").read_text())
    assert config["dtype"] == "bfloat16"
    assert {tensor.dtype for tensor in load_file(out / "model.safetensors").values()} == {torch.bfloat16}
    model = AutoModelForImageTextToText.from_pretrained(out, dtype="auto")
    assert type(model).__name__ == config["architectures"][0] and model.dtype == torch.bfloat16
    master = gathered_training_state(run / "checkpoints" / "step-000002")["model"]
    loaded = model.state_dict()
    assert loaded.keys() == master.keys() and {tensor.dtype for tensor in master.values()} == {torch.float32}
    assert all(torch.equal(loaded[k], master[k].to(torch.bfloat16)) for k in master), "the trained weights, rounded"
    # Loaded as an evaluator would (no max_pixels of training): the starting model's resolution.
    processor = load_processor(out)
    if family == "internvl":
        assert processor.image_processor.max_patches == 12
    else:
        assert processor.image_processor.size["longest_edge"] == STOCK_PIXELS[family]

    report = tmp_path / "eval"
    evaluated = runner.invoke(app, ["eval", "--model", str(base), "--model", str(out), "--data", str(three_domains),
                                    "--games", "4", "--seed", "3", "--recipe", "tiny-cpu", "--out", str(report),
                                    *GAME_SIZE])  # fmt: skip
    assert evaluated.exit_code == 0, evaluated.output
    result = json.loads((report / "eval.json").read_text())
    assert result["models"] == [base.name, out.name] and result["games"] == 4
    games = result["per_game"]
    assert [g["pair_id"] for g in games[:4]] == [g["pair_id"] for g in games[4:]], "the same games for both"
    for label in result["models"]:
        mine = [g for g in games if g["model"] == label]
        accuracy = result["metrics"]["all"][label]["accuracy"]
        assert accuracy["value"] == sum(g["identified"] for g in mine) / 4 and accuracy["n"] == 4
        assert accuracy["low"] <= accuracy["value"] <= accuracy["high"]
        na = result["metrics"]["all"][label]["na_rate"]["value"]
        assert na == sum(g["na_votes"] for g in mine) / sum(g["votes"] for g in mine)
        assert {q["kind"] for q in result["per_question"] if q["model"] == label} >= {"which_image", "grounding"}
    difference = result["differences"]["all"]["valid_vote_rate"]
    values = [result["metrics"]["all"][label]["valid_vote_rate"]["value"] for label in result["models"]]
    assert difference["value"] == pytest.approx(values[1] - values[0])
    table = (report / "eval.md").read_text()
    assert f"| group | metric | {base.name} | {out.name} | {out.name} − {base.name} |" in table
    assert any(line.startswith("| domain=") for line in table.splitlines())
    for text in (table, (report / "eval.json").read_text(), (out / "vision_zero.json").read_text()):
        assert str(tmp_path) not in text, "no path of this machine in an output file"


@pytest.fixture(scope="module")
def one_step_run(tmp_path_factory, tiny_model, chart_dataset):
    """A 1-step run of the tiny Qwen2.5-VL (checkpoint step-000001)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("one") / "run"
    result = runner.invoke(app, ["train", "--data", str(chart_dataset), "--model", str(tiny_model), "--out", str(run),
                                 "--recipe", "tiny-cpu", "--max-steps", "1", *GAME_SIZE])  # fmt: skip
    torch.set_num_threads(previous)
    assert result.exit_code == 0, result.output
    return run


def test_a_checkpoint_resolves_its_processor_parts_as_the_starting_model_does(one_step_run, tiny_model):
    """`AutoProcessor` failed on checkpoints with "Can't load video processor": their saved processor config had no
    video part. A checkpoint now resolves its video processor's settings exactly as its starting model does."""
    from transformers.video_processing_utils import BaseVideoProcessor

    checkpoint = one_step_run / "checkpoints" / "step-000001"
    video, _ = BaseVideoProcessor.get_video_processor_dict(str(checkpoint))
    assert video == BaseVideoProcessor.get_video_processor_dict(str(tiny_model))[0]
    assert video["size"]["longest_edge"] == 12845056, "the stock resolution, not training's max_pixels"
    assert "ImageOnly" not in (checkpoint / "tokenizer_config.json").read_text()


def test_auto_processor_loads_a_checkpoint_where_torchvision_exists(one_step_run, tiny_model):
    pytest.importorskip("torchvision", reason="AutoProcessor needs torchvision for Qwen-VL's video processor")
    from transformers import AutoProcessor

    checkpoint = AutoProcessor.from_pretrained(one_step_run / "checkpoints" / "step-000001")
    base = AutoProcessor.from_pretrained(tiny_model)
    assert type(checkpoint) is type(base) and checkpoint.to_dict() == base.to_dict()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not-a-run", "is not a run folder written by `vzero train`"),
        ("no-such-step", "--step 7: "),
        ("name-without-2.5", "its path contains '2.5' or '2_5' or 'qwen25'"),
        ("out-not-empty", "exists and is not an empty folder"),
        ("no-chat-template", "has no chat template"),
    ],
)
def test_export_refuses_bad_input_before_writing_anything(case, message, one_step_run, tmp_path):
    import shutil

    run, out, extra = one_step_run, tmp_path / "tiny-qwen25-export", []
    if case == "not-a-run":
        run = tmp_path
    elif case == "no-such-step":
        extra = ["--step", "7"]
    elif case == "name-without-2.5":
        out = tmp_path / "tiny-export"
    elif case == "out-not-empty":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    else:
        run = tmp_path / "run"
        shutil.copytree(one_step_run, run)
        (run / "checkpoints" / "step-000001" / "chat_template.jinja").unlink()
    result = runner.invoke(app, ["export-model", str(run), str(out), *extra])
    assert result.exit_code == 1 and message in words(result.output), result.output
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(out.name)) == (
        [out.name] if case == "out-not-empty" else []
    )
    if case == "no-such-step":
        assert "(it has [1])" in words(result.output)


def test_vlmevalkit_path_rule_for_qwen2_vl_and_qwen2_5_vl(tmp_path):
    from training.export import path_problem

    assert path_problem(tmp_path / "runs" / "my-QWEN25-step9", "qwen2_5_vl") is None
    assert "'2.5'" in path_problem(tmp_path / "runs" / "my-step9", "qwen2_5_vl")
    assert path_problem(tmp_path / "qwen2-vl-step9", "qwen2_vl") is None
    assert "['2.5']" in path_problem(tmp_path / "qwen2.5-runs" / "qwen2-vl-step9", "qwen2_vl")
    assert path_problem(tmp_path / "qwen3-vl-omni", "qwen3_vl") is not None
    assert path_problem(tmp_path / "anything", "internvl") is None
