from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from kiosk.forms import CleanText


class EmptyForm(FlaskForm):
    """A button-only POST still carries a CSRF token."""


class LoginForm(FlaskForm):
    email = EmailField(
        "Email",
        validators=[DataRequired("Enter your email."), Length(max=254), CleanText()],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password."), Length(max=200)],
        render_kw={"autocomplete": "current-password"},
    )


def _code_field(label: str, hint: str, numeric: bool) -> StringField:
    render_kw = {"autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false"}
    if numeric:
        render_kw["inputmode"] = "numeric"
    return StringField(
        label,
        validators=[DataRequired("Enter the code."), Length(max=40), CleanText()],
        description=hint,
        render_kw=render_kw,
    )


class SignInCodeForm(FlaskForm):
    """The second step of signing in: a code from the app, or a recovery code."""

    code = _code_field(
        "Code",
        "The six-digit code your authenticator app shows now, or one of your recovery codes.",
        numeric=False,
    )


class AppCodeForm(FlaskForm):
    """A code from the app: to finish setting it up, or to confirm a change."""

    code = _code_field(
        "Code from your authenticator app",
        "The six-digit code the app shows now for this account.",
        numeric=True,
    )


class EnrollCodeForm(FlaskForm):
    """The short code typed at the device that will be the kiosk."""

    code = StringField(
        "Setup code",
        description="8 letters and numbers, as shown on the district's kiosks page. "
        "Upper or lower case, with or without the dash.",
        validators=[DataRequired("Type the setup code."), Length(max=20), CleanText()],
        render_kw={
            "autocomplete": "off",
            "autocapitalize": "characters",
            "spellcheck": "false",
            "autocorrect": "off",
            "inputmode": "text",
            "class": "code-input",
        },
    )
    confirm = HiddenField()
