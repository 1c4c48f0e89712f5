"""Tasks of the servers app: adapters that load by id and call a service."""

from __future__ import annotations

from celery import shared_task

from pipetower.servers import services


@shared_task(
    name="pipetower.servers.tasks.server_check_task",
    ignore_result=True,
    soft_time_limit=60,
    time_limit=90,
)
def server_check_task(server_id: int, actor_id: int) -> None:
    """Test a server's connection (asked for by `server_check_request`)."""
    services.server_check_run(server_id=server_id, actor_id=actor_id)


@shared_task(
    name="pipetower.servers.tasks.servers_host_keys_fetch_task",
    ignore_result=True,
    soft_time_limit=60,
    time_limit=90,
)
def servers_host_keys_fetch_task(server_ids: list[int], actor_id: int) -> None:
    """Fetch a batch of servers' host keys (asked for by `servers_host_keys_fetch_request`)."""
    services.servers_host_keys_fetch_run(server_ids=server_ids, actor_id=actor_id)
