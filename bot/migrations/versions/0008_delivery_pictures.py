"""delivery pictures and their uploads

A post may show pictures with alt text (a story's ``images``, its reveal's ``followup_images``).
Rendering declares them per part, and the delivery keeps them in ``pictures`` (a list of
``{"sha256", "alt"}``, the bytes stored in ``images``). ``media`` holds what was uploaded for them
before the post was sent (the platform's references and when they expire), committed before the send,
so that a resend attaches the same uploads instead of making new ones.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries') as batch:
        batch.add_column(sa.Column('pictures', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('media', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('deliveries') as batch:
        batch.drop_column('media')
        batch.drop_column('pictures')
