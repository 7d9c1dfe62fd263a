"""The FERPA blueprint: students' files and the 99.32 request records, for district officials."""

from flask import Blueprint

bp = Blueprint("ferpa", __name__, url_prefix="/ferpa")
