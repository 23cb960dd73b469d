"""attendance (no-show history for overbooking), activities.ends_at (bus timetables)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 11:00:00
"""

import sqlalchemy as sa
from alembic import op

import lob_common.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ends_at", lob_common.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "attendance",
        sa.Column("registration_id", sa.String(length=36), nullable=False),
        sa.Column("activity_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("attended", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", lob_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("registration_id", name=op.f("pk_attendance")),
    )
    with op.batch_alter_table("attendance", schema=None) as batch_op:
        batch_op.create_index("ix_attendance_activity", ["activity_id"], unique=False)
        batch_op.create_index("ix_attendance_person", ["person_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("attendance", schema=None) as batch_op:
        batch_op.drop_index("ix_attendance_person")
        batch_op.drop_index("ix_attendance_activity")
    op.drop_table("attendance")
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.drop_column("ends_at")
