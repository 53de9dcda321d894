"""Layout 6: groups indexed by their area, as loans are.

A worklist lists the groups that owe the year's inspection; without these indexes a commune's worklist read
every group of the store (~10 ms at 4 000 communes, growing with the country).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "6"
down_revision = "5"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("groups_unit", "groups", ["commune_id", "org"])
    op.create_index("groups_district", "groups", ["district_id", "commune_id", "org"])
    op.execute(sa.text("UPDATE meta SET value = '6' WHERE key = 'layout'"))


def downgrade() -> None:
    op.drop_index("groups_district", "groups")
    op.drop_index("groups_unit", "groups")
    op.execute(sa.text("UPDATE meta SET value = '5' WHERE key = 'layout'"))
