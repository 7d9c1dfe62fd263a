"""Kiosk enrollment and office sign-in."""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import (
    Blueprint,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from kiosk import webdb
from kiosk.auth import oidc, passwords, sessions, throttle
from kiosk.auth.devices import (
    DEVICE_UNUSED_LIMIT,
    check_in,
    check_in_due,
    enroll,
    enroll_by_code,
    pending_code,
    pending_enrollment,
    shown_code,
    typed_code,
)
from kiosk.auth.forms import EmptyForm, EnrollCodeForm, LoginForm
from kiosk.auth.policy import DEVICE_COOKIE, current_kiosk, current_user, keep_signed_in
from kiosk.auth.signin import ANONYMOUS, actor, first_factor_passed, record
from kiosk.clock import now_utc
from kiosk.models import User

bp = Blueprint("auth", __name__)
bp.before_app_request(keep_signed_in)
# Sign-in with the district's identity provider (404 unless it is set up).
bp.add_url_rule("/login/oidc", "oidc_start", oidc.start, methods=["POST"])
bp.add_url_rule(oidc.CALLBACK_PATH, "oidc_callback", oidc.callback)

# Renewed on every use, so only a device left unused this long loses it.
DEVICE_COOKIE_SECONDS = int(DEVICE_UNUSED_LIMIT.total_seconds())


def _dummy_hash() -> str:
    """A hash of a random password made with the cost accounts are hashed with now: checked
    against when the email is unknown (or has no password), so that sign-in does the same
    work, and takes the same time, whether or not the account exists."""
    app = current_app
    if "signin_dummy_hash" not in app.extensions:
        app.extensions["signin_dummy_hash"] = passwords.hash_password(secrets.token_urlsafe(32))
    dummy: str = app.extensions["signin_dummy_hash"]
    return dummy


@bp.get("/")
def index() -> Response | str:
    if current_kiosk() is not None:
        return redirect(url_for("desk.home"))
    if current_user() is not None:
        return redirect(url_for("office.home"))
    return render_template("auth/index.html")


@bp.route("/enroll/<token>", methods=["GET", "POST"])
def enroll_device(token: str) -> Response | str | tuple[str, int]:
    """GET only shows what will happen (link scanners change nothing); POST enrolls."""
    kiosk = pending_enrollment(webdb.session(), token, now_utc())
    if kiosk is None:
        return render_template("auth/enroll_invalid.html"), 404
    form = EmptyForm()
    if not form.validate_on_submit():
        return render_template("auth/enroll.html", form=form, school=kiosk.school)
    with webdb.unit_of_work() as db:
        # enroll() uses the token once: of two presses, one enrolls and one is refused.
        result = enroll(db, token, now_utc())
    if result is None:
        return render_template("auth/enroll_invalid.html"), 404
    _, secret = result
    response = redirect(url_for("desk.home"))
    _set_device_cookie(response, secret)
    return response


WRONG_CODE = (
    "That code does not work now. Check each character, or ask for a new code: "
    "a code works once, for a limited time."
)


def _code_limit() -> tuple[throttle.Limit]:
    return throttle.address_limit(
        "enroll-code", request.remote_addr or "", current_app.config["ENROLLMENT_CODE_TRIES"]
    )


def _code_page(form: EnrollCodeForm, status: int = 200) -> tuple[str, int]:
    return render_template("auth/enroll_code.html", form=form), status


@bp.route("/enroll", methods=["GET", "POST"])
def enroll_by_typed_code() -> Response | str | tuple[str, int]:
    """Set up a kiosk by typing its short code: the code first, then the same confirmation
    as the link. Every try counts against the client address (guessing is refused after
    ENROLLMENT_CODE_TRIES in the sign-in window); a right code is not counted."""
    form = EnrollCodeForm()
    if request.method == "GET" or not form.validate_on_submit():
        return _code_page(form, 422 if form.errors else 200)
    secret_key = current_app.config["SECRET_KEY"]
    limit = _code_limit()
    known = current_app.extensions.setdefault("enroll_code_lockouts", throttle.KnownLockouts())
    window = timedelta(seconds=current_app.config["SIGNIN_WINDOW_SECONDS"])
    if throttle.refused(webdb.session(), limit, now_utc(), known):
        return render_template("auth/enroll_code_wait.html", form=form), 429
    with webdb.unit_of_work() as db:
        allowed = throttle.attempt(db, limit, window, now_utc())
    if not allowed:
        return render_template("auth/enroll_code_wait.html", form=form), 429
    if form.confirm.data != "yes":
        kiosk = pending_code(webdb.session(), secret_key, form.code.data, now_utc())
        if kiosk is None:
            form.code.errors = [WRONG_CODE]
            return _code_page(form, 404)
        with webdb.unit_of_work() as db:
            throttle.forgive(db, limit)
        code = typed_code(form.code.data) or ""
        return render_template(
            "auth/enroll.html", form=form, school=kiosk.school, code=shown_code(code)
        )
    with webdb.unit_of_work() as db:
        # Of two devices confirming one code at once, one enrolls and one is refused.
        result = enroll_by_code(db, secret_key, form.code.data, now_utc())
        if result is not None:
            throttle.forgive(db, limit)
    if result is None:
        form.code.errors = [WRONG_CODE]
        return _code_page(form, 404)
    response = redirect(url_for("desk.home"))
    _set_device_cookie(response, result[1])
    return response


def _set_device_cookie(response: Response, secret: str) -> None:
    response.set_cookie(
        DEVICE_COOKIE,
        secret,
        max_age=DEVICE_COOKIE_SECONDS,
        httponly=True,
        secure=current_app.config["SECURE_COOKIES"],
        samesite="Lax",
    )


@bp.after_app_request
def _kiosk_used(response: Response) -> Response:
    """A kiosk that was used keeps its cookie another 90 days, and checks in.

    The check-in is its own short write after the request's work is committed, at most
    once a minute per kiosk, and never on the tap: nothing is added to the alert's path.
    """
    kiosk = g.get("kiosk")
    secret = request.cookies.get(DEVICE_COOKIE)
    if kiosk is None or not secret:
        return response
    _set_device_cookie(response, secret)
    now = now_utc()
    if request.endpoint == "desk.start" or not check_in_due(kiosk, now):
        return response
    try:
        with webdb.unit_of_work() as db:
            check_in(db, kiosk.id, now)
    except OperationalError:
        # A busy database only delays the check-in to a later request.
        current_app.logger.warning("kiosk check-in skipped: database busy")
    return response


def _limits(email: str) -> tuple[throttle.Limit, throttle.Limit]:
    """Failures by email, and (more loosely) by client address."""
    allowed = current_app.config["SIGNIN_FAILURES_ALLOWED"]
    return throttle.limits(email, request.remote_addr or "", allowed)


def _wait(email: str) -> tuple[str, int]:
    # The page keeps the email; nothing else was checked.
    return render_template("auth/wait.html", email=email[:254]), 429


def _record_refusal(
    db: Session,
    keys: tuple[throttle.Limit, ...],
    allowed: bool,
    started: list[throttle.Limit],
    who: str,
) -> None:
    """In the unit of work that counted the try: a try refused there, or the try that starts a
    lockout. Guesses refused by the read before it (a known lockout) are not recorded: that
    would add a write to each; the lockout's start stands for them."""
    subject = "" if who == ANONYMOUS else who
    if not allowed:
        record(db, who, "signin.refused", subject, {"reason": "locked out"})
        return
    if started:
        kinds = ["email" if limit is keys[0] else "address" for limit in started]
        record(db, who, "signin.refused", subject, {"reason": "lockout started", "by": kinds})


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    if request.method == "POST":
        email = (request.form.get("email") or "").strip().lower()
        known = current_app.extensions.setdefault("signin_lockouts", throttle.KnownLockouts())
        if throttle.refused(webdb.session(), _limits(email), now_utc(), known):
            # Refused before the form or the password is looked at: guessing costs the
            # server one read.
            return _wait(email)
    form = LoginForm()
    if form.validate_on_submit():
        email = (form.email.data or "").strip().lower()
        keys = _limits(email)
        window = timedelta(seconds=current_app.config["SIGNIN_WINDOW_SECONDS"])
        user = webdb.session().scalar(select(User).where(User.email == email, User.active))
        # Recorded as the account, or (an unknown email) as no one, never with the email.
        who = actor(user) if user is not None else ANONYMOUS
        # Counted before the check, so that guesses sent at the same moment cannot all
        # slip under the limit while the first ones are still being hashed.
        now = now_utc()
        started: list[throttle.Limit] = []
        with webdb.unit_of_work() as db:
            allowed = throttle.attempt(db, keys, window, now, started)
            _record_refusal(db, keys, allowed, started, who)
        if not allowed:
            return _wait(email)
        # The dummy is made on the first sign-in of either kind, not only an unknown one.
        dummy = _dummy_hash()
        hashed = user.password_hash if user is not None and user.password_hash else dummy
        # One check of the same cost on every path; the result counts only for a real account.
        password = form.password.data or ""
        matches = passwords.verify(hashed, password)
        if user is not None and user.password_hash and matches:
            # An outdated hash is replaced now that the password is known, hashed before the
            # unit of work, stored only if no one changed the password meanwhile.
            rehashed = passwords.rehash_if_needed(user.password_hash, password)
            with webdb.unit_of_work() as db:
                throttle.succeeded(db, keys)
                if rehashed is not None:
                    passwords.replace_password_hash(db, user.id, hashed, rehashed)
            return first_factor_passed(user, request.args.get("next"))
        # The same write whether or not the account exists, so that both take the same time.
        with webdb.unit_of_work() as db:
            record(db, who, "signin.failed", who if user is not None else "")
        form.password.errors = ["That email and password do not match."]
    provider = oidc.button(request.args.get("next"))
    return render_template("auth/login.html", form=form, provider=provider)


@bp.post("/logout")
def logout() -> Response:
    form = EmptyForm()
    if form.validate_on_submit():
        token = session.get(sessions.SESSION_KEY)
        user = current_user()
        if isinstance(token, str):
            with webdb.unit_of_work() as db:
                sessions.end(db, token)
                if user is not None:
                    record(db, actor(user), "signout", actor(user))
        session.clear()
    return redirect(url_for("auth.login"))
