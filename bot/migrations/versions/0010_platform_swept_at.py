"""platform sweeps

Each platform's row remembers when a sweep of that platform last finished (``swept_at``), so that
monitoring (``/metrics``: ``oneyearago_last_sweep_timestamp_seconds``) can tell a run loop that stopped
sweeping from one that has nothing to post.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.models

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('platforms') as batch:
        batch.add_column(sa.Column('swept_at', bot.models.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('platforms') as batch:
        batch.drop_column('swept_at')
