"""A store of JSON files in one directory, for a single server that survives restarts.

``file:///path/to/dir`` names the directory. The work is done by the blocking store of
:mod:`sessionward.stores._file_sync`, whose module docstring gives the layout and why
each operation is atomic (``flock`` stripes, files replaced whole); this store runs each
of its methods in one worker thread, so a lock held by another process never holds up
the event loop.
"""

from __future__ import annotations

import os
from pathlib import Path

from sessionward.stores._file_sync import FileStore as BlockingFileStore
from sessionward.stores._threaded import ThreadedStore


class FileStore(ThreadedStore[BlockingFileStore]):
    """Sessions as JSON files under ``root``; safe for many tasks, threads and processes on one host.

    Args:
        root: The store's directory (made by :meth:`setup`).
        timeout_s: The most a method waits for a lock before raising
            :class:`~sessionward.core.errors.StoreUnavailableError`.
        durable: ``fsync`` every write (default). Turning it off trades crash safety
            for speed; ``os.replace`` still keeps every file whole.
    """

    def __init__(self, root: str | os.PathLike[str], *, timeout_s: float = 2.0, durable: bool = True) -> None:
        super().__init__(BlockingFileStore(root, timeout_s=timeout_s, durable=durable))

    @classmethod
    def from_url(
        cls, url: str, *, setting: str = "SESSIONWARD_STORE", timeout_s: float = 2.0, must_exist: bool = False
    ) -> FileStore:
        """Build a store from a ``file://`` URL, as :meth:`BlockingFileStore.from_url` does (same errors)."""
        found = BlockingFileStore.from_url(url, setting=setting, timeout_s=timeout_s, must_exist=must_exist)
        return cls(found.root, timeout_s=found.timeout_s, durable=found.durable)

    @property
    def root(self) -> Path:
        """The store's directory."""
        return self.sync.root

    @property
    def timeout_s(self) -> float:
        """The most a method waits for a lock."""
        return self.sync.timeout_s

    @property
    def durable(self) -> bool:
        """Whether every write is ``fsync``-ed."""
        return self.sync.durable
