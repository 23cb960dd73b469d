"""delivery lease, sign-ups copy, anonymous counts, calendar sequences, school digests

Revision ID: 0002_delivery_lease
Revises: 0001
Create Date: 2026-11-30 00:20:00
"""

import sqlalchemy as sa
from alembic import op

import lob_common.db

revision = "0002_delivery_lease"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("activity_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("claim_token", sa.String(length=36), nullable=True))
        batch_op.add_column(
            sa.Column("claimed_at", lob_common.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("lease_until", lob_common.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.drop_constraint("uq_messages_source_template", type_="unique")
        batch_op.create_unique_constraint(
            "uq_messages_source_template", ["source_event_id", "template", "registration_id"]
        )
    op.create_table(
        "sign_ups",
        sa.Column("registration_id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("activity_id", sa.String(length=64), nullable=False),
        sa.Column("school_id", sa.String(length=64), nullable=True),
        sa.Column("starts_at", lob_common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("updated_at", lob_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("registration_id", name=op.f("pk_sign_ups")),
    )
    with op.batch_alter_table("sign_ups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sign_ups_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sign_ups_activity_id"), ["activity_id"], unique=False)
    op.create_table(
        "delivery_counts",
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("template", "status", name=op.f("pk_delivery_counts")),
    )
    op.create_table(
        "calendar_entries",
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("activity_id", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "activity_id", name=op.f("pk_calendar_entries")),
    )
    op.create_table(
        "school_digests",
        sa.Column("school_id", sa.String(length=64), nullable=False),
        sa.Column("activity_id", sa.String(length=64), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("due_at", lob_common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("school_id", "activity_id", name=op.f("pk_school_digests")),
    )


def downgrade() -> None:
    op.drop_table("school_digests")
    op.drop_table("calendar_entries")
    op.drop_table("delivery_counts")
    with op.batch_alter_table("sign_ups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_ups_activity_id"))
        batch_op.drop_index(batch_op.f("ix_sign_ups_person_id"))
    op.drop_table("sign_ups")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint("uq_messages_source_template", type_="unique")
        batch_op.create_unique_constraint(
            "uq_messages_source_template", ["source_event_id", "template"]
        )
        batch_op.drop_column("lease_until")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("claim_token")
        batch_op.drop_column("activity_id")
