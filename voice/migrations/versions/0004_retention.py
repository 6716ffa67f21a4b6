"""retention: calls remember when their personal data was redacted

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


# Plain ALTERs, not a batch: SQLite adds and drops a column in place, and a batch would rebuild `calls`
# without ix_calls_caller_name_lower, an expression index that reflection cannot see.
def upgrade() -> None:
    op.add_column('calls', sa.Column('redacted_at', sa.DateTime(), nullable=True))
    op.create_index('ix_calls_redacted_started', 'calls', ['redacted_at', 'started_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_calls_redacted_started', table_name='calls')
    op.drop_column('calls', 'redacted_at')
