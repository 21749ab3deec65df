"""A local stand-in for the Hugging Face Hub: the HTTP subset `huggingface_hub` uses to publish and pull a dataset.

It speaks the real wire protocol (repo creation, pre-upload, the LFS batch API and PUTs, NDJSON commits,
tree listings, repo info and `resolve` downloads), so tests drive the real client against it. Every
branch's files are also written under `root/<org>/<name>/<branch>/` so tests can load what was stored.
Faults are injected on demand: fixed status answers for matching requests, or connections dropped
mid-upload.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import socket
import threading
import types
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pytest
import yaml
from huggingface_hub import constants
from huggingface_hub.utils import _http

LFS_SUFFIXES = (".parquet", ".png", ".jpg", ".jpeg", ".arrow")
TOKEN = "hf_vzeroTESTtoken0123456789abcdef"


@dataclass
class StoredFile:
    """One file of a branch: its bytes live in the server's store under `key`."""

    size: int
    git_oid: str
    sha256: str | None  # set for LFS files


@dataclass
class Repo:
    private: bool
    branches: dict[str, dict[str, StoredFile]] = field(default_factory=lambda: {"main": {}})
    heads: dict[str, str] = field(default_factory=lambda: {"main": "0" * 40})
    commits: int = 0


@dataclass
class Fault:
    """Answer requests whose `METHOD path` matches `pattern` with `status`, `times` times (-1: always)."""

    pattern: str
    status: int
    times: int
    body: str = ""


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """State and fault injection of the stand-in Hub; `url` is its endpoint."""

    def __init__(self, root: Path, token: str) -> None:
        self.root = root
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.blobs: dict[str, bytes] = {}  # git oid or LFS sha256 -> bytes
        self.lfs_puts: list[str] = []  # LFS oids received, in order
        self.requests: list[str] = []
        self.faults: list[Fault] = []
        self.drop_lfs_puts_after: int | None = None
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler_class())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, pattern: str, status: int, times: int = -1, body: str = "") -> None:
        self.faults.append(Fault(pattern, status, times, body))

    def clear_faults(self) -> None:
        self.faults.clear()
        self.drop_lfs_puts_after = None

    def files(self, repo_id: str, branch: str = "main") -> dict[str, StoredFile]:
        return self.repos[repo_id].branches[branch]

    def stored_folder(self, repo_id: str, branch: str = "main") -> Path:
        return self.root / repo_id / branch

    def matching_fault(self, request_line: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times != 0 and re.search(fault.pattern, request_line):
                    fault.times -= 1 if fault.times > 0 else 0
                    return fault
        return None

    def commit(self, repo_id: str, branch: str, lines: list[dict]) -> str:
        """Apply an NDJSON commit; raise `LookupError` for an LFS file whose bytes never arrived."""
        with self.lock:
            repo = self.repos[repo_id]
            files = dict(repo.branches[branch])
            for line in lines[1:]:
                value = line["value"]
                if line["key"] == "file":
                    data = base64.b64decode(value["content"])
                    oid = git_blob_oid(data)
                    self.blobs[oid] = data
                    files[value["path"]] = StoredFile(len(data), oid, None)
                elif line["key"] == "lfsFile":
                    if value["oid"] not in self.blobs:
                        raise LookupError(f"LFS object {value['oid']} of {value['path']} was never uploaded")
                    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{value['oid']}\n"
                    files[value["path"]] = StoredFile(value["size"], git_blob_oid(pointer.encode()), value["oid"])
                elif line["key"] == "deletedFile":
                    files.pop(value["path"], None)
            repo.commits += 1
            repo.branches[branch] = files
            repo.heads[branch] = hashlib.sha1(f"{repo_id}:{branch}:{repo.commits}".encode()).hexdigest()
            self.write_out(repo_id, branch)
            return repo.heads[branch]

    def write_out(self, repo_id: str, branch: str) -> None:
        folder = self.stored_folder(repo_id, branch)
        shutil.rmtree(folder, ignore_errors=True)
        for path, stored in self.repos[repo_id].branches[branch].items():
            target = folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.blobs[stored.sha256 or stored.git_oid])

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(HubRequestHandler):
            pass

        Handler.hub = hub
        return Handler


REPO = r"(?P<repo>[^/]+/[^/]+)"
ROUTES = [
    ("POST", r"^/api/repos/create$", "create_repo"),
    ("POST", r"^/api/validate-yaml$", "validate_yaml"),
    ("GET", rf"^/api/datasets/{REPO}(?:/revision/(?P<rev>[^/]+))?$", "repo_info"),
    ("GET", rf"^/api/datasets/{REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$", "tree"),
    ("POST", rf"^/api/datasets/{REPO}/paths-info/(?P<rev>[^/]+)$", "paths_info"),
    ("POST", rf"^/api/datasets/{REPO}/branch/(?P<rev>[^/]+)$", "create_branch"),
    ("POST", rf"^/api/datasets/{REPO}/preupload/(?P<rev>[^/]+)$", "preupload"),
    ("POST", rf"^/api/datasets/{REPO}/commit/(?P<rev>[^/]+)$", "commit"),
    ("POST", rf"^/datasets/{REPO}\.git/info/lfs/objects/batch$", "lfs_batch"),
    ("PUT", r"^/lfs-upload/(?P<oid>[0-9a-f]{64})$", "lfs_put"),
    ("HEAD", rf"^/datasets/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$", "resolve"),
    ("GET", rf"^/datasets/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$", "resolve"),
]


