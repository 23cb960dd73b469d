"""historical activities and their anonymous participants (a finished season, loaded)

Revision ID: 0004_history
Revises: 0003_roster_pupils
Create Date: 2026-11-30 00:30:00
"""

import sqlalchemy as sa
from alembic import op

import lob_common.db

revision = "0004_history"
down_revision = "0003_roster_pupils"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("historical", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.alter_column("historical", server_default=None)
    op.create_table(
        "historical_participants",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("activity_id", sa.String(length=64), nullable=False),
        sa.Column("import_key", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("school_id", sa.String(length=64), nullable=True),
        sa.Column("age_band", sa.String(length=8), nullable=True),
        sa.Column("phase", sa.String(length=16), nullable=True),
        sa.Column("municipality", sa.String(length=64), nullable=True),
        sa.Column("attended", sa.Boolean(), nullable=True),
        sa.Column("recorded_at", lob_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_historical_participants_activity_id_activities"),
        ),
        sa.ForeignKeyConstraint(
            ["school_id"], ["schools.id"], name=op.f("fk_historical_participants_school_id_schools")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_historical_participants")),
        sa.UniqueConstraint("activity_id", "import_key", name="uq_historical_participants_key"),
    )


def downgrade() -> None:
    op.drop_table("historical_participants")
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.drop_column("historical")
