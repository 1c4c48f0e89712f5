"""A model field whose value is encrypted with its owner's data key.

    class Server(models.Model):
        team = models.ForeignKey(Team, ...)
        private_key = EncryptedTextField(key_owner="team", blank=True)

`key_owner` names the attribute (a dotted path, or "self") that leads to an
object with an `encryption_key()` method returning its `DataKey` (Team and User
have one; an owner with a `data_key_id` attribute is checked without a query).

- Values are encrypted in `pre_save`, so `Model.save()`, `create()` and
  `bulk_create()` write ciphertext; a bulk `update()` or `bulk_update()` with
  plaintext is refused rather than written in the clear.
- Values are decrypted when the attribute is first read, with the owner's data
  key only: ciphertext copied from another owner's row, or from another column,
  raises `DecryptionError`. Loading a row whose value cannot be decrypted does
  not fail; reading that attribute does.
- Encrypted columns cannot be filtered on, and `values()` / `values_list()`
  return the stored `Ciphertext`: read secrets through model instances.
- To move a row to another owner, read the value before changing the owner
  (`secret = obj.value; obj.team = other; obj.value = secret; obj.save()`);
  saving an unread value under a different owner raises `DecryptionError`.
- `dumpdata` and other serializers see ciphertext, never the plaintext.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_save

from pipetower.core import crypto

_BATCH = 200
_UNBOUND = "_pipetower_unbound_fields"


class Ciphertext(str):
    """A string known to be Pipetower ciphertext, safe to write to the database."""


class EncryptedAttribute(DeferredAttribute):
    """Holds the stored ciphertext and decrypts it on first read, for this row's owner."""

    field: EncryptedTextField

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if isinstance(value, Ciphertext):
            value = self.field.open(instance, value)
            instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = value


class EncryptedTextField(models.TextField):
    description = "Text encrypted at rest with the owner's data key"
    descriptor_class = EncryptedAttribute

    def __init__(self, *args: Any, key_owner: str = "self", **kwargs: Any) -> None:
        self.key_owner = key_owner
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

    def owner_key_id(self, instance: models.Model) -> int:
        """The id of the owner's data key (read from `data_key_id` when it is set)."""
        owner = self.owner_of(instance)
        key_id = getattr(owner, "data_key_id", None)
        if key_id is None:
            key_id = owner.encryption_key().pk
        return int(key_id)

    def seal(self, instance: models.Model, plaintext: str) -> Ciphertext:
        """Encrypt `plaintext` for this field of `instance`, under its owner's data key."""
        data_key = self.owner_of(instance).encryption_key()
        return Ciphertext(
            crypto.encrypt(plaintext, data_key=data_key, context=self.context, row=instance.pk)
        )

    def open(self, instance: models.Model, token: str) -> str:
        """Decrypt a stored value of this field of `instance`; DecryptionError otherwise."""
        return crypto.decrypt(
            token, context=self.context, data_key_id=self.owner_key_id(instance), row=instance.pk
        )

    def contribute_to_class(
        self, cls: type[models.Model], name: str, private_only: bool = False
    ) -> None:
        super().contribute_to_class(cls, name, private_only=private_only)
        if not cls._meta.abstract:
            post_save.connect(
                _bind_after_insert, sender=cls, dispatch_uid=f"pt-bind-{cls._meta.label_lower}"
            )

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = model_instance.__dict__.get(self.attname)
        if value is None or value == "":
            return value
        if isinstance(value, Ciphertext):
            # Unread since it was loaded: write the same bytes back, but only
            # under the owner they were encrypted for.
            try:
                token_key_id, _ = crypto.parse_token(value)
            except crypto.DecryptionError:
                return value  # already unreadable; writing it back changes nothing
            if token_key_id != self.owner_key_id(model_instance):
                raise crypto.DecryptionError(
                    f"A value for {self.context} was encrypted for a different owner: read it "
                    "before moving the row to another owner."
                )
            return value
        if model_instance.pk is None:
            # No primary key yet: sealed for the column now, re-sealed for the
            # row right after the insert (_bind_after_insert).
            model_instance.__dict__.setdefault(_UNBOUND, set()).add(self.name)
        return self.seal(model_instance, str(value))

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None or value == "" or isinstance(value, Ciphertext):
            return value
        raise crypto.CryptoError(
            f"{self.context} is encrypted: write it through Model.save(), never update(), "
            "bulk_update() or a filter."
        )

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return Ciphertext(value)

    def to_python(self, value: Any) -> Any:
        return value

    def value_to_string(self, obj: models.Model) -> str:
        """Serializers (dumpdata) get ciphertext, never the plaintext."""
        value = obj.__dict__.get(self.attname)
        if value is None or value == "" or isinstance(value, Ciphertext):
            return value or ""
        return self.seal(obj, str(value))


