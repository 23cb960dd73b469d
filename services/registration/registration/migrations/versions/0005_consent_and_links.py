"""parental consent (pending sign-ups, expiry, erasure after a grace), links by token
(consent, personal), attendance, and the anonymous record an erasure leaves

Revision ID: 0005_consent_and_links
Revises: 0004_history
Create Date: 2026-11-30 00:30:00
"""

import sqlalchemy as sa
from alembic import op

import lob_common.db

revision = "0005_consent_and_links"
down_revision = "0004_history"
branch_labels = None
depends_on = None

ACTIVE = "status IN ('signed_up', 'pending_consent')"


def upgrade() -> None:
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        for name in (
            "consent_expires_at",
            "consent_decided_at",
            "erase_after",
            "attendance_recorded_at",
        ):
            batch_op.add_column(sa.Column(name, lob_common.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("attended", sa.Boolean(), nullable=True))
    op.create_index(
        op.f("ix_registrations_erase_after"), "registrations", ["erase_after"], unique=False
    )
    # A sign-up waiting for consent holds the place too: one of either per person and activity.
    op.drop_index("uq_registrations_active_activity_person", table_name="registrations")
    op.create_index(
        "uq_registrations_active_activity_person",
        "registrations",
        ["activity_id", "person_id"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )
    op.create_table(
        "access_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("registration_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", lob_common.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", lob_common.db.UTCDateTime(), nullable=False),
        sa.Column("used_at", lob_common.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["registrations.id"],
            name=op.f("fk_access_tokens_registration_id_registrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_access_tokens")),
    )
    op.create_index(
        op.f("ix_access_tokens_registration_id"),
        "access_tokens",
        ["registration_id"],
        unique=False,
    )
    op.create_table(
        "anonymous_registrations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("activity_id", sa.String(length=64), nullable=False),
        sa.Column("school_id", sa.String(length=64), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("age_band", sa.String(length=8), nullable=True),
        sa.Column("phase", sa.String(length=16), nullable=True),
        sa.Column("municipality", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("consent", sa.String(length=16), nullable=False),
        sa.Column("attended", sa.Boolean(), nullable=True),
        sa.Column("created_at", lob_common.db.UTCDateTime(), nullable=False),
        sa.Column("erased_at", lob_common.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_anonymous_registrations_activity_id_activities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anonymous_registrations")),
    )
    op.create_index(
        op.f("ix_anonymous_registrations_activity_id"),
        "anonymous_registrations",
        ["activity_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_anonymous_registrations_person_id"),
        "anonymous_registrations",
        ["person_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("anonymous_registrations")
    op.drop_table("access_tokens")
    op.drop_index("uq_registrations_active_activity_person", table_name="registrations")
    op.create_index(
        "uq_registrations_active_activity_person",
        "registrations",
        ["activity_id", "person_id"],
        unique=True,
        sqlite_where=sa.text("status = 'signed_up'"),
        postgresql_where=sa.text("status = 'signed_up'"),
    )
    op.drop_index(op.f("ix_registrations_erase_after"), table_name="registrations")
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        for name in (
            "attended",
            "attendance_recorded_at",
            "erase_after",
            "consent_decided_at",
            "consent_expires_at",
        ):
            batch_op.drop_column(name)
