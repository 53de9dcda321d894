"""One loan's 30-day inspection duty. Loans carry the bank's ids and dates only: no borrower data exists
in uythac, and this endpoint has none to give."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from uythac.adapters.sql import queries
from uythac.core.areas import Area
from uythac.entrypoints.api import answers
from uythac.entrypoints.api.auth import caller
from uythac.entrypoints.api.context import reading
from uythac.entrypoints.api.marshal import path, respond
from uythac.entrypoints.api.problems import Problem
from uythac.entrypoints.api.schemas import LoanPathArgs, LoanSchema

bp = Blueprint("loans", __name__)
_LOAN_PATH, _LOAN = LoanPathArgs(), LoanSchema()


@bp.get("/v1/loans/<loan_id>")
def get_loan(loan_id: str) -> Response:
    """Where a loan's post-disbursement inspection stands at T: pending, due soon, missed or fulfilled.

    404 for a loan outside the caller's area, and for an id no `loan.disbursed` has named yet (an
    inspection or repayment may arrive first; until the disbursement does, the loan has no duty and no unit).
    ---
    get:
      summary: One loan's inspection status
      tags: [loans]
      parameters: [{in: path, schema: LoanPathArgs}]
      responses:
        200: {description: The loan, content: {application/json: {schema: LoanSchema}}}
        400: BadParameter
        404: NotFound
    """
    path(_LOAN_PATH, {"loan_id": loan_id})
    return respond(_LOAN, loan_status(caller().area, loan_id))


def loan_status(area: Area, loan_id: str) -> dict[str, Any]:
    """The loan's answer (`answers.loan_status`) if `area` covers it; else the 404 problem."""
    connection = reading()
    loan = queries.loan(connection, loan_id)
    if loan is None or not area.covers(loan.district_id, loan.commune_id, loan.org):
        raise Problem("not-found", f"no disbursed loan {loan_id} in the area of this API key")
    return answers.loan_status(loan, queries.clock(connection))
