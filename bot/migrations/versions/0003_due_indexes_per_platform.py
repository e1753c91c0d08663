"""due indexes per platform

Every sweep asks per platform: what is pending and due (and past its grace), how many are in flight,
what is held back by a backoff or the backlog pace. With only (status, due_at) and (platform,
posted_at) to choose from, SQLite read every row of a platform for three of those questions, so a
tick with a million queued cost ten times one with a thousand. These two indexes answer each of them
from a narrow range.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 17:40:00
"""

from __future__ import annotations

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_platform_status_due', ['platform', 'status', 'due_at'], unique=False)
        batch_op.create_index('ix_deliveries_platform_status_held', ['platform', 'status', 'not_before'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_platform_status_held')
        batch_op.drop_index('ix_deliveries_platform_status_due')
