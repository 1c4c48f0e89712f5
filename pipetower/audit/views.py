"""The team's activity log: who did what, when and from where."""

from __future__ import annotations

import csv
from typing import Any, cast

from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from pipetower.audit.selectors import (
    audit_actors_for_team,
    audit_events_for_team,
    audit_verbs_for_team,
)
from pipetower.audit.wording import describe, verb_choices
from pipetower.core.query import BoundedDateField
from pipetower.teams.models import Team
from pipetower.teams.permissions import team_view

PAGE_SIZE = 50


class ActivityFilterForm(forms.Form):
    verb = forms.ChoiceField(label="What", required=False)
    actor = forms.TypedChoiceField(label="Who", required=False, coerce=int, empty_value=None)
    since = BoundedDateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = BoundedDateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(
        self, *args: Any, verbs: list[str], actors: list[tuple[int, str]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["verb"]).choices = [
            ("", "Everything"),
            *verb_choices(verbs),
        ]
        cast(forms.ChoiceField, self.fields["actor"]).choices = [("", "Anyone")] + [
            (str(actor_id), label) for actor_id, label in actors
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return data


def _filtered(request: HttpRequest, team: Team) -> tuple[ActivityFilterForm, Any, bool]:
    form = ActivityFilterForm(
        request.GET,
        verbs=audit_verbs_for_team(team=team),
        actors=audit_actors_for_team(team=team),
    )
    form.is_valid()
    # Filters that validated apply; the others show their error next to the field.
    filters = {name: form.cleaned_data.get(name) for name in ("verb", "actor", "since", "until")}
    events = audit_events_for_team(
        team=team,
        actor_id=filters["actor"],
        verb=filters["verb"] or None,
        since=filters["since"],
        until=filters["until"],
    )
    return form, events, any(value for value in filters.values())


@team_view()
def activity(request: HttpRequest) -> HttpResponse:
    team = cast(Team, request.team)  # type: ignore[attr-defined]
    form, events, filtered = _filtered(request, team)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    described = [describe(event, team_slug=team.slug) for event in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/activity.html",
        {
            "team": team,
            "form": form,
            "page": page,
            "events": described,
            "filtered": filtered,
            "csv_query": query.urlencode(),
        },
        status=400 if form.errors else 200,
    )


@team_view()
def activity_csv(request: HttpRequest) -> HttpResponse:
    """The same events, with the same filters, as a CSV file (newest first)."""
    team = cast(Team, request.team)  # type: ignore[attr-defined]
    _form, events, _filtered_on = _filtered(request, team)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="activity-{team.slug}.csv"'
    writer = csv.writer(response)
    writer.writerow(["time_utc", "who", "what", "target", "event", "ip_address"])
    for event in events.iterator(chunk_size=500):
        words = describe(event, team_slug=team.slug)
        writer.writerow(
            [
                event.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                _cell(event.actor_label),
                _cell(words.text),
                _cell(words.target),
                event.verb,
                event.ip or "",
            ]
        )
    return response


def _cell(value: str) -> str:
    """A spreadsheet must not run a name as a formula (=, +, -, @ at the start)."""
    return "'" + value if value[:1] in {"=", "+", "-", "@", "\t", "\r"} else value