class HubRequestHandler(BaseHTTPRequestHandler):
    """Routes one request; `hub` is set on the per-server subclass."""

    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # the test output stays quiet
        pass

    def do_GET(self) -> None:
        self.route("GET")

    def do_HEAD(self) -> None:
        self.route("HEAD")

    def do_POST(self) -> None:
        self.route("POST")

    def do_PUT(self) -> None:
        self.route("PUT")

    # --- plumbing -------------------------------------------------------------------------------

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send(self, status: int, payload: object = None, headers: dict[str, str] | None = None) -> None:
        body = b"" if payload is None else payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header(
            "Content-Type", "application/json" if not isinstance(payload, bytes) else "application/octet-stream"
        )
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status: int, message: str, code: str | None = None) -> None:
        headers = {"X-Error-Message": message} | ({"X-Error-Code": code} if code else {})
        self.send(status, {"error": message}, headers)

    def authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {self.hub.token}"

    def route(self, method: str) -> None:
        url = urlparse(self.path)
        path = unquote(url.path)
        self.hub.requests.append(f"{method} {path}")
        fault = self.hub.matching_fault(f"{method} {path}")
        if fault is not None:
            self.read_body()
            self.error(fault.status, fault.body or f"injected {fault.status}")
            return
        for route_method, pattern, name in ROUTES:
            match = re.match(pattern, path)
            if route_method == method and match:
                # Upload URLs are pre-signed (like S3's): the client sends them no Authorization header.
                if name != "lfs_put" and not self.authorized():
                    self.read_body()
                    self.error(401, "Invalid credentials in Authorization header")
                    return
                getattr(self, name)(**{k: v for k, v in match.groupdict().items() if v is not None}, query=url.query)
                return
        self.error(404, f"no route for {method} {path}")

    def repo_or_404(self, repo: str, rev: str | None = None) -> Repo | None:
        found = self.hub.repos.get(repo)
        if found is None:
            self.error(404, "Repository not found", "RepoNotFound")
            return None
        if rev is not None and rev not in found.branches and rev not in found.heads.values():
            self.error(404, "Invalid rev id", "RevisionNotFound")
            return None
        return found

    def branch_of(self, repo: Repo, rev: str) -> str:
        return rev if rev in repo.branches else next(b for b, sha in repo.heads.items() if sha == rev)

    # --- endpoints ------------------------------------------------------------------------------

    def create_repo(self, query: str) -> None:
        payload = json.loads(self.read_body())
        repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
        url = f"{self.hub.url}/datasets/{repo_id}"
        if repo_id in self.hub.repos:
            self.send(409, {"error": "You already created this dataset repo", "url": url})
            return
        self.hub.repos[repo_id] = Repo(private=payload.get("visibility") == "private" or bool(payload.get("private")))
        self.send(200, {"url": url, "name": repo_id})

    def validate_yaml(self, query: str) -> None:
        """The Hub checks a card's YAML header before committing it; so does this one."""
        content = json.loads(self.read_body())["content"]
        header = content.split("---")[1] if content.startswith("---") else ""
        try:
            metadata = yaml.safe_load(header)
        except yaml.YAMLError as error:
            self.send(400, {"errors": [{"message": f"invalid YAML: {error}"}]})
            return
        if not isinstance(metadata, dict):
            self.send(400, {"errors": [{"message": "the YAML header is not a mapping"}]})
            return
        self.send(200, {"warnings": []})

    def repo_info(self, repo: str, query: str, rev: str = "main") -> None:
        found = self.repo_or_404(repo, rev)
        if found:
            branch = self.branch_of(found, rev)
            siblings = [{"rfilename": path} for path in sorted(found.branches[branch])]
            self.send(200, {"id": repo, "sha": found.heads[branch], "private": found.private, "siblings": siblings})

    def tree(self, repo: str, rev: str, query: str, path: str = "") -> None:
        found = self.repo_or_404(repo, rev)
        if not found:
            return
        files = found.branches[self.branch_of(found, rev)]
        recursive = parse_qs(query).get("recursive", ["false"])[0].lower() == "true"
        prefix = f"{path.rstrip('/')}/" if path else ""
        entries, folders = [], set()
        for name in sorted(files):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :]
            parts = rest.split("/")
            for depth in range(1, len(parts)):
                if recursive or depth == 1:
                    folders.add(prefix + "/".join(parts[:depth]))
            if recursive or len(parts) == 1:
                stored = files[name]
                entry = {"type": "file", "oid": stored.git_oid, "size": stored.size, "path": name}
                if stored.sha256:
                    entry["lfs"] = {"oid": stored.sha256, "size": stored.size, "pointerSize": 130}
                entries.append(entry)
        entries += [{"type": "directory", "oid": "0" * 40, "path": folder} for folder in sorted(folders)]
        self.send(200, entries)

    def paths_info(self, repo: str, rev: str, query: str) -> None:
        """The entries of the paths asked for that exist (files and folders), as `HfFileSystem.info` asks."""
        asked = parse_qs(self.read_body().decode()).get("paths", [])
        found = self.repo_or_404(repo, rev)
        if not found:
            return
        files = found.branches[self.branch_of(found, rev)]
        entries = []
        for path in asked:
            stored = files.get(path)
            if stored is not None:
                entry = {"type": "file", "oid": stored.git_oid, "size": stored.size, "path": path}
                if stored.sha256:
                    entry["lfs"] = {"oid": stored.sha256, "size": stored.size, "pointerSize": 130}
                entries.append(entry)
            elif any(name.startswith(path.rstrip("/") + "/") for name in files):
                entries.append({"type": "directory", "oid": "0" * 40, "path": path})
        self.send(200, entries)

    def create_branch(self, repo: str, rev: str, query: str) -> None:
        self.read_body()
        found = self.repo_or_404(repo)
        if not found:
            return
        if rev in found.branches:
            self.error(409, "Reference already exists")
            return
        found.branches[rev] = dict(found.branches["main"])
        found.heads[rev] = found.heads["main"]
        self.hub.write_out(repo, rev)
        self.send(200, {})

    def preupload(self, repo: str, rev: str, query: str) -> None:
        payload = json.loads(self.read_body())
        if self.repo_or_404(repo, rev):
            modes = [
                {"path": f["path"], "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular"}
                | {"shouldIgnore": False}
                for f in payload["files"]
            ]
            self.send(200, {"files": modes})

    def lfs_batch(self, repo: str, query: str) -> None:
        payload = json.loads(self.read_body())
        if not self.repo_or_404(repo):
            return
        objects = []
        for item in payload["objects"]:
            entry = {"oid": item["oid"], "size": item["size"]}
            if item["oid"] not in self.hub.blobs:
                entry["actions"] = {"upload": {"href": f"{self.hub.url}/lfs-upload/{item['oid']}"}}
            objects.append(entry)
        self.send(200, {"transfer": "basic", "objects": objects})

    def lfs_put(self, oid: str, query: str) -> None:
        limit = self.hub.drop_lfs_puts_after
        if limit is not None and len(self.hub.lfs_puts) >= limit:
            self.rfile.read(min(int(self.headers.get("Content-Length") or 0), 1024))
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        data = self.read_body()
        if hashlib.sha256(data).hexdigest() != oid:
            self.error(400, "sha256 of the uploaded bytes does not match the oid")
            return
        with self.hub.lock:
            self.hub.blobs[oid] = data
            self.hub.lfs_puts.append(oid)
        self.send(200, {})

    def commit(self, repo: str, rev: str, query: str) -> None:
        lines = [json.loads(line) for line in self.read_body().splitlines() if line.strip()]
        found = self.repo_or_404(repo, rev)
        if not found:
            return
        try:
            sha = self.hub.commit(repo, self.branch_of(found, rev), lines)
        except LookupError as error:
            self.error(422, str(error))
            return
        self.send(200, {"commitUrl": f"{self.hub.url}/datasets/{repo}/commit/{sha}", "commitOid": sha})

    def resolve(self, repo: str, rev: str, path: str, query: str) -> None:
        found = self.repo_or_404(repo, rev)
        if not found:
            return
        branch = self.branch_of(found, rev)
        stored = found.branches[branch].get(path)
        if stored is None:
            self.error(404, "Entry not found", "EntryNotFound")
            return
        data = self.hub.blobs[stored.sha256 or stored.git_oid]
        headers = {"X-Repo-Commit": found.heads[branch], "ETag": f'"{stored.sha256 or stored.git_oid}"'}
        asked = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if asked:  # a range read, as `HfFileSystem` makes for Parquet footers and row groups
            start, stop = int(asked[1]), min(int(asked[2] or len(data) - 1), len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{stop}/{len(data)}"
            self.send(206, data[start : stop + 1], headers)
            return
        self.send(200, data, headers)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A running stand-in Hub that the product code reaches through HF_ENDPOINT, with HF_TOKEN set."""
    with FakeHub(tmp_path / "hub-store", TOKEN) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
        # The stand-in speaks plain LFS, not Xet (the Hub's newer storage protocol).
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
        # huggingface_hub retries 5xx and dropped connections with 1-8 s backoff; keep the retries, drop the wait.
        monkeypatch.setattr(_http, "time", types.SimpleNamespace(sleep=lambda seconds: None))
        yield server
