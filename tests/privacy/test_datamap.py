"""The data map declares every field that can hold personal data, in every app."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from pipetower.privacy.datamap import DATA_MAP, FieldDecl, ModelDecl

LEGAL_BASES = {"contract", "consent", "legitimate_interest", "legal_obligation"}
ERASURES = {"delete", "anonymise", "keep", "cascade"}
PERSONAL_NAME = re.compile(r"(^|_)(name|email|ip|user_agent|address|phone)($|_)")


def _is_test_only(model: type[models.Model]) -> bool:
    return model._meta.app_config.name.startswith("tests.")  # type: ignore[union-attr]


def could_hold_personal_data(f: models.Field) -> bool:  # type: ignore[type-arg]
    if f.is_relation and f.related_model is get_user_model():
        return True
    if isinstance(
        f,
        (
            models.EmailField,
            models.GenericIPAddressField,
            models.TextField,
            models.JSONField,
            models.BinaryField,
            models.FileField,
        ),
    ):
        return True
    return bool(PERSONAL_NAME.search(f.name))


def undeclared_fields(data_map: list[ModelDecl] = DATA_MAP) -> list[str]:
    by_label = {decl.model: decl for decl in data_map}
    missing = []
    for model in apps.get_models():
        if _is_test_only(model):
            continue
        decl = by_label.get(model._meta.label)
        for f in model._meta.get_fields():
            if not getattr(f, "concrete", False) or not could_hold_personal_data(f):  # type: ignore[arg-type]
                continue
            if decl is None or (f.name not in decl.fields and f.name not in decl.not_personal):
                missing.append(f"{model._meta.label}.{f.name}")
    return missing


def test_every_field_that_can_hold_personal_data_is_declared() -> None:
    assert undeclared_fields() == []


def test_a_missing_declaration_fails_the_check() -> None:
    # Prove the check can fail: drop one declared field and it must be reported.
    trimmed = [
        replace(d, fields={k: v for k, v in d.fields.items() if k != "email"})
        if d.model == "support.Correspondence"
        else d
        for d in DATA_MAP
    ]
    assert undeclared_fields(trimmed) == ["support.Correspondence.email"]


def test_a_model_missing_from_the_map_is_reported_field_by_field() -> None:
    trimmed = [d for d in DATA_MAP if d.model != "api.ApiToken"]
    assert undeclared_fields(trimmed) == [
        "api.ApiToken.user",
        "api.ApiToken.name",
        "api.ApiToken.last_used_ip",
    ]


def test_third_party_models_are_walked_too() -> None:
    labels = {m._meta.label for m in apps.get_models()}
    declared = {d.model for d in DATA_MAP}
    for label in ("account.EmailAddress", "mfa.Authenticator", "sessions.Session"):
        assert label in labels
        assert label in declared


def test_every_declaration_names_an_existing_model_and_field() -> None:
    for decl in DATA_MAP:
        model = apps.get_model(decl.model)  # raises LookupError for a wrong name
        for name in [*decl.fields, *decl.not_personal]:
            try:
                model._meta.get_field(name)
            except FieldDoesNotExist:
                pytest.fail(f"{decl.model} declares {name!r}, which it does not have")


def test_each_model_is_declared_once() -> None:
    labels = [d.model for d in DATA_MAP]
    assert len(labels) == len(set(labels))


def _walk(model: type[models.Model], path: str) -> type[models.Model]:
    for part in path.split("__"):
        model = model._meta.get_field(part).related_model  # type: ignore[assignment]
    return model


def test_subject_and_team_paths_lead_to_a_person_and_a_team() -> None:
    from pipetower.teams.models import Team

    user_model = get_user_model()
    for decl in DATA_MAP:
        model = apps.get_model(decl.model)
        if decl.subject is not None:
            target = model if decl.subject == "" else _walk(model, decl.subject)
            assert target is user_model, decl.model
        if decl.team is not None:
            target = model if decl.team == "" else _walk(model, decl.team)
            assert target is Team, decl.model


def test_every_declaration_says_why_on_what_basis_and_for_how_long() -> None:
    for decl in DATA_MAP:
        assert decl.title, decl.model
        for name, fd in decl.fields.items():
            where = f"{decl.model}.{name}"
            assert isinstance(fd, FieldDecl)
            assert fd.category.split(".")[0] in {"user", "system"}, where
            assert fd.purpose and fd.retention, where
            assert fd.legal_basis in LEGAL_BASES, where
            assert fd.erasure in ERASURES, where
            if fd.secret:
                assert not fd.export, f"{where} is secret and must not be exported"
        for name, reason in decl.not_personal.items():
            assert reason.strip(), f"{decl.model}.{name} needs a reason to be not personal"


def test_a_field_is_either_personal_or_not_never_both() -> None:
    for decl in DATA_MAP:
        assert not set(decl.fields) & set(decl.not_personal), decl.model


def test_rows_found_by_address_name_an_email_field_that_is_declared() -> None:
    found = [d for d in DATA_MAP if d.subject_email]
    assert [d.model for d in found] == ["privacy.SubprocessorSubscriber"]
    for decl in found:
        field = apps.get_model(decl.model)._meta.get_field(decl.subject_email or "")
        assert isinstance(field, models.EmailField), decl.model
        assert decl.fields[field.name].category == "user.contact.email", decl.model
