"""delivery attachments

Rendering declares the images each part carries (a root's ``thumb``, by the sha256 of the bytes in
``images``), and the delivery keeps them: the engine hands the adapter the bytes a delivery names
instead of reading the story row for every root at claim time. Roots already queued get their story's
image, as they would have had it at claim time.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 19:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

stories = sa.table('stories', sa.column('id', sa.String()), sa.column('content', sa.JSON()))
deliveries = sa.table('deliveries', sa.column('story_id', sa.String()), sa.column('kind', sa.String()),
                      sa.column('attachments', sa.JSON()))


def upgrade() -> None:
    with op.batch_alter_table('deliveries') as batch:
        batch.add_column(sa.Column('attachments', sa.JSON(), nullable=True))
    connection = op.get_bind()
    for story_id, content in connection.execute(sa.select(stories.c.id, stories.c.content)):
        sha256 = (content or {}).get('image_sha256') if isinstance(content, dict) else None
        if sha256:
            connection.execute(deliveries.update().where(deliveries.c.story_id == story_id,
                                                         deliveries.c.kind == 'root')
                               .values(attachments={'thumb': sha256}))


def downgrade() -> None:
    with op.batch_alter_table('deliveries') as batch:
        batch.drop_column('attachments')
