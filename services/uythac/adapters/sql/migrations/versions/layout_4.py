"""Layout 4, the baseline: the tables as uythac made them before the inspection duties (layout 5) and before
Alembic. A store of this layout made then has no `alembic_version` table: its `meta` row `layout` says "4".

Frozen: written once from the tables of that time; later layouts change the store in revisions of their own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "4"
down_revision = None
branch_labels = None
depends_on = None


def _text(length: int) -> sa.types.TypeEngine[str]:
    """Text compared byte by byte on both stores (PostgreSQL's "C" collation)."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


TABLES = (
    "groups",
    "inspections",
    "loan_balances",
    "loans",
    "meta",
    "offsets",
    "outbox",
    "seen",
    "snapshots",
    "strays",
    "units",
)


def upgrade() -> None:
    op.create_table(
        "groups",
        sa.Column("n", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("group_id", _text(64), nullable=False),
        sa.Column("district_id", _text(32), nullable=True),
        sa.Column("commune_id", _text(32), nullable=True),
        sa.Column("org", _text(4), nullable=True),
        sa.Column("registered_on", sa.Integer(), nullable=True),
        sa.Column("registration_event", _text(64), nullable=True),
        sa.Column("closed_on", sa.Integer(), nullable=True),
        sa.Column("last_periodic_on", sa.Integer(), nullable=True),
        sa.Column("last_deposit_on", sa.Integer(), nullable=True),
        sa.Column("misuse", sa.Boolean(), nullable=False),
        sa.Column("next_change", sa.Integer(), nullable=True),
        sa.Column("has_strays", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("n"),
        sa.UniqueConstraint("group_id"),
    )
    op.create_index("groups_next_change", "groups", ["next_change"], unique=False)
    op.create_table(
        "inspections",
        sa.Column("event_id", _text(64), nullable=False),
        sa.Column("kind", _text(20), nullable=False),
        sa.Column("loan_id", _text(64), nullable=True),
        sa.Column("group_id", _text(64), nullable=True),
        sa.Column("commune_id", _text(32), nullable=False),
        sa.Column("org", _text(4), nullable=False),
        sa.Column("inspected_on", sa.Integer(), nullable=False),
        sa.Column("result", _text(16), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("inspections_loan", "inspections", ["loan_id"], unique=False)
    op.create_table(
        "loan_balances",
        sa.Column("n", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("principal_paid", sa.BigInteger(), nullable=False),
        sa.Column("last_repayment_on", sa.Integer(), nullable=True),
        sa.Column("next_change", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("n"),
    )
    op.create_index("loan_balances_next_change", "loan_balances", ["next_change"], unique=False)
    op.create_table(
        "loans",
        sa.Column("n", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("loan_id", _text(64), nullable=False),
        sa.Column("district_id", _text(32), nullable=True),
        sa.Column("commune_id", _text(32), nullable=True),
        sa.Column("org", _text(4), nullable=True),
        sa.Column("group_id", _text(64), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("disbursed_on", sa.Integer(), nullable=True),
        sa.Column("disbursal_event", _text(64), nullable=True),
        sa.Column("deadline", sa.Integer(), nullable=True),
        sa.Column("overdue_principal", sa.BigInteger(), nullable=False),
        sa.Column("overdue_on", sa.Integer(), nullable=True),
        sa.Column("overdue_event", _text(64), nullable=True),
        sa.Column("status", _text(16), nullable=True),
        sa.Column("inspected_on", sa.Integer(), nullable=True),
        sa.Column("late_inspection_on", sa.Integer(), nullable=True),
        sa.Column("misuse", sa.Boolean(), nullable=False),
        sa.Column("has_strays", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("n"),
        sa.UniqueConstraint("loan_id"),
    )
    op.create_index(
        "loans_status_district",
        "loans",
        ["status", "district_id", "commune_id", "org", "deadline", "loan_id"],
        unique=False,
    )
    op.create_index("loans_status_unit", "loans", ["status", "commune_id", "org", "deadline", "loan_id"], unique=False)
    op.create_index("loans_unit", "loans", ["commune_id", "org"], unique=False)
    op.create_table(
        "meta",
        sa.Column("key", _text(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "offsets",
        sa.Column("topic", _text(249), nullable=False),
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("topic", "partition"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("topic", _text(249), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "seen",
        sa.Column("event_id", _text(64), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=16), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "snapshots",
        sa.Column("as_of", sa.Integer(), nullable=False),
        sa.Column("report", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("as_of"),
    )
    op.create_table(
        "strays",
        sa.Column("kind", _text(5), nullable=False),
        sa.Column("entity_id", _text(64), nullable=False),
        sa.Column("commune_id", _text(32), nullable=False),
        sa.Column("org", _text(4), nullable=False),
        sa.Column("activity", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "entity_id", "commune_id", "org"),
    )
    op.create_table(
        "units",
        sa.Column("commune_id", _text(32), nullable=False),
        sa.Column("org", _text(4), nullable=False),
        sa.Column("district_id", _text(32), nullable=False),
        sa.Column("district_day", sa.Integer(), nullable=False),
        sa.Column("district_event", _text(64), nullable=False),
        sa.Column("loans_inspected", sa.BigInteger(), nullable=False),
        sa.Column("loans_assessed", sa.BigInteger(), nullable=False),
        sa.Column("groups_inspected", sa.BigInteger(), nullable=False),
        sa.Column("groups_seasoned", sa.BigInteger(), nullable=False),
        sa.Column("overdue", sa.BigInteger(), nullable=False),
        sa.Column("outstanding", sa.BigInteger(), nullable=False),
        sa.Column("loans_inactive", sa.BigInteger(), nullable=False),
        sa.Column("loans_seasoned", sa.BigInteger(), nullable=False),
        sa.Column("groups_with_deposit", sa.BigInteger(), nullable=False),
        sa.Column("groups_saving_age", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("commune_id", "org"),
    )
    op.execute(sa.text("INSERT INTO meta (key, value) VALUES ('layout', '4')"))


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
