"""look_again_at

A delivery whose outcome is not known yet (its lookup failed, or the platform may still be finishing
the request) used to keep the time to look it up again in ``claimed_until``, the column that
otherwise holds a worker's lease. It gets its own column: ``claimed_until`` is only ever a lease.
Rows waiting for such a lookup (``sending``, held by no worker) move their time across.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 18:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.models

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

deliveries = sa.table('deliveries', sa.column('status', sa.String()), sa.column('claimed_by', sa.String()),
                      sa.column('claimed_until', bot.models.UTCDateTime()),
                      sa.column('look_again_at', bot.models.UTCDateTime()))


def upgrade() -> None:
    with op.batch_alter_table('deliveries') as batch:
        batch.add_column(sa.Column('look_again_at', bot.models.UTCDateTime(), nullable=True))
    waiting = sa.and_(deliveries.c.status == 'sending', deliveries.c.claimed_by.is_(None),
                      deliveries.c.claimed_until.is_not(None))
    op.execute(deliveries.update().where(waiting).values(look_again_at=deliveries.c.claimed_until,
                                                         claimed_until=None))


def downgrade() -> None:
    op.execute(deliveries.update().where(deliveries.c.look_again_at.is_not(None))
               .values(claimed_until=deliveries.c.look_again_at))
    with op.batch_alter_table('deliveries') as batch:
        batch.drop_column('look_again_at')
