"""What only the file store has: its URL, restarts, several processes, locks, files on disk.

The shared guarantees are in ``test_contract.py``.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import stat
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sessionward.core.errors import ConfigError, StoreError, StoreUnavailableError
from sessionward.core.records import EndReason, SessionRecord
from sessionward.stores import open_store
from sessionward.stores._file_sync import FileStore as BlockingFileStore
from sessionward.stores.file import FileStore

from .builders import NOW, make_limit, make_record, make_tombstone, make_update, new_key


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FileStore]:
    """A set-up file store in a temporary directory."""
    made = FileStore(tmp_path / "store")
    await made.setup()
    yield made
    await made.close()


# -- URLs ------------------------------------------------------------------------------------


def test_file_url_names_an_absolute_directory(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/sessions")
    assert isinstance(store, FileStore)
    assert store.root == tmp_path / "sessions"
    assert FileStore.from_url(f"file://localhost{tmp_path}").root == tmp_path


@pytest.mark.parametrize(
    "url",
    [
        "file://otherhost/srv/sessions",  # not local
        "file://./relative",  # the netloc form of a relative path
        "file:relative/dir",
        "file:///",
        "file://",
        "file:///srv/sessions?mode=fast",
        "file:///srv/sessions#x",
        "file:///srv/%00sessions",
        "memory://",
    ],
)
def test_bad_file_url_is_refused_naming_the_setting(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        FileStore.from_url(url, setting="SESSIONWARD_STORE")
    assert caught.value.setting == "SESSIONWARD_STORE"


def test_file_url_naming_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    with pytest.raises(ConfigError, match="not a directory"):
        FileStore.from_url(f"file://{tmp_path}/afile")


# -- durability and files on disk ----------------------------------------------------------


async def test_sessions_survive_a_restart(tmp_path: Path) -> None:
    before = FileStore(tmp_path)
    await before.setup()
    record = make_record(user="alice", data={"a": 1})
    await before.establish(record)
    await before.save(record.key, make_update(record, set={"b": 2}))
    await before.end(make_tombstone(new_key(), EndReason.REVOKED))
    await before.close()

    after = FileStore.from_url(f"file://{tmp_path}")

    loaded = await after.load(record.key, NOW)
    assert isinstance(loaded, SessionRecord)
    assert loaded.data == {"a": 1, "b": 2}
    assert [r.key for r in await after.list_user("alice", NOW)] == [record.key]
    assert (await after.stats(NOW)).tombstones == 1


async def test_session_files_are_private_to_the_server_user(store: FileStore) -> None:
    record = make_record(user="alice")
    await store.establish(record)

    for directory, _subdirectories, names in os.walk(store.root):
        assert stat.S_IMODE(os.stat(directory).st_mode) & 0o077 == 0, directory
        for name in names:
            mode = stat.S_IMODE(os.stat(Path(directory, name)).st_mode)
            assert mode & 0o077 == 0, (name, oct(mode))


async def test_leftover_temporary_files_are_ignored(store: FileStore) -> None:
    record = make_record(user="alice")
    await store.establish(record)
    shard = store.root / "sessions" / record.key[:2] / record.key[2:4]
    # What a crash between write and rename leaves behind.
    (shard / f".{record.key}.json.0123.tmp").write_text("{half")

    found = await store.find_handle(record.handle, NOW)
    assert found is not None
    assert (await store.stats(NOW)).live_sessions == 1


async def test_missing_store_directory_is_an_outage_not_an_empty_store(tmp_path: Path) -> None:
    # An unmounted disk must give 503s, not log everyone out as "unknown session".
    store = FileStore(tmp_path / "never-set-up")
    record = make_record()

    with pytest.raises(StoreUnavailableError):
        await store.load(record.key, NOW)
    with pytest.raises(StoreUnavailableError):
        await store.establish(record)
    assert not (tmp_path / "never-set-up").exists()  # nothing made implicitly


@pytest.mark.parametrize("key", ["../../../etc/passwd", "A" * 64, "0" * 63, ""])
async def test_path_traversal_key_never_reaches_the_filesystem(store: FileStore, key: str) -> None:
    with pytest.raises(StoreError):
        await store.load(key, NOW)
    with pytest.raises(StoreError):
        await store.end(make_tombstone(key))


async def test_stale_user_index_entries_are_ignored_and_pruned(store: FileStore) -> None:
    # A crash between "file the key" and "write the record" leaves an index entry alone.
    ghost = new_key()
    record = make_record(user="alice")
    await store.establish(record)
    index_path = store.sync._index_path("alice")
    index = json.loads(index_path.read_bytes())
    index_path.write_text(json.dumps({"user": "alice", "keys": [*index["keys"], ghost]}))

    assert [r.key for r in await store.list_user("alice", NOW)] == [record.key]
    await store.establish(make_record(user="alice"), limit=make_limit(2, prevent_login=True))
    assert ghost not in json.loads(index_path.read_bytes())["keys"]


# -- locks -----------------------------------------------------------------------------------


async def test_a_stuck_lock_holder_makes_the_store_unavailable_not_hung(tmp_path: Path) -> None:
    store = FileStore(tmp_path, timeout_s=0.2)
    await store.setup()
    record = make_record()
    await store.establish(record)
    descriptor = os.open(tmp_path / "locks" / "k" / record.key[:2], os.O_RDWR)
    fcntl.flock(descriptor, fcntl.LOCK_EX)  # as another process stuck mid-write would hold it
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="busy"):
            await store.save(record.key, make_update(record, set={"a": 1}))
        assert time.monotonic() - started < 1.5
    finally:
        os.close(descriptor)
    assert await store.save(record.key, make_update(record, set={"a": 1})) is True


_WORKER = """
import asyncio, json, sys
from msgspec.structs import replace
from sessionward.core.engine import SessionLimit
from sessionward.core.records import SessionRecord, Update
from sessionward.stores.file import FileStore

