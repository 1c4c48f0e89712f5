from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

ANSWER_WITHIN_DAYS = 30
# One extension, at most, by up to two further months (told to the person, with the reason).
EXTENSION_DAYS = 60


class Purpose(models.TextChoices):
    """Optional processing a person may agree to. Each one is off until they say yes."""

    NEWSLETTER = "newsletter", "Newsletter and product news"
    PRODUCT_SURVEYS = "product_surveys", "Product surveys"
    INTERVIEW_RECORDING = "interview_recording", "Recording of customer interviews"
    ANALYTICS_COOKIES = "analytics_cookies", "Analytics cookies"
    AB_TESTING_COOKIES = "ab_testing_cookies", "A/B testing cookies"
    MARKETING_NAME_USE = "marketing_name_use", "Use of your name or company in marketing"


class Channel(models.TextChoices):
    WEB = "web", "Privacy center"
    API = "api", "API"
    EMAIL_LINK = "email_link", "Link in an email"
    COOKIE_BANNER = "cookie_banner", "Cookie banner"
    STAFF = "staff", "Recorded by staff on the person's instruction"
    INTERVIEW = "interview", "Interview invitation"


class ConsentEvent(models.Model):
    """One grant or withdrawal. Rows are only ever added; the latest one per
    (person, purpose) is the current choice (`privacy.consent.consent_state`)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="consent_events",
    )
    anonymous_id = models.CharField(max_length=64, blank=True, db_index=True)
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    granted = models.BooleanField()
    channel = models.CharField(max_length=16, choices=Channel.choices)
    wording_version = models.CharField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-id",)
        indexes = [
            models.Index(fields=("user", "purpose", "-id"), name="consent_user_purpose"),
            models.Index(fields=("anonymous_id", "purpose", "-id"), name="consent_anon_purpose"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=False) | ~models.Q(anonymous_id=""),
                name="consent_event_has_subject",
            )
        ]

    def __str__(self) -> str:
        verb = "granted" if self.granted else "withdrew"
        who = self.user_id or self.anonymous_id
        return f"{who} {verb} {self.purpose} ({self.channel})"


class ProcessingRestriction(models.Model):
    """A person asked Pipetower to limit processing of their data to what the
    service needs. While `lifted_at` is empty, every optional job skips them."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="restrictions"
    )
    created_at = models.DateTimeField(default=timezone.now)
    lift_requested_at = models.DateTimeField(null=True, blank=True)
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=("user",),
                condition=models.Q(lifted_at__isnull=True),
                name="one_active_restriction_per_user",
            )
        ]

    def __str__(self) -> str:
        state = "lifted" if self.lifted_at else "active"
        return f"restriction for {self.user_id} ({state})"

    @property
    def is_active(self) -> bool:
        return self.lifted_at is None


