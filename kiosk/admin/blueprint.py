"""The administration blueprint: configuration and people, for admins (no record content)."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")
