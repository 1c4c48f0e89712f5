"""The embedded broker (kombu's filesystem transport) hands workers whole messages.

kombu creates a message's file under its final name and then writes it, while
a worker lists the folder and parses what it finds: a worker that came in
between read an empty file, stopped with "Unrecoverable error:
JSONDecodeError", and the task was lost. Pipetower's Celery application
(`pipetower.config.celery`) writes each message under a name no reader takes
and renames it into place.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection

import pipetower.config.celery  # noqa: F401 - installs the whole-message writer

COUNT = 150


def _connection(folder: Path) -> Connection:
    return Connection(
        "filesystem://",
        transport_options={
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "polling_interval": 0.001,  # list the folder as often as it can
        },
    )


def test_a_message_file_is_visible_only_once_it_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    visible_while_writing: list[list[str]] = []
    real_replace = os.replace

    def replace(source: Any, target: Any) -> None:
        # The moment before the message takes its name: nothing named like one yet.
        visible_while_writing.append(sorted(p.name for p in tmp_path.glob("*.msg")))
        assert Path(source).read_bytes(), "the message is written before it is moved"
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with _connection(tmp_path) as connection, connection.SimpleQueue("runs") as queue:
        queue.put({"shard": 1})
        message = queue.get(timeout=5)
        message.ack()

    assert message.payload == {"shard": 1}
    assert visible_while_writing == [[]]
    assert not list(tmp_path.iterdir()), "no partial file is left behind"


def _send(folder: str, start: int) -> None:
    # Spawned: importing this module installed Pipetower's writer here too.
    with _connection(Path(folder)) as connection, connection.SimpleQueue("runs") as queue:
        for n in range(start, start + COUNT):
            queue.put({"n": n, "padding": "x" * 1_000_000})  # slow to write


def test_a_reader_polling_while_two_processes_write_gets_every_message_whole(
    tmp_path: Path,
) -> None:
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_send, args=(str(tmp_path), k * COUNT)) for k in (0, 1)]
    for writer in writers:
        writer.start()
    received: list[int] = []
    with _connection(tmp_path) as connection, connection.SimpleQueue("runs") as queue:
        while len(received) < 2 * COUNT:
            message = queue.get(timeout=60)  # a torn message would raise here instead
            received.append(message.payload["n"])
            message.ack()
    for writer in writers:
        writer.join(timeout=60)
        assert writer.exitcode == 0

    assert sorted(received) == list(range(2 * COUNT))
