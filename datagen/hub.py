"""Publishing a dataset folder to the Hugging Face Hub and pulling one back, resumably and without leaking the token.

The token comes from `HF_TOKEN` or the saved login (`hf auth login`); the endpoint from `HF_ENDPOINT`, read
at call time so that a self-hosted Hub works. Publishing compares every local file with the remote one
(LFS sha256, or git blob id for small files) and uploads only what differs, in commits of bounded size:
an interrupted publish, re-run, sends only what is still missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
from huggingface_hub.utils import validate_repo_id as hf_validate_repo_id
from rich.progress import Progress

import datagen
from datagen.card import write_card
from datagen.errors import ConfigError, DatasetError, HubAuthError, HubError, HubNotFoundError, HubUnavailableError
from datagen.files import git_blob_id, sha256_file
from datagen.layout import DATA_DIR, TOP_LEVEL_FILES
from datagen.validate import LocalFile, validate_dataset

DEFAULT_ENDPOINT = "https://huggingface.co"
# One commit per ~512 MiB: small enough that an interruption loses little, large enough to keep commits few.
MAX_COMMIT_BYTES = 512 * 1024 * 1024
REDACTED = "<token>"
MAX_SERVER_MESSAGE = 300  # a proxy's HTML error page would otherwise flood the one-line error


@dataclass(frozen=True)
class PublishResult:
    """What `publish` did."""

    url: str
    uploaded: list[str]
    unchanged: list[str]
    deleted: list[str]
    commits: int


def hub_endpoint() -> str:
    """The Hub to talk to: `HF_ENDPOINT` when set (self-hosted Hubs), else huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def check_repo_id(repo_id: str) -> None:
    """Raise `ConfigError` unless `repo_id` looks like `org/name`."""
    try:
        hf_validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ConfigError(f"{repo_id!r} is not a valid Hub dataset id: {error}") from error
    if repo_id.count("/") != 1:
        raise ConfigError(f"{repo_id!r} is not a Hub dataset id; use ORG/NAME, e.g. my-org/chart-pairs")


def dataset_url(repo_id: str, revision: str | None) -> str:
    url = f"{hub_endpoint()}/datasets/{repo_id}"
    return f"{url}/tree/{revision}" if revision else url


def redact(text: str, token: str | None) -> str:
    return text.replace(token, REDACTED) if token else text


