"""Facts keep the age band, not the age, nor the sign-up time; a cancellation or attendance
may arrive before its sign-up; the schools and activities the tables are counted against;
erased persons.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 20:43:56.405757
"""

import sqlalchemy as sa
from alembic import op

import lob_common.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The 12-27 programme's bands (lob_common.contracts.AGE_BANDS) by first and last age.
BANDS = (("12-15", 12, 15), ("16-17", 16, 17), ("18-22", 18, 22), ("23-27", 23, 27))
# participation_counts' key, in the order a period's rows are read.
COUNT_KEY = (
    "activity_date",
    "role",
    "activity_id",
    "activity_kind",
    "school_id",
    "status",
    "attended",
    "age_band",
    "phase",
    "municipality",
)
COUNTED = (
    "activity_id",
    "activity_kind",
    "activity_date",
    "school_id",
    "role",
    "status",
    "attended",
    "age_band",
    "phase",
    "municipality",
)


def upgrade() -> None:
    op.create_table(
        "activities",
        sa.Column("activity_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("starts_at", lob_common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("activity_date", sa.Date(), nullable=True),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("host_school_id", sa.String(length=64), nullable=True),
        sa.Column("published_at", lob_common.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", lob_common.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("activity_id", name=op.f("pk_activities")),
    )
    op.create_table(
        "erased_persons",
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("erased_at", lob_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_erased_persons")),
    )
    op.create_table(
        "schools",
        sa.Column("school_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("municipality", sa.String(length=64), nullable=True),
        sa.Column("updated_at", lob_common.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("school_id", name=op.f("pk_schools")),
    )
    op.create_table(
        "participation_counts",
        *(
            sa.Column(name, kind, nullable=False)
            for name, kind in (
                ("activity_date", sa.Date()),
                ("role", sa.String(length=16)),
                ("activity_id", sa.String(length=64)),
                ("activity_kind", sa.String(length=32)),
                ("school_id", sa.String(length=64)),
                ("status", sa.String(length=16)),
                ("attended", sa.String(length=1)),
                ("age_band", sa.String(length=8)),
                ("phase", sa.String(length=16)),
                ("municipality", sa.String(length=64)),
                ("n", sa.Integer()),
            )
        ),
        sa.PrimaryKeyConstraint(*COUNT_KEY, name=op.f("pk_participation_counts")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("participation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("age_band", sa.String(length=8), nullable=True))
    # Facts recorded before this revision keep their band; the exact age goes.
    band = sa.case(
        *((sa.column("age").between(first, last), label) for label, first, last in BANDS),
        else_=sa.literal("other"),
    )
    participation = sa.table("participation", sa.column("age"), sa.column("age_band"))
    op.execute(participation.update().where(participation.c.age.is_not(None)).values(age_band=band))
    with op.batch_alter_table("participation", schema=None) as batch_op:
        batch_op.alter_column(
            "registration_id",
            existing_type=sa.VARCHAR(length=36),
            type_=sa.String(length=64),
            existing_nullable=True,
        )
        batch_op.alter_column(
            "person_id",
            existing_type=sa.VARCHAR(length=36),
            type_=sa.String(length=64),
            existing_nullable=True,
        )
        for column, kind in (
            ("activity_kind", sa.String(length=32)),
            ("activity_date", sa.Date()),
            ("role", sa.String(length=16)),
        ):
            batch_op.alter_column(column, existing_type=kind, nullable=True)
        batch_op.drop_index(batch_op.f("ix_participation_activity"))
        batch_op.create_index("ix_participation_activity", ["activity_id"], unique=False)
        batch_op.create_index("ix_participation_period", ["activity_date", "role"], unique=False)
        batch_op.drop_column("age")
        batch_op.drop_column("signed_up_at")
    _count_existing_facts()


def _count_existing_facts() -> None:
    """participation_counts for the facts recorded before this revision (as
    reporting.adapters.repository.recount does)."""
    p = sa.table(
        "participation",
        *(sa.column(c) for c in COUNTED if c != "attended"),
        sa.column("attended", sa.Boolean),
    )
    keys = [
        p.c.activity_id,
        sa.func.coalesce(p.c.activity_kind, ""),
        p.c.activity_date,
        sa.func.coalesce(p.c.school_id, ""),
        p.c.role,
        p.c.status,
        sa.case((p.c.attended.is_(True), "y"), (p.c.attended.is_(False), "n"), else_=""),
        sa.func.coalesce(p.c.age_band, ""),
        sa.func.coalesce(p.c.phase, ""),
        sa.func.coalesce(p.c.municipality, ""),
    ]
    query = (
        sa.select(*keys, sa.func.count())
        .where(p.c.activity_date.is_not(None), p.c.role.is_not(None))
        .group_by(*keys)
    )
    counts = sa.table("participation_counts", *(sa.column(c) for c in (*COUNTED, "n")))
    op.execute(counts.insert().from_select([*COUNTED, "n"], query))


def downgrade() -> None:
    """The ages and sign-up times are gone for good; the columns come back empty."""
    op.execute("DELETE FROM participation WHERE role IS NULL OR activity_date IS NULL")
    with op.batch_alter_table("participation", schema=None) as batch_op:
        for column, kind in (
            ("activity_kind", sa.String(length=32)),
            ("activity_date", sa.Date()),
            ("role", sa.String(length=16)),
        ):
            batch_op.alter_column(column, existing_type=kind, nullable=False)
        batch_op.add_column(
            sa.Column(
                "signed_up_at",
                lob_common.db.UTCDateTime(timezone=True),
                nullable=False,
                server_default="1970-01-01 00:00:00+00:00",
            )
        )
        batch_op.add_column(sa.Column("age", sa.INTEGER(), nullable=True))
        batch_op.drop_index("ix_participation_period")
        batch_op.drop_index("ix_participation_activity")
        batch_op.create_index(
            batch_op.f("ix_participation_activity"), ["activity_id", "status"], unique=False
        )
        batch_op.alter_column(
            "person_id",
            existing_type=sa.String(length=64),
            type_=sa.VARCHAR(length=36),
            existing_nullable=True,
        )
        batch_op.alter_column(
            "registration_id",
            existing_type=sa.String(length=64),
            type_=sa.VARCHAR(length=36),
            existing_nullable=True,
        )
        batch_op.drop_column("age_band")

    op.drop_table("participation_counts")
    op.drop_table("schools")
    op.drop_table("erased_persons")
    op.drop_table("activities")
