"""notices told to the operator

``bot.notify`` tells the operator of failures through Apprise, each once: the key of every notice
sent (a delivery's failure, a paused platform, a missing reveal, the day's digest) is kept here.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 18:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.models

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notices',
                    sa.Column('key', sa.String(200), primary_key=True),
                    sa.Column('told_at', bot.models.UTCDateTime(), nullable=False))


def downgrade() -> None:
    op.drop_table('notices')
