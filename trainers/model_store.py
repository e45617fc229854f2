"""Model registries on object storage ($REFINERY_MODELS_URI, e.g. s3://bucket/models): deployment uploads a model
folder, then the registry's aliases; a service on another machine mirrors the aliased models into a local cache
and serves them from there, so the trainer, the pipeline and the service share no disk.

The transfers are Arrow's filesystems (S3, GCS, HDFS; credentials and endpoint from the environment, e.g.
AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL). A folder is uploaded before the aliases that name it, and a mirror writes its
local aliases only after every folder they name is complete, so a reader never follows an alias to half a model.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from pathlib import Path

from pyarrow import fs

from trainers.bundle import BUNDLE_MANIFEST_FILE
from trainers.registry import (
    ALIAS_HISTORY,
    ALIASES,
    MODEL_CARD,
    PRODUCTION,
    aliases_locked,
    read_aliases,
    write_json_atomically,
)

MODELS_URI = "REFINERY_MODELS_URI"
CHUNK_BYTES = 8 * 1024 * 1024
BUNDLES = ".bundles"  # training bundles handed to trainers that share no disk; not a registry (no aliases)
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class StoreError(ValueError):
    """The store holds something Refinery will not use as a local path or a model: names the object."""


def check_name(name: object, where: str) -> str:
    """A registry or version name read from the store, refused unless it is a plain folder name."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name) or ".." in name:
        raise StoreError(f"{where}: {name!r} is not a registry or version name")
    return name


class ModelStore:
    """Registries `<uri>/<name>/` holding model folders `<version>/` and `aliases.json`."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        self.filesystem, self.base = fs.FileSystem.from_uri(self.uri)

    def _path(self, *parts: str) -> str:
        return "/".join([self.base.rstrip("/"), *parts])

    def publish_model(self, name: str, folder: Path) -> str:
        """Upload a model folder as `<name>/<version>/` (its card last: a folder with a card is complete)."""
        if not (folder / MODEL_CARD).is_file():
            raise FileNotFoundError(f"{folder}: no exported model to publish")
        uri = f"{self.uri}/{check_name(name, 'registry')}/{check_name(folder.name, 'model version')}"
        return upload_folder(folder, uri, last=MODEL_CARD)

    def holds_model(self, name: str, version: str) -> bool:
        return self.filesystem.get_file_info(self._path(name, version, MODEL_CARD)).type == fs.FileType.File

    def publish_bundle(self, bundle: Path) -> str:
        """Upload a training bundle as `.bundles/<model version>/` (for a trainer that shares no disk); its URI."""
        return upload_folder(
            bundle, f"{self.uri}/{BUNDLES}/{check_name(bundle.name, 'bundle')}", last=BUNDLE_MANIFEST_FILE
        )

    def remove_bundle(self, name: str) -> None:
        """Delete a bundle the trainer has read."""
        path = self._path(BUNDLES, check_name(name, "bundle"))
        if self.filesystem.get_file_info(path).type == fs.FileType.Directory:
            self.filesystem.delete_dir(path)

    def publish_aliases(self, name: str, model_root: Path) -> dict[str, str]:
        """Upload a local registry's aliases, read under its lock, after any model they name that the store lacks
        (a registry deployed before the store was set); one object put, so readers see the old or the new."""
        with aliases_locked(model_root) as aliases:
            for version in sorted(set(aliases.values())):
                if not self.holds_model(name, version) and (model_root / version / MODEL_CARD).is_file():
                    self.publish_model(name, model_root / version)
            if (model_root / ALIAS_HISTORY).is_file():
                self._write(self._path(name, ALIAS_HISTORY), (model_root / ALIAS_HISTORY).read_bytes())
            self._write(self._path(name, ALIASES), json.dumps(aliases, indent=2, sort_keys=True).encode())
            return aliases

    def _write(self, path: str, data: bytes) -> None:
        with self.filesystem.open_output_stream(path) as stream:
            stream.write(data)

    def aliases(self, name: str) -> dict[str, str]:
        """A registry's aliases in the store (empty when nothing is deployed); names checked before any use."""
        if not self.has_aliases(check_name(name, "registry")):
            return {}
        with self.filesystem.open_input_stream(self._path(name, ALIASES)) as stream:
            aliases = json.loads(stream.read())
        if not isinstance(aliases, dict):
            raise StoreError(f"{self.uri}/{name}/{ALIASES}: expected an object of alias -> version")
        return {
            check_name(k, f"{self.uri}/{name}/{ALIASES}"): check_name(v, f"{self.uri}/{name}/{ALIASES}")
            for k, v in aliases.items()
        }

    def registries(self) -> list[str]:
        """The names of the store's registries that have aliases."""
        if self.filesystem.get_file_info(self.base).type == fs.FileType.NotFound:
            return []
        found = self.filesystem.get_file_info(fs.FileSelector(self.base, recursive=False))
        folders = [info.base_name for info in found if info.type == fs.FileType.Directory]
        return sorted(name for name in folders if SAFE_NAME.fullmatch(name) and self.has_aliases(name))

    def has_aliases(self, name: str) -> bool:
        return self.filesystem.get_file_info(self._path(name, ALIASES)).type == fs.FileType.File

    def fetch_model(self, name: str, version: str, target: Path) -> Path:
        """Download `<name>/<version>/` to `target` (through a hidden partial folder, renamed when complete)."""
        if not self.holds_model(check_name(name, "registry"), check_name(version, "model version")):
            raise FileNotFoundError(f"{self.uri}/{name}/{version}: no model folder in the store")
        return download_folder(f"{self.uri}/{name}/{version}", target)


