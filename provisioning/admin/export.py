"""Any admin list as CSV: every row the list holds with its filters, search and order (not
only a page), streamed as it is read, so a history of millions neither waits to start nor
fills the memory.

A list names its columns by `csv_fields` (model fields, read as plain values: the boot
history's million rows) or else exports the columns it shows, as text.
"""

from __future__ import annotations

import csv
import html
import re
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.apps import apps
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import display_for_field, label_for_field, lookup_field
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import Model
from django.http import Http404, HttpResponseBadRequest, StreamingHttpResponse
from django.utils import timezone
from django.utils.html import strip_tags

#: Rows read from the database at a time, and written to the client at a time.
CHUNK = 2000
#: A cell starting with one of these is a formula to a spreadsheet; the client's user agent
#: and the operators' notes are text anyone may have typed.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_BREAKS = re.compile(r"<br\s*/?>", re.I)


class _Echo:
    def write(self, value: str) -> str:
        return value


def export_list(site, request, app_label: str, model_name: str):
    """The list at /admin/<app>/<model>/ as a CSV download, with the same query string."""
    try:
        model = apps.get_model(app_label, model_name)
    except LookupError:
        raise Http404("no such list") from None
    model_admin = site._registry.get(model)
    if model_admin is None:
        raise Http404("no such list")
    if not model_admin.has_view_or_change_permission(request):
        raise PermissionDenied
    try:
        changelist = model_admin.get_changelist_instance(request)
    except IncorrectLookupParameters:
        return HttpResponseBadRequest("A filter of this list has a value it does not take.\n")
    header, rows = _columns(model_admin, changelist)
    response = StreamingHttpResponse(_lines(header, rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="{model_name}-{stamp}.csv"'
    return response


def _columns(model_admin, changelist) -> tuple[list[str], Iterator[list]]:
    queryset = changelist.queryset
    fields = getattr(model_admin, "csv_fields", None)
    if fields:
        header = [_field_label(model_admin.model, name) for name in fields]
        return header, (list(row) for row in queryset.values_list(*fields).iterator(CHUNK))
    names = [name for name in changelist.list_display if name != "action_checkbox"]
    header = [str(label_for_field(name, model_admin.model, model_admin)) for name in names]
    return header, ([_cell(name, obj, model_admin) for name in names]
                    for obj in queryset.iterator(CHUNK))  # fmt: skip


def _field_label(model: type[Model], path: str) -> str:
    """A column named by a field path (`network__slug`) is named by its first field."""
    return str(model._meta.get_field(path.split("__")[0]).verbose_name)


def _cell(name: str, obj: Model, model_admin):
    try:
        field, _attr, value = lookup_field(name, obj, model_admin)
    except (AttributeError, ObjectDoesNotExist):
        return ""
    if field is not None and getattr(field, "flatchoices", None) and value is not None:
        return display_for_field(value, field, "")  # the choice's label, as the list shows
    return value


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return (timezone.localtime(value) if timezone.is_aware(value) else value).isoformat()
    text = str(value)
    if "<" in text or "&" in text:
        text = html.unescape(strip_tags(_BREAKS.sub(" ", text)))
    if text.startswith(FORMULA_STARTS) and text != "-":  # "-": the admin's empty value
        text = "'" + text
    return text


def _lines(header: list[str], rows: Iterable[list]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    chunk = [writer.writerow(header)]
    for row in rows:
        chunk.append(writer.writerow([_text(value) for value in row]))
        if len(chunk) >= CHUNK:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)
