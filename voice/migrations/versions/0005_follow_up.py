"""calls.follow_up: what the specialist decided comes next (none, callback, visit)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch would rebuild `calls` on SQLite and drop its expression index.
    op.add_column('calls', sa.Column('follow_up', sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column('calls', 'follow_up')
