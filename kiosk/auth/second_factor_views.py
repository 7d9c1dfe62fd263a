"""The second factor in the browser: the code step of signing in, setting it up (at sign-in
when the role requires it, or from the account page), and the account security page.

Every code typed here counts in the sign-in throttle for the account (kiosk.auth.throttle),
in the same unit of work that checks it, so guessing is limited across servers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from flask import current_app, flash, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from kiosk import webdb
from kiosk.auth import second_factor, throttle
from kiosk.auth.forms import AppCodeForm, SignInCodeForm
from kiosk.auth.policy import ACCOUNT, current_user, requires
from kiosk.auth.second_factor import Check, SecondFactorError
from kiosk.auth.signin import (
    actor,
    begin_session,
    pending_method,
    pending_next,
    pending_user,
    record,
)
from kiosk.auth.views import bp
from kiosk.clock import now_utc
from kiosk.models import User

TOO_MANY = "Too many codes were tried. Wait a few minutes, then try again."
MESSAGES = {
    Check.WRONG: "That code does not match. Check the code your app shows now, and try again.",
    Check.REPLAYED: "That code was already used. Enter the next code your app shows.",
}
START_AGAIN = "Sign in again to continue."

Outcome = tuple[Check, list[str]]


def _counted(
    user: User, run: Callable[[Session, datetime], Outcome], accepted: str | None = None
) -> Outcome | None:
    """Count one try for the account, then run the check in the same unit of work; a right
    code clears the account's count. None when the account (or address) is locked out.

    The same unit of work records in the audit chain a wrong code, a refusal, a lockout
    starting, and (when named) the accepted action; never the code itself."""
    user_id, who = user.id, actor(user)
    allowed = current_app.config["SIGNIN_FAILURES_ALLOWED"]
    keys = throttle.second_factor_limits(user_id, request.remote_addr or "", allowed)
    known = current_app.extensions.setdefault("signin_lockouts", throttle.KnownLockouts())
    now = now_utc()
    if throttle.refused(webdb.session(), keys, now, known):
        return None
    window = timedelta(seconds=current_app.config["SIGNIN_WINDOW_SECONDS"])
    started: list[throttle.Limit] = []
    with webdb.unit_of_work() as db:
        if not throttle.attempt(db, keys, window, now, started):
            record(db, who, "signin.refused", who, {"reason": "locked out", "step": "code"})
            return None
        if started:
            kinds = ["account" if limit is keys[0] else "address" for limit in started]
            details = {"reason": "lockout started", "step": "code", "by": kinds}
            record(db, who, "signin.refused", who, details)
        outcome = run(db, now)
        if outcome[0] is Check.ACCEPTED:
            throttle.succeeded(db, keys)
            if accepted is not None:
                record(db, who, accepted, who)
        else:
            # "for": the sign-in itself, or the change the code was to confirm.
            details = {"why": outcome[0].name.lower(), "for": accepted or "signin"}
            record(db, who, "signin.second_factor_failed", who, details)
    return outcome


def _refused(form: SignInCodeForm | AppCodeForm, outcome: Outcome | None) -> int:
    """Put the reason next to the field; return the status to answer with."""
    if outcome is None:
        form.code.errors = [TOO_MANY]
        return 429
    form.code.errors = [MESSAGES[outcome[0]]]
    return 200


def _start_again() -> Response:
    flash(START_AGAIN, "info")
    return redirect(url_for("auth.login"))


def _codes_page(codes: list[str], next_url: str) -> str:
    """The recovery codes, shown this once (pages are sent with Cache-Control: no-store)."""
    return render_template(
        "auth/recovery_codes.html", codes=codes, next_url=next_url, layout="office/layout.html"
    )


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> Response | str | tuple[str, int]:
    """The second step of signing in, for someone with a second factor."""
    user = pending_user()
    if user is None:
        return _start_again()
    if not second_factor.enrolled(user):
        return redirect(url_for("auth.setup_code"))
    form = SignInCodeForm()
    status = 200
    if form.validate_on_submit():
        typed = form.code.data or ""
        user_id = user.id
        outcome = _counted(user, lambda db, now: (second_factor.check(db, user_id, typed, now), []))
        if outcome is not None and outcome[0] is Check.ACCEPTED:
            target = pending_next()
            begin_session(user, pending_method(), True)
            return redirect(target)
        status = _refused(form, outcome)
    return render_template("auth/code.html", form=form), status


def _setup(
    user: User, signing_in: bool, done: Callable[[list[str]], str]
) -> Response | str | tuple[str, int]:
    """Show the secret and QR code, and turn the factor on once a code from the app matches."""
    user_id = user.id
    try:
        with webdb.unit_of_work() as db:
            enrollment = second_factor.begin_enrollment(db, user_id)
    except SecondFactorError as exc:
        flash(str(exc), "info")
        return redirect(url_for("auth.account_security"))
    form = AppCodeForm()
    status = 200
    if form.validate_on_submit():
        typed = form.code.data or ""
        try:
            outcome = _counted(
                user,
                lambda db, now: second_factor.confirm_enrollment(db, user_id, typed, now),
                "account.second_factor_on",
            )
        except SecondFactorError as exc:
            form.code.errors = [str(exc)]
        else:
            if outcome is not None and outcome[0] is Check.ACCEPTED:
                return done(outcome[1])
            status = _refused(form, outcome)
    page = render_template(
        "auth/setup_code.html",
        form=form,
        enrollment=enrollment,
        signing_in=signing_in,
        action=url_for("auth.setup_code" if signing_in else "auth.account_setup"),
        layout="base.html" if signing_in else "office/layout.html",
    )
    return page, status


@bp.route("/login/setup-code", methods=["GET", "POST"])
def setup_code() -> Response | str | tuple[str, int]:
    """Setting up the second factor at sign-in, for someone whose role requires it."""
    user = pending_user()
    if user is None:
        return _start_again()
    if second_factor.enrolled(user):
        return redirect(url_for("auth.login_code"))

    def done(codes: list[str]) -> str:
        target = pending_next()
        begin_session(user, pending_method(), True)
        return _codes_page(codes, target)

    return _setup(user, True, done)


def _account_page(form_name: str = "", form: AppCodeForm | None = None) -> str:
    """The account page; after a refused form, that form with the error next to its code."""
    user = current_user()
    assert user is not None
    db = webdb.session()
    forms = {"recovery_form": AppCodeForm(prefix="recovery"), "off_form": AppCodeForm(prefix="off")}
    if form is not None:
        forms[form_name] = form
    return render_template(
        "auth/account_security.html",
        enrolled=second_factor.enrolled(user),
        required=second_factor.required(db, user.id),
        codes_left=second_factor.recovery_codes_left(db, user.id),
        **forms,
    )


@bp.get("/account/security")
@requires(ACCOUNT)
def account_security() -> str:
    return _account_page()


@bp.route("/account/security/setup", methods=["GET", "POST"])
@requires(ACCOUNT)
def account_setup() -> Response | str | tuple[str, int]:
    user = current_user()
    assert user is not None
    if second_factor.enrolled(user):
        return redirect(url_for("auth.account_security"))
    return _setup(
        user,
        False,
        lambda codes: _codes_page(codes, url_for("auth.account_security")),
    )


@bp.post("/account/security/recovery-codes")
@requires(ACCOUNT)
def account_recovery_codes() -> Response | str | tuple[str, int]:
    """New recovery codes, after a code from the app (a borrowed session cannot get them)."""
    user = current_user()
    assert user is not None
    if not second_factor.enrolled(user):
        return redirect(url_for("auth.account_security"))
    user_id = user.id
    form = AppCodeForm(prefix="recovery")
    if not form.validate_on_submit():
        return _account_page("recovery_form", form)
    typed = form.code.data or ""

    def renew(db: Session, now: datetime) -> Outcome:
        result = second_factor.check(db, user_id, typed, now)
        if result is not Check.ACCEPTED:
            return result, []
        return result, second_factor.regenerate_recovery_codes(db, user_id, now)

    outcome = _counted(user, renew, "account.second_factor_renew")
    if outcome is not None and outcome[0] is Check.ACCEPTED:
        return _codes_page(outcome[1], url_for("auth.account_security"))
    status = _refused(form, outcome)
    return _account_page("recovery_form", form), status


@bp.post("/account/security/turn-off")
@requires(ACCOUNT)
def account_turn_off() -> Response | str | tuple[str, int]:
    """Turn the second factor off, after a code from the app; refused when the role needs it."""
    user = current_user()
    assert user is not None
    if not second_factor.enrolled(user):
        return redirect(url_for("auth.account_security"))
    user_id = user.id
    form = AppCodeForm(prefix="off")
    if not form.validate_on_submit():
        return _account_page("off_form", form)
    typed = form.code.data or ""

    def turn_off(db: Session, now: datetime) -> Outcome:
        result = second_factor.check(db, user_id, typed, now)
        if result is Check.ACCEPTED:
            second_factor.turn_off(db, user_id)
        return result, []

    try:
        outcome = _counted(user, turn_off, "account.second_factor_off")
    except SecondFactorError as exc:
        form.code.errors = [str(exc)]
        return _account_page("off_form", form)
    if outcome is not None and outcome[0] is Check.ACCEPTED:
        flash("The second factor is off. You sign in with your password alone.", "info")
        return redirect(url_for("auth.account_security"))
    status = _refused(form, outcome)
    return _account_page("off_form", form), status