class DataSubjectRequest(models.Model):
    """A request a person makes about their data; Pipetower answers within 30 days
    of receiving it (`privacy.rights_requests`). People without an account file one
    with their email address, which counts as received once they confirm it with
    the code emailed to them."""

    class Kind(models.TextChoices):
        ACCESS = "access", "Access: a copy of my data"
        CORRECTION = "correction", "Correction of something I cannot edit myself"
        DELETION = "deletion", "Deletion"
        RESTRICTION = "restriction", "Restriction of processing"
        OBJECTION = "objection", "Objection to processing"
        PORTABILITY = "portability", "Portability: my data in a reusable format"
        CONSENT = "consent", "A change to what I agreed to"
        COMPLAINT = "complaint", "Complaint"

    class Status(models.TextChoices):
        UNCONFIRMED = "unconfirmed", "Waiting for the emailed code"
        OPEN = "open", "Received"
        IN_PROGRESS = "in_progress", "Being worked on"
        DONE = "done", "Answered"
        REJECTED = "rejected", "Denied, with reasons"

    class Source(models.TextChoices):
        FORM = "form", "Written request"
        SELF_SERVICE = "self_service", "Done by the person in their privacy center"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="data_subject_requests",
        null=True,
        blank=True,
    )
    # The address of a person without an account (an account holder's requests
    # are answered at their account's address and leave this empty).
    email = models.EmailField(blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    details = models.TextField()
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.FORM)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    answer = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    received_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    # The emailed confirmation code, hashed (a keyed hash: never the code itself).
    code_hash = models.CharField(max_length=128, blank=True)
    code_expires_at = models.DateTimeField(null=True, blank=True)
    code_attempts = models.PositiveSmallIntegerField(default=0)
    extended_at = models.DateTimeField(null=True, blank=True)
    extension_reason = models.TextField(blank=True)
    reminded_day20_at = models.DateTimeField(null=True, blank=True)
    reminded_day25_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=("status", "due_at"), name="dsr_open_by_due")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} request {self.pk}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.status != self.Status.UNCONFIRMED:
            if self.received_at is None:
                self.received_at = self.created_at or timezone.now()
            if self.due_at is None:
                self.due_at = self.received_at + timedelta(days=ANSWER_WITHIN_DAYS)
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def is_open(self) -> bool:
        return self.status in (self.Status.OPEN, self.Status.IN_PROGRESS)

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due_at is not None and self.due_at < timezone.now()

    @property
    def days_left(self) -> int | None:
        """Whole days until the answer is due (negative once overdue); None when
        the request is not waiting for an answer."""
        if not self.is_open or self.due_at is None:
            return None
        seconds = (self.due_at - timezone.now()).total_seconds()
        return int(seconds // 86400)

    @property
    def reply_to(self) -> str:
        """Where answers and notices about this request go."""
        return self.user.email if self.user_id is not None else self.email  # type: ignore[union-attr]


# =============================================================================
# Export, deletion and legal holds (export.py, importer.py, deletion.py, holds.py)
# =============================================================================


class ExportJob(models.Model):
    """One self-service export: built in the background, downloadable for 7 days."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting to start"
        BUILDING = "building", "Building"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="export_jobs"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)  # percent
    file = models.FileField(upload_to="exports/", blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    downloaded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            # At most one export being built per person (no duplicate jobs).
            models.UniqueConstraint(
                fields=("user",),
                condition=models.Q(status__in=("queued", "building")),
                name="one_building_export_per_user",
            ),
        ]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.status})"

    @property
    def is_building(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.BUILDING)

    @property
    def is_downloadable(self) -> bool:
        return (
            self.status == self.Status.READY
            and bool(self.file)
            and self.expires_at is not None
            and self.expires_at > timezone.now()
        )


class AccountDeletion(models.Model):
    """A request to delete an account: erased when the grace period ends.

    `user` is cleared by the erasure; the row then keeps only dates and the
    report's id, nothing that names the person.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        CANCELLED = "cancelled", "Cancelled"
        COMPLETED = "completed", "Completed"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="account_deletions",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    requested_at = models.DateTimeField(default=timezone.now)
    scheduled_for = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    report = models.OneToOneField(
        "privacy.DeletionReport", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ("-requested_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=("user",),
                condition=models.Q(status="scheduled"),
                name="one_scheduled_deletion_per_user",
            ),
        ]

    def __str__(self) -> str:
        return f"account deletion {self.pk} ({self.status})"


class LegalHold(models.Model):
    """Records that must be kept despite a deletion (a court order, a tax rule).

    A hold names a person (`user`); while it is active, their deletion keeps
    the records listed under `scope` (model labels such as "audit.AuditEvent")
    and the person's identity fields. Lifting the hold purges what it kept.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="legal_holds",
    )
    reason = models.CharField(max_length=300)
    scope = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"legal hold {self.pk}: {self.reason}"

    def is_active(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.lifted_at is None and (self.expires_at is None or self.expires_at > now)


class DeletionReport(models.Model):
    """What a deletion did, without personal data: categories, counts, what was kept and why."""

    created_at = models.DateTimeField(default=timezone.now)
    categories = models.JSONField(default=dict)  # {"accounts.User": {"deleted": 1}, ...}
    kept = models.JSONField(default=list)  # [{"model": ..., "count": n, "reason": ...}]
    files_deleted = models.PositiveIntegerField(default=0)
    sessions_ended = models.PositiveIntegerField(default=0)
    data_key_destroyed = models.BooleanField(default=False)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"deletion report {self.pk}"


# =============================================================================
# Support access: staff see a team's content only with the team's permission
# (support_access.py)
# =============================================================================

SUPPORT_GRANT_MAX_DAYS = 7


class SupportGrant(models.Model):
    """A team owner's or admin's permission for Pipetower staff to look into the team.

    Scoped (read only, or also fix automation), time-limited (at most 7 days),
    revocable; every staff request under it becomes a `StaffAccess` row."""

    class Scope(models.TextChoices):
        READ = "read", "Read only"
        FIX = "fix", "Read and fix automation (actions and runs)"

    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="support_grants")
    scope = models.CharField(max_length=8, choices=Scope.choices)
    reason = models.CharField(max_length=300)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # When the summary of staff access under this grant was mailed to the owners.
    summary_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=("team", "expires_at"), name="support_grant_team_expiry")]

    def __str__(self) -> str:
        return f"support access {self.pk} to team {self.team_id} ({self.state})"

    def is_active(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and self.expires_at > now

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "active"

    @property
    def ended_at(self) -> datetime | None:
        if self.revoked_at is not None:
            return self.revoked_at
        return self.expires_at if self.expires_at <= timezone.now() else None


class StaffAccess(models.Model):
    """One page a staff member opened (or one change they made) under a support grant."""

    class Kind(models.TextChoices):
        VIEW = "view", "Viewed"
        CHANGE = "change", "Changed"

    grant = models.ForeignKey(SupportGrant, on_delete=models.CASCADE, related_name="accesses")
    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="+")
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    staff_label = models.CharField(max_length=254)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    page = models.CharField(max_length=100, blank=True)  # the URL name, e.g. "runs:detail"
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name_plural = "staff accesses"

    def __str__(self) -> str:
        return f"staff access {self.pk} under support access {self.grant_id}"


# =============================================================================
# Public registers: subprocessors (subprocessors.py) and government and legal
# requests (legal_requests.py)
# =============================================================================


class Subprocessor(models.Model):
    """A company that processes personal data for Pipetower, listed publicly.

    Staff keep the list in the back office; every change goes through
    `subprocessors.subprocessor_add/_change/_remove`, which audit it and mail
    the confirmed subscribers what changed."""

    name = models.CharField(max_length=200)
    purpose = models.CharField(max_length=500)
    location = models.CharField(max_length=200)
    # The day it started processing; a later day announces one that has not started yet.
    since = models.DateField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.UniqueConstraint(Lower("name"), name="one_subprocessor_per_name"),
        ]

    def __str__(self) -> str:
        return self.name


class SubprocessorChange(models.Model):
    """One change of the subprocessor list, in plain words: what subscribers are
    mailed, and the list's public history."""

    class Kind(models.TextChoices):
        ADDED = "added", "Added"
        CHANGED = "changed", "Changed"
        REMOVED = "removed", "Removed"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(max_length=200)  # the subprocessor's name at the time
    summary = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    sent_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.name}"


