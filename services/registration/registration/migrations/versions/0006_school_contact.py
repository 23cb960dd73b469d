"""a school's contact address (the decaan), for the school digest of notifications

Revision ID: 0006_school_contact
Revises: 0005_consent_and_links
Create Date: 2026-11-30 00:35:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_school_contact"
down_revision = "0005_consent_and_links"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("schools", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_email", sa.String(length=254), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("schools", schema=None) as batch_op:
        batch_op.drop_column("contact_email")
