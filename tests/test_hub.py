"""`vzero publish` / `vzero pull` against a local stand-in of the Hub, driven by the real `huggingface_hub` client."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import datasets
import pytest
from huggingface_hub import constants
from typer.testing import CliRunner

from cli import app
from datagen.errors import DatasetError, HubAuthError, HubNotFoundError, HubUnavailableError
from datagen.hub import publish, pull
from datagen.loading import load_pairs
from datagen.validate import validate_dataset

pytest_plugins = ["hub_server"]  # the `hub` fixture: a running stand-in Hub

REPO = "vzero-org/chart-pairs"
SMALL_COMMITS = 1  # bytes: every shard gets its own commit


@pytest.fixture
def dataset(chart_dataset, tmp_path) -> Path:
    """A private copy of the session's chart dataset (publish rewrites the card with the repo id)."""
    return Path(shutil.copytree(chart_dataset, tmp_path / "chart-pairs"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shard_names(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in (folder / "data").rglob("*.parquet"))


def files_mentioning(folder: Path, text: str) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file() and text.encode() in path.read_bytes()]


def test_published_files_load_back_with_datasets_and_equal_the_local_records(hub, dataset):
    result = publish(dataset, REPO, max_commit_bytes=SMALL_COMMITS)
    assert result.url == f"{hub.url}/datasets/{REPO}"
    assert result.commits == 3  # one per shard, then card, preview, manifest and report together
    stored = hub.stored_folder(REPO)
    assert shard_names(stored) == shard_names(dataset)
    assert sorted(hub.files(REPO)) == [
        "README.md",
        *shard_names(dataset),
        "manifest.json",
        "preview.png",
        "report.jsonl",
    ]
    for name in shard_names(dataset):
        assert sha256(stored / name) == sha256(dataset / name)
    assert f'load_dataset("{REPO}"' in (stored / "README.md").read_text()
    remote = datasets.load_dataset(str(stored), split="train")
    local = load_pairs(dataset)
    assert remote.features == local.features and len(remote) == 12
    for column in ("id", "description", "edits", "diff_boxes", "meta", "seed"):
        assert remote[column] == local[column]
    assert remote[5]["spy"].tobytes() == local[5]["spy"].tobytes()


def test_publishing_again_sends_nothing(hub, dataset):
    publish(dataset, REPO)
    puts, requests = len(hub.lfs_puts), len(hub.requests)
    again = publish(dataset, REPO)
    assert again.uploaded == [] and again.commits == 0 and len(again.unchanged) == 6
    assert len(hub.lfs_puts) == puts
    assert not any("/commit/" in request or "lfs" in request for request in hub.requests[requests:])


def test_an_interrupted_publish_completes_on_rerun_without_resending_finished_files(hub, dataset, caplog):
    hub.drop_lfs_puts_after = 1  # the second shard's upload loses its connection, on every retry
    with pytest.raises(HubUnavailableError, match="re-run the same command") as failure:
        publish(dataset, REPO, max_commit_bytes=SMALL_COMMITS)
    assert hub.token not in str(failure.value) and hub.token not in caplog.text
    first, second = shard_names(dataset)
    assert sorted(hub.files(REPO)) == [first]  # the first commit landed, nothing after it
    assert len(hub.lfs_puts) == 1

    hub.clear_faults()
    resumed = publish(dataset, REPO, max_commit_bytes=SMALL_COMMITS)
    assert first in resumed.unchanged and second in resumed.uploaded
    assert len(hub.lfs_puts) == len(set(hub.lfs_puts)) == 3  # shard 1 once, then shard 2 and the preview
    assert shard_names(hub.stored_folder(REPO)) == shard_names(dataset)
    validate_dataset(hub.stored_folder(REPO))


def test_pull_round_trips_a_published_branch(hub, dataset, tmp_path):
    publish(dataset, REPO, revision="v1")
    assert "v1" in hub.repos[REPO].branches and hub.files(REPO) == {}  # main untouched
    out = pull(REPO, tmp_path / "pulled", revision="v1")
    assert shard_names(out) == shard_names(dataset)
    for name in [*shard_names(dataset), "manifest.json", "preview.png"]:
        assert sha256(out / name) == sha256(dataset / name)
    assert load_pairs(out)["id"] == load_pairs(dataset)["id"]
    assert pull(REPO, out, revision="v1") == out  # re-running into the same folder is allowed
    assert files_mentioning(out, hub.token) == [] and files_mentioning(dataset, hub.token) == []


@pytest.mark.parametrize(
    ("fault", "status", "error", "wording"),
    [
        ("POST /api/repos/create", 403, HubAuthError, "not allowed .*403.*write access to the 'vzero-org'"),
        ("POST /api/datasets/.*/commit/", 500, HubUnavailableError, r"kept failing \(500\).*re-run"),
        ("GET /api/datasets/.*/tree/", 503, HubUnavailableError, r"kept failing \(503\)"),
    ],
)
def test_refusals_and_failures_become_clear_errors_without_the_token(
    hub, dataset, caplog, fault, status, error, wording
):
    hub.fail(fault, status, body=f"echo {status}")
    with caplog.at_level(logging.DEBUG), pytest.raises(error, match=wording) as raised:
        publish(dataset, REPO)
    assert raised.value.status == status
    assert hub.token not in str(raised.value) and hub.token not in caplog.text


def test_a_wrong_token_and_a_missing_dataset_are_named(hub, dataset, tmp_path, monkeypatch):
    with pytest.raises(HubNotFoundError, match=r"not found \(404\).*vzero-org/nothing-here"):
        pull("vzero-org/nothing-here", tmp_path / "none")
    monkeypatch.setenv("HF_TOKEN", "hf_wrongTOKENwrongTOKEN000")
    with pytest.raises(HubAuthError, match=r"rejected the credentials \(401\).*HF_TOKEN") as raised:
        publish(dataset, REPO)
    assert "hf_wrongTOKEN" not in str(raised.value)
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-saved-login"))
    with pytest.raises(HubAuthError, match="no Hugging Face token found"):
        publish(dataset, REPO)


def test_a_broken_folder_is_refused_with_its_reasons_before_any_request(hub, dataset):
    (dataset / "notes.txt").write_text("draft")
    shard = dataset / "data" / "train-00001-of-00002.parquet"
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(DatasetError) as refused:
        publish(dataset, REPO)
    message = str(refused.value)
    assert (
        "notes.txt is a stray file" in message and "train-00001-of-00002.parquet does not match the sha256" in message
    )
    assert hub.requests == []


def test_the_publish_command_prints_the_url_and_never_the_token(hub, dataset, tmp_path):
    runner = CliRunner()
    published = runner.invoke(app, ["publish", str(dataset), REPO, "--private", "--message", "first cut"])
    assert published.exit_code == 0, published.output
    assert f"{hub.url}/datasets/{REPO}" in published.output and hub.token not in published.output
    assert hub.repos[REPO].private
    pulled = runner.invoke(app, ["pull", REPO, str(tmp_path / "copy")])
    assert pulled.exit_code == 0, pulled.output
    assert hub.token not in pulled.output
    hub.fail("POST /api/repos/create", 403)
    refused = runner.invoke(app, ["publish", str(dataset), REPO])
    assert refused.exit_code == 1 and "403" in refused.output and hub.token not in refused.output