class SubprocessorSubscriber(models.Model):
    """An address that asked to hear about subprocessor changes and confirmed it.

    Only confirmed addresses are stored: until the link in the confirmation email
    is used, the address lives only inside that signed link."""

    email = models.EmailField(unique=True)
    confirmed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        # The address stays out of labels (the activity log copies them).
        return f"subprocessor-list subscriber {self.pk}"


class LegalRequest(models.Model):
    """A request for data from a government or legal authority, as staff recorded it.

    Only yearly counts are ever published (the transparency page); the rows stay
    in the back office."""

    authority = models.CharField(max_length=200)
    received_on = models.DateField()
    scope = models.TextField()
    disclosed = models.BooleanField()
    reason = models.TextField(blank=True)
    customer_notified = models.BooleanField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-received_on", "-id")
        indexes = [models.Index(fields=("received_on",), name="legal_request_received")]

    def __str__(self) -> str:
        return f"legal request {self.pk}"


# =============================================================================
# Privacy policy versions and change announcements (policy.py)
# =============================================================================


class PolicyVersion(models.Model):
    """One published version of the privacy policy, numbered 1, 2, 3...

    Published through `privacy.policy.policy_version_publish` only, and never
    changed afterwards: a correction is a new version. The number is the
    primary key, so a person's acknowledgement in their export names it."""

    number = models.PositiveIntegerField(primary_key=True)
    text = models.TextField(
        help_text="The whole policy, in Markdown: # headings, paragraphs, - lists, "
        "**bold**, *italic*, `code` and [links](https://example.com). HTML is shown as text."
    )
    summary = models.TextField(
        help_text="What changed since the previous version, in a few plain sentences."
    )
    significant = models.BooleanField(
        default=False,
        help_text="A significant change is emailed to every active account as a service "
        "notice, and signed-in people see a banner until they acknowledge it.",
    )
    published_at = models.DateTimeField(default=timezone.now)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ("-number",)

    def __str__(self) -> str:
        return f"Privacy policy version {self.number}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise ValueError("A published policy version never changes; publish a new one.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class PolicyNotice(models.Model):
    """The email announcing a significant version to one account.

    All rows are written when the version is published, so the recipients are
    fixed then; the sender claims a row before sending and marks it sent after,
    so a crash resumes where it stopped and nobody is emailed twice."""

    version = models.ForeignKey(PolicyVersion, on_delete=models.CASCADE, related_name="notices")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="policy_notices"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("version", "id")
        constraints = [
            models.UniqueConstraint(fields=("version", "user"), name="one_policy_notice_per_user")
        ]
        indexes = [models.Index(fields=("version", "sent_at"), name="policy_notice_progress")]

    def __str__(self) -> str:
        state = "sent" if self.sent_at else "waiting"
        return f"notice of policy version {self.version_id} to {self.user_id} ({state})"


class PolicyAcknowledgement(models.Model):
    """A person said they have seen a significant version (the banner's button)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="policy_acknowledgements"
    )
    version = models.ForeignKey(
        PolicyVersion, on_delete=models.PROTECT, related_name="acknowledgements"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(fields=("user", "version"), name="one_policy_ack_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} acknowledged policy version {self.version_id}"
