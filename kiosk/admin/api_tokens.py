"""API tokens: make one for a reviewer or counsel (shown once), see them all, revoke one.

The rules are kiosk.auth.api_tokens (shared with `flask api-tokens`); each change is one unit
of work that also records it (kiosk.admin.changes), without the token."""

from __future__ import annotations

from datetime import datetime

from flask import abort, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from kiosk import webdb
from kiosk.admin.api_token_forms import ApiTokenForm
from kiosk.admin.blueprint import bp
from kiosk.admin.changes import record_change
from kiosk.auth import api_tokens
from kiosk.auth.forms import EmptyForm
from kiosk.auth.policy import ADMIN, current_user, requires
from kiosk.clock import now_utc
from kiosk.forms import options
from kiosk.models import ApiToken, User
from kiosk.protocol import people
from kiosk.protocol.setup import SetupError


def _when(moment: datetime | None, empty: str) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else empty


def _me() -> User:
    user = current_user()
    if user is None:
        abort(403)
    return user


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def _form() -> ApiTokenForm:
    form = ApiTokenForm()
    holders = api_tokens.eligible_holders(webdb.session())
    form.holder.choices = options(
        [("", "Choose a person")]
        + [(u.public_id, f"{u.display_name} ({u.email or 'no email'})") for u in holders]
    )
    return form


def _page(form: ApiTokenForm, status: int = 200) -> tuple[str, int]:
    rows = [
        {
            "id": row.id,
            "holder": row.user.display_name,
            "holder_active": row.user.active,
            "label": row.label,
            "prefix": row.prefix,
            "created": _when(row.created_at, ""),
            "last_used": _when(row.last_used_at, "Never"),
            "revoked": _when(row.revoked_at, "") if row.revoked_at else "",
        }
        for row in reversed(api_tokens.all_tokens(webdb.session()))
    ]
    return (
        render_template(
            "admin/api_tokens.html", form=form, rows=rows, revoke_form=EmptyForm(formdata=None)
        ),
        status,
    )


@bp.route("/api-tokens", methods=["GET", "POST"], endpoint="api_tokens")
@requires(ADMIN)
def api_tokens_page() -> tuple[str, int] | str:
    """The tokens, newest first, and the form that makes one."""
    form = _form()
    if not form.is_submitted():
        return _page(form)
    if not form.validate():
        return _page(form, 422)
    try:
        with webdb.unit_of_work() as db:
            holder = people.find_user_by_public_id(db, form.holder.data or "")
            if holder is None:
                raise SetupError("choose a reviewer or counsel from the list", "holder")
            made = api_tokens.create(db, holder, form.label.data or "", now_utc())
            record_change(
                db,
                _me(),
                "api_token.create",
                f"api_token:{made.row.id}",
                None,
                api_tokens.snapshot(made.row),
            )
            shown = {
                "value": made.value,
                "holder": holder.display_name,
                "label": made.row.label,
            }
    except SetupError as exc:
        field = form.label if exc.field == "label" else form.holder
        field.errors = [*field.errors, _sentence(exc)]
        return _page(form, 422)
    # Shown on this page once; the list never shows it again.
    return render_template("admin/api_token_made.html", **shown)


@bp.post("/api-tokens/<int:token_id>/revoke", endpoint="api_token_revoke")
@requires(ADMIN)
def api_token_revoke(token_id: int) -> Response | tuple[str, int]:
    """Stop a token at once; its holder's other tokens keep working."""
    if webdb.session().get(ApiToken, token_id) is None:
        abort(404)
    if not EmptyForm().validate_on_submit():
        flash("The form expired. Please try again.", "warning")
        return redirect(url_for("admin.api_tokens"))
    with webdb.unit_of_work() as db:
        row, changed = api_tokens.revoke(db, token_id, now_utc())
        if changed:
            after = api_tokens.snapshot(row)
            record_change(
                db,
                _me(),
                "api_token.revoke",
                f"api_token:{row.id}",
                {**after, "revoked": False},
                after,
            )
        label = row.label
    flash(f"The token “{label}” is revoked: it no longer works.", "info")
    return redirect(url_for("admin.api_tokens"))
