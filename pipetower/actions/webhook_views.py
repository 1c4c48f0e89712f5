"""The webhook receiver (`/hooks/<token>/`) and the pages that manage webhooks.

The receiver is answered without a session or CSRF token: the token in the
URL finds the hook, and its signature and delivery id are checked by
`webhooks.webhook_receive`. Answers are JSON.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from pipetower.actions import conf, webhooks
from pipetower.core.http import client_ip


@csrf_exempt
@never_cache
@require_POST
def webhook_receive(request: HttpRequest, token: str) -> HttpResponse:
    limit = conf.webhook_body_max_bytes()
    try:
        size = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        size = 0
    # A body over the limit is not read at all; one under it is read up to one
    # byte past the limit, so a wrong Content-Length cannot make it larger.
    body = None if size > limit else request.read(limit + 1)
    answer = webhooks.webhook_receive(
        token=token,
        body=body,
        size=size,
        headers=request.headers,
        ip=client_ip(request),
    )
    response = JsonResponse(answer.body, status=answer.status)
    for name, value in answer.headers.items():
        response[name] = value
    return response