def _bind_after_insert(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    """Re-seal the values written before the row had a primary key, bound to the row."""
    pending = instance.__dict__.pop(_UNBOUND, None)
    if not pending or instance.pk is None or kwargs.get("raw"):
        return
    updates = {}
    for name in pending:
        field = instance._meta.get_field(name)
        assert isinstance(field, EncryptedTextField)
        plaintext = instance.__dict__.get(field.attname)
        if plaintext is None or plaintext == "" or isinstance(plaintext, Ciphertext):
            continue
        updates[field.attname] = field.seal(instance, str(plaintext))
    if updates:
        sender._base_manager.filter(pk=instance.pk).update(**updates)


def encrypted_fields() -> list[tuple[type[models.Model], list[EncryptedTextField]]]:
    """Every concrete model with encrypted fields, found by field type."""
    from django.apps import apps

    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        fields = [f for f in model._meta.local_concrete_fields if isinstance(f, EncryptedTextField)]
        if fields:
            found.append((model, fields))
    return found


def _owner_relations(model: type[models.Model], fields: list[EncryptedTextField]) -> list[str]:
    """The `select_related` paths that reach the fields' owners, where they are relations."""
    paths = set()
    for field in fields:
        if field.key_owner == "self":
            continue
        opts, parts = model._meta, field.key_owner.split(".")
        for part in parts:
            try:
                relation = opts.get_field(part)
            except FieldDoesNotExist:
                break
            if not (relation.many_to_one or relation.one_to_one) or relation.auto_created:
                break
            assert relation.related_model is not None
            opts = relation.related_model._meta
        else:
            paths.add("__".join(parts))
    return sorted(paths)


def _batches(model: type[models.Model]) -> Iterator[list[Any]]:
    pks = list(model._base_manager.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(pks), _BATCH):
        yield pks[start : start + _BATCH]


def encrypted_fields_rotate() -> dict[str, int]:
    """Re-wrap data keys under the primary master key, then re-encrypt every value.

    Returns counts: "data keys" re-wrapped, values re-encrypted per model label,
    and "unreadable values" (destroyed keys, tampering) that were left as they are.
    Each value is replaced only if nobody changed it meanwhile.
    """
    counts = {"data keys": crypto.data_keys_rewrap()}
    unreadable = 0
    for model, fields in encrypted_fields():
        manager = model._base_manager
        related = _owner_relations(model, fields)
        rewritten = 0
        for batch in _batches(model):
            for obj in manager.filter(pk__in=batch).select_related(*related):
                for field in fields:
                    stored = obj.__dict__.get(field.attname)
                    if not isinstance(stored, Ciphertext):
                        continue
                    try:
                        plaintext = getattr(obj, field.attname)
                    except crypto.DecryptionError:
                        unreadable += 1
                        continue
                    fresh = field.seal(obj, plaintext)
                    rewritten += manager.filter(pk=obj.pk, **{field.attname: stored}).update(
                        **{field.attname: fresh}
                    )
        counts[model._meta.label] = rewritten
    counts["unreadable values"] = unreadable
    return counts