def status_of(error: BaseException) -> tuple[int | None, str, BaseException | None]:
    """`(HTTP status, server message, transport error)` found along the exception's cause chain."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, HfHubHTTPError) and seen.response is not None:
            server = seen.server_message or seen.response.headers.get("X-Error-Message") or ""
            return seen.response.status_code, server, None
        if isinstance(seen, httpx.TransportError):
            return None, "", seen
        seen = seen.__cause__ or seen.__context__
    return None, "", None


def translate(error: BaseException, *, action: str, repo_id: str, token: str | None) -> HubError | None:
    """The `datagen.errors` form of a `huggingface_hub`/`httpx` failure, or None when it is not a Hub failure."""
    status, server, transport = status_of(error)
    hub = hub_endpoint()
    server = " ".join(server.split())
    detail = f" (server said: {server[:MAX_SERVER_MESSAGE]})" if server else ""
    if transport is not None:
        message = (
            f"cannot reach the Hub at {hub} while {action} {repo_id}: {type(transport).__name__}: {transport}; "
            "check the network or HF_ENDPOINT, then re-run the same command to resume"
        )
        return HubUnavailableError(redact(message, token))
    if status is None:
        return None
    if status == 401:
        message = (
            f"the Hub at {hub} rejected the credentials (401) while {action} {repo_id}{detail}; "
            "set a valid HF_TOKEN or log in with `hf auth login`"
        )
        return HubAuthError(redact(message, token), status=status)
    if status == 403:
        message = (
            f"the token is not allowed to do this (403) while {action} {repo_id}{detail}; "
            f"use a token with write access to the '{repo_id.split('/')[0]}' namespace"
        )
        return HubAuthError(redact(message, token), status=status)
    if status == 404:
        message = (
            f"not found (404) while {action} {repo_id} at {hub}{detail}; check the dataset id and revision, "
            "and log in if the dataset is private"
        )
        return HubNotFoundError(redact(message, token), status=status)
    if status >= 500 or status in (408, 429):
        message = (
            f"the Hub at {hub} kept failing ({status}) while {action} {repo_id}{detail}; "
            "re-run the same command later to resume"
        )
        return HubUnavailableError(redact(message, token), status=status)
    return HubError(redact(f"the Hub at {hub} refused ({status}) {action} {repo_id}{detail}", token), status=status)


@contextmanager
def hub_errors(*, action: str, repo_id: str, token: str | None) -> Iterator[None]:
    """Turn Hub and network failures inside the block into `HubError`s whose messages never hold the token."""
    try:
        yield
    except Exception as error:
        translated = translate(error, action=action, repo_id=repo_id, token=token)
        if translated is None:
            raise
        raise translated from error


@contextmanager
def quiet_hub_progress_bars() -> Iterator[None]:
    """`huggingface_hub`'s own tqdm bars would tear the tool's rich progress display."""
    were_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not were_disabled:
            enable_progress_bars()


def require_token() -> str:
    token = get_token()
    if not token:
        raise HubAuthError("no Hugging Face token found; set HF_TOKEN or log in with `hf auth login`")
    return token


def is_on_remote(local: LocalFile, remote: RepoFile | None) -> bool:
    if remote is None or remote.size != local.size:
        return False
    if remote.lfs is not None:
        return remote.lfs.sha256 == sha256_file(local.absolute)
    return remote.blob_id == git_blob_id(local.absolute)


def commit_batches(files: list[LocalFile], max_bytes: int) -> list[list[LocalFile]]:
    """Shards first in batches of at most `max_bytes` (a larger file goes alone); card, preview and manifest last.

    The metadata commit comes last so that a dataset whose upload was cut short never shows a card or a
    manifest claiming shards that are not there yet.
    """
    data = [f for f in files if f.path not in TOP_LEVEL_FILES]
    batches: list[list[LocalFile]] = []
    current: list[LocalFile] = []
    for file in data:
        if current and sum(f.size for f in current) + file.size > max_bytes:
            batches.append(current)
            current = []
        current.append(file)
    if current:
        batches.append(current)
    metadata = [f for f in files if f.path in TOP_LEVEL_FILES]
    return batches + ([metadata] if metadata else [])


def remote_files(api: HfApi, repo_id: str, revision: str | None) -> dict[str, RepoFile]:
    entries = api.list_repo_tree(repo_id, repo_type="dataset", revision=revision, recursive=True)
    return {entry.path: entry for entry in entries if isinstance(entry, RepoFile)}


def open_repo(api: HfApi, repo_id: str, *, private: bool, revision: str | None) -> None:
    """Create the dataset repository (and branch) if missing; an existing one is reused as it is."""
    # `None` leaves the visibility to the namespace's default (and an existing repository's as it is).
    api.create_repo(repo_id, repo_type="dataset", private=True if private else None, exist_ok=True)
    if revision and revision != "main":
        api.create_branch(repo_id, repo_type="dataset", branch=revision, exist_ok=True)


def publish(
    dataset_dir: Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    message: str | None = None,
    max_commit_bytes: int = MAX_COMMIT_BYTES,
    progress: Progress | None = None,
) -> PublishResult:
    """Upload `dataset_dir` to the Hub dataset `repo_id`, sending only the files the remote lacks.

    The folder is validated first (manifest, checksums, schema, stray files), so a broken folder is refused
    before any upload. Shards on the remote under `data/` that the folder no longer has are deleted in the
    last commit, so that the published dataset is exactly the folder.

    Raises:
        ConfigError: a malformed dataset id or commit size.
        DatasetError: the folder is not ready to publish (with every reason).
        HubAuthError, HubNotFoundError, HubUnavailableError, HubError: the Hub refused or failed.
    """
    check_repo_id(repo_id)
    if max_commit_bytes < 1:
        raise ConfigError(f"max_commit_bytes must be positive, got {max_commit_bytes}")
    files = validate_dataset(dataset_dir)
    token = require_token()
    write_card(dataset_dir, repo_id=repo_id)  # the card's title and load example name the published id
    files = [LocalFile(f.path, f.absolute, f.absolute.stat().st_size) for f in files]
    api = HfApi(endpoint=hub_endpoint(), token=token)
    message = message or f"Upload {dataset_dir.resolve().name} with vision-zero {datagen.__version__}"
    with hub_errors(action="publishing", repo_id=repo_id, token=token), quiet_hub_progress_bars():
        open_repo(api, repo_id, private=private, revision=revision)
        remote = remote_files(api, repo_id, revision)
        todo = [file for file in files if not is_on_remote(file, remote.get(file.path))]
        local_paths = {file.path for file in files}
        stale = sorted(path for path in remote if path.startswith(f"{DATA_DIR}/") and path not in local_paths)
        batches = commit_batches(todo, max_commit_bytes) or ([[]] if stale else [])
        task = progress.add_task("publishing", total=sum(f.size for f in todo)) if progress else None
        for number, batch in enumerate(batches, start=1):
            operations: list = [CommitOperationAdd(f.path, str(f.absolute)) for f in batch]
            if number == len(batches):
                operations += [CommitOperationDelete(path) for path in stale]
            summary = message if len(batches) == 1 else f"{message} ({number}/{len(batches)})"
            api.create_commit(repo_id, operations, commit_message=summary, repo_type="dataset", revision=revision)
            if progress is not None:
                progress.advance(task, sum(f.size for f in batch))
    return PublishResult(
        url=dataset_url(repo_id, revision),
        uploaded=[f.path for f in todo],
        unchanged=[f.path for f in files if f not in todo],
        deleted=stale,
        commits=len(batches),
    )


def pull(repo_id: str, out: Path, *, revision: str | None = None) -> Path:
    """Download a snapshot of the Hub dataset `repo_id` into `out` and check it is an intact pair dataset.

    Re-running into the same folder downloads only files that changed (the client keeps its metadata in
    `out/.cache/huggingface`).

    Raises:
        ConfigError: a malformed id, or `out` is a non-empty folder that is not an earlier pull.
        DatasetError: the download is not a complete vision-zero dataset.
        HubAuthError, HubNotFoundError, HubUnavailableError, HubError: the Hub refused or failed.
    """
    check_repo_id(repo_id)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / ".cache" / "huggingface").is_dir():
        raise ConfigError(f"output folder {out} is not empty and is not an earlier pull; use a new folder")
    token = get_token()
    with hub_errors(action="pulling", repo_id=repo_id, token=token), quiet_hub_progress_bars():
        snapshot_download(
            repo_id, repo_type="dataset", revision=revision, local_dir=out, endpoint=hub_endpoint(), token=token
        )
    try:
        validate_dataset(out)
    except DatasetError as error:
        raise DatasetError(
            f"downloaded {repo_id} into {out}, but it is not an intact vzero dataset: {error}"
        ) from error
    return out
