"""class rosters: a pupil's student number, pupils without an e-mail address, and the legal
basis of a registration ("school" for roster sign-ups)

Revision ID: 0003_roster_pupils
Revises: 0002_keys_and_lists
Create Date: 2026-11-30 00:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_roster_pupils"
down_revision = "0002_keys_and_lists"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.add_column(sa.Column("student_number", sa.String(length=32), nullable=True))
        batch_op.alter_column("email", existing_type=sa.String(length=254), nullable=True)
        batch_op.create_index(
            "ix_persons_school_student_number", ["school_id", "student_number"], unique=False
        )
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("legal_basis", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        batch_op.drop_column("legal_basis")
    # Roster pupils without an address cannot stay in a table that requires one.
    op.execute(
        "DELETE FROM registrations WHERE person_id IN (SELECT id FROM persons WHERE email IS NULL)"
    )
    op.execute("DELETE FROM persons WHERE email IS NULL")
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.drop_index("ix_persons_school_student_number")
        batch_op.alter_column("email", existing_type=sa.String(length=254), nullable=False)
        batch_op.drop_column("student_number")
