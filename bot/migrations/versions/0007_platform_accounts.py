"""platform accounts

Each platform's row remembers the account the bot last posted as and the limits the platform
announced for it (Mastodon: the instance's ``max_characters`` and ``characters_reserved_per_url``),
with when they were read. Rendering counts against the remembered limits, so a post is measured as
the instance will measure it, without asking the instance at every render.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.models

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('platforms') as batch:
        batch.add_column(sa.Column('account', sa.Text(), nullable=True))
        batch.add_column(sa.Column('limits', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('limits_at', bot.models.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('platforms') as batch:
        batch.drop_column('limits_at')
        batch.drop_column('limits')
        batch.drop_column('account')
