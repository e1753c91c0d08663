"""discarded drafts: what ``oneyearago discard`` deleted, so that ``capture`` never captures it again

- ``discarded_stories``: one row per discarded draft: its id (a captured story's id ends in the digest of
  its feed entry's id), its url (the entry's link), when and from where it was discarded, and its content
  as it was. The story's own history (``story_changes``) goes with the story, so this row is the record.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 09:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.models

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'discarded_stories',
        sa.Column('story_id', sa.String(length=100), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('discarded_at', bot.models.UTCDateTime(), nullable=False),
        sa.Column('origin', sa.Text(), nullable=False),
        sa.Column('content', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('story_id'),
    )
    op.create_index('ix_discarded_stories_url', 'discarded_stories', ['url'])


def downgrade() -> None:
    op.drop_index('ix_discarded_stories_url', table_name='discarded_stories')
    op.drop_table('discarded_stories')
