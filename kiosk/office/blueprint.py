"""The office blueprint: pages for signed-in district staff."""

from flask import Blueprint

bp = Blueprint("office", __name__)