async def main(root, key, worker, count, now):
    store = FileStore(root)
    loaded = await store.load(key, now)
    assert isinstance(loaded, SessionRecord)
    saves = await asyncio.gather(*(
        store.save(key, Update(set={f"w{worker}-{i}": i}, delete=frozenset(), meta=loaded.meta,
                               expires_at=loaded.expires_at, base_version=loaded.version, base_data=loaded.data))
        for i in range(count)))
    limit = SessionLimit(max_sessions=1, prevent_login=True, now=now, tombstone_expires_at=now + 60)
    won = 0
    for i in range(count):
        login = replace(loaded, key=f"{worker:02x}{i:062x}", data={})
        login.meta.user = "alice"
        try:
            await store.establish(login, limit=limit)
            won += 1
        except Exception as error:
            if type(error).__name__ != "LoginRefusedError":
                raise
    print(json.dumps({"saved": sum(saves), "won": won}))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])))
"""


async def test_several_processes_share_one_directory_safely(store: FileStore) -> None:
    record = make_record(data={"seed": True})
    await store.establish(record)
    count = 12

    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WORKER,
            str(store.root),
            record.key,
            str(worker),
            str(count),
            str(NOW),
            stdout=asyncio.subprocess.PIPE,
        )
        for worker in range(3)
    ]
    outputs = [json.loads((await worker.communicate())[0]) for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0, 0]
    assert sum(output["saved"] for output in outputs) == 3 * count
    loaded = await store.load(record.key, NOW)
    assert isinstance(loaded, SessionRecord)
    assert len(loaded.data) == 1 + 3 * count  # no process lost another's keys
    assert sum(output["won"] for output in outputs) == 1  # first wins, across processes
    assert len(await store.list_user("alice", NOW)) == 1


# -- purge cost ------------------------------------------------------------------------------


async def test_purge_reads_only_entries_whose_expiry_minute_has_begun(
    store: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(40):
        await store.establish(make_record(expires_at=NOW + 7200))
    expired = [make_record(expires_at=NOW + 10) for _ in range(3)]
    for record in expired:
        await store.establish(record)
    reads: list[str] = []
    real_read = BlockingFileStore._read

    def counting_read(self: BlockingFileStore, key: str) -> object:
        reads.append(key)
        return real_read(self, key)

    monkeypatch.setattr(BlockingFileStore, "_read", counting_read)

    assert await store.purge_expired(NOW + 600) == 3

    assert set(reads) == {r.key for r in expired}  # none of the 40 live sessions was read
