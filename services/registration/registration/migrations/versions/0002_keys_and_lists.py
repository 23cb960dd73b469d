"""named API keys with roles; activity audience, sign-up opening, host, version, cancellation;
one person record per school; one active sign-up per person and activity

Revision ID: 0002_keys_and_lists
Revises: 0001
Create Date: 2026-11-24 09:00:00
"""

import hashlib
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import lob_common.db

revision = "0002_keys_and_lists"
down_revision = "0001"
branch_labels = None
depends_on = None


def _identity_key(school_id, email, first_name, last_name, date_of_birth) -> str:
    """As registration.adapters.repository.identity_key at the time of this revision."""
    parts = (
        school_id or "",
        (email or "").lower(),
        first_name,
        last_name,
        str(date_of_birth or ""),
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("school_id", sa.String(length=64), nullable=True),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", lob_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", lob_common.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["school_id"], ["schools.id"], name=op.f("fk_api_keys_school_id_schools")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(
        "uq_api_keys_active_name",
        "api_keys",
        ["name"],
        unique=True,
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    connection = op.get_bind()
    # Each school's one key becomes a named key of role `school` (named after the school).
    now = datetime.now(UTC)
    api_keys = sa.table(
        "api_keys",
        sa.column("id"),
        sa.column("name"),
        sa.column("role"),
        sa.column("school_id"),
        sa.column("key_hash"),
        sa.column("created_at", lob_common.db.UTCDateTime()),
    )
    for school_id, key_hash in connection.execute(
        sa.text("SELECT id, api_key_hash FROM schools WHERE api_key_hash IS NOT NULL")
    ):
        connection.execute(
            api_keys.insert().values(
                id=str(uuid.uuid4()),
                name=school_id,
                role="school",
                school_id=school_id,
                key_hash=key_hash,
                created_at=now,
            )
        )
    with op.batch_alter_table("schools", schema=None) as batch_op:
        batch_op.drop_constraint("uq_schools_api_key_hash", type_="unique")
        batch_op.drop_column("api_key_hash")

    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sign_up_opens_at", lob_common.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("audience", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(sa.Column("host_school_id", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
        batch_op.add_column(
            sa.Column("cancelled_at", lob_common.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            op.f("fk_activities_host_school_id_schools"), "schools", ["host_school_id"], ["id"]
        )
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.alter_column("audience", server_default=None)
        batch_op.alter_column("version", server_default=None)

    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.add_column(sa.Column("identity_key", sa.String(length=64), nullable=True))
    persons = sa.table("persons", sa.column("id"), sa.column("identity_key"))
    for row in connection.execute(
        sa.text("SELECT id, school_id, email, first_name, last_name, date_of_birth FROM persons")
    ).all():
        key = _identity_key(*row[1:])
        connection.execute(persons.update().where(persons.c.id == row[0]).values(identity_key=key))
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.alter_column("identity_key", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(op.f("uq_persons_identity_key"), ["identity_key"])

    with op.batch_alter_table("registrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_hash", sa.String(length=64), nullable=True))
    # Should a race ever have left two active sign-ups of one person, keep the first.
    connection.execute(
        sa.text(
            "UPDATE registrations SET status = 'cancelled' WHERE status = 'signed_up' AND EXISTS "
            "(SELECT 1 FROM registrations earlier WHERE earlier.status = 'signed_up' "
            "AND earlier.activity_id = registrations.activity_id "
            "AND earlier.person_id = registrations.person_id "
            "AND (earlier.created_at < registrations.created_at OR "
            "(earlier.created_at = registrations.created_at AND earlier.id < registrations.id)))"
        )
    )
    op.create_index(
        "uq_registrations_active_activity_person",
        "registrations",
        ["activity_id", "person_id"],
        unique=True,
        sqlite_where=sa.text("status = 'signed_up'"),
        postgresql_where=sa.text("status = 'signed_up'"),
    )
    op.create_index(
        "ix_registrations_created_at_id", "registrations", ["created_at", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_registrations_created_at_id", table_name="registrations")
    op.drop_index("uq_registrations_active_activity_person", table_name="registrations")
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        batch_op.drop_column("request_hash")
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_persons_identity_key"), type_="unique")
        batch_op.drop_column("identity_key")
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_activities_host_school_id_schools"), type_="foreignkey")
        for column in ("cancelled_at", "version", "host_school_id", "audience", "sign_up_opens_at"):
            batch_op.drop_column(column)
    with op.batch_alter_table("schools", schema=None) as batch_op:
        batch_op.add_column(sa.Column("api_key_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_schools_api_key_hash", ["api_key_hash"])
    op.drop_index("uq_api_keys_active_name", table_name="api_keys")
    op.drop_table("api_keys")
