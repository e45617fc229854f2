"""Model registries on object storage ($REFINERY_MODELS_URI, e.g. s3://bucket/models): deployment uploads a model
folder, then the registry's aliases; a service on another machine mirrors the aliased models into a local cache
and serves them from there, so the trainer, the pipeline and the service share no disk.

The transfers are Arrow's filesystems (S3, GCS, HDFS; credentials and endpoint from the environment, e.g.
AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL). A folder is uploaded before the aliases that name it, and a mirror writes its
local aliases only after every folder they name is complete, so a reader never follows an alias to half a model.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

from pyarrow import fs

from trainers.registry import ALIAS_HISTORY, ALIASES, MODEL_CARD, read_aliases, write_json_atomically

MODELS_URI = "REFINERY_MODELS_URI"
LOCAL = fs.LocalFileSystem()
CHUNK_BYTES = 8 * 1024 * 1024
BUNDLES = ".bundles"  # training bundles handed to trainers that share no disk; not a registry (no aliases)


class ModelStore:
    """Registries `<uri>/<name>/` holding model folders `<version>/` and `aliases.json`."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        self.filesystem, self.base = fs.FileSystem.from_uri(self.uri)

    def _path(self, *parts: str) -> str:
        return "/".join([self.base.rstrip("/"), *parts])

    def publish_model(self, name: str, folder: Path) -> str:
        """Upload a model folder as `<name>/<version>/`; returns its URI."""
        if not (folder / MODEL_CARD).is_file():
            raise FileNotFoundError(f"{folder}: no exported model to publish")
        return upload_folder(folder, f"{self.uri}/{name}/{folder.name}")

    def publish_bundle(self, bundle: Path) -> str:
        """Upload a training bundle as `.bundles/<model version>/` (for a trainer that shares no disk); its URI."""
        return upload_folder(bundle, f"{self.uri}/{BUNDLES}/{bundle.name}")

    def publish_aliases(self, name: str, model_root: Path) -> dict[str, str]:
        """Upload a local registry's aliases (one object put: readers see the old or the new) and its history."""
        if (model_root / ALIAS_HISTORY).is_file():
            self._write(self._path(name, ALIAS_HISTORY), (model_root / ALIAS_HISTORY).read_bytes())
        aliases = read_aliases(model_root)
        self._write(self._path(name, ALIASES), json.dumps(aliases, indent=2, sort_keys=True).encode())
        return aliases

    def _write(self, path: str, data: bytes) -> None:
        with self.filesystem.open_output_stream(path) as stream:
            stream.write(data)

    def aliases(self, name: str) -> dict[str, str]:
        """A registry's aliases in the store (empty when nothing is deployed)."""
        path = self._path(name, ALIASES)
        if self.filesystem.get_file_info(path).type != fs.FileType.File:
            return {}
        with self.filesystem.open_input_stream(path) as stream:
            return json.loads(stream.read())

    def registries(self) -> list[str]:
        """The names of the store's registries that have aliases."""
        if self.filesystem.get_file_info(self.base).type == fs.FileType.NotFound:
            return []
        found = self.filesystem.get_file_info(fs.FileSelector(self.base, recursive=False))
        folders = [info.base_name for info in found if info.type == fs.FileType.Directory]
        return sorted(name for name in folders if self.aliases(name))

    def fetch_model(self, name: str, version: str, target: Path) -> Path:
        """Download `<name>/<version>/` to `target` (through a hidden partial folder, renamed when complete)."""
        if self.filesystem.get_file_info(self._path(name, version, MODEL_CARD)).type != fs.FileType.File:
            raise FileNotFoundError(f"{self.uri}/{name}/{version}: no model folder in the store")
        return download_folder(f"{self.uri}/{name}/{version}", target)


def upload_folder(folder: Path, uri: str) -> str:
    """Copy a local folder's files to `uri` (a folder's URI on object storage); returns `uri`."""
    filesystem, path = fs.FileSystem.from_uri(uri)
    fs.copy_files(str(folder), path, source_filesystem=LOCAL, destination_filesystem=filesystem)
    return uri


def download_folder(uri: str, target: Path) -> Path:
    """Copy the files under `uri` into `target`, through a hidden partial folder renamed when complete (a folder
    already at `target` is replaced)."""
    filesystem, source = fs.FileSystem.from_uri(uri)
    found = [info for info in filesystem.get_file_info(fs.FileSelector(source, recursive=True, allow_not_found=True))
             if info.type == fs.FileType.File]  # fmt: skip
    if not found:
        raise FileNotFoundError(f"{uri}: no files there")
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for info in found:  # file by file: Arrow's copy_files does not create the local folders it writes into
        local = partial / info.path[len(source.rstrip("/")) + 1 :]
        local.parent.mkdir(parents=True, exist_ok=True)
        with filesystem.open_input_stream(info.path) as stream, local.open("wb") as handle:
            shutil.copyfileobj(stream, handle, CHUNK_BYTES)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def mirror_registry(store: ModelStore, name: str, cache_root: Path) -> bool:
    """Make `cache_root/<name>/` a local registry with the store's aliased models; True when its aliases moved.

    Folders no alias names any more are removed, so the cache holds at most production and previous."""
    aliases = store.aliases(name)
    local = cache_root / name
    for version in sorted(set(aliases.values())):
        if not (local / version / MODEL_CARD).is_file():
            store.fetch_model(name, version, local / version)
    if not aliases or read_aliases(local) == aliases:
        return False
    write_json_atomically(local / ALIASES, aliases)
    for folder in local.iterdir():
        if folder.is_dir() and folder.name not in aliases.values() and not folder.name.startswith("."):
            shutil.rmtree(folder, ignore_errors=True)
    return True


def mirror_store(store: ModelStore, cache_root: Path) -> list[str]:
    """Mirror every registry of the store; the names whose aliases moved."""
    cache_root.mkdir(parents=True, exist_ok=True)
    return [name for name in store.registries() if mirror_registry(store, name, cache_root)]


class StoreMirror:
    """A thread that mirrors the store into the cache every `poll_seconds`; the service's own alias watcher then
    swaps models as it does for a local registry."""

    def __init__(self, store: ModelStore, cache_root: Path, poll_seconds: float = 10.0) -> None:
        self.store, self.cache_root, self.poll_seconds = store, cache_root, poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-store-mirror", daemon=True)

    def start(self) -> StoreMirror:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                mirror_store(self.store, self.cache_root)
            except Exception as error:  # the store unreachable for a while: keep serving what the cache holds
                print(f"model store mirror failed, serving the cached models: {error}", flush=True)

    def stop(self) -> None:
        self._stop.set()
