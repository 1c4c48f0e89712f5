"""Quiet start: the worker and scheduler start without Celery's banners, and what
tasks print (the console email backend) reaches the terminal without log prefixes."""

from __future__ import annotations

import warnings

from django.conf import settings

from pipetower.core.management.commands._base import quiet_root_warning
from pipetower.core.management.commands.scheduler import scheduler_argv
from pipetower.core.management.commands.worker import worker_argv


def test_worker_and_scheduler_start_without_celerys_banner():
    assert worker_argv(concurrency=2)[:2] == ["-q", "worker"]
    assert scheduler_argv()[:2] == ["-q", "beat"]


def test_printed_email_is_not_turned_into_warning_log_lines():
    from pipetower.config.celery import app

    assert settings.CELERY_WORKER_REDIRECT_STDOUTS is False
    assert app.conf.worker_redirect_stdouts is False
    assert app.conf.worker_hijack_root_logger is False


def test_the_superuser_warning_is_not_shown():
    from celery.exceptions import SecurityWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_root_warning()
        warnings.warn("You're running the worker with superuser privileges", SecurityWarning)
    assert caught == []
