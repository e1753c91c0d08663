"""the conversation sweep: the newest reply of each thread as a column, and the read requests of each month

- ``conversations.last_reply_at``: when the newest kept reply was posted (NULL: none kept), indexed;
  filled from the replies already kept. The Conversation page lists the most recently active threads
  first, and now pages them in the database instead of reading every kept thread.
- ``read_counts``: the requests the sweep sent to a platform in a month (UTC, ``YYYY-MM``): X caps the
  posts an app may read a month, so the sweep stops reading X before that cap.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 19:00:00
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

import bot.models

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'read_counts',
        sa.Column('platform', sa.String(length=16), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('requests', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('platform', 'month'),
    )
    with op.batch_alter_table('conversations') as batch:
        batch.add_column(sa.Column('last_reply_at', bot.models.UTCDateTime(), nullable=True))
    op.create_index('ix_conversations_last_reply', 'conversations', ['last_reply_at'])
    table = sa.table('conversations', sa.column('story_id', sa.String()), sa.column('platform', sa.String()),
                     sa.column('replies', sa.JSON()), sa.column('last_reply_at', bot.models.UTCDateTime()))
    bind = op.get_bind()
    filled = []
    for story_id, platform, replies in bind.execute(sa.select(table.c.story_id, table.c.platform, table.c.replies)):
        times = []
        for reply in replies or []:
            try:
                times.append(dt.datetime.fromisoformat(str(reply.get("at"))))
            except (TypeError, ValueError, AttributeError):
                continue
        if times:
            newest = max(t if t.tzinfo else t.replace(tzinfo=dt.UTC) for t in times)
            filled.append({"b_story": story_id, "b_platform": platform, "b_at": newest})
    if filled:
        bind.execute(table.update().where(table.c.story_id == sa.bindparam("b_story"),
                                          table.c.platform == sa.bindparam("b_platform"))
                     .values(last_reply_at=sa.bindparam("b_at")), filled)


def downgrade() -> None:
    op.drop_table('read_counts')
    op.drop_index('ix_conversations_last_reply', table_name='conversations')
    with op.batch_alter_table('conversations') as batch:
        batch.drop_column('last_reply_at')
