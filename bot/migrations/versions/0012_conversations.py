"""what followers said: the conversation under each thread the bot posted

- ``conversations``: one row per story and platform (the thread its root started): the root's remote id,
  how many replies others made under it, the latest of them (JSON, at most ``ONEYEARAGO_CONVERSATION_KEEP``),
  when it was last read and is to be read again, when the platform lets it be read again after a rate limit,
  the last error, and how many replies the operator has seen (the dashboard's "new replies").

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.models

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'conversations',
        sa.Column('story_id', sa.String(length=100), nullable=False),
        sa.Column('platform', sa.String(length=16), nullable=False),
        sa.Column('root_id', sa.String(length=200), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('replies', sa.JSON(), nullable=False),
        sa.Column('requests', sa.Integer(), nullable=False),
        sa.Column('swept_at', bot.models.UTCDateTime(), nullable=True),
        sa.Column('next_sweep_at', bot.models.UTCDateTime(), nullable=True),
        sa.Column('retry_at', bot.models.UTCDateTime(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('seen_total', sa.Integer(), nullable=False),
        sa.Column('seen_at', bot.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['story_id'], ['stories.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('story_id', 'platform'),
    )
    op.create_index('ix_conversations_platform_swept', 'conversations', ['platform', 'swept_at'])


def downgrade() -> None:
    op.drop_index('ix_conversations_platform_swept', table_name='conversations')
    op.drop_table('conversations')