def upload_folder(folder: Path, uri: str, last: str | None = None) -> str:
    """Copy a local folder's files to `uri`, the file named `last` after all others (its presence then says the
    folder is complete); returns `uri`."""
    filesystem, path = fs.FileSystem.from_uri(uri)
    files = sorted(
        (p for p in folder.rglob("*") if p.is_file()), key=lambda p: (p.relative_to(folder).as_posix() == last, p)
    )
    for local in files:
        with (
            local.open("rb") as handle,
            filesystem.open_output_stream(f"{path}/{local.relative_to(folder).as_posix()}") as stream,
        ):
            shutil.copyfileobj(handle, stream, CHUNK_BYTES)
    return uri


def download_folder(uri: str, target: Path) -> Path:
    """Copy the files under `uri` into `target`, through a hidden partial folder renamed when complete (a folder
    already at `target` is replaced)."""
    filesystem, source = fs.FileSystem.from_uri(uri)
    found = [
        info
        for info in filesystem.get_file_info(fs.FileSelector(source, recursive=True, allow_not_found=True))
        if info.type == fs.FileType.File
    ]
    if not found:
        raise FileNotFoundError(f"{uri}: no files there")
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for info in found:  # file by file: Arrow's copy_files does not create the local folders it writes into
        local = partial / info.path[len(source.rstrip("/")) + 1 :]
        if not local.resolve().is_relative_to(partial.resolve()):
            raise StoreError(f"{uri}: the object {info.path!r} would land outside {target}")
        local.parent.mkdir(parents=True, exist_ok=True)
        with filesystem.open_input_stream(info.path) as stream, local.open("wb") as handle:
            shutil.copyfileobj(stream, handle, CHUNK_BYTES)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def mirror_registry(store: ModelStore, name: str, cache_root: Path) -> bool:
    """Make `cache_root/<name>/` a local registry of the store's aliased models; True when its aliases moved.
    Production is fetched first and must exist; an alias naming a folder the store lacks is left out."""
    aliases, local = store.aliases(name), cache_root / check_name(name, "registry")
    for alias in sorted(aliases, key=lambda a: a != PRODUCTION):
        if not (local / aliases[alias] / MODEL_CARD).is_file():
            try:
                store.fetch_model(name, aliases[alias], local / aliases[alias])
            except FileNotFoundError:
                if alias == PRODUCTION:
                    raise
                print(f"{store.uri}/{name}: alias {alias} names {aliases[alias]}, not in the store; left out")
    aliases = {k: v for k, v in aliases.items() if (local / v / MODEL_CARD).is_file()}
    before = read_aliases(local)
    if not aliases or before == aliases:
        return False
    write_json_atomically(local / ALIASES, aliases)
    keep = set(aliases.values()) | set(before.values())  # the old ones too: the service may be loading one now
    for folder in local.iterdir():
        if folder.is_dir() and folder.name not in keep and not folder.name.startswith("."):
            shutil.rmtree(folder, ignore_errors=True)
    return True


def mirror_store(store: ModelStore, cache_root: Path) -> tuple[list[str], dict[str, str]]:
    """Mirror every registry of the store, each on its own; the names whose aliases moved, and what failed."""
    cache_root.mkdir(parents=True, exist_ok=True)
    moved, failed = [], {}
    for name in store.registries():
        try:
            if mirror_registry(store, name, cache_root):
                moved.append(name)
        except (OSError, ValueError) as error:  # ArrowInvalid and StoreError are ValueErrors
            failed[name] = str(error)
    return moved, failed


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
                _, failed = mirror_store(self.store, self.cache_root)
            except Exception as error:  # the store unreachable for a while: keep serving what the cache holds
                failed = {"*": str(error)}
            for name, error in failed.items():
                print(f"model store mirror of {name} failed, serving the cached model: {error}", flush=True)

    def stop(self) -> None:
        self._stop.set()
