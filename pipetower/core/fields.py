"""A model field whose value is encrypted with its owner's data key.

    class Server(models.Model):
        team = models.ForeignKey(Team, ...)
        private_key = EncryptedTextField(key_owner="team", blank=True)

`key_owner` names the attribute (a dotted path, or "self") that leads to an
object with an `encryption_key()` method returning its `DataKey`. Values are
encrypted in `pre_save`, so only `Model.save()` writes them; a bulk `update()`
with plaintext is refused rather than written in the clear. Encrypted columns
cannot be filtered on.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models

from pipetower.core import crypto


class Ciphertext(str):
    """A string known to be Pipetower ciphertext, safe to write to the database."""


class EncryptedTextField(models.TextField):
    description = "Text encrypted at rest with the owner's data key"

    def __init__(self, *args: Any, key_owner: str = "self", **kwargs: Any) -> None:
        self.key_owner = key_owner
        kwargs.setdefault("editable", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["key_owner"] = self.key_owner
        return name, path, args, kwargs

    @property
    def context(self) -> str:
        return f"{self.model._meta.label_lower}.{self.name}"

    def owner_of(self, instance: models.Model) -> Any:
        owner: Any = instance
        if self.key_owner != "self":
            for part in self.key_owner.split("."):
                owner = getattr(owner, part)
        if not hasattr(owner, "encryption_key"):
            raise ImproperlyConfigured(
                f"{self.context}: key owner {self.key_owner!r} has no encryption_key() method."
            )
        return owner

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = getattr(model_instance, self.attname)
        if value is None or value == "":
            return value
        data_key = self.owner_of(model_instance).encryption_key()
        return Ciphertext(crypto.encrypt(str(value), data_key=data_key, context=self.context))

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None or value == "" or isinstance(value, Ciphertext):
            return value
        raise crypto.CryptoError(
            f"{self.context} is encrypted: write it through Model.save(), never update() "
            "or a filter."
        )

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return crypto.decrypt(value, context=self.context)

    def to_python(self, value: Any) -> Any:
        return value


def encrypted_fields() -> list[tuple[type[models.Model], list[EncryptedTextField]]]:
    """Every concrete model with encrypted fields, found by field type."""
    from django.apps import apps

    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if fields:
            found.append((model, fields))
    return found


def encrypted_fields_rotate() -> dict[str, int]:
    """Re-wrap data keys under the primary master key, then re-encrypt every value."""
    counts = {"data keys": crypto.data_keys_rewrap()}
    for model, fields in encrypted_fields():
        names = [f.name for f in fields]
        rows = 0
        for obj in model._base_manager.iterator(chunk_size=500):
            obj.save(update_fields=names)
            rows += 1
        counts[model._meta.label] = rows
    return counts
