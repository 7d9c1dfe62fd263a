"""The page an invitation or password-reset link opens: the person sets their password.

GET only shows the form (link scanners in mail systems change nothing); POST checks the
password, hashes it with no lock held, then uses the link once. A used, replaced or expired
link gets a calm page and a 404."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField, ValidationError
from wtforms.validators import DataRequired, Length

from kiosk import webdb
from kiosk.auth import invitations, passwords
from kiosk.auth.passwords import password_problem
from kiosk.clock import now_utc

bp = Blueprint("welcome", __name__)


class WelcomeForm(FlaskForm):
    password = PasswordField(
        "New password",
        validators=[DataRequired("Enter a password."), Length(max=200)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "New password again",
        validators=[DataRequired("Enter the password again."), Length(max=200)],
        render_kw={"autocomplete": "new-password"},
    )

    def validate_confirm(self, field: PasswordField) -> None:
        if field.data != self.password.data:
            raise ValidationError("The two passwords are not the same.")


def _invalid() -> tuple[str, int]:
    return render_template("auth/welcome_invalid.html"), 404


@bp.route("/welcome/<token>", methods=["GET", "POST"])
def welcome(token: str) -> Response | str | tuple[str, int]:
    found = invitations.pending(webdb.session(), token, now_utc())
    if found is None:
        return _invalid()
    invitation, user = found
    form = WelcomeForm()
    if form.validate_on_submit():
        password = form.password.data or ""
        problem = password_problem(password, user.email)
        if problem:
            form.password.errors = [*form.password.errors, problem]
        else:
            # Slow on purpose: hashed before the write lock is taken.
            hashed = passwords.hash_password(password)
            with webdb.unit_of_work() as db:
                # redeem() uses the link once: of two presses, one sets the password.
                done = invitations.redeem(db, token, hashed, now_utc())
            if done is None:
                return _invalid()
            flash("Your password is set. Sign in with your email and the new password.", "info")
            return redirect(url_for("auth.login"))
    status = 422 if form.is_submitted() else 200
    return (
        render_template(
            "auth/welcome.html",
            form=form,
            person=user,
            purpose=invitation.purpose,
            expires=invitations.expiry_words(invitation.expires_at),
        ),
        status,
    )
