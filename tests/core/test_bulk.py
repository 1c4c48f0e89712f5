"""update_rows(): many rows, each with its own values, in one statement."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from pipetower.core.bulk import update_rows
from pipetower.core.crypto import CryptoError
from pipetower.servers.models import Server


def _server(team, name: str) -> Server:
    return Server.objects.create(team=team, name=name, host="127.0.0.1", port=22, username="ops")


@pytest.mark.django_db
def test_each_row_gets_its_own_values_in_one_statement_and_other_rows_are_untouched(team) -> None:
    first, second, untouched = (_server(team, n) for n in ("web-1", "web-2", "web-3"))
    pinned_at = datetime(2026, 12, 6, 4, 40, 12, 345678, tzinfo=UTC)
    first.port, first.host_keys, first.host_key_pinned_at = 2201, 'it\'s "quoted"; --', pinned_at
    second.port, second.host_keys, second.host_key_pinned_at = 2202, "", None

    with CaptureQueriesContext(connection) as queries:
        update_rows(Server, [first, second], ["port", "host_keys", "host_key_pinned_at"])

    assert len(queries) == 1
    stored = {s.name: s for s in Server.objects.all()}
    assert (stored["web-1"].port, stored["web-1"].host_keys) == (2201, 'it\'s "quoted"; --')
    assert stored["web-1"].host_key_pinned_at == pinned_at
    assert (stored["web-2"].port, stored["web-2"].host_keys) == (2202, "")
    assert stored["web-2"].host_key_pinned_at is None
    assert stored["web-3"].port == 22 and stored["web-3"].name == untouched.name


@pytest.mark.django_db
def test_nothing_to_write_sends_no_statement(team) -> None:
    with CaptureQueriesContext(connection) as queries:
        update_rows(Server, [], ["port"])
        update_rows(Server, [_server(team, "web-1")], [])
    assert [q for q in queries if q["sql"].lstrip().upper().startswith("WITH")] == []


@pytest.mark.django_db
def test_many_rows_are_split_into_statements_of_bounded_size(team, monkeypatch) -> None:
    monkeypatch.setattr("pipetower.core.bulk.ROWS_PER_STATEMENT", 2)
    servers = [_server(team, f"web-{n}") for n in range(5)]
    for n, server in enumerate(servers):
        server.port = 3000 + n
    with CaptureQueriesContext(connection) as queries:
        update_rows(Server, servers, ["port"])
    assert len(queries) == 3
    assert sorted(Server.objects.values_list("port", flat=True)) == [3000, 3001, 3002, 3003, 3004]


@pytest.mark.django_db
def test_an_encrypted_field_refuses_plaintext_as_update_does(team) -> None:
    server = _server(team, "web-1")
    server.password = "hunter2"
    with pytest.raises(CryptoError, match="encrypted"):
        update_rows(Server, [server], ["password"])


@pytest.mark.django_db
def test_a_name_that_is_not_a_column_is_refused(team) -> None:
    with pytest.raises(ValueError, match="not a column"):
        update_rows(Server, [_server(team, "web-1")], ["tags"])


@pytest.mark.django_db(transaction=True)
def test_the_update_is_part_of_the_callers_transaction(team) -> None:
    server = _server(team, "web-1")
    server.port = 2222

    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        update_rows(Server, [server], ["port"])  # the first write of the transaction
        raise Undo

    assert Server.objects.get(pk=server.pk).port == 22
