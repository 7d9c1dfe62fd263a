"""When the record was last verified, for the review pages (review/_verified.html)."""

from __future__ import annotations

from typing import Any

from kiosk import audit, webdb
from kiosk.models import AuditVerification
from kiosk.review.blueprint import bp


@bp.context_processor
def _last_verification() -> dict[str, Any]:
    """Looked up only by a page that shows it."""

    def last() -> AuditVerification | None:
        return audit.last_verification(webdb.session())

    return {"last_verification": last}
