"""Layout 5: the other inspection duties (an inactive loan's, a group's of the year).

Loans keep their duty (status, opening day, a missed duty's late inspection), groups the latest year before
their last periodic inspection's that had one, units the duties' counts. The step works them out with the
processor's own rules from what the store holds (`Processor.recount`): the loans, groups and every inspection.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from uythac.adapters.sql.layout import recount

revision = "5"
down_revision = "4"
branch_labels = None
depends_on = None

COUNTS = ("inactive_pending", "inactive_missed", "inactive_done", "year_pending", "year_done", "year_missed_last_year")
DUTY_INDEX = ("duty_status", "district_id", "commune_id", "org", "loan_id")


def upgrade() -> None:
    op.add_column(
        "loans", sa.Column("duty_status", sa.String(8).with_variant(sa.String(8, collation="C"), "postgresql"))
    )
    op.add_column("loans", sa.Column("duty_opened_on", sa.Integer()))
    op.add_column("loans", sa.Column("duty_late_on", sa.Integer()))
    op.create_index("loans_duty_district", "loans", list(DUTY_INDEX))
    op.add_column("groups", sa.Column("prior_periodic_year", sa.Integer()))
    for name in COUNTS:
        op.add_column("units", sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))
    recount(op.get_bind(), context.config.attributes["scorecard"])
    op.execute(sa.text("UPDATE meta SET value = '5' WHERE key = 'layout'"))


def downgrade() -> None:
    op.drop_index("loans_duty_district", "loans")
    for name in ("duty_status", "duty_opened_on", "duty_late_on"):
        op.drop_column("loans", name)
    op.drop_column("groups", "prior_periodic_year")
    for name in COUNTS:
        op.drop_column("units", name)
    op.execute(sa.text("UPDATE meta SET value = '4' WHERE key = 'layout'"))
