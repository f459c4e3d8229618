"""List filters an operator expects at fleet scale: a typed date range, machines not seen for
some days, machines seen today, a typed farm ID."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Q
from django.utils import timezone
from django.utils.http import urlencode

from ..validators import FARMER_ID_MAX

#: The most days a "seen" filter may ask about: a century.
MAX_DAYS = 36_500


def number(value: str, maximum: int, meaning: str) -> int:
    """`value` as a whole number from 0 to `maximum` (ASCII digits only: "²" is a digit to
    str.isdigit, not to int), else the list says its filter was wrong."""
    if not (value.isascii() and value.isdigit() and len(value) <= len(str(maximum))):
        raise IncorrectLookupParameters(meaning)
    if int(value) > maximum:
        raise IncorrectLookupParameters(meaning)
    return int(value)


def start_of(day: date) -> datetime:
    """Midnight at the start of `day`, in the service's time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def start_of_today() -> datetime:
    return start_of(timezone.localdate())


class DateRangeFilter(admin.ListFilter):
    """From one day to another, both included, typed as dates: the age filter's fixed spans
    (today, the past 7 days, this month) cannot say "from the 3rd to the 5th"."""

    title = "date range"
    template = "admin/provisioning/date_range_filter.html"
    field = "created_at"
    SINCE, UNTIL = "since", "until"

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        for name in (self.SINCE, self.UNTIL):
            if name in params:
                value = params.pop(name)
                self.used_parameters[name] = value[-1] if isinstance(value, list) else value
        # The other filters and the search stay when dates are typed in.
        mine = (self.SINCE, self.UNTIL, "p")
        self.kept_params = [(k, v) for k, v in request.GET.items() if k not in mine]
        self.clear_url = "?" + urlencode(self.kept_params)

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return [self.SINCE, self.UNTIL]

    def choices(self, changelist):
        return []  # the template draws two date boxes

    def value(self, name: str) -> str:
        return self.used_parameters.get(name, "")

    def _day(self, name: str) -> date | None:
        raw = self.value(name)
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError as exc:
            raise IncorrectLookupParameters(f"{name}: not a date (YYYY-MM-DD)") from exc

    def queryset(self, request, queryset):
        since, until = self._day(self.SINCE), self._day(self.UNTIL)
        if since is not None:
            queryset = queryset.filter(**{f"{self.field}__gte": start_of(since)})
        if until is not None:
            queryset = queryset.filter(**{f"{self.field}__lt": start_of(until + timedelta(1))})
        return queryset


class NotSeenFilter(admin.SimpleListFilter):
    """Nodes that have not asked for a boot for some days (or never)."""

    title = "not seen for"
    parameter_name = "not_seen"
    DAYS = (1, 7, 30, 90)
    NEVER = "never"

    def lookups(self, request, model_admin):
        days = [(str(n), f"{n} day{'s' if n > 1 else ''}") for n in self.DAYS]
        return [*days, (self.NEVER, "never seen")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if value == self.NEVER:
            return queryset.filter(last_seen__isnull=True)
        days = number(value, MAX_DAYS, "a number of days")
        return queryset.filter(last_seen__lt=timezone.now() - timedelta(days=days))


class SeenFilter(admin.SimpleListFilter):
    """Machines by their latest script or kernel download: seen today, lately, or not for
    some days."""

    title = "seen"
    parameter_name = "seen"
    TODAY = "today"

    def lookups(self, request, model_admin):
        return [
            (self.TODAY, "today"),
            ("7", "in the last 7 days"),
            ("not-7", "not for 7 days"),
            ("not-30", "not for 30 days"),
        ]

    @staticmethod
    def since(moment: datetime) -> Q:
        return Q(script_at__gte=moment) | Q(kernel_at__gte=moment)

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if value == self.TODAY:
            return queryset.filter(self.since(start_of_today()))
        days = number(value.removeprefix("not-"), MAX_DAYS, "a number of days")
        moment = timezone.now() - timedelta(days=days)
        return queryset.exclude(self.since(moment)) if value.startswith("not-") else (
            queryset.filter(self.since(moment))
        )  # fmt: skip


class FarmIdFilter(admin.SimpleListFilter):
    """Filter by a typed farm ID: a fleet has thousands of farms, too many to list. `lookup`
    is the farm ID's path from the list's model."""

    title = "farm ID"
    parameter_name = "farm"
    template = "admin/provisioning/farm_filter.html"
    lookup = "farm__farmer_id"

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        # The other filters and the search stay when a farm ID is typed in.
        self.kept_params = [(k, v) for k, v in request.GET.items() if k != self.parameter_name]
        self.clear_url = "?" + urlencode(self.kept_params)

    def has_output(self) -> bool:
        return True

    def lookups(self, request, model_admin):
        return []

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        farm = number(value, FARMER_ID_MAX, "a farm ID is a number")
        return queryset.filter(**{self.lookup: farm})
