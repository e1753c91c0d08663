"""the editorial loop: drafts, the history of each story, link checks

- ``stories.draft``: a draft (captured from a feed, or loaded with ``ONEYEARAGO_REQUIRE_APPROVAL``) is
  never rendered nor posted until ``approve``.
- ``stories.edited_at``: when the story was last changed in the dashboard since it was last loaded
  from a file; a later ``load`` of a different version refuses to overwrite it without ``--force``.
- ``story_changes``: every change of a story, with its time, what changed and where it came from.
- ``link_checks``: whether a story's link still answered when last checked, and the archived copy.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 05:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.models

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ALTER TABLE on every backend: on SQLite a batch (copy-and-swap) of ``stories`` would drop the
    # old table, and its deliveries with it (ON DELETE CASCADE).
    op.add_column('stories', sa.Column('draft', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('stories', sa.Column('edited_at', bot.models.UTCDateTime(), nullable=True))
    op.create_table(
        'story_changes',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('story_id', sa.String(length=100), nullable=False),
        sa.Column('at', bot.models.UTCDateTime(), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('origin', sa.Text(), nullable=False),
        sa.Column('changes', sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(['story_id'], ['stories.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_story_changes_story_id', 'story_changes', ['story_id'])
    op.create_table(
        'link_checks',
        sa.Column('story_id', sa.String(length=100), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('checked_at', bot.models.UTCDateTime(), nullable=False),
        sa.Column('ok', sa.Boolean(), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.Column('archive_url', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['story_id'], ['stories.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('story_id'),
    )


def downgrade() -> None:
    op.drop_table('link_checks')
    op.drop_index('ix_story_changes_story_id', table_name='story_changes')
    op.drop_table('story_changes')
    op.execute('ALTER TABLE stories DROP COLUMN edited_at')  # plain, as above (SQLite 3.35 and later)
    op.execute('ALTER TABLE stories DROP COLUMN draft')
