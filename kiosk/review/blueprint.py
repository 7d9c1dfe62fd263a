"""The review blueprint: the log of encounters, for those who read records."""

from flask import Blueprint

bp = Blueprint("review", __name__, url_prefix="/review")
